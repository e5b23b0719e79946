"""Fixtures for the grants tests: Celery tasks run inline, and signed Destination callbacks are
posted the way RG posts them, with on-commit work (the task, the site_granted signal) run."""

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.utils.datastructures import CaseInsensitiveMapping

from grants import callbacks, tasks
from grants.models import Partner, Site
from grants.signals import site_granted
from grants.signing import sign
from partner_portal.hints import HintThrottle

SITE_UUID = uuid.UUID("8f14e45f-ceea-4e67-a2b1-0d5c3b9a7e21")
LEAD_ID = uuid.UUID("3b5d5c37-11a2-4f6e-9d4c-8a7b6c5d4e3f")


@pytest.fixture(autouse=True)
def inline_tasks(settings: Any) -> None:
    # Through Django settings: Celery reads CELERY_-prefixed settings before its own conf keys,
    # so assigning app.conf.task_always_eager would not take effect.
    settings.CELERY_TASK_ALWAYS_EAGER = True


@pytest.fixture
def published(settings: Any, monkeypatch: Any) -> list[str]:
    """Processing hints, recorded at the broker's edge instead of sent. Tasks are not eager here,
    so a hint runs nothing inline, and the throttle starts afresh with no interval (a test that
    checks the throttle sets one)."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    sent: list[str] = []
    monkeypatch.setattr(tasks.webhook_events_process, "delay", lambda: sent.append("webhook_events_process"))
    monkeypatch.setattr(callbacks, "HINT_INTERVAL", 0.0)
    monkeypatch.setattr(callbacks, "_hints", HintThrottle())
    return sent


def stored(partner: Partner, action: str, **fields: Any) -> int:
    """A callback stored as the webhook stores a verified one; its processing is never asked
    for, as the hint waits for a commit that the test's transaction never makes. Its id."""
    headers = {"X-Lead-Router-Action": action, "X-Lead-Router-Timestamp": "2026-11-03T18:22:05Z"}
    received = callbacks.webhook_event_receive(
        partner_id=partner.pk, body=body_bytes(action, **fields), headers=CaseInsensitiveMapping(headers)
    )
    assert received.event_id is not None
    return received.event_id


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks: Any) -> Any:
    """`with on_commit(execute=True):` runs what the block scheduled for after commit."""
    return django_capture_on_commit_callbacks


@pytest.fixture
def granted_sites() -> Iterator[list[Site]]:
    """Every site `site_granted` was sent for, in order."""
    sent: list[Site] = []

    def receive(sender: Any, site: Site, **kwargs: Any) -> None:
        sent.append(site)

    site_granted.connect(receive, dispatch_uid="tests.grants.granted_sites")
    yield sent
    site_granted.disconnect(dispatch_uid="tests.grants.granted_sites")


def body_bytes(action: str, **fields: Any) -> bytes:
    return json.dumps({"action": action, **fields}).encode()


class Destination:
    """The webhook as RG calls it, over the Django test client, running on-commit work."""

    def __init__(self, client: Client, capture: Any, slug: str, secret: str) -> None:
        self.client, self.capture, self.slug, self.secret = client, capture, slug, secret

    @property
    def url(self) -> str:
        return f"/webhooks/realgeeks/{self.slug}/"

    def post(
        self,
        body: bytes,
        *,
        action: str | None = None,
        signature: str | None = "sign",
        timestamp: str = "2026-11-03T18:22:05.123456789Z",
        **headers: str,
    ) -> Any:
        sent = {"X-Lead-Router-Timestamp": timestamp, **headers}
        if action is not None:
            sent["X-Lead-Router-Action"] = action
        if signature == "sign":
            sent["X-Lead-Router-Signature"] = sign(body, self.secret)
        elif signature is not None:
            sent["X-Lead-Router-Signature"] = signature
        with self.capture(execute=True):
            return self.client.post(self.url, body, content_type="application/json", headers=sent)

    def send(self, action: str, timestamp: str = "2026-11-03T18:22:05.123456789Z", **fields: Any) -> Any:
        return self.post(body_bytes(action, **fields), action=action, timestamp=timestamp)


@pytest.fixture
def rg(client: Client, django_capture_on_commit_callbacks: Any, partner: Any) -> Destination:
    return Destination(client, django_capture_on_commit_callbacks, partner.slug, "whsec-acme")
