"""Real-browser tests: Playwright driving Debian's Chromium against pytest-django's live server.

Nothing is downloaded: the browser is the system's /usr/bin/chromium (`apt-get install chromium`;
.ci/run installs it). Without it these tests skip, loudly, unless REQUIRE_REAL_SERVERS=1, which
makes a missing browser a failure.
"""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from grants.models import Partner, Site
from grants.services import partner_create, site_grant
from sandbox.services import sandbox_account_ensure
from tests.browser.leads import SUNSET
from tests.browser.staff import PASSWORD, RG_PASSWORD
from tests.celery_helpers import drop_broker_connections

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = os.environ.get("PORTAL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Bounds every Playwright wait: a page of this dashboard that takes longer is a failure.
TIMEOUT_MS = 15_000


def _missing_browser() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -r requirements-dev.txt)"
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)) and not shutil.which(CHROMIUM):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


@pytest.fixture(scope="session")
def chromium_available() -> None:
    problem = _missing_browser()
    if problem is None:
        return
    if os.environ.get("REQUIRE_REAL_SERVERS") == "1":
        pytest.fail(f"REQUIRE_REAL_SERVERS=1 but {problem}", pytrace=False)
    pytest.skip(f"BROWSER TESTS SKIPPED: {problem}")


@pytest.fixture(autouse=True)
def plain_static_storage(settings):
    # The live server serves static files from the source folders, which only works with the
    # un-hashed storage (the manifest storage would need `collectstatic` first).
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def page(chromium_available, transactional_db, live_server, tmp_path: Path, monkeypatch) -> Iterator["Page"]:
    """A page in a fresh Chromium profile, its base URL the live server."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread, and Django refuses ORM
    # calls from a thread with a running loop unless told this is safe (it is: one thread).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            base_url=live_server.url,
            viewport={"width": 1280, "height": 900},
        )
        context.set_default_timeout(TIMEOUT_MS)
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


@pytest.fixture
def acme(transactional_db) -> Partner:
    return partner_create(
        name="Acme Leads",
        rg_username="acme",
        rg_password=RG_PASSWORD,
        webhook_secret="whsec-acme",
        rg_company_id="acme-co",
    )


@pytest.fixture
def other(transactional_db) -> Partner:
    return partner_create(
        name="Other Co", rg_username="other", rg_password="rg-password-other", webhook_secret="whsec-other"
    )


@pytest.fixture
def kim(django_user_model, acme):
    """A staff user of Acme only."""
    user = django_user_model.objects.create_user("kim", password=PASSWORD, is_staff=True)
    acme.staff.add(user)
    return user


@pytest.fixture
def sandbox_as_rg(live_server, settings) -> Iterator[None]:
    """Real Geeks is the live server's own sandbox; tasks run inline (Celery reads the Django setting)."""
    settings.REALGEEKS_API_URL = f"{live_server.url}/sandbox/rest"
    settings.CELERY_TASK_ALWAYS_EAGER = True
    yield
    drop_broker_connections()  # a test may have pointed Celery at another broker


@pytest.fixture
def sunset_realty(acme, sandbox_as_rg) -> Site:
    """Acme's site, granted both at the sandbox (so pushes are delivered) and in the portal."""
    sandbox_account_ensure(username="acme", password=RG_PASSWORD, site_uuids=[SUNSET])
    return site_grant(partner=acme, site_uuid=SUNSET, source=Site.Source.MANUAL, name="Sunset Realty")
