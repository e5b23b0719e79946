import pytest

from grants.models import Partner
from grants.services import partner_create


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
