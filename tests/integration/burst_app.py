"""A Celery app on the portal's settings with one task that records its arguments, for broker tests.

The worker and the publishers in `test_filesystem_broker.py` use it, so they exercise the
development default broker (partner_portal/broker.py) without a database.
"""

import os

from celery import Celery

import partner_portal  # noqa: F401  (as in every portal process: `filesystem://` is our transport)

app = Celery("burst_app")
app.config_from_object("django.conf:settings", namespace="CELERY")


@app.task(name="burst_app.record")
def record(publisher: int, n: int, pad: str) -> None:
    # One short append per task: O_APPEND keeps concurrent pool processes' lines whole.
    with open(os.environ["BURST_RECORD_FILE"], "a") as out:
        out.write(f"{publisher} {n}\n")


def publish(publisher: int, count: int) -> None:
    """Publish `count` record tasks, as a web process would (one message each, nothing waited for)."""
    pad = "x" * 1500  # about the size of a real task message, so each write takes a while
    for n in range(count):
        record.delay(publisher, n, pad)
