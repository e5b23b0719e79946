"""The grant-email pages: the list and its "needs review" queue, one message, resolve, dismiss,
read again, and the paste form. Scoped: unmatched messages are for superusers only."""

import uuid

import hypothesis
import pytest
from django.test import Client
from django.urls import reverse
from hypothesis import strategies as st

from core.models import AuditEntry
from grants.emails import grant_email_receive
from grants.models import GrantEmail, Partner, Site
from tests.grants.mail_auth import authenticated, sender_auth_email, trust_receiving_server

pytestmark = pytest.mark.django_db

ALOHA = uuid.UUID("8f14e45f-ceea-4e67-a2b1-0d5c3b9a7e21")
KAILUA = uuid.UUID("c9f0f895-fb98-4b91-9f2e-6a1d3e7c5b40")
SECRETS = ["rg-password-acme", "whsec-acme", "rg-password-other", "whsec-other"]

PLAIN = b"""From: Real Geeks <noreply@realgeeks.com>
To: grants+acme-leads@portal.example
Subject: Site access granted
Date: Tue, 03 Nov 2026 18:22:05 +0000
Message-ID: <plain-1@mail.realgeeks.com>
Content-Type: text/plain; charset="us-ascii"

Aloha,

A Real Geeks client granted your company access to one of their sites.

Site name: Aloha Homes
Site UUID: 8f14e45f-ceea-4e67-a2b1-0d5c3b9a7e21
Website: https://www.alohahomes.com
"""

# No site UUID anywhere, and addressed to no partner in particular.
NO_SITE = b"""From: Real Geeks <noreply@realgeeks.com>
To: someone@portal.example
Subject: Your grant is ready
Message-ID: <no-site-9@mail.realgeeks.com>
Content-Type: text/plain; charset="utf-8"

A client granted you access. Open your dashboard to see which site.
"""

HOSTILE_HTML = b"""From: Real Geeks <noreply@realgeeks.com>
To: grants+acme-leads@portal.example
Subject: =?utf-8?q?Acc=C3=A8s_granted?=
Message-ID: <html-2@mail.realgeeks.com>
Content-Type: text/html; charset="utf-8"

<html><body><script>document.title='owned'</script>
<p>You now have access to this site:</p>
<table><tr><td>Kailua Realty</td><td>c9f0f895-fb98-4b91-9f2e-6a1d3e7c5b40</td><td>kailuarealty.com</td></tr></table>
<img src="https://track.example/open.gif">
</body></html>
"""


@pytest.fixture(autouse=True)
def trusted(settings) -> None:
    trust_receiving_server(settings)


def stored(raw: bytes, *, partner: Partner | None = None) -> GrantEmail:
    """`raw` as the inbound webhook keeps it, authenticated by the trusted receiving server."""
    return grant_email_receive(authenticated(raw), source=GrantEmail.Source.INBOUND, partner=partner)


@pytest.fixture
def unmatched(partner, other_partner) -> GrantEmail:
    """Two partners and nothing in the message naming either: kept for review, matched to none."""
    grant_email = stored(NO_SITE)
    assert (grant_email.partner, grant_email.status) == (None, GrantEmail.Status.NEEDS_REVIEW)
    return grant_email


@pytest.fixture
def acme_needs_review(partner, other_partner) -> GrantEmail:
    return stored(NO_SITE.replace(b"someone@", b"grants+acme-leads@"))


def test_staff_see_their_partners_messages_only_and_unmatched_ones_are_for_superusers(
    acme_client, partner, other_partner, unmatched
):
    theirs = stored(PLAIN.replace(b"plain-1", b"plain-other"), partner=other_partner)
    ours = stored(PLAIN)

    listing = acme_client.get(reverse("portal:grant_email_list")).content.decode()

    assert reverse("portal:grant_email_detail", args=[ours.public_id]) in listing
    assert str(theirs.public_id) not in listing
    assert str(unmatched.public_id) not in listing
    for hidden in (theirs, unmatched):
        for name in ("grant_email_detail", "grant_email_resolve", "grant_email_dismiss", "grant_email_reparse"):
            method = acme_client.get if name == "grant_email_detail" else acme_client.post
            assert method(reverse(f"portal:{name}", args=[hidden.public_id])).status_code == 404, name
    unmatched.refresh_from_db()
    assert unmatched.status == GrantEmail.Status.NEEDS_REVIEW


