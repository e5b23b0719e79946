import io
import uuid

import pytest
from django.core.management import CommandError, call_command

from grants.models import ApiKey, Partner, Site


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip().splitlines()[-1]


@pytest.mark.django_db
def test_add_partner_prints_the_slug_and_keeps_the_secrets_encrypted():
    slug = run(
        "add_partner",
        "--name",
        "Lead Pump",
        "--rg-username",
        "pump",
        "--rg-password",
        "pw",
        "--webhook-secret",
        "s3",
        "--company-id",
        "77",
    )
    assert slug == "lead-pump"
    partner = Partner.objects.get(slug=slug)
    assert partner.rg_password == "pw"
    assert partner.grant_url() == "https://leadrouter.realgeeks.com/dev/77/grant/"


@pytest.mark.django_db
def test_a_second_partner_named_alike_is_refused_and_one_whose_slug_is_taken_gets_its_own():
    args = ["--rg-username", "u", "--rg-password", "p", "--webhook-secret", "s"]
    assert run("add_partner", "--name", "Twin", *args) == "twin"
    with pytest.raises(CommandError, match="Another partner already has this name"):
        run("add_partner", "--name", "TWIN", *args)
    assert run("add_partner", "--name", "Twin!", *args) == "twin-2"


def test_add_api_key_prints_a_key_that_authenticates_and_stores_only_a_hash(partner):
    key_id, secret = run("add_api_key", partner.slug).split(":", 1)
    key = ApiKey.objects.get(key_id=key_id)
    assert secret not in key.secret_hash
    assert ApiKey.objects.authenticate(key_id, secret) == key
    assert ApiKey.objects.authenticate(key_id, secret + "x") is None


def test_a_revoked_key_or_an_inactive_partner_does_not_authenticate(partner):
    key_id, secret = run("add_api_key", partner.slug).split(":", 1)
    Partner.objects.filter(pk=partner.pk).update(is_active=False)
    assert ApiKey.objects.authenticate(key_id, secret) is None


def test_grant_site_activates_the_site_and_records_why(partner):
    site_uuid = uuid.uuid4()
    assert run("grant_site", partner.slug, str(site_uuid), "--name", "Aloha Homes") == f"{site_uuid} active"
    site = Site.objects.get(partner=partner, site_uuid=site_uuid)
    assert site.name == "Aloha Homes"
    assert site.source == Site.Source.COMMAND
    assert [c.to_status for c in site.status_changes.all()] == ["active"]


def test_grant_site_rejects_a_malformed_uuid_and_an_unknown_partner(partner):
    with pytest.raises(CommandError, match="not a valid site UUID"):
        run("grant_site", partner.slug, "not-a-uuid")
    with pytest.raises(CommandError, match="No partner"):
        run("grant_site", "nobody", str(uuid.uuid4()))
