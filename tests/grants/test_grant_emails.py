"""Receiving grant emails: kept once, sites granted with the email as evidence, or left for review."""

import uuid
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from grants.emails import (
    PASTE_SUBJECT,
    GrantEmailProblem,
    StoredGrantEmail,
    grant_email_dismiss,
    grant_email_paste,
    grant_email_receive,
    grant_email_reparse,
    grant_email_resolve,
)
from grants.models import GrantEmail, Partner, Site
from tests.grants.mail_auth import PASSED, authenticated, sender_auth_email, trust_receiving_server

EMAILS = Path(__file__).parent / "emails"
ALOHA = uuid.UUID("8f14e45f-ceea-4e67-a2b1-0d5c3b9a7e21")
KAILUA = uuid.UUID("c9f0f895-fb98-4b91-9f2e-6a1d3e7c5b40")
MAUI = uuid.UUID("45c48cce-2e2d-4fbd-8a3c-7b9e1f0d6a52")


def raw(name: str) -> bytes:
    return (EMAILS / name).read_bytes()


def message(body: str, *, to: str = "dev@acme-leads.example", message_id: str = "<m-1@mail.realgeeks.com>") -> bytes:
    """A grant email from Real Geeks, as the trusted receiving server hands it on."""
    return (
        f"{PASSED}From: noreply@realgeeks.com\nTo: {to}\nSubject: Grant\nMessage-ID: {message_id}\n\n{body}\n"
    ).encode()


@pytest.fixture(autouse=True)
def trusted(settings) -> None:
    trust_receiving_server(settings)


@pytest.fixture
def staff(db) -> User:
    return User.objects.create_user("keala", password="pw-keala-123", is_staff=True)


def pasted(text: str, partner: Partner, actor: User) -> GrantEmail:
    """What a paste stored, which must be new."""
    stored = grant_email_paste(text=text, partner=partner, actor=actor)
    assert stored is not None and stored.created
    return stored.grant_email


def test_a_readable_email_grants_its_sites_keeping_the_email_as_evidence(partner, granted_sites, on_commit):
    with on_commit(execute=True):
        grant_email = grant_email_receive(raw("07_several_sites.eml"), source=GrantEmail.Source.IMPORT)
    assert grant_email.status == GrantEmail.Status.GRANTED
    assert grant_email.partner == partner
    sites = Site.objects.filter(partner=partner).order_by("name")
    assert [(s.name, s.status, s.source) for s in sites] == [
        ("Aloha Homes", Site.Status.ACTIVE, Site.Source.EMAIL),
        ("Kailua Realty", Site.Status.ACTIVE, Site.Source.EMAIL),
        ("Maui Homes", Site.Status.ACTIVE, Site.Source.EMAIL),
    ]
    assert all(s.status_changes.get().grant_email == grant_email for s in sites)
    assert {s.site_uuid for s in granted_sites} == {ALOHA, KAILUA, MAUI}
    assert [s["name"] for s in grant_email.sites] == ["Aloha Homes", "Kailua Realty", "Maui Homes"]


def test_the_same_message_id_is_kept_once(partner, granted_sites, on_commit):
    with on_commit(execute=True):
        first = grant_email_receive(authenticated(raw("01_plain.eml")), source=GrantEmail.Source.IMAP)
        again = grant_email_receive(authenticated(raw("01_plain.eml")), source=GrantEmail.Source.IMPORT)
    assert again == first
    assert GrantEmail.objects.count() == 1
    assert len(granted_sites) == 1
    assert Site.objects.get().status_changes.count() == 1


def test_a_message_without_a_site_is_kept_for_review_and_grants_nothing(partner):
    received = authenticated(raw("09_tracking_uuid_only.eml"))
    grant_email = grant_email_receive(received, source=GrantEmail.Source.INBOUND)
    assert grant_email.status == GrantEmail.Status.NEEDS_REVIEW
    assert grant_email.review_reason == "No site UUID was found in this message."
    assert bytes(grant_email.raw) == received
    assert not Site.objects.exists()


def test_an_unreadable_message_is_kept_for_review_saying_so(partner):
    grant_email = grant_email_receive(authenticated(raw("15_attachment_only.eml")), source=GrantEmail.Source.INBOUND)
    assert grant_email.status == GrantEmail.Status.NEEDS_REVIEW
    assert grant_email.review_reason == "No text could be read from this message."


def test_the_partner_is_the_one_whose_grant_address_received_the_message(partner, other_partner):
    Partner.objects.filter(pk=other_partner.pk).update(grant_email_address="Grants@Other.example")
    grant_email = grant_email_receive(
        message(f"Site UUID: {ALOHA}", to="grants@other.example"), source=GrantEmail.Source.INBOUND
    )
    assert grant_email.partner == other_partner
    assert Site.objects.get().partner == other_partner


