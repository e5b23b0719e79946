"""The sandbox sends signed Destination callbacks to a running portal over real HTTP
(pytest-django's live_server), with the `sandbox_callback` command, as RG would."""

import io
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from grants.models import InboundLead, Site, WebhookEvent
from grants.services import site_grant
from grants.signals import site_granted
from grants.signing import sign
from sandbox.models import SandboxAccount

pytestmark = pytest.mark.django_db(transaction=True)

SITE_UUID = uuid.UUID("2c4e6a8b-0d1f-4a3c-9e5b-7d9f1b3d5e7a")
LEAD_ID = uuid.UUID("5f7a9c1e-3b5d-4f7a-8c1e-3b5d7f9a1c3e")


@pytest.fixture
def portal(live_server: Any, settings: Any) -> Any:
    settings.PORTAL_BASE_URL = live_server.url
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the worker's part runs in the portal's thread
    return live_server


@pytest.fixture
def granted_sites() -> Iterator[list[uuid.UUID]]:
    """Site UUIDs `site_granted` was sent for (from the portal's thread), in order."""
    sent: list[uuid.UUID] = []
    lock = threading.Lock()

    def receive(sender: Any, site: Site, **kwargs: Any) -> None:
        with lock:
            sent.append(site.site_uuid)

    site_granted.connect(receive, dispatch_uid="tests.sandbox.granted_sites")
    yield sent
    site_granted.disconnect(dispatch_uid="tests.sandbox.granted_sites")


def sandbox_callback(*args: str) -> str:
    out = io.StringIO()
    call_command("sandbox_callback", *args, stdout=out)
    return out.getvalue().strip().splitlines()[-1]


def test_integration_enabled_from_the_sandbox_makes_the_site_active_and_releases_its_deliveries(
    portal, partner, granted_sites
):
    assert sandbox_callback("integration_enabled", "--partner", partner.slug, "--site", str(SITE_UUID)) == "200"

    site = Site.objects.get(partner=partner, site_uuid=SITE_UUID)
    assert (site.status, site.source, site.rg_partner_id) == (
        Site.Status.ACTIVE,
        Site.Source.CALLBACK,
        "acme-partner-id",
    )
    assert site.domain == "site-2c4e6a8b.sandbox.invalid"
    event = WebhookEvent.objects.get()
    assert (event.action, event.state, event.timestamp_raw.endswith("Z")) == ("integration_enabled", "processed", True)
    assert site.status_changes.get().webhook_event == event
    # The leads app releases held deliveries on this signal, sent once after the grant commits.
    assert granted_sites == [SITE_UUID]
    # And, as at RG, the partner's Incoming API credentials may now send to the site.
    assert SandboxAccount.objects.get(username=partner.rg_username).may_send_to(str(SITE_UUID))


def test_integration_disabled_from_the_sandbox_revokes_the_site(portal, partner):
    site_grant(partner=partner, site_uuid=SITE_UUID, source=Site.Source.MANUAL)
    assert sandbox_callback("integration_disabled", "--partner", partner.slug, "--site", str(SITE_UUID)) == "200"
    site = Site.objects.get(partner=partner, site_uuid=SITE_UUID)
    assert site.status == Site.Status.REVOKED
    revoked = site.status_changes.first()
    assert revoked is not None and revoked.webhook_event is not None
    assert revoked.webhook_event.action == "integration_disabled"


def test_lead_callbacks_from_the_sandbox_build_the_inbound_lead(portal, partner):
    args = ["--partner", partner.slug, "--site", str(SITE_UUID), "--lead-id", str(LEAD_ID)]
    assert sandbox_callback("created", *args) == "200"
    assert sandbox_callback("updated", *args) == "200"
    lead = InboundLead.objects.get(partner=partner, site_uuid=SITE_UUID, lead_id=LEAD_ID)
    assert (lead.details["first_name"], lead.details["phone"]) == ("Jack", "808-555-0199")
    assert [a["type"] for a in lead.activities] == ["visited"]


def test_the_sandbox_signs_the_exact_body_with_the_partners_newest_secret(portal, partner):
    partner.webhook_secrets = ["whsec-acme-2026", "whsec-acme"]
    partner.save()
    assert sandbox_callback("integration_enabled", "--partner", partner.slug, "--site", str(SITE_UUID)) == "200"
    event = WebhookEvent.objects.get()
    assert event.headers["X-Lead-Router-Signature"] == sign(bytes(event.body), "whsec-acme-2026")


def test_a_callback_to_the_wrong_partner_url_is_refused_with_401(portal, partner, other_partner):
    url = f"{portal.url}/webhooks/realgeeks/{other_partner.slug}/"
    args = ["--partner", partner.slug, "--site", str(SITE_UUID), "--url", url]
    assert sandbox_callback("integration_enabled", *args) == "401"
    assert not Site.objects.exists()


def test_an_unreachable_portal_is_an_error_naming_the_problem(partner):
    with pytest.raises(CommandError, match="Could not reach the portal"):
        sandbox_callback(
            "integration_enabled", "--partner", partner.slug, "--site", str(SITE_UUID), "--url", "http://127.0.0.1:1/"
        )
