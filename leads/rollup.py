"""The hourly rollup of finished attempts (leads.models.AttemptHour): kept current as outcomes are
recorded, rebuilt from the attempts on demand, read by the overview.

The overview's attempt numbers (the hourly chart, the attempt success rate, the duration
percentiles, the failure reasons) used to group every attempt of the window: their cost grew with
the attempt rate, 23 ms for one day at 16,000 attempts a day. The rollup holds one row per hour,
partner, outcome and failure reason, so a week is a few hundred rows whatever the traffic.

Upkeep: every place an attempt gets its final outcome adds it here in the same transaction, with
one multi-row `INSERT ... ON CONFLICT DO UPDATE` per batch, aggregated in Python first:

    the engine recording a batch         leads.delivery.deliveries_record
    a dead worker's attempts reaped      leads.delivery._interrupted_mark (outcome interrupted)
    an attempt saved whole by the ORM    the post_save receiver in leads.models

STARTED attempts (in flight, for seconds) are not counted until they finish. Durations are
counted in fixed buckets (DURATION_BUCKETS_MS), so percentiles read from here are estimates, as
Prometheus' histogram_quantile makes them.

Retention never prunes the rollup: it is small, and nothing deletes attempts either, so the
rollup equals a direct count of the attempts. `hours_rebuild` restores that equality wherever
something bypassed the upkeep (a bulk load, fixtures, a restore).
"""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Optional

from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import QuerySet
from django.utils.dateparse import parse_datetime

from leads.models import DURATION_BUCKETS_MS, AttemptHour, DeliveryAttempt, Lead

TABLE = AttemptHour._meta.db_table
BUCKET_COLUMNS = tuple(f"le_{bound}" for bound in DURATION_BUCKETS_MS)
KEY = ("hour", "partner_id", "outcome", "response_status", "error")
# Columns an upsert adds to, and those it keeps the larger of.
SUMMED = ("attempts", "timed", "duration_ms_sum", *BUCKET_COLUMNS)
LARGEST = ("last_started", "duration_ms_max")
COLUMNS = (*KEY, *SUMMED, *LARGEST)


@dataclass(frozen=True)
class Finished:
    """One attempt's final outcome, as the rollup counts it."""

    partner_id: int
    started: datetime
    outcome: str
    status: Optional[int]
    error: str
    duration_ms: Optional[int]
    # -1 takes back an attempt counted under an earlier outcome (an interrupted attempt whose
    # answer arrived after all: leads.delivery.deliveries_record).
    sign: int = 1


