"""Bulk retry in a real browser: deliveries fail against the sandbox (standing in for Real Geeks in
the same live server), the site is fixed at "RG", staff bulk-retry the failures and watch the
progress page follow the job to the end. Also screenshots of the overview and a finished job."""

import os
import re
import uuid
from pathlib import Path

import pytest

try:
    from playwright.sync_api import Page, Route, expect
except ImportError:  # the conftest's chromium_available explains; here only collection must not break
    if os.environ.get("REQUIRE_REAL_SERVERS") == "1":
        raise
    pytest.skip("BROWSER TESTS SKIPPED: the playwright package is not installed", allow_module_level=True)

from grants.models import Site
from grants.services import site_grant
from leads.models import BulkRetry, Delivery, Lead
from leads.services import lead_submit
from leads.tasks import bulk_retry_run_task
from sandbox.services import sandbox_account_ensure
from tests.browser.history import a_day_of_history
from tests.browser.staff import PASSWORD, RG_PASSWORD, log_in
from tests.celery_helpers import drop_broker_connections

SITE_UUID = uuid.UUID("5d9b2f5e-7c1a-4e63-9d0b-2a8c6f1e4b70")
EMAILS = ["ana@example.com", "bo@example.com", "cy@example.com"]


def test_staff_bulk_retry_failures_and_watch_the_progress_reach_the_end(
    page: Page, sandbox_as_rg, settings, kim, acme, tmp_path
):
    # RG knows the partner's credentials but not (yet) this site: every push gets a 401.
    sandbox_account_ensure(username="acme", password=RG_PASSWORD, site_uuids=[])
    site_grant(partner=acme, site_uuid=SITE_UUID, source=Site.Source.MANUAL, name="Sunset Realty")
    for email in EMAILS:
        lead_submit(partner=acme, site_uuid=SITE_UUID, operation="create_lead", data={"source": "Web", "email": email})
    assert list(Delivery.objects.values_list("status", "last_status_code")) == [("failed", 401)] * 3
    sandbox_account_ensure(username="acme", password=RG_PASSWORD, site_uuids=[SITE_UUID])  # RG fixed it

    # From here the web process only publishes (to an in-memory broker nobody consumes); the test
    # plays the worker below, while the progress page's polls are held so one thread at a time
    # uses the live server's shared in-memory database.
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "memory://"
    drop_broker_connections()
    held: list[Route] = []
    hold_polls = True

    def progress_route(route: Route) -> None:
        if hold_polls:
            held.append(route)
        else:
            route.continue_()

    page.route(re.compile(r".*/bulk/[0-9a-f-]+/progress$"), progress_route)
    log_in(page, "kim")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Bulk retry").click()
    expect(page.locator("main").get_by_label("Partner")).to_have_value(acme.slug)
    page.get_by_label("Last HTTP status").fill("401")
    page.get_by_role("button", name="Show matching deliveries").click()
    expect(page.get_by_role("heading", name="3 failed or dead deliveries match")).to_be_visible()
    expect(page.get_by_text("at most 10000")).to_be_visible()
    out = Path(os.environ.get("PORTAL_SCREENSHOTS_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out / "bulk-retry-filter.png"), full_page=True)
    page.get_by_role("button", name="Retry 3 deliveries").click()

    progress = page.locator("#bulk-progress")
    expect(progress.get_by_role("status")).to_contain_text("Queued 0 of 3 deliveries handled")
    for _ in range(50):  # route handlers run while this thread waits in Playwright: at most 5 s
        if held:
            break
        page.wait_for_timeout(100)
    assert held, "the progress page did not poll"

    settings.CELERY_TASK_ALWAYS_EAGER = True  # the worker: chunks and delivery attempts, in this thread
    bulk_retry_run_task.apply(args=(BulkRetry.objects.get().pk,))
    hold_polls = False
    for route in held:
        route.continue_()

    expect(progress.get_by_role("status")).to_contain_text("Finished 3 of 3 deliveries handled")
    expect(progress.locator('[data-field="delivered"]')).to_have_text("3")
    expect(progress.locator('[data-field="failed_again"]')).to_have_text("0")
    expect(progress.locator('[data-field="note"]')).to_have_text("Every retried delivery has an outcome.")
    expect(progress.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "3")
    assert list(Delivery.objects.values_list("status", flat=True)) == ["delivered"] * 3
    assert list(Lead.objects.values_list("status", flat=True)) == ["delivered"] * 3
    page.screenshot(path=str(out / "bulk-retry.png"), full_page=True)


def test_screenshot_of_the_overview(page: Page, sandbox_as_rg, django_user_model, acme, tmp_path):
    """A day of literal history: always rendered and checked; kept in PORTAL_SCREENSHOTS_DIR when set."""
    django_user_model.objects.create_superuser("admin", password=PASSWORD)
    a_day_of_history(acme, SITE_UUID)

    log_in(page, "admin")
    page.goto("/")
    expect(page.locator("#success-rate .value")).to_have_text(re.compile(r"\d+\.\d%"))
    expect(page.get_by_role("img", name=re.compile("Delivery attempts per hour by outcome"))).to_be_visible()
    expect(page.locator("#held-by-site")).to_contain_text("Harbor Homes")

    out = Path(os.environ.get("PORTAL_SCREENSHOTS_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out / "overview.png"), full_page=True)
    assert (out / "overview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
