"""Grant emails through an email provider's inbound webhook (anymail), here Postmark's."""

import base64
import json
from pathlib import Path

import pytest

from grants.models import GrantEmail, Site

EMAILS = Path(__file__).parent / "emails"
URL = "/webhooks/grant-email/postmark/inbound/"


@pytest.fixture
def postmark(settings):
    settings.GRANT_EMAIL_INBOUND_ESP = "postmark"
    settings.ANYMAIL = {"WEBHOOK_SECRET": "postmark:hook-secret"}


def auth(credentials: str = "postmark:hook-secret") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


def postmark_payload(raw: bytes) -> str:
    # Postmark's inbound JSON with "Include raw email content" on; anymail parses RawEmail.
    return json.dumps(
        {
            "FromFull": {"Email": "noreply@realgeeks.com", "Name": "Real Geeks"},
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
            postmark_payload((EMAILS / "01_plain.eml").read_bytes()),
            content_type="application/json",
            headers=auth(),
        )
    assert response.status_code == 200
    grant_email = GrantEmail.objects.get()
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