def hour_of(moment: datetime) -> datetime:
    """The first instant of the UTC hour `moment` falls in."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def attempts_count(finished: Iterable[Finished], *, using: str = "default") -> None:
    """Add the attempts to their hours: one statement for any number of them (none for none)."""
    rows: dict[tuple[datetime, int, str, int, str], dict[str, Any]] = {}
    for attempt in finished:
        key = (hour_of(attempt.started), attempt.partner_id, attempt.outcome, attempt.status or 0, attempt.error[:500])
        row = rows.get(key)
        if row is None:
            row = rows[key] = dict.fromkeys(SUMMED, 0) | {"last_started": attempt.started, "duration_ms_max": 0}
        row["attempts"] += attempt.sign
        row["last_started"] = max(row["last_started"], attempt.started)
        if attempt.duration_ms is not None:
            row["timed"] += attempt.sign
            row["duration_ms_sum"] += attempt.sign * attempt.duration_ms
            row["duration_ms_max"] = max(row["duration_ms_max"], attempt.duration_ms)
            for bound, column in zip(DURATION_BUCKETS_MS, BUCKET_COLUMNS, strict=True):
                if attempt.duration_ms <= bound:
                    row[column] += attempt.sign
    if not rows:
        return
    connection = connections[using]
    stamp = connection.ops.adapt_datetimefield_value
    values: list[Any] = []
    # In key order: concurrent batches then lock the rows they share in the same order (on
    # PostgreSQL an upsert locks its rows one by one), so two pumps never deadlock here.
    for (hour, partner_id, outcome, status, error), row in sorted(rows.items()):
        values.extend((stamp(hour), partner_id, outcome, status, error))
        values.extend(row[column] for column in SUMMED)
        values.extend((stamp(row["last_started"]), row["duration_ms_max"]))
    one = "(" + ", ".join(["%s"] * len(COLUMNS)) + ")"
    with connection.cursor() as cursor:
        cursor.execute(_upsert(f"VALUES {', '.join([one] * len(rows))}", adding=True), values)


def _upsert(source: str, *, adding: bool) -> str:
    """INSERT of COLUMNS from `source`; on a key already there, add to its row (`adding`) or
    replace its values (a rebuild). Valid on PostgreSQL and SQLite (3.24 and later) alike."""
    if adding:
        larger = "CASE WHEN excluded.{c} > {t}.{c} THEN excluded.{c} ELSE {t}.{c} END"
        updates = [f"{column} = {TABLE}.{column} + excluded.{column}" for column in SUMMED] + [
            f"{column} = {larger.format(c=column, t=TABLE)}" for column in LARGEST
        ]
    else:
        updates = [f"{column} = excluded.{column}" for column in (*SUMMED, *LARGEST)]
    # Only this module's constants are formatted in, never input.
    return (
        f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) {source} "
        f"ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET {', '.join(updates)}"
    )


def attempt_saved(attempt: DeliveryAttempt) -> None:
    """Count one attempt saved through the ORM with its final outcome (leads.models' receiver)."""
    partner_id = Lead.objects.filter(deliveries__pk=attempt.delivery_id).values_list("partner_id", flat=True).get()
    attempts_count([finished_from(attempt, partner_id=partner_id)])


def finished_from(attempt: DeliveryAttempt, *, partner_id: int) -> Finished:
    return Finished(
        partner_id=partner_id,
        started=attempt.started,
        outcome=attempt.outcome,
        status=attempt.response_status,
        error=attempt.error,
        duration_ms=attempt.duration_ms,
    )


def datetime_from_row(value: Any) -> datetime:
    """A datetime column read by a raw cursor: SQLite returns its stored text (naive UTC)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = parse_datetime(str(value))
    if parsed is None:
        raise ValueError(f"not a datetime: {value!r}")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _hour_sql(connection: BaseDatabaseWrapper, column: str) -> str:
    """SQL for the first instant of `column`'s UTC hour, stored as Django stores a datetime (so
    the upsert's key matches rows the engine wrote)."""
    if connection.vendor == "postgresql":
        return f"date_trunc('hour', {column} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
    # SQLite keeps datetimes as naive UTC text; '%%' reaches SQLite as '%'.
    return f"strftime('%%Y-%%m-%%d %%H:00:00', {column})"


def hours_rebuild(*, since: Optional[datetime] = None, using: str = "default") -> int:
    """Recompute the rollup from the attempts: every hour, or those from `since`'s hour on.

    One DELETE, then one INSERT ... SELECT ... GROUP BY over the attempts, in one transaction;
    returns the rows written. Pumps may keep recording meanwhile: on PostgreSQL an upsert that
    lands between the two statements is overwritten by the SELECT, which saw its attempts too.
    """
    connection = connections[using]
    start = hour_of(since) if since is not None else None
    buckets = ", ".join(f"SUM(CASE WHEN a.duration_ms <= {bound} THEN 1 ELSE 0 END)" for bound in DURATION_BUCKETS_MS)
    where = "a.outcome <> %s" + (" AND a.started >= %s" if start is not None else "")
    params: list[Any] = [DeliveryAttempt.Outcome.STARTED]
    if start is not None:
        params.append(connection.ops.adapt_datetimefield_value(start))
    # Columns in COLUMNS order: the key, then SUMMED, then LARGEST.
    select = (
        f"SELECT {_hour_sql(connection, 'a.started')}, l.partner_id, a.outcome, COALESCE(a.response_status, 0), "  # noqa: S608
        "a.error, COUNT(*), COUNT(a.duration_ms), COALESCE(SUM(a.duration_ms), 0), "
        f"{buckets}, MAX(a.started), COALESCE(MAX(a.duration_ms), 0) "
        "FROM leads_deliveryattempt a JOIN leads_delivery d ON d.id = a.delivery_id "
        f"JOIN leads_lead l ON l.id = d.lead_id WHERE {where} GROUP BY 1, 2, 3, 4, 5"
    )
    with transaction.atomic(using=using), connection.cursor() as cursor:
        stale = AttemptHour.objects.using(using).all()
        if start is not None:
            stale = stale.filter(hour__gte=start)
        stale.delete()
        cursor.execute(_upsert(select, adding=False), params)
        written = cursor.rowcount
        if connection.vendor == "postgresql" and start is None:
            # A table rewritten wholesale: give the planner its numbers now, not at autovacuum's pace.
            cursor.execute(f"ANALYZE {TABLE}")
    return int(written)


# ----------------------------------------------------------------------------- reading


def hours_in(start: datetime, end: datetime, *, partners: Optional[QuerySet[Any]]) -> QuerySet[AttemptHour]:
    """The rollup rows of [start, end), for `partners` (None: all): a range on the key's index."""
    rows = AttemptHour.objects.filter(hour__gte=start, hour__lt=end)
    if partners is not None:
        rows = rows.filter(partner__in=partners)
    return rows.order_by()


@dataclass(frozen=True)
class Histogram:
    """Cumulative bucket counts of the timed attempts (`below[i]`: at most DURATION_BUCKETS_MS[i])."""

    count: int
    below: Sequence[int]
    max_ms: int

    def quantile(self, percent: float) -> Optional[int]:
        """The nearest-rank percentile, estimated: the bucket holding that rank is found, then the
        value is interpolated linearly inside it (its upper end capped by the longest duration).
        A duration that sits on a bucket's bound and is the bucket's last comes out exact."""
        if not self.count:
            return None
        rank = max(1, math.ceil(percent / 100 * self.count))
        lower, counted = 0, 0
        for bound, below in zip((*DURATION_BUCKETS_MS, self.max_ms), (*self.below, self.count), strict=True):
            if below >= rank:
                upper = max(lower, min(bound, self.max_ms))
                in_bucket = below - counted
                return round(lower + (upper - lower) * (rank - counted) / in_bucket)
            lower, counted = bound, below
        return self.max_ms  # not reached: the last bucket holds every timed attempt