def test_superusers_find_unmatched_messages_in_the_review_queue(root_client, unmatched, partner):
    granted = stored(PLAIN)

    response = root_client.get(reverse("portal:grant_email_list"), {"status": "needs_review", "partner": "none"})

    content = response.content.decode()
    assert str(unmatched.public_id) in content
    assert str(granted.public_id) not in content
    assert "Needs review (1)" in content
    assert "Not matched" in content


def test_the_list_filters_by_partner(root_client, partner, other_partner):
    ours = stored(PLAIN)
    theirs = stored(PLAIN.replace(b"plain-1", b"plain-other"), partner=other_partner)

    content = root_client.get(reverse("portal:grant_email_list"), {"partner": other_partner.slug}).content.decode()

    assert str(theirs.public_id) in content
    assert str(ours.public_id) not in content


def test_the_message_page_shows_headers_text_what_was_read_and_why_it_is_this_partners(acme_client, partner):
    grant_email = stored(PLAIN)

    content = acme_client.get(reverse("portal:grant_email_detail", args=[grant_email.public_id])).content.decode()

    assert "&lt;noreply@realgeeks.com&gt;" in content  # the From header, escaped
    assert "A Real Geeks client granted your company access" in content
    assert f"<code>{ALOHA}</code>" in content
    assert "Aloha Homes" in content
    assert "alohahomes.com" in content
    assert "It was sent to grants+acme-leads@portal.example: the part after “+” is this partner&#x27;s slug." in content
    assert reverse("portal:site_detail", args=[partner.slug, ALOHA]) in content


def test_an_html_part_is_shown_as_text_never_as_html(acme_client, partner):
    grant_email = stored(HOSTILE_HTML)

    content = acme_client.get(reverse("portal:grant_email_detail", args=[grant_email.public_id])).content.decode()

    assert "<script>document.title" not in content
    assert '<img src="https://track.example' not in content
    assert "&lt;img src=&quot;https://track.example/open.gif&quot;&gt;" in content  # the source, as text
    assert "Kailua Realty | c9f0f895-fb98-4b91-9f2e-6a1d3e7c5b40 | kailuarealty.com" in content  # the text read
    assert "Accès granted" in content  # an RFC 2047 subject, decoded


def test_staff_resolve_a_message_by_hand_granting_its_sites_with_an_audit_entry(
    acme_client, acme_staff, partner, acme_needs_review
):
    response = acme_client.post(
        reverse("portal:grant_email_resolve", args=[acme_needs_review.public_id]),
        {
            "partner": partner.slug,
            "site_uuids": f"{ALOHA}\n{str(KAILUA).upper().replace('-', '')}",
            "name": "Aloha Homes",
            "note": "Client confirmed both sites by phone",
        },
    )

    assert response.status_code == 302
    acme_needs_review.refresh_from_db()
    assert (acme_needs_review.status, acme_needs_review.resolved_by) == (GrantEmail.Status.RESOLVED, acme_staff)
    sites = Site.objects.filter(partner=partner).order_by("site_uuid")
    assert [(s.site_uuid, s.status, s.source) for s in sites] == [
        (ALOHA, Site.Status.ACTIVE, Site.Source.EMAIL),
        (KAILUA, Site.Status.ACTIVE, Site.Source.EMAIL),
    ]
    assert all(s.status_changes.get().grant_email == acme_needs_review for s in sites)
    entry = AuditEntry.objects.get(action="grant_email.resolve")
    assert (entry.actor, entry.partner, entry.reason) == (acme_staff, partner, "Client confirmed both sites by phone")
    assert entry.before == {"status": "needs_review", "partner": "acme-leads", "sites": []}
    assert entry.after == {"status": "resolved", "partner": "acme-leads", "sites": [str(ALOHA), str(KAILUA)]}
    page = acme_client.get(response["Location"]).content.decode()
    assert "Resolved: 2 sites granted to Acme Leads." in page
    assert "Chosen by kim when resolving the message by hand." in page


