"""A web worker is readied before it accepts (gunicorn.conf.py's `post_worker_init`): the views
imported and Celery's tasks and producers built, no database connection left open on gunicorn's main
thread, and a database that is down at boot only logged, never fatal."""

import json
import subprocess
import sys
from pathlib import Path

from tests.production import embedded_env, production_env

REPO = Path(__file__).resolve().parent.parent

# gunicorn's hook run as gunicorn runs it, in a fresh process after the app is loaded; what it
# readied and left open is printed as JSON, before and after. The checks themselves import and
# build nothing.
WORKER_INIT = """
import json, runpy, sys
from django.core.wsgi import get_wsgi_application
get_wsgi_application()
from django.db import connections
from partner_portal.celery import app

def readied():
    return {
        "views": "leads.api.push" in sys.modules and "grants.webhooks" in sys.modules,
        "tasks registered": app.finalized,
        "producer pool": app.amqp._producer_pool is not None,
    }

before = readied()
runpy.run_path("gunicorn.conf.py")["post_worker_init"](None)
print(json.dumps({"before": before, "after": readied(), "open": connections["default"].connection is not None}))
"""


def run_worker_init(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**env, "DJANGO_SETTINGS_MODULE": "partner_portal.settings"}
    return subprocess.run(
        [sys.executable, "-c", WORKER_INIT], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


def test_a_web_worker_readies_its_views_and_celery_producers_before_it_accepts(tmp_path):
    env = embedded_env(tmp_path)  # as `make run` loads it
    result = run_worker_init(env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert not any(report["before"].values()), report  # else the hook would prove nothing
    assert all(report["after"].values()), report
    assert report["open"] is False  # gunicorn's main thread never serves: no connection kept
    assert "warm-up incomplete" not in result.stderr


def test_a_database_down_at_boot_leaves_the_worker_starting_with_a_warning(tmp_path):
    env = production_env(tmp_path, DATABASE_URL="postgres://portal:secret@127.0.0.1:1/portal")
    result = run_worker_init(env)
    assert result.returncode == 0, result.stderr
    assert "web worker warm-up incomplete" in result.stderr
    assert "secret@" not in result.stderr  # the warning's traceback names no password
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["after"]["views"] is True  # what needs no database was still done
