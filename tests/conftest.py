import pytest
from django.core.cache import cache

from grants.authentication import api_keys_reset
from grants.models import Partner
from grants.services import partner_create
from grants.webhooks import partners_forget


@pytest.fixture
def partner(db) -> Partner:
    return partner_create(
        name="Acme Leads",
        rg_username="acme",
        rg_password="rg-password-acme",
        webhook_secret="whsec-acme",
        rg_partner_id="acme-partner-id",
        rg_company_id="acme-co",
    )


@pytest.fixture
def other_partner(db) -> Partner:
    return partner_create(
        name="Other Co",
        rg_username="other",
        rg_password="rg-password-other",
        webhook_secret="whsec-other",
    )


@pytest.fixture(autouse=True)
def delivery_engine_in_process(settings) -> None:
    """Pumps run inline in tests (eager Celery): RG is mocked at requests' transport
    (`responses`), so the thread-pool sender is used, and a pump stops as soon as nothing is due.
    The asyncio sender is tested against real HTTP servers (tests/leads/test_senders.py and the
    integration tests)."""
    settings.DELIVERY_SENDER = "threads"
    settings.DELIVERY_PUMP_IDLE_SECONDS = 0


@pytest.fixture(autouse=True)
def destination_partners_forgotten() -> None:
    """Each test reads its partners afresh: the callback webhook keeps them per process
    (PARTNER_CACHE_SECONDS), and a new test's partner may reuse an old one's slug."""
    partners_forget()


@pytest.fixture(autouse=True)
def api_keys_forgotten() -> None:
    """Each test starts with no API key cached, no client address blocked (both per process)
    and no failed attempts counted (Django's cache, per process in tests)."""
    api_keys_reset()
    cache.clear()