def test_a_superuser_resolves_an_unmatched_message_choosing_the_partner(root_client, unmatched, other_partner):
    root_client.post(
        reverse("portal:grant_email_resolve", args=[unmatched.public_id]),
        {"partner": other_partner.slug, "site_uuids": str(KAILUA)},
    )

    unmatched.refresh_from_db()
    assert unmatched.partner == other_partner
    assert Site.objects.get(site_uuid=KAILUA).partner == other_partner


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("8f14e45f-ceea-4e67-a2b1\nnot-a-uuid", "Not a site UUID: “8f14e45f-ceea-4e67-a2b1”, “not-a-uuid”."),
        (f"{ALOHA}, 8f14e45f-ceea-4e67-a2b1-0d5c3b9a7ezz", "Not a site UUID: “8f14e45f-ceea-4e67-a2b1-0d5c3b9a7ezz”."),
        ("   ", "Enter at least one site UUID, or dismiss the message."),
    ],
)
def test_bad_site_uuids_are_refused_clearly_keeping_what_was_typed(
    acme_client, partner, acme_needs_review, typed, message
):
    response = acme_client.post(
        reverse("portal:grant_email_resolve", args=[acme_needs_review.public_id]),
        {"partner": partner.slug, "site_uuids": typed, "name": "Typed Realty", "note": "typed note"},
    )

    content = response.content.decode()
    assert response.status_code == 200
    assert message in content
    assert f">\n{typed}</textarea>" in content
    assert 'value="Typed Realty"' in content
    assert 'value="typed note"' in content
    assert not Site.objects.exists()
    assert not AuditEntry.objects.exists()
    acme_needs_review.refresh_from_db()
    assert acme_needs_review.status == GrantEmail.Status.NEEDS_REVIEW


def test_staff_cannot_resolve_a_message_to_a_partner_they_do_not_belong_to(
    acme_client, acme_needs_review, other_partner
):
    response = acme_client.post(
        reverse("portal:grant_email_resolve", args=[acme_needs_review.public_id]),
        {"partner": other_partner.slug, "site_uuids": str(ALOHA)},
    )

    assert "Choose one of the partners in the list." in response.content.decode()
    assert not Site.objects.exists()


def test_a_message_already_granted_cannot_be_resolved_again_and_says_why(acme_client, partner):
    grant_email = stored(PLAIN)

    response = acme_client.post(
        reverse("portal:grant_email_resolve", args=[grant_email.public_id]),
        {"partner": partner.slug, "site_uuids": str(KAILUA)},
    )

    assert "This message is already sites read and granted." in response.content.decode()
    assert not Site.objects.filter(site_uuid=KAILUA).exists()


def test_staff_dismiss_a_message_with_a_reason_and_it_is_audited(acme_client, acme_staff, partner, acme_needs_review):
    response = acme_client.post(
        reverse("portal:grant_email_dismiss", args=[acme_needs_review.public_id]), {"reason": "A duplicate"}
    )

    acme_needs_review.refresh_from_db()
    assert response.status_code == 302
    assert acme_needs_review.status == GrantEmail.Status.DISMISSED
    entry = AuditEntry.objects.get(action="grant_email.dismiss")
    assert (entry.actor, entry.before, entry.after, entry.reason) == (
        acme_staff,
        {"status": "needs_review"},
        {"status": "dismissed"},
        "A duplicate",
    )


