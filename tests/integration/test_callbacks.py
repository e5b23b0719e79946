"""Destination callbacks for real: gunicorn, two Celery workers, PostgreSQL and Redis, no beat.
Each stored callback asks for processing with a throttled hint, and runs in several worker
processes claim batches side by side: every callback must be processed exactly once, with no
beat to pick up what a throttled hint might have left behind."""

import concurrent.futures
import json
import time
import uuid

import pytest
import requests

from grants import destination
from grants.signing import sign
from tests.integration.servers import wait_for

pytestmark = pytest.mark.integration

SECRET = "whsec-callbacks"
SITE = "6d1f0b3e-2a4c-4e8b-9f7d-5c3a1e9b7d2f"


class Destination:
    """The partner's Destination URL on a running stack, called as RG calls it."""

    def __init__(self, stack) -> None:
        self.stack = stack
        slug = stack.manage(
            "add_partner",
            "--name",
            "Callbacks",
            "--rg-username",
            "callbacks",
            "--rg-password",
            "rg-password-callbacks",
            "--webhook-secret",
            SECRET,
        ).split()[-1]
        self.url = f"{stack.base_url}/webhooks/realgeeks/{slug}/"

    def send(self, action: str, **fields) -> requests.Response:
        body = json.dumps({"action": action, "site_uuid": SITE, **fields}).encode()
        headers = {
            "Content-Type": "application/json",
            destination.ACTION_HEADER: action,
            destination.SIGNATURE_HEADER: sign(body, SECRET),
            destination.TIMESTAMP_HEADER: "2026-11-03T18:22:05.123456789Z",
        }
        return requests.post(self.url, data=body, headers=headers, timeout=30)

    def events(self, lead_ids: list[str]) -> list[tuple[str, int]]:
        """(state, attempts) of the stored callbacks about these leads."""
        return self.stack.sql(
            "SELECT state, attempts FROM grants_webhookevent WHERE lead_id::text = ANY(%s)", (lead_ids,)
        )


@pytest.fixture(scope="module")
def rg(module_portal_stack) -> Destination:
    stack = module_portal_stack(beat=False, concurrency=2)
    stack.start_worker(concurrency=2)  # a second worker, as on a second machine
    return Destination(stack)


def test_callbacks_from_many_connections_are_each_processed_exactly_once_by_two_workers(rg):
    lead_ids = [str(uuid.uuid4()) for _ in range(300)]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda lead: rg.send("created", id=lead, first_name="Jack").status_code, lead_ids))

    assert set(answers) == {200}
    wait_for(
        lambda: [state for state, _ in rg.events(lead_ids)] == ["processed"] * len(lead_ids),
        timeout=90,
        what="every callback processed, by hints alone",
    )
    # Each claim counts an attempt: one each means no event was claimed by two runs.
    assert {attempts for _, attempts in rg.events(lead_ids)} == {1}


def test_a_callback_stored_while_the_broker_is_down_is_processed_after_its_return(rg, redis):
    lead = str(uuid.uuid4())
    redis.stop()
    try:
        started = time.monotonic()
        response = rg.send("created", id=lead, first_name="Jack")
        elapsed = time.monotonic() - started
        # Stored before the answer (a run the first test's hints started may already hold it).
        assert len(rg.events([lead])) == 1
    finally:
        redis.start()

    assert (response.status_code, response.json()) == (200, {})
    assert elapsed < 10
    # The next callback's hint asks for every received callback, the first one too.
    later = str(uuid.uuid4())
    assert rg.send("created", id=later, first_name="Kai").status_code == 200
    wait_for(
        lambda: sorted(rg.events([lead, later])) == [("processed", 1)] * 2,
        timeout=60,
        what="both callbacks processed once the broker is back",
    )
