"""The accept path on PostgreSQL, in production's shape (autocommit, no test transaction): a push
is at most two statements once its API key is known, and concurrent pushes of one lead lose nothing."""

import json
from pathlib import Path

import pytest

from tests.integration.conftest import postgres  # noqa: F401
from tests.leads.test_stats_postgresql import manage

pytestmark = pytest.mark.integration

PUSH_AND_COUNT = """
import base64, json, threading, uuid
from collections import Counter
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from grants.models import Site
from grants.services import api_key_issue, partner_create, site_grant
from leads.models import Delivery, Lead

partner = partner_create(name="PG", rg_username="pg", rg_password="pw", webhook_secret="ws")
site = uuid.uuid4()
site_grant(partner=partner, site_uuid=site, source=Site.Source.MANUAL)
key, secret = api_key_issue(partner=partner, label="pg")
auth = "Basic " + base64.b64encode(f"{key.key_id}:{secret}".encode()).decode()
lead_id = str(uuid.uuid4())

def push(client, path, body, method="post", **headers):
    return getattr(client, method)(
        f"/rest/sites/{site}/leads{path}", data=json.dumps(body), content_type="application/json", **headers
    )

client = Client(HTTP_AUTHORIZATION=auth)
push(client, "", {"source": "warm-up", "email": "warm@example.com"})  # the key is read, cached, touched
counts = {}
for name, path, body, method in [
    ("create", "", {"id": lead_id, "source": "PG", "email": "jack@example.com"}, "post"),
    ("create-again", "", {"id": lead_id, "source": "PG", "email": "jack@example.com", "phone": "808"}, "post"),
    ("update", f"/{lead_id}", {"notes": "call at 5"}, "patch"),
    ("activities", f"/{lead_id}/activities", [{"type": "visited"}], "post"),
    ("repeat", f"/{lead_id}/activities", [{"type": "visited"}], "post"),
]:
    with CaptureQueriesContext(connection) as queries:
        response = push(client, path, body, method)
    counts[name] = [len(queries), response.status_code]

statuses = Counter()
def hammer(n):
    mine = Client(HTTP_AUTHORIZATION=auth)
    for i in range(10):
        response = push(mine, f"/{lead_id}/activities", [{"type": "note", "description": f"{n}-{i}"}])
        statuses[response.status_code] += 1
    connection.close()

threads = [threading.Thread(target=hammer, args=(n,)) for n in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
from leads import planner
planner.STALE_ROWS = 10  # this test's few hundred rows stand for a burst
with connection.cursor() as cursor:
    cursor.execute("SELECT pg_stat_force_next_flush()")
    cursor.execute("SELECT 1")  # the flush happens as a statement ends
analysed = planner.statistics_refresh()
analysed_again = planner.statistics_refresh()
lead = Lead.objects.get(lead_id=lead_id)
sequences = list(Delivery.objects.filter(lead=lead).order_by("sequence").values_list("sequence", flat=True))
print(json.dumps({
    "counts": counts,
    "statuses": dict(statuses),
    "sequences": sequences,
    "last_sequence": lead.last_sequence,
    "activity_count": lead.activity_count,
    "analysed": [sorted(analysed), analysed_again],
    "notes": sorted(a["description"] for a in lead.data["activities"] if a["type"] == "note"),
}))
"""


def test_a_push_is_at_most_two_statements_and_concurrent_pushes_of_one_lead_lose_nothing(
    postgres,  # noqa: F811
    tmp_path: Path,
):
    url = postgres.create_database("accept_counts")
    manage(url, tmp_path, "migrate", "--noinput")

    result = json.loads(manage(url, tmp_path, "shell", "-c", PUSH_AND_COUNT).strip().splitlines()[-1])

    # A new lead's create is one statement; a second create of it misses that one and reads and
    # writes (3); updates and activities read and write (2); a repeat answers from the read
    # and the original row (2).
    assert result["counts"] == {
        "create": [1, 201],
        "create-again": [3, 201],
        "update": [2, 200],
        "activities": [2, 200],
        "repeat": [2, 200],
    }
    assert result["statuses"] == {"200": 80}
    assert result["sequences"] == list(range(1, 5 + 80))  # create twice, update, activities, then 80
    assert result["last_sequence"] == 4 + 80
    assert result["activity_count"] == 1 + 80
    assert result["notes"] == sorted(f"{n}-{i}" for n in range(8) for i in range(10))
    # The burst made the outbox tables' statistics stale; a pump starting now analyses them once.
    # (No attempts were made, so their table has nothing to analyse.)
    assert result["analysed"] == [["leads_delivery", "leads_lead"], []]


KEPT_CURSOR = """
import json
from django.db import connection
from partner_portal.database import prepared_cursor

def run(sql):
    with prepared_cursor() as cursor:
        cursor.execute(sql)
        return cursor.cursor, cursor.fetchall()

first, _ = run("SELECT 1")
again, _ = run("SELECT 1")
with prepared_cursor() as outer:
    outer.execute("SELECT generate_series(1, 3)")
    nested, inner_rows = run("SELECT 42")
    outer_rows = outer.fetchall()
connection.close()
after, after_rows = run("SELECT 7")
print(json.dumps({
    "reused": first is again,
    "nested_own": nested is not first and nested.closed,
    "rows": [outer_rows, inner_rows, after_rows],
    "new_after_close": after is not first and not after.closed,
    "prepared": sorted(n for n, in run("SELECT statement FROM pg_prepared_statements")[1]),
}))
"""


def test_the_hot_paths_cursor_is_kept_per_connection_and_never_shared_mid_read(
    postgres,  # noqa: F811
    tmp_path: Path,
):
    url = postgres.create_database("kept_cursor")

    result = json.loads(manage(url, tmp_path, "shell", "-c", KEPT_CURSOR).strip().splitlines()[-1])

    assert result["reused"] is True
    # A use inside another gets a cursor of its own, so the outer one's rows are still there.
    assert result["nested_own"] is True
    assert result["rows"] == [[[1], [2], [3]], [[42]], [[7]]]
    # A new connection gets a new cursor, whose statements are prepared on it.
    assert result["new_after_close"] is True
    assert "SELECT 7" in result["prepared"]
