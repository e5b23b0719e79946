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
