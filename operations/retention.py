"""Retention: stored bodies older than their rule's age are pruned, the rows they belong to kept.

Three rules, each an age setting (0 keeps bodies forever):

    attempt_bodies   DeliveryAttempt.request_body and response_body  RETENTION_ATTEMPT_BODY_DAYS
                     (and response_headers, emptied)
    callback_bodies  WebhookEvent.body, once processed or set aside  RETENTION_CALLBACK_BODY_DAYS
    grant_emails     GrantEmail.raw, once granted or decided by staff RETENTION_GRANT_EMAIL_DAYS

A pruned body is replaced by a short note saying so ("(pruned after 30 days)"), which the lead's
page, its API document, the callback and grant email pages show where the body was, and the
row's `*_pruned_at` is set. Everything else stays: status codes, errors, timing, outcome,
digests, sizes, action, site, lead id, what a grant email's parser read. So history reads as
before, minus the bytes.

The prune never holds a long lock: it reads the next RETENTION_BATCH_SIZE rows to prune in
(time, id) order along an index (a read, no lock), then updates exactly those rows by primary
key in one statement, its own short transaction, and so on. New attempts, callbacks and pushes
touch other rows and never wait for it (bench/prune.py measures this at 3,000,000 attempts).
Each rule remembers how far it got (PruneMark), so an hourly run reads only what aged since.
"""

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Optional

from django.conf import settings
from django.db import connection
from django.db.models import Model, Q, QuerySet
from django.utils import timezone
from prometheus_client import Counter

from grants.models import GrantEmail, WebhookEvent
from leads.models import DeliveryAttempt
from operations.models import PruneMark

logger = logging.getLogger(__name__)

BODIES_PRUNED = Counter("portal_bodies_pruned", "Stored bodies pruned by the retention rules, by rule.", ["rule"])

# A run starts this long before where the last one finished: a row written a little late with an
# earlier time (a callback still in flight then, clocks of two workers) is still found.
MARK_MARGIN = timedelta(days=1)
# A long run saves its progress this often (seconds).
MARK_INTERVAL = 5.0


@dataclass(frozen=True)
class Rule:
    name: str
    what: str  # how people call these bodies
    setting: str  # the age setting, in days
    model: type[Model]
    time_field: str  # the row's age is measured from this
    pruned_field: str
    body_fields: tuple[str, ...]
    binary: bool
    # Rows of each partition are read in (time, id) order along an index whose leading columns
    # the partition fixes: a keyset walk, so each batch reads only its own rows.
    partitions: tuple[Q, ...]
    # A rule whose rows cannot become prunable after their time has passed (no "waiting for review")
    # remembers how far it got; the others read from their oldest row each time.
    remembers: bool = True
    # Fields emptied with the bodies, as (name, empty value): no note fits a JSON field, so the
    # page reads the body's note and `pruned_field` to say why they are empty.
    emptied_fields: tuple[tuple[str, Any], ...] = ()

    @property
    def days(self) -> int:
        days: int = getattr(settings, self.setting)
        return days

    def cutoff(self, now: datetime) -> Optional[datetime]:
        """Rows older than this have their bodies pruned; None when the rule keeps them forever."""
        return now - timedelta(days=self.days) if self.days > 0 else None

    def note(self) -> str:
        """What a pruned body says instead."""
        return f"(pruned after {self.days} days)"

    def pending(self, partition: Q, cutoff: datetime, start: Optional[datetime]) -> QuerySet[Any]:
        """Rows of the partition still to prune, oldest first."""
        rows = self.model._default_manager.filter(partition, **{f"{self.time_field}__lt": cutoff})
        if start is not None:
            rows = rows.filter(**{f"{self.time_field}__gte": start})
        return rows.filter(**{f"{self.pruned_field}__isnull": True}).order_by(self.time_field, "pk")