def test_reading_a_message_again_grants_it_once_its_partner_can_be_told(root_client, superuser, partner, other_partner):
    grant_email = stored(PLAIN.replace(b"grants+acme-leads@", b"someone@"))
    assert (grant_email.partner, grant_email.status) == (None, GrantEmail.Status.NEEDS_REVIEW)
    Partner.objects.filter(pk=partner.pk).update(grant_email_address="someone@portal.example")

    response = root_client.post(reverse("portal:grant_email_reparse", args=[grant_email.public_id]), follow=True)

    grant_email.refresh_from_db()
    assert (grant_email.status, grant_email.partner) == (GrantEmail.Status.GRANTED, partner)
    assert Site.objects.get(site_uuid=ALOHA).status == Site.Status.ACTIVE
    entry = AuditEntry.objects.get(action="grant_email.reparse")
    assert (entry.actor, (entry.before or {})["partner"], (entry.after or {})["status"]) == (superuser, None, "granted")
    content = response.content.decode()
    assert "Read again: its sites are granted." in content
    assert "It was sent to someone@portal.example, this partner&#x27;s grant email address." in content


PASTED_FRAGMENT = """Site name: Aloha Homes
Site UUID: 8f14e45f-ceea-4e67-a2b1-0d5c3b9a7e21
Website: https://www.alohahomes.com
"""


def test_pasted_text_grants_the_site_it_names_for_the_chosen_partner(acme_client, acme_staff, partner, other_partner):
    response = acme_client.post(
        reverse("portal:grant_email_paste"), {"text": PASTED_FRAGMENT, "partner": partner.slug}, follow=True
    )

    site = Site.objects.get(site_uuid=ALOHA)
    assert (site.partner, site.status, site.source, site.name) == (
        partner,
        Site.Status.ACTIVE,
        Site.Source.EMAIL,
        "Aloha Homes",
    )
    grant_email = GrantEmail.objects.get()
    assert (grant_email.source, grant_email.created_by) == (GrantEmail.Source.PASTE, acme_staff)
    content = response.content.decode()
    assert response.redirect_chain[-1][0] == reverse("portal:grant_email_detail", args=[grant_email.public_id])
    assert "Granted to Acme Leads: Aloha Homes." in content
    assert "Chosen by kim when pasting the message." in content
    entry = AuditEntry.objects.get(action="grant_email.paste")
    assert (entry.actor, (entry.after or {})["partner_from"], (entry.after or {})["sites"]) == (
        acme_staff,
        "chosen",
        [str(ALOHA)],
    )


def test_a_pasted_message_finds_its_partner_by_the_grant_page_link(root_client, partner, other_partner):
    text = PASTED_FRAGMENT + "Manage your grants: https://leadrouter.realgeeks.com/dev/acme-co/grant/\n"

    response = root_client.post(reverse("portal:grant_email_paste"), {"text": text, "partner": ""}, follow=True)

    assert Site.objects.get(site_uuid=ALOHA).partner == partner
    assert "It links to this partner&#x27;s RG grant page (company id acme-co)." in response.content.decode()
    assert (AuditEntry.objects.get().after or {})["partner_from"] == "detected"


def test_a_pasted_message_without_a_site_waits_for_review_and_says_so(acme_client, partner):
    response = acme_client.post(
        reverse("portal:grant_email_paste"),
        {"text": "A client granted you a site, call us.", "partner": partner.slug},
        follow=True,
    )

    assert GrantEmail.objects.get().status == GrantEmail.Status.NEEDS_REVIEW
    assert "Needs review: No site UUID was found in this message." in response.content.decode()
    assert not Site.objects.exists()


def test_when_the_partner_cannot_be_detected_staff_are_asked_to_choose_and_nothing_is_kept(
    acme_client, partner, other_partner
):
    response = acme_client.post(reverse("portal:grant_email_paste"), {"text": PASTED_FRAGMENT, "partner": ""})

    content = response.content.decode()
    assert response.status_code == 200
    assert "Could not tell which of your partners this message is for: choose one." in content
    assert "Site UUID: 8f14e45f-ceea-4e67-a2b1-0d5c3b9a7e21" in content  # what was pasted stays
    assert not GrantEmail.objects.exists()
    assert not Site.objects.exists()


