"""A support agent's task in a real browser: a partner asks why a lead never reached Real Geeks;
from whatever page is open, the agent finds RG's reason in at most three interactions.

Real Geeks is the live server's sandbox and tasks run inline, so the failure is a real 422 from
it. Around the lead: delivered leads, one with a nearly equal phone number, a lead refused for
another reason, and another partner's lead with the same email and phone, which the agent (staff
of Acme only) must never be offered.
"""

import os
import uuid
from collections.abc import Callable

import pytest

try:
    from playwright.sync_api import Locator, Page, ViewportSize, expect
except ImportError:  # the conftest's chromium_available explains; here only collection must not break
    if os.environ.get("REQUIRE_REAL_SERVERS") == "1":
        raise
    pytest.skip("BROWSER TESTS SKIPPED: the playwright package is not installed", allow_module_level=True)

from grants.models import Partner, Site
from leads.delivery import delivery_retry
from leads.models import Delivery, Lead
from sandbox.services import sandbox_account_ensure
from tests.browser.leads import SUNSET, dead_with_a_body_rg_refuses, push
from tests.browser.staff import RG_PASSWORD, log_in

EMAIL = "kai.akana@example.com"
PHONE_STORED = "808-555-0199"
# RG's own words, as its 422 body gave them; the portal must show them unchanged.
RG_REASON = "Property field 'full_baths' is not a valid integer."
PHONE: ViewportSize = {"width": 390, "height": 844}
LAPTOP: ViewportSize = {"width": 1280, "height": 900}
MAX_INTERACTIONS = 3


class Agent:
    """The agent at the dashboard, counting interactions: each click is one, and typing into the
    header's search box and pressing Enter is one."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.interactions = 0

    def search(self, text: str) -> None:
        box = self.page.locator("header input[name=q]")
        box.fill(text)
        box.press("Enter")
        self.interactions += 1

    def click(self, target: Locator) -> None:
        target.click()
        self.interactions += 1


def refused_lead(acme: Partner) -> Lead:
    """Kai's lead: retried by staff, RG refused its body with a 422 naming the field."""
    lead = dead_with_a_body_rg_refuses(acme, EMAIL, first_name="Kai", last_name="Akana", phone=PHONE_STORED)
    delivery_retry(delivery=Delivery.objects.get(lead=lead))
    lead.refresh_from_db()
    assert (lead.status, lead.last_status_code) == ("failed", 422)
    assert RG_REASON in lead.last_error
    return lead


def noise(acme: Partner, other: Partner) -> None:
    push(acme, "mele@example.com", first_name="Mele", last_name="Kahale", phone="808-555-0198")
    push(acme, "noe@example.com", first_name="Noe", last_name="Akana", phone="(808) 555-0142")
    sandbox_account_ensure(username="acme", password="a-different-password", site_uuids=[])
    refused = push(acme, "lani@example.com", first_name="Lani", last_name="Moku")
    assert Lead.objects.get(pk=refused.pk).last_status_code == 401
    sandbox_account_ensure(username="acme", password=RG_PASSWORD, site_uuids=[SUNSET])
    # The same person, pushed by another partner: the agent may not see it, so it is no candidate.
    theirs = Site.objects.create(partner=other, site_uuid=uuid.uuid4(), name="Kailua Homes", source=Site.Source.MANUAL)
    Lead.objects.create(
        partner=other, site=theirs, lead_id=uuid.uuid4(), email=EMAIL, name="Kai Akana", phone=PHONE_STORED
    )


def by_email(agent: Agent, lead: Lead) -> None:
    agent.search(EMAIL)
    agent.click(agent.page.get_by_role("main").get_by_role("link", name="Kai Akana"))


def by_phone_typed_without_dashes(agent: Agent, lead: Lead) -> None:
    agent.search(PHONE_STORED.replace("-", ""))
    agent.click(agent.page.get_by_role("main").get_by_role("link", name="Kai Akana"))


def by_lead_id(agent: Agent, lead: Lead) -> None:
    agent.search(str(lead.lead_id))  # one lead has this id: the search goes straight to it


Route = Callable[[Agent, Lead], None]


@pytest.mark.parametrize(
    ("start", "viewport", "route"),
    [
        pytest.param("/", LAPTOP, by_email, id="overview-email"),
        pytest.param("/leads/", LAPTOP, by_phone_typed_without_dashes, id="leads-phone"),
        pytest.param("/sites/", LAPTOP, by_email, id="sites-email"),
        pytest.param("/callbacks/", LAPTOP, by_phone_typed_without_dashes, id="callbacks-phone"),
        pytest.param("/audit/", LAPTOP, by_lead_id, id="audit-lead-id"),
        pytest.param("/", PHONE, by_phone_typed_without_dashes, id="overview-phone-width-phone"),
        pytest.param("/leads/", PHONE, by_email, id="leads-phone-width-email"),
    ],
)
def test_from_any_page_an_agent_finds_why_a_lead_failed_in_at_most_three_interactions(
    page: Page, kim, acme, other, sunset_realty, start: str, viewport: ViewportSize, route: Route
):
    lead = refused_lead(acme)
    noise(acme, other)
    page.set_viewport_size(viewport)
    log_in(page, "kim")
    page.goto(start)
    expect(page.locator("main h1")).to_be_visible()

    agent = Agent(page)
    route(agent, lead)

    assert agent.interactions <= MAX_INTERACTIONS
    expect(page.get_by_role("heading", level=1)).to_contain_text("Kai Akana")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Failed")
    reason = page.get_by_text(RG_REASON).first
    expect(reason).to_be_in_viewport()  # near the top: no scrolling, no further click
    expect(reason).to_be_visible()
    expect(reason).to_contain_text("422")
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") == 0


def test_the_search_offers_only_the_agents_own_partners_lead(page: Page, kim, acme, other, sunset_realty):
    refused_lead(acme)
    noise(acme, other)
    log_in(page, "kim")

    Agent(page).search(PHONE_STORED.replace("-", ""))

    leads = page.locator("table.leads tbody tr")
    expect(leads).to_have_count(1)
    expect(leads.first).to_contain_text("Kai Akana")
    expect(leads.first).to_contain_text("Failed")
    expect(page.locator("main")).not_to_contain_text("Kailua Homes")
    expect(page.locator("main")).not_to_contain_text("Mele")
