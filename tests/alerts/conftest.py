import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerts import services
from alerts.models import Channel
from grants.models import Partner, Site
from leads.models import Delivery, Lead, Operation
from tests.portal.conftest import acme_client, acme_staff, root_client, superuser  # noqa: F401

SITE_UUID = uuid.UUID("3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a9f")
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def plain_static_storage(settings):
    # Pages render {% static %}; the manifest storage would need `collectstatic` to have run first.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def alert_settings(settings):
    """Thresholds spelled out, so each test reads against known values whatever the defaults become."""
    settings.ALERTS_RATE_LIMIT_MINUTES = 60
    settings.ALERTS_NEEDS_HUMAN_COUNT = 1
    settings.ALERTS_NEEDS_HUMAN_HOURS = 24
    settings.ALERTS_CIRCUIT_OPEN_MINUTES = 0
    settings.ALERTS_SITE_REVOKED_HOURS = 24
    settings.ALERTS_BACKLOG_MINUTES = 15
    settings.ALERTS_HEARTBEAT_MINUTES = 5
    settings.ALERTS_GRANT_EMAIL_REVIEW_MINUTES = 0
    settings.ALERTS_NOTIFY_MAX_ATTEMPTS = 4
    settings.ALERTS_NOTIFY_RETRY_SECONDS = 60
    settings.ALERTS_ALLOW_LOCAL_URLS = True
    settings.PORTAL_BASE_URL = "https://portal.example.com"


@pytest.fixture
def site(partner: Partner) -> Site:
    return Site.objects.create(
        partner=partner, site_uuid=SITE_UUID, name="Example Realty", status=Site.Status.ACTIVE, source="manual"
    )


@pytest.fixture
def other_site(other_partner: Partner) -> Site:
    return Site.objects.create(
        partner=other_partner, site_uuid=uuid.uuid4(), name="Other Realty", status=Site.Status.ACTIVE, source="manual"
    )


def delivery(site: Site, *, status: str, at: datetime = NOW, sequence: int = 1, lead: Lead | None = None) -> Delivery:
    """A delivery of a new lead (or of `lead`), in `status`, created, updated and due at `at`."""
    if lead is None:
        lead = Lead.objects.create(partner=site.partner, site=site, lead_id=uuid.uuid4(), email="jack@gmail.com")
    return Delivery.objects.create(
        lead=lead,
        sequence=sequence,
        operation=Operation.CREATE_LEAD if sequence == 1 else Operation.UPDATE_LEAD,
        payload={"source": "tests"},
        status=status,
        next_attempt_at=at,
        created=at,
        updated=at,
    )


def channel(partner: Partner | None, kind: str, target: str, **extra: Any) -> Channel:
    made, _ = services.channel_create(partner=partner, kind=kind, name=f"{kind} channel", target=target, **extra)
    return made


@pytest.fixture
def email_channel(partner: Partner) -> Channel:
    return channel(partner, Channel.Kind.EMAIL, "ops@acme.example, oncall@acme.example")


@pytest.fixture
def slack_channel(partner: Partner) -> Channel:
    return channel(partner, Channel.Kind.SLACK, "https://hooks.slack.example/services/T000/B000/XXXX")


@pytest.fixture
def webhook_channel(partner: Partner) -> Channel:
    return channel(partner, Channel.Kind.WEBHOOK, "https://alerts.acme.example/portal")


@pytest.fixture
def operator_channel() -> Channel:
    return channel(None, Channel.Kind.EMAIL, "operators@portal.example")


def later(minutes: float) -> datetime:
    return NOW + timedelta(minutes=minutes)