def test_a_paste_matching_another_partners_stored_message_reveals_nothing_of_it(acme_client, partner, other_partner):
    stored(PLAIN.replace(b"grants+acme-leads@", b"grants+other-co@"))
    text = PLAIN.replace(b"grants+acme-leads@", b"grants+other-co@").decode()

    # Its recipient names another partner: first the paste asks to confirm, naming none.
    warned = acme_client.post(reverse("portal:grant_email_paste"), {"text": text, "partner": partner.slug})
    assert "which names another partner" in warned.content.decode()
    assert "Other Co" not in warned.content.decode()
    response = acme_client.post(
        reverse("portal:grant_email_paste"), {"text": text, "partner": partner.slug, "confirm_partner": "on"}
    )

    content = response.content.decode()
    assert "stored before, for a partner you cannot see" in content
    assert "Other Co" not in content
    assert GrantEmail.objects.count() == 1
    assert not Site.objects.filter(partner=partner).exists()


def test_an_empty_paste_is_refused_with_a_clear_message(acme_client, partner):
    response = acme_client.post(reverse("portal:grant_email_paste"), {"text": "  \n ", "partner": partner.slug})

    assert "Paste the email, or at least the part that names the site and its UUID." in response.content.decode()
    assert not GrantEmail.objects.exists()


def test_every_grant_email_form_needs_a_csrf_token(partner, acme_staff, acme_needs_review):
    client = Client(enforce_csrf_checks=True)
    client.force_login(acme_staff)
    detail = client.get(reverse("portal:grant_email_detail", args=[acme_needs_review.public_id])).content.decode()
    paste = client.get(reverse("portal:grant_email_paste")).content.decode()

    assert detail.count('name="csrfmiddlewaretoken"') == detail.count('method="post"') == 4  # + log out
    assert paste.count('name="csrfmiddlewaretoken"') == paste.count('method="post"') == 2
    posts = [
        (
            reverse("portal:grant_email_resolve", args=[acme_needs_review.public_id]),
            {"partner": partner.slug, "site_uuids": str(ALOHA)},
        ),
        (reverse("portal:grant_email_dismiss", args=[acme_needs_review.public_id]), {"reason": "x"}),
        (reverse("portal:grant_email_reparse", args=[acme_needs_review.public_id]), {}),
        (reverse("portal:grant_email_paste"), {"text": PASTED_FRAGMENT, "partner": partner.slug}),
    ]
    for url, data in posts:
        assert client.post(url, data).status_code == 403, url
    acme_needs_review.refresh_from_db()
    assert acme_needs_review.status == GrantEmail.Status.NEEDS_REVIEW
    assert GrantEmail.objects.count() == 1
    assert not Site.objects.exists()


def test_the_grant_email_pages_show_no_secret(root_client, partner, other_partner, unmatched):
    granted = stored(PLAIN)
    pages = [
        root_client.get(reverse("portal:grant_email_list")),
        root_client.get(reverse("portal:grant_email_list"), {"status": "needs_review", "partner": "none"}),
        root_client.get(reverse("portal:grant_email_detail", args=[granted.public_id])),
        root_client.get(reverse("portal:grant_email_detail", args=[unmatched.public_id])),
        root_client.get(reverse("portal:grant_email_paste")),
        root_client.post(reverse("portal:grant_email_paste"), {"text": ""}),
        root_client.post(
            reverse("portal:grant_email_resolve", args=[unmatched.public_id]), {"partner": "", "site_uuids": "x"}
        ),
    ]
    for response in pages:
        assert response.status_code == 200
        content = response.content.decode()
        for secret in SECRETS:
            assert secret not in content, secret


def test_the_message_page_and_the_list_show_that_a_sender_was_verified(acme_client, partner):
    grant_email = stored(PLAIN)

    detail = acme_client.get(reverse("portal:grant_email_detail", args=[grant_email.public_id])).content.decode()
    listing = acme_client.get(reverse("portal:grant_email_list")).content.decode()

    assert "Sender verified" in detail
    assert "DKIM pass for realgeeks.com (checked by mx.portal.example)" in detail
    assert "Sender verified" in listing


