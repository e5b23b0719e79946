"""Publishing a Celery task for work the database already holds: the one way every app does it.

A message only asks a worker to do what rows already say (a due delivery, a received callback, an
unfinished bulk retry, a due notification). So it goes out once the transaction that wrote those
rows has committed, and a broker that is down never fails the request or task that wrote them:
the publish is logged and given up, and whatever watches the rows (the sweeper, the requeue beat,
bulk_retries_resume, beat's schedule) asks again. A broker that does not answer holds a publish
for CELERY_BROKER_CONNECTION_TIMEOUT at most (CELERY_TASK_PUBLISH_RETRY is off).

Hints (`hint`, `hint_on_commit`) are publishes a process throttles (partner_portal.hints): one
per interval, one at a time, so a broker that does not answer holds one request thread, not all.
With eager tasks (the tests) a task runs inline, inside its publish: there is no later run for a
throttled hint to count on, and a task may hint again from inside the one running. `_throttled`
is the one place that knows; with eager tasks every hint runs.
"""

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from celery import Task
from django.conf import settings
from django.db import transaction

from partner_portal.hints import HintThrottle

logger = logging.getLogger(__name__)


def publish(task: "Task[..., Any]", *args: object, then: str) -> bool:
    """Publish `task(*args)` now; whether the broker took it. Never raises: a failure is logged,
    with `then` (who asks again for the work), and given up."""
    try:
        task.delay(*args)
    except Exception as exc:  # a broker's errors come in many types, and the work is stored anyway
        # The error's type only: its text can quote the broker URL, password included. The
        # arguments are ids (a task takes an id).
        call = f"{task.name}({', '.join(map(repr, args))})"
        logger.warning("could not publish %s (%s); %s", call, type(exc).__name__, then)
        return False
    return True


def publish_on_commit(task: "Task[..., Any]", *args: object, then: str) -> None:
    """`publish` once the current transaction has committed what the task should find (at once,
    outside a transaction)."""
    transaction.on_commit(partial(publish, task, *args, then=then))


def _throttled() -> bool:
    """Whether hints are throttled: not with eager tasks (see the module docstring)."""
    return not settings.CELERY_TASK_ALWAYS_EAGER


def hint(throttle: HintThrottle, task: "Task[[], Any]", *, interval: float, force: bool = False, then: str) -> bool:
    """Publish `task`, which looks for all the work there is, unless `throttle` says one went out
    less than `interval` ago (`force` ignores that) or is going out now; whether it was published.
    Never raises, as `publish`; a publish that failed does not count, so the next one goes at once."""
    throttled = _throttled()
    if throttled and not throttle.start(interval, force=force):
        return False
    succeeded = False
    try:
        succeeded = publish(task, then=then)
    finally:
        if throttled:
            throttle.done(succeeded=succeeded)
    return succeeded


def hint_on_commit(throttle: HintThrottle, ask: Callable[[], object]) -> None:
    """Call `ask` (which calls `hint`) once the current transaction has committed what it should find.

    Outside a transaction (an accepted push or callback) a hint published moments ago covers it,
    and nothing more is done: lock-free, and no setting read unless quiet. Inside one the question
    waits for the commit, which may come after the work that hint started has ended.
    """
    if throttle.quiet() and _throttled() and not transaction.get_connection().in_atomic_block:
        return
    transaction.on_commit(ask)


def hint_interval(interval: float) -> float:
    """How long a hint covers the work stored after it: `interval`, or nothing with eager tasks,
    where no hint is throttled (so a run started by a hint need not linger for throttled ones)."""
    return interval if _throttled() else 0.0
