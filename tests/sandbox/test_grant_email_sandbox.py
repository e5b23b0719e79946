"""The sandbox's grant emails: realistic multipart messages delivered into the portal or written as .eml."""

import email
import io
import uuid
from email import policy

from django.core.management import call_command

from grants.models import GrantEmail, Site
from sandbox.grant_emails import grant_email_build

SITE_UUID = uuid.UUID("7b9d1f3a-5c7e-4a9b-8d1f-3a5c7e9b1d3f")


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip().splitlines()[-1]


def test_a_grant_email_from_the_sandbox_grants_the_site_it_names(partner, other_partner):
    last = run(
        "sandbox_grant_email", "--partner", other_partner.slug, "--site", str(SITE_UUID), "--name", "Lanikai Homes"
    )
    grant_email = GrantEmail.objects.get()
    assert last == f"{grant_email.public_id} granted"
    assert (grant_email.source, grant_email.partner) == (GrantEmail.Source.SANDBOX, other_partner)
    site = Site.objects.get()
    assert (site.partner, site.site_uuid, site.name, site.status) == (
        other_partner,
        SITE_UUID,
        "Lanikai Homes",
        "active",
    )
    assert site.status_changes.get().grant_email == grant_email


def test_the_message_is_multipart_text_and_html_with_a_tracking_link_that_grants_nothing(partner):
    message = email.message_from_bytes(grant_email_build(partner=partner, site_uuid=SITE_UUID), policy=policy.default)
    assert message.get_content_type() == "multipart/alternative"
    parts = {part.get_content_type(): part for part in message.iter_parts()}
    assert set(parts) == {"text/plain", "text/html"}
    assert all(part["Content-Transfer-Encoding"] == "quoted-printable" for part in parts.values())
    assert "/open/" in parts["text/html"].get_content()
    run("sandbox_grant_email", "--partner", partner.slug, "--site", str(SITE_UUID))
    assert list(Site.objects.values_list("site_uuid", flat=True)) == [SITE_UUID]


def test_a_written_eml_is_imported_for_the_partner_its_address_names(partner, other_partner, tmp_path):
    path = tmp_path / "grant.eml"
    assert run(
        "sandbox_grant_email", "--partner", other_partner.slug, "--site", str(SITE_UUID), "--out", str(path)
    ) == (str(path))
    assert not GrantEmail.objects.exists()
    assert run("import_grant_emails", str(path)) == "1 read, 1 new, 1 granted, 0 need review, 0 duplicates"
    assert Site.objects.get().partner == other_partner
