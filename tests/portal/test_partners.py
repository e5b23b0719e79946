import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from core.models import AuditEntry
from grants import services as grant_services
from grants.audit import secret_fingerprint
from grants.encryption import decrypt
from grants.models import PARTNER_NAME_TAKEN, ApiKey, Partner
from portal.views.partners import ISSUED_KEY_SESSION

pytestmark = pytest.mark.django_db

NEW_PARTNER = {
    "name": "Bright Homes CRM",
    "rg_username": "bright",
    "rg_password": "rg-pass-bright-9f2",
    "webhook_secret": "whsec-bright-71c",
    "rg_partner_id": "bright-pid",
    "rg_company_id": "bright-co",
    "rg_api_url": "",
}


def edit_data(partner: Partner, **changes):
    data = {
        "name": partner.name,
        "rg_username": partner.rg_username,
        "rg_partner_id": partner.rg_partner_id,
        "rg_company_id": partner.rg_company_id,
        "rg_api_url": partner.rg_api_url,
        "grant_email_address": "",
        "is_active": "on" if partner.is_active else "",
        "rg_password": "",
        "new_webhook_secret": "",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_a_superuser_creates_a_partner_and_the_audit_says_so_without_secrets(root_client, superuser):
    response = root_client.post(reverse("portal:partner_create"), NEW_PARTNER)

    partner = Partner.objects.get(name="Bright Homes CRM")
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:partner_detail", args=[partner.slug])
    assert partner.rg_password == "rg-pass-bright-9f2"
    assert partner.webhook_secrets == ["whsec-bright-71c"]
    entry = AuditEntry.objects.get(action="partner.create")
    assert entry.actor == superuser
    assert entry.partner == partner
    assert (entry.after or {})["rg_username"] == "bright"
    assert "rg-pass-bright-9f2" not in str(entry.after)
    assert "whsec-bright-71c" not in str(entry.after)


def test_partner_creation_errors_keep_the_typed_fields_but_never_the_secrets(root_client):
    data = {**NEW_PARTNER, "rg_api_url": "not a url", "name": "Typed Name Kept"}

    response = root_client.post(reverse("portal:partner_create"), data)

    content = response.content.decode()
    assert response.status_code == 200
    assert "Enter a valid URL." in content
    assert 'value="Typed Name Kept"' in content
    assert 'value="not a url"' in content
    assert "rg-pass-bright-9f2" not in content
    assert "whsec-bright-71c" not in content
    assert not Partner.objects.filter(name="Typed Name Kept").exists()


def test_editing_with_blank_secrets_keeps_them(acme_client, partner):
    response = acme_client.post(
        reverse("portal:partner_edit", args=[partner.slug]), edit_data(partner, rg_company_id="acme-new-co")
    )

    assert response.status_code == 302
    partner.refresh_from_db()
    assert partner.rg_company_id == "acme-new-co"
    assert partner.rg_password == "rg-password-acme"
    assert partner.webhook_secrets == ["whsec-acme"]
    entry = AuditEntry.objects.get(action="partner.edit")
    assert entry.before == {"rg_company_id": "acme-co"}
    assert entry.after == {"rg_company_id": "acme-new-co"}


def test_a_new_password_is_stored_and_audited_only_as_changed(acme_client, partner):
    acme_client.post(
        reverse("portal:partner_edit", args=[partner.slug]), edit_data(partner, rg_password="brand-new-pass-55")
    )

    partner.refresh_from_db()
    assert partner.rg_password == "brand-new-pass-55"
    entry = AuditEntry.objects.get(action="partner.edit")
    assert entry.before == {"rg_password": "[set]"}
    assert entry.after == {"rg_password": "[changed]"}


def test_a_new_webhook_secret_goes_first_and_an_old_one_can_be_removed(acme_client, partner):
    url = reverse("portal:partner_edit", args=[partner.slug])

    acme_client.post(url, edit_data(partner, new_webhook_secret="whsec-rotated-2"))
    partner.refresh_from_db()
    assert partner.webhook_secrets == ["whsec-rotated-2", "whsec-acme"]

    acme_client.post(url, {**edit_data(partner), "remove_webhook_secrets": [secret_fingerprint("whsec-acme")]})
    partner.refresh_from_db()
    assert partner.webhook_secrets == ["whsec-rotated-2"]

    entries = AuditEntry.objects.filter(action="partner.edit").order_by("id")
    assert [(e.after or {})["webhook_secrets"]["count"] for e in entries] == [2, 1]
    assert "whsec" not in str([(e.before, e.after) for e in entries])


def test_the_last_webhook_secret_cannot_be_removed(acme_client, partner):
    response = acme_client.post(
        reverse("portal:partner_edit", args=[partner.slug]),
        {**edit_data(partner, name="Renamed Meanwhile"), "remove_webhook_secrets": [secret_fingerprint("whsec-acme")]},
    )

    assert response.status_code == 200
    assert "Keep at least one webhook secret" in response.content.decode()
    assert 'value="Renamed Meanwhile"' in response.content.decode()
    partner.refresh_from_db()
    assert partner.webhook_secrets == ["whsec-acme"]
    assert partner.name == "Acme Leads"
    assert not AuditEntry.objects.exists()


def test_an_edit_that_changes_nothing_writes_no_audit_entry(acme_client, partner):
    response = acme_client.post(reverse("portal:partner_edit", args=[partner.slug]), edit_data(partner), follow=True)
    assert "Nothing changed." in response.content.decode()
    assert not AuditEntry.objects.exists()


def test_an_issued_key_secret_is_shown_once_and_works(acme_client, acme_staff, partner):
    issue_url = reverse("portal:api_key_issue", args=[partner.slug])
    posted = acme_client.post(issue_url, {"label": "CRM production"})

    key = ApiKey.objects.get(partner=partner)
    assert posted.status_code == 302 and posted["Location"] == f"{issue_url}?key={key.key_id}"
    # Until it is shown, the secret waits in the session, a database row: encrypted, never in clear.
    waiting = acme_client.session[ISSUED_KEY_SESSION][key.key_id]["secret"]
    assert ApiKey.objects.authenticate(key.key_id, waiting) is None
    assert ApiKey.objects.authenticate(key.key_id, decrypt(waiting)) == key
    response = acme_client.get(posted["Location"])
    secret = response.context["secret"]
    assert response.status_code == 200
    assert secret in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    assert ApiKey.objects.authenticate(key.key_id, secret) == key
    assert secret not in acme_client.get(reverse("portal:partner_detail", args=[partner.slug])).content.decode()
    entry = AuditEntry.objects.get(action="api_key.issue")
    assert (entry.actor, entry.object_id, entry.after) == (
        acme_staff,
        key.key_id,
        {"key_id": key.key_id, "label": "CRM production"},
    )
    assert secret not in str(entry.after)


def test_an_overlong_key_label_is_refused_with_the_label_kept(acme_client, partner):
    label = "x" * 201
    response = acme_client.post(reverse("portal:api_key_issue", args=[partner.slug]), {"label": label})

    assert response.status_code == 200
    assert "at most 200 characters" in response.content.decode()
    assert f'value="{label}"' in response.content.decode()
    assert not ApiKey.objects.exists()


def test_revoking_a_key_stops_it_authenticating_and_is_audited(acme_client, partner):
    from grants.services import api_key_issue

    key, secret = api_key_issue(partner=partner, label="old")

    response = acme_client.post(reverse("portal:api_key_revoke", args=[partner.slug, key.key_id]))

    assert response.status_code == 302
    assert ApiKey.objects.authenticate(key.key_id, secret) is None
    entry = AuditEntry.objects.get(action="api_key.revoke")
    assert entry.object_id == key.key_id
    assert entry.before == {"revoked_at": None}
    assert (entry.after or {})["revoked_at"] is not None


def test_revoking_twice_records_one_audit_entry(acme_client, partner):
    from grants.services import api_key_issue

    key, _ = api_key_issue(partner=partner)
    url = reverse("portal:api_key_revoke", args=[partner.slug, key.key_id])
    acme_client.post(url)
    response = acme_client.post(url, follow=True)

    assert "already revoked" in response.content.decode()
    assert AuditEntry.objects.filter(action="api_key.revoke").count() == 1


def test_key_revoke_refuses_get(acme_client, partner):
    from grants.services import api_key_issue

    key, _ = api_key_issue(partner=partner)
    assert acme_client.get(reverse("portal:api_key_revoke", args=[partner.slug, key.key_id])).status_code == 405


def test_reloading_the_new_key_page_issues_no_second_key_and_says_the_secret_was_shown(acme_client, partner):
    posted = acme_client.post(reverse("portal:api_key_issue", args=[partner.slug]), {"label": "CRM"})
    secret = acme_client.get(posted["Location"]).context["secret"]

    reloaded = acme_client.get(posted["Location"])

    assert ApiKey.objects.filter(partner=partner).count() == 1
    page = reloaded.content.decode()
    assert reloaded.status_code == 200 and "already shown" in page and secret not in page
    assert "no-store" in reloaded["Cache-Control"]
    assert "portal.issued_api_key" not in acme_client.session


def test_the_new_key_page_without_a_key_goes_back_to_the_partner(acme_client, partner):
    response = acme_client.get(reverse("portal:api_key_issue", args=[partner.slug]))
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:partner_detail", args=[partner.slug])


RG_URL = "https://receivers.leadrouter.realgeeks.com/rest"
# Allowed in development (loopback): only the superuser rule keeps a partner's staff from it.
LOCAL_COLLECTOR = "http://127.0.0.1:8025/collect"


def test_a_partners_staff_cannot_change_its_rg_api_url_not_even_with_a_crafted_post(acme_client, partner):
    url = reverse("portal:partner_edit", args=[partner.slug])

    page = acme_client.get(url).content.decode()
    response = acme_client.post(url, edit_data(partner, rg_api_url=LOCAL_COLLECTOR, rg_password="typed-pass-1"))

    assert 'name="rg_api_url"' not in page
    assert "Only a superuser can change it." in page
    assert response.status_code == 302
    partner.refresh_from_db()
    assert partner.rg_api_url == ""
    assert "rg_api_url" not in str(AuditEntry.objects.get(action="partner.edit").after)


@pytest.mark.parametrize(
    ("bad_url", "why"),
    [
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254 is not a host the portal may send"),
        ("https://rg:pw@receivers.leadrouter.realgeeks.com/rest", "Leave the user name and password out"),
        ("https://receivers.leadrouter.realgeeks.com.evil.example/rest", "evil.example is not a host"),
        ("http://receivers.leadrouter.realgeeks.com/rest", "Use https"),
        ("https://receivers.leadrouter.realgeeks.com:8443/rest", "Use port 443"),
    ],
)
def test_not_even_a_superuser_can_point_a_partner_outside_the_allowed_hosts(root_client, partner, bad_url, why):
    response = root_client.post(
        reverse("portal:partner_edit", args=[partner.slug]),
        edit_data(partner, rg_api_url=bad_url, rg_password="rg-password-acme"),
    )

    assert response.status_code == 200
    assert why in response.content.decode()
    partner.refresh_from_db()
    assert partner.rg_api_url == ""
    assert not AuditEntry.objects.exists()


def test_changing_the_rg_api_url_needs_the_rg_password_again(root_client, partner):
    url = reverse("portal:partner_edit", args=[partner.slug])

    refused = root_client.post(url, edit_data(partner, rg_api_url=RG_URL))
    partner.refresh_from_db()
    assert refused.status_code == 200
    assert "Enter the RG password again to change the RG API URL" in refused.content.decode()
    assert partner.rg_api_url == ""

    accepted = root_client.post(url, edit_data(partner, rg_api_url=RG_URL, rg_password="rg-password-acme"))
    partner.refresh_from_db()
    assert accepted.status_code == 302
    assert (partner.rg_api_url, partner.rg_password) == (RG_URL, "rg-password-acme")
    entry = AuditEntry.objects.get(action="partner.edit")
    assert (entry.before, entry.after) == (
        {"rg_api_url": "", "rg_password": "[set]"},
        {"rg_api_url": RG_URL, "rg_password": "[changed]"},
    )


def test_a_new_partner_cannot_start_with_an_rg_api_url_outside_the_allowed_hosts(root_client):
    data = {**NEW_PARTNER, "rg_api_url": "http://10.0.0.5:9200/"}

    response = root_client.post(reverse("portal:partner_create"), data)

    assert response.status_code == 200
    assert "REALGEEKS_ALLOWED_HOSTS" in response.content.decode()
    assert not Partner.objects.filter(name=NEW_PARTNER["name"]).exists()


def test_the_partner_page_warns_when_its_stored_url_is_no_longer_allowed(acme_client, partner):
    Partner.objects.filter(pk=partner.pk).update(rg_api_url="https://old-proxy.example/rest")

    page = acme_client.get(reverse("portal:partner_detail", args=[partner.slug])).content.decode()

    assert "Deliveries are refused" in page


# Unique names (issue 12)


def test_a_new_partner_cannot_take_another_partners_name_in_any_case(root_client, partner):
    response = root_client.post(reverse("portal:partner_create"), {**NEW_PARTNER, "name": "ACME leads"})

    assert response.status_code == 200
    assert response.context["form"].errors["name"] == [PARTNER_NAME_TAKEN]
    assert Partner.objects.filter(name__iexact="acme leads").count() == 1


def test_a_partner_cannot_be_renamed_to_another_partners_name_but_may_change_its_own_case(
    root_client, partner, other_partner
):
    url = reverse("portal:partner_edit", args=[partner.slug])

    refused = root_client.post(url, edit_data(partner, name="other co"))
    assert refused.context["form"].errors["name"] == [PARTNER_NAME_TAKEN]

    assert root_client.post(url, edit_data(partner, name="ACME LEADS")).status_code == 302
    assert Partner.objects.get(pk=partner.pk).name == "ACME LEADS"


def test_the_admin_refuses_another_partners_name(root_client, partner, other_partner):
    response = root_client.post(
        reverse("admin:grants_partner_change", args=[partner.pk]),
        {"name": "OTHER CO", "slug": partner.slug, "rg_username": partner.rg_username, "is_active": "on"},
    )

    assert response.status_code == 200
    assert PARTNER_NAME_TAKEN in response.content.decode()
    assert Partner.objects.get(pk=partner.pk).name == "Acme Leads"


def test_the_database_refuses_two_partners_named_alike(partner):
    with pytest.raises(IntegrityError), transaction.atomic():
        Partner.objects.create(name="acme LEADS", slug="acme-2", rg_username="a2", rg_password="pw")


def test_a_partner_with_a_200_character_name_gets_a_slug_that_fits(root_client):
    name = "Long " * 40  # 200 characters, the most a name may have

    response = root_client.post(reverse("portal:partner_create"), {**NEW_PARTNER, "name": name.strip()})

    partner = Partner.objects.get(name=name.strip())
    assert response.status_code == 302 and len(partner.slug) <= 100
    assert root_client.get(reverse("portal:partner_detail", args=[partner.slug])).status_code == 200


def test_the_service_refuses_a_name_taken_in_another_case_with_a_field_error(partner):
    with pytest.raises(ValidationError) as refused:
        grant_services.partner_create(
            name=partner.name.upper(), rg_username="u", rg_password="p", webhook_secret="s" * 32
        )

    assert refused.value.message_dict == {"name": [PARTNER_NAME_TAKEN]}
