"""A 6,000-lead burst on `make run`'s embedded default (SQLite, the filesystem broker, honcho
over Procfile.dev, the demo partner wired to the sandbox): every lead is delivered and no
process dies. Before the engine and the broker fix, a burst like this killed the worker with
`Unrecoverable error: JSONDecodeError` and honcho took the whole portal down with it."""

import concurrent.futures
import re
import sqlite3
import uuid

import pytest
import requests

from tests.integration.embedded import embedded_env, honcho_start, manage
from tests.integration.servers import free_port, wait_for

pytestmark = pytest.mark.integration

LEADS = 6_000
CLIENTS = 8


@pytest.mark.timeout(900)
def test_a_6000_lead_burst_is_all_delivered_and_no_process_dies(tmp_path):
    port = free_port()
    # A call that fails (the sandbox shares gunicorn with 8 pushing clients) is retried in
    # seconds, not the production minute, so the test does not wait on the schedule.
    env = embedded_env(tmp_path / "var", port, DELIVERY_RETRY_BASE_SECONDS="2")
    manage(env, tmp_path, "migrate", "--noinput")
    demo = manage(env, tmp_path, "demo_setup")
    key_id, secret = re.search(r"user:password\): (\S+):(\S+)", demo).groups()  # type: ignore[union-attr]
    site = re.search(r"Demo site: (\S+)", demo).group(1)  # type: ignore[union-attr]
    honcho = honcho_start(env, tmp_path, port)
    try:
        url = f"http://127.0.0.1:{port}/rest/sites/{site}/leads"

        def push_many(client: int) -> list[int]:
            with requests.Session() as session:
                session.auth = (key_id, secret)
                return [
                    session.post(
                        url, json={"id": str(uuid.uuid4()), "source": "Burst", "email": f"{client}-{n}@ex.com"}
                    ).status_code
                    for n in range(LEADS // CLIENTS)
                ]

        with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
            answers = [status for statuses in pool.map(push_many, range(CLIENTS)) for status in statuses]
        assert answers.count(201) == LEADS, {status: answers.count(status) for status in set(answers)}

        database = sqlite3.connect(tmp_path / "var" / "portal.sqlite3", timeout=30)

        def delivered() -> int:
            assert honcho.alive(), honcho.describe()
            return database.execute("SELECT count(*) FROM leads_delivery WHERE status = 'delivered'").fetchone()[0]

        wait_for(lambda: delivered() == LEADS, timeout=600, what=f"{LEADS:,} leads delivered", interval=2)
        statuses = dict(database.execute("SELECT status, count(*) FROM leads_delivery GROUP BY status").fetchall())
        assert statuses == {"delivered": LEADS}
        sandbox = database.execute("SELECT count(DISTINCT lead_id) FROM sandbox_sandboxrequest").fetchone()[0]
        assert sandbox == LEADS
    finally:
        honcho.stop()
    log = honcho.log_text()
    assert "Unrecoverable error" not in log and "exited with code" not in log, log[-3000:]