def test_the_partner_is_named_by_a_plus_address(partner, other_partner):
    grant_email = grant_email_receive(
        message(f"Site UUID: {ALOHA}", to=f"inbox+{other_partner.slug}@portal.example"), source=GrantEmail.Source.IMAP
    )
    assert grant_email.partner == other_partner


def test_the_partner_is_named_by_the_company_id_in_a_grant_url(partner, other_partner):
    body = f"Site UUID: {ALOHA}\nhttps://leadrouter.realgeeks.com/dev/acme-co/grant/"
    assert grant_email_receive(message(body), source=GrantEmail.Source.IMAP).partner == partner


def test_the_envelope_recipient_names_the_partner_when_headers_do_not(partner, other_partner):
    grant_email = grant_email_receive(
        message(f"Site UUID: {ALOHA}"),
        source=GrantEmail.Source.INBOUND,
        envelope_recipients=[f"grants+{other_partner.slug}@portal.example"],
    )
    assert grant_email.partner == other_partner


def test_with_a_single_partner_every_message_is_its(partner):
    assert grant_email_receive(message(f"Site UUID: {ALOHA}"), source=GrantEmail.Source.IMAP).partner == partner


def test_with_two_partners_and_no_hint_the_message_waits_for_review(partner, other_partner):
    grant_email = grant_email_receive(message(f"Site UUID: {ALOHA}"), source=GrantEmail.Source.IMAP)
    assert grant_email.partner is None
    assert grant_email.status == GrantEmail.Status.NEEDS_REVIEW
    assert grant_email.review_reason == "Could not tell which partner this message is for."
    assert not Site.objects.exists()


def test_reading_again_grants_once_the_partner_can_be_told(partner, other_partner):
    grant_email = grant_email_receive(message(f"Site UUID: {ALOHA}"), source=GrantEmail.Source.IMAP)
    Partner.objects.filter(pk=partner.pk).update(grant_email_address="dev@acme-leads.example")
    grant_email = grant_email_reparse(grant_email=grant_email)
    assert (grant_email.status, grant_email.partner) == (GrantEmail.Status.GRANTED, partner)
    assert Site.objects.get().status_changes.get().grant_email == grant_email


def test_staff_resolve_a_message_by_naming_its_sites(partner, staff, granted_sites, on_commit):
    grant_email = grant_email_receive(raw("08_no_uuid.eml"), source=GrantEmail.Source.IMPORT)
    with on_commit(execute=True):
        grant_email = grant_email_resolve(
            grant_email=grant_email, partner=partner, site_uuids=[KAILUA, KAILUA], actor=staff, name="Kailua Realty"
        )
    assert (grant_email.status, grant_email.resolved_by) == (GrantEmail.Status.RESOLVED, staff)
    site = Site.objects.get()
    assert (site.site_uuid, site.name, site.status) == (KAILUA, "Kailua Realty", Site.Status.ACTIVE)
    change = site.status_changes.get()
    assert (change.grant_email, change.actor) == (grant_email, staff)
    assert len(granted_sites) == 1


def test_resolving_needs_a_site_and_a_granted_message_cannot_be_resolved(partner, staff):
    waiting = grant_email_receive(raw("08_no_uuid.eml"), source=GrantEmail.Source.IMPORT)
    with pytest.raises(GrantEmailProblem, match="at least one site"):
        grant_email_resolve(grant_email=waiting, partner=partner, site_uuids=[], actor=staff)
    granted = grant_email_receive(raw("01_plain.eml"), source=GrantEmail.Source.IMPORT)
    with pytest.raises(GrantEmailProblem, match="already"):
        grant_email_resolve(grant_email=granted, partner=partner, site_uuids=[MAUI], actor=staff)


def test_staff_dismiss_a_message_that_grants_nothing(partner, staff):
    grant_email = grant_email_receive(raw("09_tracking_uuid_only.eml"), source=GrantEmail.Source.IMPORT)
    grant_email = grant_email_dismiss(grant_email=grant_email, actor=staff, reason="newsletter")
    assert grant_email.status == GrantEmail.Status.DISMISSED
    assert grant_email.review_reason.endswith("Dismissed: newsletter")
    assert GrantEmail.objects.count() == 1


