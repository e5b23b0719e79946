"""The sandbox as `make run` and the integration suite run it: gunicorn processes on PostgreSQL,
steered by `manage.py` in other processes."""

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

# The integration fixtures, used here by name (they live in tests/integration/conftest.py).
from tests.integration.conftest import portal_stack, postgres, redis  # noqa: F401
from tests.sandbox.conftest import PASSWORD, SITE, USERNAME

pytestmark = pytest.mark.integration

EXAMPLE = json.loads((Path(__file__).parent / "fixtures" / "realgeeks_example_lead.json").read_text())
TIMEOUT = 20.0


@pytest.fixture
def stack(portal_stack):  # noqa: F811
    # Two web processes: the faults must reach both, so they live in the database.
    stack = portal_stack(worker=False, env={"GUNICORN_WORKERS": "2"})
    stack.manage("sandbox_account", "--username", USERNAME, "--password", PASSWORD, "--site", str(SITE))
    return stack


def create(stack, body=EXAMPLE, raw: bytes | None = None) -> requests.Response:
    url = f"{stack.base_url}/sandbox/rest/sites/{SITE}/leads"
    if raw is not None:
        return requests.post(url, data=raw, auth=(USERNAME, PASSWORD), timeout=TIMEOUT)
    return requests.post(url, json=body, auth=(USERNAME, PASSWORD), timeout=TIMEOUT)


def test_faults_set_from_another_process_reach_every_web_process(stack):
    assert create(stack).status_code == 201
    printed = json.loads(stack.manage("sandbox_faults", "--outage").strip().splitlines()[-1])
    assert printed["outage"] is True
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda _: create(stack).status_code, range(16)))
    assert statuses == [503] * 16
    stack.manage("sandbox_faults", "--reset")
    assert create(stack).status_code == 201


def test_a_limited_fault_is_handed_out_exactly_that_many_times_under_concurrency(stack):
    printed = json.loads(stack.manage("sandbox_faults", "--error-rate", "1", "--remaining", "5").splitlines()[-1])
    assert (printed["error_rate"], printed["remaining"]) == (1.0, 5)
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda _: create(stack).status_code, range(20)))
    assert sum(status >= 500 for status in statuses) == 5
    assert statuses.count(201) == 15
    assert json.loads(stack.manage("sandbox_faults").strip().splitlines()[-1])["remaining"] == 0


def test_on_postgresql_leads_land_and_unstorable_text_gets_400_not_500(stack):
    lead_id = "7d8e9f0a-1b2c-4d3e-8f4a-5b6c7d8e9f0a"
    assert create(stack, {**EXAMPLE, "id": lead_id}).status_code == 201
    assert create(stack, raw=b'{"source": "x", "email": "a@b.co", "notes": "nul \\u0000 here"}').status_code == 400
    assert create(stack, raw=b'{"source": "x\x00", "email": "a@b.co"}').status_code == 400
    rows = stack.sql("SELECT data->>'email' FROM sandbox_sandboxlead WHERE lead_id = %s", (lead_id,))
    assert rows == [("jack@gmail.com",)]
    log = stack.sql(
        "SELECT status, username, request_body FROM sandbox_sandboxrequest WHERE site = %s ORDER BY id DESC",
        (str(SITE),),
    )
    assert [status for status, *_ in log] == [400, 400, 201]
    assert PASSWORD not in json.dumps(log)
