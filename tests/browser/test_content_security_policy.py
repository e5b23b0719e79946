"""The Content-Security-Policy in a real browser: every kind of dashboard page, the admin and the
API docs render and run their scripts with no violation, and an injected inline script is refused."""

import os
import uuid

import pytest

try:
    from playwright.sync_api import ConsoleMessage, Dialog, Page, expect
except ImportError:  # the conftest's chromium_available explains; here only collection must not break
    if os.environ.get("REQUIRE_REAL_SERVERS") == "1":
        raise
    pytest.skip("BROWSER TESTS SKIPPED: the playwright package is not installed", allow_module_level=True)

from grants.models import Site
from grants.services import site_grant
from leads.models import Lead
from leads.services import lead_submit
from sandbox.services import sandbox_account_ensure
from tests.browser.staff import PASSWORD, RG_PASSWORD, log_in

SITE_UUID = uuid.UUID("5d9b2f5e-7c1a-4e63-9d0b-2a8c6f1e4b70")


class Violations:
    """CSP violations the page reported, from its console and its securitypolicyviolation events."""

    def __init__(self, page: Page) -> None:
        self.seen: list[str] = []
        self.page = page
        page.on("console", self._console)
        page.add_init_script(
            "document.addEventListener('securitypolicyviolation', e =>"
            " console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));"
        )

    def _console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "CSP violation" in message.text:
            self.seen.append(f"{self.page.url}: {message.text}")


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.com", PASSWORD)


@pytest.fixture
def lead(sandbox_as_rg, acme) -> Lead:
    sandbox_account_ensure(username="acme", password=RG_PASSWORD, site_uuids=[SITE_UUID])
    site_grant(partner=acme, site_uuid=SITE_UUID, source=Site.Source.MANUAL, name="Sunset Realty")
    lead_submit(partner=acme, site_uuid=SITE_UUID, operation="create_lead", data={"source": "Web", "email": "a@x.io"})
    return Lead.objects.get()


def test_every_kind_of_page_runs_under_the_policy_without_a_violation(page: Page, admin_user, acme, lead):
    violations = Violations(page)
    log_in(page, "root")
    pages = [
        "/",
        "/leads/",
        f"/partners/{acme.slug}/leads/{lead.lead_id}/",
        "/bulk/",
        "/sites/",
        f"/partners/{acme.slug}/sites/{SITE_UUID}/",
        "/callbacks/",
        "/grant-emails/",
        "/partners/",
        f"/partners/{acme.slug}/",
        "/audit/",
        "/admin/",
        "/admin/grants/partner/",
        f"/admin/grants/partner/{acme.pk}/change/",
    ]
    for path in pages:
        response = page.goto(path)
        assert response is not None and response.status == 200, path
        assert "script-src 'self'" in response.headers["content-security-policy"], path
    assert violations.seen == []

    # The confirmations are a static script now: revoking a site still asks first.
    page.goto(f"/partners/{acme.slug}/sites/{SITE_UUID}/")
    asked: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.get_by_role("button", name="Revoke").click()
    assert asked and "Revoke this site?" in asked[0]
    assert Site.objects.get(site_uuid=SITE_UUID).status == Site.Status.ACTIVE  # dismissed: nothing sent
    assert violations.seen == []


def test_the_api_docs_render_swagger_ui_under_the_policy(page: Page, admin_user):
    violations = Violations(page)
    log_in(page, "root")
    page.goto("/api/docs/")
    expect(page.get_by_role("heading", name="Partner Portal API")).to_be_visible()
    expect(page.get_by_text("/rest/sites/{site_uuid}/leads").first).to_be_visible()
    assert violations.seen == []


def test_an_injected_inline_script_is_refused(page: Page, admin_user):
    violations = Violations(page)
    log_in(page, "root")
    page.goto("/leads/")
    # What an XSS that slipped past escaping would do: the policy must stop it running.
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.pwned = 1';"
        " document.body.appendChild(s); }"
    )
    assert page.evaluate("() => window.pwned") is None
    assert any("script-src" in seen for seen in violations.seen), violations.seen