def test_pasted_text_grants_with_the_staff_member_as_actor(partner, other_partner, staff):
    text = f"Hi! Our site Aloha Homes ({ALOHA}) is ready for your leads."
    grant_email = pasted(text, other_partner, staff)
    assert (grant_email.source, grant_email.subject, grant_email.created_by) == (
        GrantEmail.Source.PASTE,
        PASTE_SUBJECT,
        staff,
    )
    site = Site.objects.get()
    assert (site.partner, site.name, site.status_changes.get().actor) == (other_partner, "Aloha Homes", staff)
    # Pasted twice: kept once, and the second paste says it found the first.
    assert grant_email_paste(text=text, partner=other_partner, actor=staff) == StoredGrantEmail(grant_email, False)
    assert GrantEmail.objects.count() == 1


def test_a_paste_limited_to_some_partners_stores_nothing_for_a_partner_it_cannot_tell(partner, other_partner, staff):
    text = f"Hi! Our site Aloha Homes ({ALOHA}) is ready for your leads."

    assert grant_email_paste(text=text, actor=staff, only_for=Partner.objects.filter(pk=partner.pk)) is None
    assert not GrantEmail.objects.exists() and not Site.objects.exists()


def test_a_paste_limited_to_some_partners_stores_nothing_detected_for_another(partner, other_partner, staff):
    text = f"To: grants+other-co@portal.example\nSubject: Site access granted\n\nSite UUID: {ALOHA}\n"

    assert grant_email_paste(text=text, actor=staff, only_for=Partner.objects.filter(pk=partner.pk)) is None
    assert not GrantEmail.objects.exists() and not Site.objects.exists()
    stored = grant_email_paste(text=text, actor=staff, only_for=Partner.objects.filter(pk=other_partner.pk))
    assert stored is not None and stored.created and stored.grant_email.partner == other_partner


def test_a_paste_limited_to_some_partners_finds_a_message_stored_before_for_another(partner, other_partner, staff):
    text = f"Site UUID: {ALOHA}"
    first = pasted(text, other_partner, staff)

    again = grant_email_paste(text=text, actor=staff, only_for=Partner.objects.filter(pk=partner.pk))

    assert again == StoredGrantEmail(first, created=False)  # the caller decides what to show of it


def test_a_pasted_whole_message_keeps_its_own_headers(partner, staff):
    grant_email = pasted(raw("02_html_only.eml").decode(), partner, staff)
    assert grant_email.message_id == "<html-only-2@mail.realgeeks.com>"
    assert Site.objects.get().site_uuid == KAILUA


def test_pasted_html_is_read_as_html(partner, staff):
    grant_email = pasted(f"<table><tr><td>Maui Homes</td><td>{MAUI}</td></tr></table>", partner, staff)
    assert grant_email.sites == [{"site_uuid": str(MAUI), "name": "Maui Homes", "domain": ""}]


def test_a_huge_message_is_stored_cut_but_parsed_whole(partner, settings):
    settings.GRANT_EMAIL_STORE_MAX_BYTES = 200
    body = "x" * 500 + f"\nSite UUID: {ALOHA}"
    grant_email = grant_email_receive(message(body), source=GrantEmail.Source.IMPORT)
    assert len(grant_email.raw) == 200
    assert grant_email.raw_size > 500 and grant_email.raw_truncated
    assert grant_email.status == GrantEmail.Status.GRANTED


# Who sent it: the automatic channels grant only what the trusted receiving server authenticated.


@pytest.mark.parametrize("source", [GrantEmail.Source.INBOUND, GrantEmail.Source.IMAP])
def test_a_forged_grant_email_grants_nothing_and_waits_for_review_saying_why(partner, source):
    grant_email = grant_email_receive(sender_auth_email("forged_sender.eml"), source=source)
    assert grant_email.status == GrantEmail.Status.NEEDS_REVIEW
    assert grant_email.review_reason == (
        "Sender not verified: DKIM none, SPF pass for evil.example; From evil.example is not a sender domain "
        "(checked by mx.portal.example)."
    )
    assert grant_email.sender_verification == GrantEmail.SenderVerification.NOT_VERIFIED
    assert grant_email.partner == partner
    assert not Site.objects.exists()


