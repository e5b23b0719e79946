"""The overview's queries on PostgreSQL: the hour buckets and the ranked percentiles are written
per database (leads.stats.EpochHour), so the same literal attempts must give the same numbers there."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# The integration fixtures, used here by name (they live in tests/integration/conftest.py).
from tests.integration.conftest import postgres  # noqa: F401

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

SEED_AND_MEASURE = """
import json, uuid
from grants.services import partner_create
from leads import stats
from tests.leads.test_stats import E422, E503, NOW, Seed, at

seed = Seed(partner_create(name="PG", rg_username="pg", rg_password="pw", webhook_secret="ws"), uuid.uuid4())
seed.attempt(at(3, 12, 59, 59), "delivered")
for n, duration in enumerate([120, 80, 400, 95, 2500, 130, 110, 100, 90, 105]):
    seed.attempt(at(4, 8, n), "delivered", duration_ms=duration)
for minute in range(3):
    seed.attempt(at(4, 10, minute), "retry", duration_ms=None, status=503, error=E503)
seed.attempt(at(4, 11, 5), "failed", duration_ms=None, status=422, error=E422)
window = stats.window_ending("24h", NOW)
attempts = stats.attempts_in(window, partners=None)
hours = stats.attempts_by_hour(attempts, window)
latency = stats.latency(attempts)
print(json.dumps({
    "hours": {f"{h.start:%d %H}": h.counts for h in hours if h.counts},
    "latency": [latency.count, latency.median_ms, latency.p95_ms],
    "reasons": [[r.status, r.count] for r in stats.failure_reasons(attempts)],
    "rate": stats.success_rate(hours).percent,
}))
"""


def manage(database_url: str, var_dir: Path, *args: str) -> str:
    env = {**os.environ, "DATABASE_URL": database_url, "PORTAL_VAR_DIR": str(var_dir), "LOG_LEVEL": "WARNING"}
    result = subprocess.run(
        [sys.executable, str(REPO / "manage.py"), *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_postgresql_gives_the_same_hours_percentiles_and_reasons(postgres, tmp_path):  # noqa: F811
    url = postgres.create_database("leads_stats")
    manage(url, tmp_path, "migrate", "--noinput")

    printed = json.loads(manage(url, tmp_path, "shell", "-c", SEED_AND_MEASURE).strip().splitlines()[-1])

    assert printed == {
        "hours": {"04 08": {"delivered": 10}, "04 10": {"retry": 3}, "04 11": {"failed": 1}},
        "latency": [10, 105, 2500],
        "reasons": [[503, 3], [422, 1]],
        "rate": 71.4,
    }