def test_a_forged_message_waits_in_the_review_queue_showing_why(acme_client, partner):
    forged = grant_email_receive(sender_auth_email("forged_sender.eml"), source=GrantEmail.Source.INBOUND)

    listing = acme_client.get(reverse("portal:grant_email_list"), {"status": "needs_review"}).content.decode()
    detail = acme_client.get(reverse("portal:grant_email_detail", args=[forged.public_id])).content.decode()

    assert reverse("portal:grant_email_detail", args=[forged.public_id]) in listing
    assert "Sender not verified" in listing
    assert "Sender not verified: DKIM none, SPF pass for evil.example" in listing
    assert "Sender not verified" in detail
    assert "From evil.example is not a sender domain (checked by mx.portal.example)" in detail
    assert not Site.objects.exists()


def test_a_pasted_message_grants_and_its_page_says_the_sender_was_not_verified(acme_client, partner):
    response = acme_client.post(
        reverse("portal:grant_email_paste"), {"text": PASTED_FRAGMENT, "partner": partner.slug}, follow=True
    )

    content = response.content.decode()
    assert "Granted to Acme Leads: Aloha Homes." in content
    assert "Sender not verified" in content
    assert "no Authentication-Results from a trusted server" in content
    assert "granted by a person" in content


def test_messages_stored_before_the_check_say_it_was_not_made(acme_client, partner):
    grant_email = stored(PLAIN)
    GrantEmail.objects.filter(pk=grant_email.pk).update(
        sender_verification=GrantEmail.SenderVerification.NOT_CHECKED, sender_verification_detail=""
    )

    detail = acme_client.get(reverse("portal:grant_email_detail", args=[grant_email.public_id])).content.decode()

    assert "Sender not checked" in detail


ADDRESSED_TO_OTHER = "To: grants+other-co@portal.example\nSubject: Site access granted\n\n" + PASTED_FRAGMENT


def test_a_paste_addressed_to_another_partner_than_the_chosen_one_asks_to_confirm(root_client, partner, other_partner):
    url = reverse("portal:grant_email_paste")

    response = root_client.post(url, {"text": ADDRESSED_TO_OTHER, "partner": partner.slug})

    assert response.status_code == 200
    [error] = response.context["form"].errors["partner"]
    assert "addressed to grants+other-co@portal.example, which names the partner “Other Co”" in error
    assert 'name="confirm_partner"' in response.content.decode()
    assert not GrantEmail.objects.exists() and not Site.objects.exists()

    confirmed = root_client.post(url, {"text": ADDRESSED_TO_OTHER, "partner": partner.slug, "confirm_partner": "on"})
    assert confirmed.status_code == 302
    assert Site.objects.get(site_uuid=ALOHA).partner == partner


def test_a_paste_warning_does_not_name_a_partner_the_user_cannot_see(acme_client, partner, other_partner):
    response = acme_client.post(
        reverse("portal:grant_email_paste"), {"text": ADDRESSED_TO_OTHER, "partner": partner.slug}
    )

    [error] = response.context["form"].errors["partner"]
    assert "which names another partner" in error and "Other Co" not in response.content.decode()
    assert not GrantEmail.objects.exists()


def test_a_paste_addressed_to_the_chosen_partner_needs_no_confirmation(root_client, partner, other_partner):
    text = ADDRESSED_TO_OTHER.replace("grants+other-co@", "grants+acme-leads@")
    response = root_client.post(reverse("portal:grant_email_paste"), {"text": text, "partner": partner.slug})
    assert response.status_code == 302


@hypothesis.settings(
    max_examples=40, deadline=None, suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture]
)
@hypothesis.given(
    text=st.one_of(
        st.text(max_size=400),
        st.text(max_size=300).map(lambda t: "To: grants+other-co@portal.example\nSubject: x\n\n" + t),
        st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
    ),
    detect=st.booleans(),
)
def test_whatever_staff_paste_is_stored_or_refused_never_a_server_error(
    acme_client, partner, other_partner, text, detect
):
    data = {"text": text, "partner": "" if detect else partner.slug, "confirm_partner": "on"}

    response = acme_client.post(reverse("portal:grant_email_paste"), data)

    assert response.status_code in (200, 302)
    assert not GrantEmail.objects.exclude(partner=partner).exists()  # nothing kim cannot see was stored