def test_a_grant_email_the_trusted_server_authenticated_grants_its_sites(partner, granted_sites, on_commit):
    with on_commit(execute=True):
        grant_email = grant_email_receive(
            sender_auth_email("authenticated_dkim_pass.eml"), source=GrantEmail.Source.INBOUND
        )
    assert (grant_email.status, grant_email.review_reason) == (GrantEmail.Status.GRANTED, "")
    assert (grant_email.sender_verification, grant_email.sender_verification_detail) == (
        GrantEmail.SenderVerification.VERIFIED,
        "DKIM pass for realgeeks.com (checked by mx.portal.example)",
    )
    assert [s.site_uuid for s in granted_sites] == [ALOHA]


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("forged_untrusted_authserv_id.eml", "no Authentication-Results from a trusted server (only from mx.evil"),
        ("forged_trusted_header_below.eml", "DKIM fail for evil.example, SPF fail for evil.example"),
        ("dkim_pass_other_from_domain.eml", "From lanikai-homes.example is not a sender domain"),
        ("unreadable_authentication_results.eml", "an Authentication-Results header could not be read"),
    ],
)
def test_forged_authentication_results_grant_nothing(partner, name, why):
    grant_email = grant_email_receive(sender_auth_email(name), source=GrantEmail.Source.INBOUND)
    assert grant_email.status == GrantEmail.Status.NEEDS_REVIEW
    assert grant_email.review_reason.startswith("Sender not verified: ")
    assert why in grant_email.review_reason
    assert not Site.objects.exists()


def test_with_no_trusted_server_configured_automatic_messages_wait_for_review(partner, settings):
    settings.GRANT_EMAIL_TRUSTED_AUTHSERV_IDS = []
    grant_email = grant_email_receive(sender_auth_email("authenticated_dkim_pass.eml"), source=GrantEmail.Source.IMAP)
    assert grant_email.status == GrantEmail.Status.NEEDS_REVIEW
    assert grant_email.review_reason == (
        "Sender not verified: no Authentication-Results from a trusted server "
        "(GRANT_EMAIL_TRUSTED_AUTHSERV_IDS is empty)."
    )
    assert not Site.objects.exists()


def test_every_reason_to_review_is_given(partner, other_partner):
    unauthenticated = message("A client granted you a site.").removeprefix(PASSED.encode())
    grant_email = grant_email_receive(unauthenticated, source=GrantEmail.Source.INBOUND)
    assert grant_email.review_reason == (
        "Sender not verified: no Authentication-Results from a trusted server. "
        "No site UUID was found in this message. Could not tell which partner this message is for."
    )


def test_reading_a_forged_message_again_does_not_grant_it(partner):
    grant_email = grant_email_receive(sender_auth_email("forged_sender.eml"), source=GrantEmail.Source.INBOUND)
    grant_email = grant_email_reparse(grant_email=grant_email)
    assert grant_email.status == GrantEmail.Status.NEEDS_REVIEW
    assert grant_email.review_reason.startswith("Sender not verified: ")
    assert not Site.objects.exists()


def test_reading_again_grants_once_the_receiving_server_is_trusted(partner, settings):
    settings.GRANT_EMAIL_TRUSTED_AUTHSERV_IDS = []
    grant_email = grant_email_receive(sender_auth_email("authenticated_dkim_pass.eml"), source=GrantEmail.Source.IMAP)
    settings.GRANT_EMAIL_TRUSTED_AUTHSERV_IDS = ["mx.portal.example"]
    grant_email = grant_email_reparse(grant_email=grant_email)
    assert (grant_email.status, grant_email.sender_verification) == (
        GrantEmail.Status.GRANTED,
        GrantEmail.SenderVerification.VERIFIED,
    )
    assert Site.objects.get().site_uuid == ALOHA


def test_an_imported_message_is_the_operators_decision_and_records_that_its_sender_was_not_verified(partner):
    grant_email = grant_email_receive(sender_auth_email("forged_sender.eml"), source=GrantEmail.Source.IMPORT)
    assert (grant_email.status, grant_email.review_reason) == (GrantEmail.Status.GRANTED, "")
    assert grant_email.sender_verification == GrantEmail.SenderVerification.NOT_VERIFIED
    assert grant_email.sender_verification_detail.startswith("DKIM none, SPF pass for evil.example")
    assert Site.objects.get().site_uuid == KAILUA


def test_pasted_text_grants_but_records_that_no_server_verified_it(partner, staff):
    grant_email = pasted(f"Site UUID: {ALOHA}", partner, staff)
    assert grant_email.status == GrantEmail.Status.GRANTED
    assert (grant_email.sender_verification, grant_email.sender_verification_detail) == (
        GrantEmail.SenderVerification.NOT_VERIFIED,
        "no Authentication-Results from a trusted server",
    )


def test_the_sandbox_grants_in_development_only(partner, settings):
    forged = sender_auth_email("forged_sender.eml")
    settings.SANDBOX_ENABLED = True
    assert grant_email_receive(forged, source=GrantEmail.Source.SANDBOX).status == GrantEmail.Status.GRANTED
    settings.SANDBOX_ENABLED = False
    again = forged.replace(b"forged-18@", b"forged-18b@")
    assert grant_email_receive(again, source=GrantEmail.Source.SANDBOX).status == GrantEmail.Status.NEEDS_REVIEW
