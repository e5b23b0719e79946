"""`manage.py import_grant_emails PATH [--partner SLUG]` for a .eml, an mbox and a Maildir."""

import io
import mailbox
import shutil
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from grants.models import GrantEmail, Site
from tests.grants.mail_auth import SENDER_AUTH_EMAILS, trust_receiving_server

EMAILS = Path(__file__).parent / "emails"


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("import_grant_emails", *args, stdout=out)
    return out.getvalue().strip().splitlines()[-1]


def test_it_imports_one_eml_file(partner):
    assert run(str(EMAILS / "01_plain.eml")) == "1 read, 1 new, 1 granted, 0 need review, 0 duplicates"
    grant_email = GrantEmail.objects.get()
    assert (grant_email.source, grant_email.partner) == (GrantEmail.Source.IMPORT, partner)
    assert Site.objects.get().name == "Aloha Homes"


def test_an_import_grants_as_the_operators_decision_recording_whether_each_sender_was_verified(partner, settings):
    trust_receiving_server(settings)
    assert run(str(SENDER_AUTH_EMAILS / "forged_sender.eml")) == "1 read, 1 new, 1 granted, 0 need review, 0 duplicates"
    assert run(str(SENDER_AUTH_EMAILS / "authenticated_dkim_pass.eml")) == (
        "1 read, 1 new, 1 granted, 0 need review, 0 duplicates"
    )
    assert dict(GrantEmail.objects.values_list("message_id", "sender_verification")) == {
        "<forged-18@evil.example>": GrantEmail.SenderVerification.NOT_VERIFIED,
        "<authenticated-17@mail.realgeeks.com>": GrantEmail.SenderVerification.VERIFIED,
    }
    assert Site.objects.count() == 2


def test_it_imports_an_mbox_and_counts_duplicates_on_a_second_run(partner, tmp_path):
    box = mailbox.mbox(str(tmp_path / "grants.mbox"))
    for name in ("01_plain.eml", "07_several_sites.eml", "09_tracking_uuid_only.eml"):
        box.add((EMAILS / name).read_bytes())
    box.flush()
    box.close()
    assert run(str(tmp_path / "grants.mbox")) == "3 read, 3 new, 2 granted, 1 need review, 0 duplicates"
    assert run(str(tmp_path / "grants.mbox")) == "3 read, 0 new, 0 granted, 0 need review, 3 duplicates"
    assert Site.objects.count() == 3


def test_it_imports_a_maildir_for_the_partner_named(partner, other_partner, tmp_path):
    folder = mailbox.Maildir(str(tmp_path / "Maildir"), create=True)
    folder.add((EMAILS / "02_html_only.eml").read_bytes())
    folder.add((EMAILS / "15_attachment_only.eml").read_bytes())
    assert run(str(tmp_path / "Maildir"), "--partner", other_partner.slug) == (
        "2 read, 2 new, 1 granted, 1 need review, 0 duplicates"
    )
    assert set(GrantEmail.objects.values_list("partner__slug", flat=True)) == {other_partner.slug}
    assert Site.objects.get().partner == other_partner


def test_it_refuses_a_missing_path_an_unknown_partner_and_a_plain_folder(partner, tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        run(str(tmp_path / "nothing.eml"))
    shutil.copy(EMAILS / "01_plain.eml", tmp_path / "a.eml")
    with pytest.raises(CommandError, match="No partner"):
        run(str(tmp_path / "a.eml"), "--partner", "nobody")
    with pytest.raises(CommandError, match="not a Maildir"):
        run(str(tmp_path))