RULES = (
    Rule(
        name="attempt_bodies",
        what="attempt request and response bodies",
        setting="RETENTION_ATTEMPT_BODY_DAYS",
        model=DeliveryAttempt,
        time_field="started",
        pruned_field="bodies_pruned_at",
        body_fields=("request_body", "response_body"),
        binary=False,
        emptied_fields=(("response_headers", {}),),
        # Index attempt_window (started, ...). An attempt left "started" that long ago was
        # interrupted: it is pruned too.
        partitions=(Q(),),
    ),
    Rule(
        name="callback_bodies",
        what="raw callbacks",
        setting="RETENTION_CALLBACK_BODY_DAYS",
        model=WebhookEvent,
        time_field="received_at",
        pruned_field="body_pruned_at",
        body_fields=("body",),
        binary=True,
        # Index webhook_event_state_received (state, received_at). Never a callback waiting to be
        # processed or being processed: a worker still reads its body.
        partitions=tuple(
            Q(state=state)
            for state in (
                WebhookEvent.State.PROCESSED,
                WebhookEvent.State.IGNORED,
                WebhookEvent.State.FAILED,
                WebhookEvent.State.INVALID,
            )
        ),
    ),
    Rule(
        name="grant_emails",
        what="raw grant emails",
        setting="RETENTION_GRANT_EMAIL_DAYS",
        model=GrantEmail,
        time_field="received_at",
        pruned_field="raw_pruned_at",
        body_fields=("raw",),
        binary=True,
        # Index grant_email_status_received (status, -received_at). Never a message waiting for
        # review: staff read it to decide. One decided later is pruned then, hence no mark.
        partitions=tuple(
            Q(status=status)
            for status in (GrantEmail.Status.GRANTED, GrantEmail.Status.RESOLVED, GrantEmail.Status.DISMISSED)
        ),
        remembers=False,
    ),
)


@dataclass
class PruneResult:
    """What one rule did in one run (or, for a dry run, would do)."""

    rule: Rule
    cutoff: Optional[datetime]
    rows: int = 0
    batches: int = 0
    seconds: float = 0.0
    longest_batch_ms: float = 0.0  # the longest UPDATE: the longest any row lock was held
    finished: bool = True  # False when the time budget ran out first

    def describe(self, *, dry_run: bool = False) -> str:
        if self.cutoff is None:
            return f"{self.rule.what}: kept forever ({self.rule.setting}=0)"
        older = f"older than {self.rule.days} days (before {self.cutoff:%Y-%m-%d %H:%M} UTC)"
        if dry_run:
            return f"{self.rule.what}: {self.rows:,} {older} would be pruned"
        if not self.rows and self.finished:
            return f"{self.rule.what}: nothing {older} left to prune"
        rate = self.rows / self.seconds if self.seconds else 0.0
        return (
            f"{self.rule.what}: pruned {self.rows:,} {older} in {self.batches:,} batches, {self.seconds:.1f} s "
            f"({rate:,.0f} rows/s), longest batch {self.longest_batch_ms:.0f} ms"
            + ("" if self.finished else "; time ran out, the rest is for the next run")
        )


class _Budget:
    def __init__(self, seconds: Optional[float]) -> None:
        self.deadline = None if seconds is None else time.monotonic() + seconds

    def left(self) -> bool:
        return self.deadline is None or time.monotonic() < self.deadline


def bodies_prune(
    *,
    now: Optional[datetime] = None,
    batch_size: Optional[int] = None,
    budget_seconds: Optional[float] = None,
    rules: tuple[Rule, ...] = RULES,
) -> list[PruneResult]:
    """Prune every rule's bodies older than its age, a batch at a time, until done or until
    `budget_seconds` have passed (checked between batches). One result per rule."""
    now = now or timezone.now()
    budget = _Budget(budget_seconds)
    batch = _batch_size(batch_size)
    results = []
    for rule in rules:
        result = PruneResult(rule, rule.cutoff(now))
        if result.cutoff is not None:
            _rule_prune(result, now=now, batch=batch, budget=budget)
        results.append(result)
        if result.rows:
            logger.info(
                "retention: %s",
                result.describe(),
                extra={"rule": rule.name, "pruned": result.rows, "longest_batch_ms": round(result.longest_batch_ms)},
            )
    return results


