"""The grant mailbox poll, against a small IMAP server listening on 127.0.0.1 (tests/grants/fake_imap.py)."""

from pathlib import Path

import pytest

from grants.imap import grant_mailbox_poll
from grants.models import GrantEmail, Site
from grants.tasks import grant_mailbox_poll as grant_mailbox_poll_task
from tests.grants.fake_imap import FakeImapServer, Mailbox
from tests.grants.mail_auth import authenticated, sender_auth_email, trust_receiving_server

EMAILS = Path(__file__).parent / "emails"


@pytest.fixture
def mailbox() -> Mailbox:
    box = Mailbox(user="grants@acme-leads.example", password="imap-pw-123")
    box.messages = {
        7: authenticated((EMAILS / "01_plain.eml").read_bytes()),
        8: (EMAILS / "09_tracking_uuid_only.eml").read_bytes(),
        9: (EMAILS / "02_html_only.eml").read_bytes(),
    }
    box.seen = {9}
    return box


@pytest.fixture
def imap_server(mailbox, settings):
    with FakeImapServer(mailbox) as server:
        settings.GRANT_IMAP_HOST = "127.0.0.1"
        settings.GRANT_IMAP_PORT = server.port
        settings.GRANT_IMAP_SSL = False
        settings.GRANT_IMAP_USER = mailbox.user
        settings.GRANT_IMAP_PASSWORD = mailbox.password
        settings.GRANT_IMAP_TIMEOUT = 5.0
        trust_receiving_server(settings)
        yield server


def test_it_stores_each_unseen_message_and_marks_it_seen(partner, mailbox, imap_server):
    assert grant_mailbox_poll_task.delay().get(timeout=10) == 2
    assert mailbox.seen == {7, 8, 9}
    assert sorted(GrantEmail.objects.values_list("status", flat=True)) == ["granted", "needs_review"]
    assert set(GrantEmail.objects.values_list("source", flat=True)) == {GrantEmail.Source.IMAP}
    assert Site.objects.get().name == "Aloha Homes"
    assert "UID FETCH 7 (BODY.PEEK[])" in mailbox.commands  # read without marking, marked after storing


def test_a_forged_message_in_the_mailbox_is_stored_for_review_and_grants_nothing(partner, mailbox, imap_server):
    mailbox.messages = {12: sender_auth_email("forged_sender.eml")}
    assert grant_mailbox_poll() == 1
    grant_email = GrantEmail.objects.get()
    assert (grant_email.source, grant_email.status) == (GrantEmail.Source.IMAP, GrantEmail.Status.NEEDS_REVIEW)
    assert grant_email.review_reason.startswith("Sender not verified: ")
    assert mailbox.seen == {9, 12}
    assert not Site.objects.exists()


def test_a_second_poll_finds_nothing_new(partner, mailbox, imap_server):
    grant_mailbox_poll()
    assert grant_mailbox_poll() == 0
    assert GrantEmail.objects.count() == 2


def test_a_message_stored_before_but_left_unseen_is_not_stored_twice(partner, mailbox, imap_server):
    grant_mailbox_poll()
    mailbox.seen.clear()  # e.g. the process died after storing, before marking
    assert grant_mailbox_poll() == 3
    assert GrantEmail.objects.count() == 3  # 7 and 8 kept once; 9, seen before the first poll, is new


def test_wrong_credentials_are_logged_without_the_password_and_store_nothing(
    partner, mailbox, imap_server, settings, caplog
):
    settings.GRANT_IMAP_PASSWORD = "wrong-pw-456"
    assert grant_mailbox_poll() == 0
    assert not GrantEmail.objects.exists()
    assert "AUTHENTICATIONFAILED" in caplog.text
    assert "wrong-pw-456" not in caplog.text


def test_without_imap_settings_the_poll_does_nothing(partner, settings):
    settings.GRANT_IMAP_HOST = ""
    assert grant_mailbox_poll() == 0


def test_an_unreachable_server_is_logged_and_tried_again_next_time(partner, settings, caplog):
    settings.GRANT_IMAP_HOST = "127.0.0.1"
    settings.GRANT_IMAP_PORT = 1  # nothing listens on port 1
    settings.GRANT_IMAP_SSL = False
    settings.GRANT_IMAP_TIMEOUT = 2.0
    assert grant_mailbox_poll() == 0
    assert "Grant mailbox poll of 127.0.0.1 failed" in caplog.text
