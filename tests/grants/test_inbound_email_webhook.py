"""Grant emails through an email provider's inbound webhook (anymail), here Postmark's."""

import base64
import json
from pathlib import Path

import pytest

from grants.models import GrantEmail, Site
from tests.grants.mail_auth import authenticated, sender_auth_email, trust_receiving_server

EMAILS = Path(__file__).parent / "emails"
URL = "/webhooks/grant-email/postmark/inbound/"


@pytest.fixture
def postmark(settings):
    settings.GRANT_EMAIL_INBOUND_ESP = "postmark"
    settings.ANYMAIL = {"WEBHOOK_SECRET": "postmark:hook-secret"}
    trust_receiving_server(settings)


def auth(credentials: str = "postmark:hook-secret") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


def postmark_payload(raw: bytes, sender: str = "noreply@realgeeks.com") -> str:
    # Postmark's inbound JSON with "Include raw email content" on; anymail parses RawEmail.
    return json.dumps(
        {
            "FromFull": {"Email": sender, "Name": "Real Geeks"},
            "ToFull": [{"Email": "grants+acme-leads@portal.example", "Name": ""}],
            "Subject": "Site access granted",
            "MessageID": "22c74902-a0c1-4511-804f2-341342852c90",
            "Headers": [{"Name": "Return-Path", "Value": "<bounce@realgeeks.com>"}],
            "RawEmail": raw.decode(),
        }
    )


def test_a_provider_posting_a_grant_email_grants_its_site(client, partner, postmark, on_commit, granted_sites):
    with on_commit(execute=True):
        response = client.post(
            URL,
            postmark_payload(authenticated((EMAILS / "01_plain.eml").read_bytes())),
            content_type="application/json",
            headers=auth(),
        )
    assert response.status_code == 200
    grant_email = GrantEmail.objects.get()
    assert grant_email.sender_verification == GrantEmail.SenderVerification.VERIFIED
    assert (grant_email.source, grant_email.status, grant_email.partner) == (
        GrantEmail.Source.INBOUND,
        GrantEmail.Status.GRANTED,
        partner,
    )
    assert Site.objects.get().status_changes.get().grant_email == grant_email
    assert len(granted_sites) == 1


def test_a_provider_retry_of_the_same_message_is_kept_once(client, partner, postmark):
    payload = postmark_payload((EMAILS / "07_several_sites.eml").read_bytes())
    for _ in range(2):
        assert client.post(URL, payload, content_type="application/json", headers=auth()).status_code == 200
    assert GrantEmail.objects.count() == 1


def test_wrong_webhook_credentials_are_refused_and_nothing_is_kept(client, partner, postmark):
    payload = postmark_payload((EMAILS / "01_plain.eml").read_bytes())
    response = client.post(URL, payload, content_type="application/json", headers=auth("postmark:guess"))
    assert response.status_code == 400  # anymail's answer to a failed webhook validation
    assert not GrantEmail.objects.exists()


def test_only_the_configured_provider_listens(client, partner, postmark, settings):
    payload = postmark_payload((EMAILS / "01_plain.eml").read_bytes())
    response = client.post("/webhooks/grant-email/mailgun/inbound/", payload, content_type="application/json")
    assert response.status_code == 404
    settings.GRANT_EMAIL_INBOUND_ESP = ""
    response = client.post(URL, payload, content_type="application/json", headers=auth())
    assert response.status_code == 404
    assert response.json() == {"error": "No inbound email webhook here."}
    assert not GrantEmail.objects.exists()


def test_a_forged_grant_email_from_an_attacker_grants_nothing_and_waits_for_review(client, partner, postmark):
    payload = postmark_payload(sender_auth_email("forged_sender.eml"), sender="attacker@evil.example")

    response = client.post(URL, payload, content_type="application/json", headers=auth())

    assert response.status_code == 200  # kept, so the provider does not send it again
    grant_email = GrantEmail.objects.get()
    assert (grant_email.partner, grant_email.status, grant_email.sender) == (
        partner,
        GrantEmail.Status.NEEDS_REVIEW,
        "attacker@evil.example",
    )
    assert grant_email.review_reason.startswith("Sender not verified: DKIM none, SPF pass for evil.example")
    assert not Site.objects.exists()


def test_a_genuine_message_forwarded_with_its_original_headers_but_no_trusted_verdict_is_not_trusted(
    client, partner, postmark
):
    # The provider's account received it, but no trusted server stamped it: the From header alone proves nothing.
    response = client.post(
        URL, postmark_payload((EMAILS / "01_plain.eml").read_bytes()), content_type="application/json", headers=auth()
    )

    assert response.status_code == 200
    grant_email = GrantEmail.objects.get()
    assert grant_email.status == GrantEmail.Status.NEEDS_REVIEW
    assert grant_email.review_reason.startswith("Sender not verified: no Authentication-Results from a trusted server")
    assert not Site.objects.exists()


@pytest.mark.parametrize("name", ["forged_trusted_header_below.eml", "unreadable_authentication_results.eml"])
def test_forged_or_broken_authentication_results_are_kept_for_review_without_an_error(client, partner, postmark, name):
    response = client.post(
        URL, postmark_payload(sender_auth_email(name)), content_type="application/json", headers=auth()
    )

    assert response.status_code == 200
    assert GrantEmail.objects.get().status == GrantEmail.Status.NEEDS_REVIEW
    assert not Site.objects.exists()
