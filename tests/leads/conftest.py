"""Fixtures for the leads tests: a partner's API key, a granted site, Real Geeks mocked at the
HTTP edge (the `responses` library patches requests' transport, nothing of ours), and Celery
tasks run inline so a test sees a whole delivery happen."""

import base64
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import responses
from django.conf import settings
from django.test import Client

from grants.models import Partner, Site
from grants.services import api_key_issue, site_grant
from partner_portal.celery import app as celery_app
from tests.celery_helpers import drop_broker_connections

SITE_UUID = uuid.UUID("6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b")
OTHER_SITE_UUID = uuid.UUID("0b9a8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d")


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def run_tasks_inline(inline: bool) -> None:
    # Celery reads the Django setting each time; setting app.conf instead would shadow it for
    # every later test, including those that switch eagerness through pytest-django's `settings`.
    settings.CELERY_TASK_ALWAYS_EAGER = inline


@pytest.fixture(autouse=True)
def inline_tasks() -> Iterator[None]:
    run_tasks_inline(True)
    yield
    run_tasks_inline(False)


@pytest.fixture
def broker_down() -> Iterator[None]:
    """Publishing fails as with the broker down: connections to it are refused."""
    run_tasks_inline(False)
    original = celery_app.conf.CELERY_BROKER_URL
    celery_app.conf.CELERY_BROKER_URL = "redis://127.0.0.1:9/0"  # the discard port: nothing listens
    drop_broker_connections()
    try:
        yield
    finally:
        celery_app.conf.CELERY_BROKER_URL = original
        drop_broker_connections()
        run_tasks_inline(True)


@pytest.fixture
def credentials(partner: Partner) -> tuple[str, str]:
    key, secret = api_key_issue(partner=partner, label="tests")
    return key.key_id, secret


@pytest.fixture
def push(credentials: tuple[str, str]) -> Client:
    """A test client that authenticates every request with the partner's API key."""
    return Client(HTTP_AUTHORIZATION=basic(*credentials))


@pytest.fixture
def site(partner: Partner) -> Site:
    return site_grant(partner=partner, site_uuid=SITE_UUID, source=Site.Source.MANUAL, name="Aloha Homes")


@dataclass
class FakeRealGeeks:
    """Real Geeks' Incoming API at the HTTP edge: answers from a script, records every call."""

    mock: responses.RequestsMock
    answers: list[tuple[int, str]] = field(default_factory=list)
    calls: list[tuple[str, str, object]] = field(default_factory=list)

    def answer(self, *answers: tuple[int, str] | Exception) -> None:
        """Answers for the next calls, in order; after them every call gets 2xx `{}`."""
        self.answers.extend(answers)  # type: ignore[arg-type]

    def handle(self, request: object) -> tuple[int, dict[str, str], str]:
        method, url, body = request.method, request.url, request.body  # type: ignore[attr-defined]
        self.calls.append((method, url, json.loads(body) if body else None))
        if self.answers:
            answer = self.answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer[0], {}, answer[1]
        if method == "GET":
            return 200, {}, json.dumps([{"id": "14187", "role": "Agent", "name": "Kai", "admin": False}])
        return (201 if url.endswith(("/leads", "/potential-seller-leads")) else 200), {}, "{}"

    def operations(self) -> list[tuple[str, str]]:
        """(method, path after the base URL) of every call."""
        base = settings.REALGEEKS_API_URL.rsplit("/rest", 1)[0]
        return [(method, url[len(base) :]) for method, url, _ in self.calls]


@pytest.fixture
def rg() -> Iterator[FakeRealGeeks]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = FakeRealGeeks(mock)
        base = re.escape(settings.REALGEEKS_API_URL.rsplit("/rest", 1)[0])
        for method in ("GET", "POST", "PATCH"):
            mock.add_callback(method, re.compile(base + r"/.*"), callback=fake.handle)
        yield fake