def bodies_prune_plan(*, now: Optional[datetime] = None, rules: tuple[Rule, ...] = RULES) -> list[PruneResult]:
    """What `bodies_prune` would prune now (counted, nothing changed)."""
    now = now or timezone.now()
    results = []
    for rule in rules:
        result = PruneResult(rule, rule.cutoff(now))
        if result.cutoff is not None:
            start = _start(rule)
            result.rows = sum(rule.pending(partition, result.cutoff, start).count() for partition in rule.partitions)
        results.append(result)
    return results


def _batch_size(asked: Optional[int]) -> int:
    batch = asked or settings.RETENTION_BATCH_SIZE
    # SQLite refuses a statement with more parameters than this (999 in Django's reckoning).
    limit = connection.features.max_query_params
    return min(batch, limit - 10) if limit else batch


def _start(rule: Rule) -> Optional[datetime]:
    if not rule.remembers:
        return None
    reached = PruneMark.objects.filter(rule=rule.name).values_list("reached", flat=True).first()
    return reached - MARK_MARGIN if reached else None


def _rule_prune(result: PruneResult, *, now: datetime, batch: int, budget: _Budget) -> None:
    rule, cutoff = result.rule, result.cutoff
    assert cutoff is not None
    start = _start(rule)
    started = time.monotonic()
    note: Any = rule.note().encode() if rule.binary else rule.note()
    changes = {**dict.fromkeys(rule.body_fields, note), **dict(rule.emptied_fields), rule.pruned_field: now}
    single = len(rule.partitions) == 1
    next_mark = time.monotonic() + MARK_INTERVAL
    for partition in rule.partitions:
        for ids, last_time in _batches(rule, partition, cutoff, start, batch):
            if not budget.left():
                result.finished = False
                break
            began = time.monotonic()
            # The pruned check again: a concurrent prune may have taken some of these meanwhile.
            pruned = rule.model._default_manager.filter(pk__in=ids, **{f"{rule.pruned_field}__isnull": True})
            changed = pruned.update(**changes)
            result.longest_batch_ms = max(result.longest_batch_ms, (time.monotonic() - began) * 1000)
            result.rows += changed
            result.batches += 1
            BODIES_PRUNED.labels(rule.name).inc(changed)
            if single and rule.remembers and time.monotonic() >= next_mark:
                # Every row older than this batch's last is done: the next run starts there, also
                # when this one's budget runs out.
                _mark(rule, last_time)
                next_mark = time.monotonic() + MARK_INTERVAL
        if not result.finished:
            break
    if result.finished and rule.remembers:
        _mark(rule, cutoff)
    result.seconds = time.monotonic() - started


def _batches(
    rule: Rule, partition: Q, cutoff: datetime, start: Optional[datetime], batch: int
) -> Iterator[tuple[list[int], datetime]]:
    """The ids of the partition's rows to prune, `batch` at a time, in (time, id) order, and the
    time of each batch's last row."""
    after: Optional[tuple[int, datetime]] = None  # (id, time) of the last row read
    while True:
        rows = rule.pending(partition, cutoff, start)
        if after is not None:
            pk, at = after
            # The plain `>=` bound is redundant but lets the database start its index range there.
            rows = rows.filter(
                Q(**{f"{rule.time_field}__gt": at}) | Q(**{rule.time_field: at, "pk__gt": pk}),
                **{f"{rule.time_field}__gte": at},
            )
        page = list(rows.values_list("pk", rule.time_field)[:batch])
        if not page:
            return
        after = page[-1]
        yield [pk for pk, _ in page], after[1]
        if len(page) < batch:
            return


def _mark(rule: Rule, reached: datetime) -> None:
    """Move the rule's mark forward to `reached` (never back: another prune may be further on)."""
    moved = PruneMark.objects.filter(rule=rule.name, reached__lt=reached).update(
        reached=reached, updated=timezone.now()
    )
    if not moved:
        PruneMark.objects.get_or_create(rule=rule.name, defaults={"reached": reached})
