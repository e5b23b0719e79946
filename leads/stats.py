"""The overview's numbers: delivery attempts in a time window by hour and outcome, the success
rate, latency percentiles, the top failure reasons, held deliveries by site, the latest callbacks;
and the leads accepted in the window by their status now (the eventual delivery rate, overall
and per site), the backlog of due deliveries.

The attempt numbers come two ways. The overview reads the hourly rollup (`*_from_rollup`,
leads.rollup): a few rows per hour whatever the traffic, percentiles estimated from duration
buckets. The functions over an attempts QuerySet count the attempts themselves, exactly, on the
`attempt_window` index: they define what the rollup must equal, and its tests compare the two.
The failure reasons' retry links (`retryable_by_reason`) stay on the window's final attempts:
they need each delivery's status now, and final attempts are few.

Every query is bounded by the window or by a LIMIT. `partners` scopes each function: a QuerySet
of the partners counted, or None for all of them (a superuser's view, which saves the join
through delivery and lead).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Optional

from django.db import models
from django.db.models import Count, F, Func, IntegerField, Max, Q, QuerySet, Sum
from django.db.models.functions import RowNumber

from grants.models import Partner, Site, WebhookEvent
from leads import rollup
from leads.circuit import circuit_state
from leads.models import Delivery, DeliveryAttempt, Lead

Partners = Optional[QuerySet[Partner]]

# Window key -> (hours, label). Seven days is the longest: it bounds every query below.
WINDOWS = {"24h": (24, "Last 24 hours"), "7d": (7 * 24, "Last 7 days")}
DEFAULT_WINDOW = "24h"

# The chart's stacking order, bottom up. STARTED (in flight right now) has no outcome yet.
CHARTED_OUTCOMES = (
    DeliveryAttempt.Outcome.DELIVERED,
    DeliveryAttempt.Outcome.RETRY,
    DeliveryAttempt.Outcome.FAILED,
    DeliveryAttempt.Outcome.DEAD,
    DeliveryAttempt.Outcome.INTERRUPTED,
)
FAILURE_OUTCOMES = (DeliveryAttempt.Outcome.RETRY, DeliveryAttempt.Outcome.FAILED, DeliveryAttempt.Outcome.DEAD)
# Failures the engine will not retry on its own: the delivery is left failed or dead for a person.
FINAL_OUTCOMES = (DeliveryAttempt.Outcome.FAILED, DeliveryAttempt.Outcome.DEAD)
# Deliveries left for a person (DeliveryQuerySet.needing_a_human; the bulk retry's candidates).
_NEEDING_A_HUMAN = (Delivery.Status.FAILED, Delivery.Status.DEAD)
# The longest window: the leads list's failed-attempt filter is bounded by it too.
LONGEST_WINDOW = timedelta(hours=max(hours for hours, _ in WINDOWS.values()))


@dataclass(frozen=True)
class Window:
    """Whole hours ending with the current one: [start, end)."""

    key: str
    label: str
    start: datetime
    end: datetime

    def hours(self) -> list[datetime]:
        count = int((self.end - self.start) / timedelta(hours=1))
        return [self.start + timedelta(hours=n) for n in range(count)]


def window_ending(key: str, now: datetime) -> Window:
    """The window named `key` (an unknown key means the default) that ends with now's hour."""
    if key not in WINDOWS:
        key = DEFAULT_WINDOW
    hours, label = WINDOWS[key]
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return Window(key=key, label=label, start=end - timedelta(hours=hours), end=end)


def attempts_in(window: Window, *, partners: Partners) -> QuerySet[DeliveryAttempt]:
    attempts = DeliveryAttempt.objects.filter(started__gte=window.start, started__lt=window.end)
    if partners is not None:
        attempts = attempts.filter(delivery__lead__partner__in=partners)
    return attempts


@dataclass(frozen=True)
class Hour:
    start: datetime
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class EpochHour(Func):
    """Whole hours since 1970-01-01 UTC: a GROUP BY key each database computes natively.

    Django's TruncHour calls a Python function per row on SQLite, which made a 7-day window of
    350,000 attempts take 1.7 s to group; SQLite's own strftime takes 0.3 s.
    """

    arity = 1
    output_field = IntegerField()
    template = "FLOOR(EXTRACT(EPOCH FROM %(expressions)s) / 3600)"  # PostgreSQL

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        # '%%%%s' survives two rounds of %-formatting (the template's, then the cursor's) as '%s'.
        template = "(CAST(strftime('%%%%s', %(expressions)s) AS INTEGER) / 3600)"
        return self.as_sql(compiler, connection, template=template, **extra_context)


def attempts_by_hour(attempts: QuerySet[DeliveryAttempt], window: Window) -> list[Hour]:
    """Every hour of the window, oldest first, with its attempt count per outcome (zeros included)."""
    rows = (
        attempts.annotate(hour=EpochHour("started"))
        .values("hour", "outcome")
        .annotate(n=Count("id"))
        .order_by()  # no Meta.ordering columns in the GROUP BY
    )
    counts: dict[datetime, dict[str, int]] = {}
    for row in rows:
        hour = datetime.fromtimestamp(int(row["hour"]) * 3600, tz=UTC)
        counts.setdefault(hour, {})[row["outcome"]] = row["n"]
    return [Hour(start=hour, counts=counts.get(hour, {})) for hour in window.hours()]


def attempts_by_hour_from_rollup(window: Window, *, partners: Partners) -> list[Hour]:
    """`attempts_by_hour` of the window's finished attempts, from the rollup (in-flight attempts,
    outcome STARTED, are counted once they finish)."""
    rows = (
        rollup.hours_in(window.start, window.end, partners=partners)
        .values("hour", "outcome")
        .annotate(n=Sum("attempts"))
    )
    counts: dict[datetime, dict[str, int]] = {}
    for row in rows:
        if row["n"]:
            counts.setdefault(row["hour"], {})[row["outcome"]] = row["n"]
    return [Hour(start=hour, counts=counts.get(hour, {})) for hour in window.hours()]


@dataclass(frozen=True)
class SuccessRate:
    delivered: int
    finished: int

    @property
    def percent(self) -> Optional[float]:
        """Delivered attempts as a share of finished ones; None when nothing finished."""
        if not self.finished:
            return None
        return round(100 * self.delivered / self.finished, 1)


def success_rate(hours: Sequence[Hour]) -> SuccessRate:
    """From `attempts_by_hour`'s rows, so the page pays for one grouping query, not two."""
    delivered = sum(hour.counts.get(DeliveryAttempt.Outcome.DELIVERED, 0) for hour in hours)
    finished = sum(
        count for hour in hours for outcome, count in hour.counts.items() if outcome != DeliveryAttempt.Outcome.STARTED
    )
    return SuccessRate(delivered=delivered, finished=finished)


@dataclass(frozen=True)
class Latency:
    count: int
    median_ms: Optional[int]
    p95_ms: Optional[int]
    estimated: bool = False  # read from duration buckets (`latency_from_rollup`), not ranked exactly


def latency(attempts: QuerySet[DeliveryAttempt]) -> Latency:
    """Median and 95th percentile of the attempts' durations (nearest rank).

    One COUNT, then one query that numbers the durations in order (ROW_NUMBER over the window's
    rows, read from the `attempt_window` index) and returns just the two ranks asked for: the
    database sorts once, and Python never sees the durations. The same SQL runs on SQLite and
    PostgreSQL, so the tests check what production runs.
    """
    timed = attempts.filter(duration_ms__isnull=False)
    count = timed.count()
    if not count:
        return Latency(count=0, median_ms=None, p95_ms=None)
    median, p95 = (max(1, math.ceil(percent / 100 * count)) for percent in (50, 95))
    ranked = (
        timed.order_by()
        .annotate(rank=models.Window(RowNumber(), order_by=F("duration_ms").asc()))
        .filter(rank__in=[median, p95])
        .values_list("rank", "duration_ms")
    )
    by_rank = dict(ranked)
    return Latency(count=count, median_ms=by_rank[median], p95_ms=by_rank[p95])


def latency_from_rollup(window: Window, *, partners: Partners) -> Latency:
    """`latency`'s median and 95th percentile, estimated from the rollup's duration buckets in one
    query (leads.rollup.Histogram: within the bucket that holds the rank, linearly)."""
    sums = rollup.hours_in(window.start, window.end, partners=partners).aggregate(
        timed=Sum("timed"),
        max_ms=Max("duration_ms_max"),
        **{column: Sum(column) for column in rollup.BUCKET_COLUMNS},
    )
    histogram = rollup.Histogram(
        count=sums["timed"] or 0,
        below=[sums[column] or 0 for column in rollup.BUCKET_COLUMNS],
        max_ms=sums["max_ms"] or 0,
    )
    return Latency(
        count=histogram.count, median_ms=histogram.quantile(50), p95_ms=histogram.quantile(95), estimated=True
    )


@dataclass(frozen=True)
class FailureReason:
    status: Optional[int]
    error: str
    count: int
    last_seen: datetime
    final: int = 0  # of `count`, the attempts that left their delivery failed or dead (FINAL_OUTCOMES)

    @property
    def retried_automatically(self) -> bool:
        """Every one of these attempts was followed by an automatic retry: none needed a person."""
        return self.final == 0

    def matching(self) -> Q:
        """The attempts of this reason, as a filter on DeliveryAttempt."""
        if self.status is None:
            return Q(response_status__isnull=True, error=self.error)
        return Q(response_status=self.status, error=self.error)


def failure_reasons(attempts: QuerySet[DeliveryAttempt], *, limit: int = 8) -> list[FailureReason]:
    """Failed attempts grouped by RG's status and the error summary, most frequent first.

    The summaries group well because leads.realgeeks writes them from RG's message, not the request.
    """
    rows = (
        attempts.filter(outcome__in=FAILURE_OUTCOMES)
        .values("response_status", "error")
        .annotate(n=Count("id"), last=Max("started"), final=Count("id", filter=Q(outcome__in=FINAL_OUTCOMES)))
        .order_by("-n", "-last", "error")[:limit]
    )
    return [
        FailureReason(
            status=row["response_status"], error=row["error"], count=row["n"], last_seen=row["last"], final=row["final"]
        )
        for row in rows
    ]


def failure_reasons_from_rollup(window: Window, *, partners: Partners, limit: int = 8) -> list[FailureReason]:
    """`failure_reasons` of the window, from the rollup: the same counts, exactly."""
    rows = (
        rollup.hours_in(window.start, window.end, partners=partners)
        .filter(outcome__in=FAILURE_OUTCOMES)
        .values("response_status", "error")
        .annotate(
            n=Sum("attempts"), last=Max("last_started"), final=Sum("attempts", filter=Q(outcome__in=FINAL_OUTCOMES))
        )
        .filter(n__gt=0)
        .order_by("-n", "-last", "error")[:limit]
    )
    return [
        FailureReason(
            status=row["response_status"] or None,  # the rollup keeps "no answer" as 0
            error=row["error"],
            count=row["n"],
            last_seen=row["last"],
            final=row["final"] or 0,
        )
        for row in rows
    ]


def retryable_by_reason(
    attempts: QuerySet[DeliveryAttempt], reasons: Sequence[FailureReason]
) -> dict[tuple[Optional[int], str], dict[int, int]]:
    """For each reason (by status and error): partner id -> deliveries that one of its attempts
    left failed or dead and that still are (what a bulk retry of that status would pick up).

    Only the window's final attempts are read (FAILED or DEAD outcomes, few next to the RETRY
    ones), joined to their deliveries; reasons whose attempts were all retried are skipped.
    """
    matching = Q()
    for reason in reasons:
        if reason.final:
            matching |= reason.matching()
    if not matching:
        return {}
    rows = (
        attempts.filter(matching, outcome__in=FINAL_OUTCOMES, delivery__status__in=_NEEDING_A_HUMAN)
        .values("response_status", "error", "delivery__lead__partner")
        .annotate(n=Count("delivery", distinct=True))
        .order_by()
    )
    found: dict[tuple[Optional[int], str], dict[int, int]] = {}
    for row in rows:
        found.setdefault((row["response_status"], row["error"]), {})[row["delivery__lead__partner"]] = row["n"]
    return found


def lead_ids_with_failed_attempts(
    *, status: Optional[int], error: Optional[str], start: datetime, end: datetime
) -> QuerySet[DeliveryAttempt, Any]:
    """The ids (a subquery) of leads with a failed attempt started in [start, end) that RG
    answered `status` (0: no HTTP answer; None: any) with this error summary (None: any): the
    leads behind one of the overview's failure reasons.

    The window keeps it on the `attempt_window` index: callers bound it to LONGEST_WINDOW.
    """
    attempts = DeliveryAttempt.objects.filter(started__gte=start, started__lt=end, outcome__in=FAILURE_OUTCOMES)
    if status == 0:
        attempts = attempts.filter(response_status__isnull=True)
    elif status is not None:
        attempts = attempts.filter(response_status=status)
    if error is not None:
        attempts = attempts.filter(error=error)
    return attempts.order_by().values("delivery__lead_id")


@dataclass(frozen=True)
class HeldSite:
    site: Site
    count: int


def _held(partners: Partners) -> QuerySet[Delivery]:
    held = Delivery.objects.filter(status=Delivery.Status.HELD)
    if partners is not None:
        held = held.filter(lead__partner__in=partners)
    return held


def held_by_site(*, partners: Partners, limit: int = 10) -> list[HeldSite]:
    """Sites with held deliveries, the most held first."""
    rows = list(_held(partners).values("lead__site").annotate(n=Count("id")).order_by("-n", "lead__site")[:limit])
    sites = Site.objects.select_related("partner").in_bulk([row["lead__site"] for row in rows])
    return [HeldSite(site=sites[row["lead__site"]], count=row["n"]) for row in rows]


def held_total(*, partners: Partners) -> int:
    return _held(partners).count()


def held_counts_by_site(*, partner: Partner) -> dict[int, int]:
    """Held deliveries per site id, for one partner's sites pages (sites without any are absent)."""
    rows = _held(None).filter(lead__partner=partner).values("lead__site").annotate(n=Count("id")).order_by()
    return {row["lead__site"]: row["n"] for row in rows}


def needing_a_human(*, partners: Partners) -> int:
    """Failed and dead deliveries: the bulk retry's candidates."""
    deliveries = Delivery.objects.needing_a_human()
    if partners is not None:
        deliveries = deliveries.filter(lead__partner__in=partners)
    return deliveries.count()


def recent_callbacks(*, partners: Partners, limit: int = 8) -> list[WebhookEvent]:
    events = WebhookEvent.objects.select_related("partner").defer("body", "headers")
    if partners is not None:
        events = events.filter(partner__in=partners)
    return list(events.order_by("-received_at", "-id")[:limit])


@dataclass(frozen=True)
class LeadOutcomes:
    """Leads accepted (created) in a window, counted by their status now.

    The eventual delivery rate is `delivered / total`: of the leads accepted in the window, the
    share whose deliveries have all reached RG by now, however many attempts that took. Leads
    still in progress, held for a grant, failed or cancelled count against it, so a fresh window
    reads a little low until its last leads go out.
    """

    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def delivered(self) -> int:
        return self.counts.get(Lead.Status.DELIVERED, 0)

    @property
    def in_progress(self) -> int:
        return self.counts.get(Lead.Status.PENDING, 0) + self.counts.get(Lead.Status.RETRYING, 0)

    @property
    def held(self) -> int:
        return self.counts.get(Lead.Status.HELD, 0)

    @property
    def failed(self) -> int:
        return self.counts.get(Lead.Status.FAILED, 0)

    @property
    def cancelled(self) -> int:
        return self.counts.get(Lead.Status.CANCELLED, 0)

    @property
    def percent(self) -> Optional[float]:
        """Delivered leads as a share of those accepted; None when none were."""
        if not self.total:
            return None
        return round(100 * self.delivered / self.total, 1)


def leads_in(window: Window, *, partners: Partners) -> QuerySet[Lead]:
    """Leads accepted in the window: a range on the (partner, created) or (created) index."""
    leads = Lead.objects.filter(created__gte=window.start, created__lt=window.end)
    if partners is not None:
        leads = leads.filter(partner__in=partners)
    return leads


def lead_outcomes_by_site(leads: QuerySet[Lead]) -> dict[int, LeadOutcomes]:
    """Site id -> its leads' outcomes, in one grouping query (the window's leads, read once)."""
    counts: dict[int, dict[str, int]] = {}
    for row in leads.values("site_id", "status").annotate(n=Count("id")).order_by():
        counts.setdefault(row["site_id"], {})[row["status"]] = row["n"]
    return {site_id: LeadOutcomes(counts=by_status) for site_id, by_status in counts.items()}


def lead_outcomes(by_site: dict[int, LeadOutcomes]) -> LeadOutcomes:
    """All sites' outcomes together (from `lead_outcomes_by_site`, so no second query)."""
    total: dict[str, int] = {}
    for outcomes in by_site.values():
        for status, n in outcomes.counts.items():
            total[status] = total.get(status, 0) + n
    return LeadOutcomes(counts=total)


@dataclass(frozen=True)
class SiteHealth:
    site: Site
    outcomes: LeadOutcomes
    circuit: dict[str, Any]
    last_error: str


# Lead statuses whose `last_error` is still standing (a delivered lead's error was cleared).
_ERRING = (Lead.Status.FAILED, Lead.Status.RETRYING)


def _last_errors(site_ids: Sequence[int], window: Window) -> dict[int, str]:
    """Site id -> the newest error still standing on one of its leads accepted in the window, in
    one query on the (site, created) index: the window's erring leads of these sites, numbered
    newest first per site, the first of each returned."""
    newest_first = [F("created").desc(), F("id").desc()]
    rows = (
        Lead.objects.filter(site_id__in=site_ids, status__in=_ERRING, created__gte=window.start, created__lt=window.end)
        .exclude(last_error="")
        .order_by()
        .annotate(rank=models.Window(RowNumber(), partition_by=[F("site_id")], order_by=newest_first))
        .filter(rank=1)
        .values_list("site_id", "last_error")
    )
    return dict(rows)


def site_health(
    window: Window, *, partners: Partners, by_site: dict[int, LeadOutcomes], now: datetime, limit: int = 10
) -> tuple[list[SiteHealth], int]:
    """The worst sites first, at most `limit`, and how many sites there were to rank.

    The sites ranked are those with leads accepted in the window and those whose circuit is open.
    Worst: circuit open or probing, then the lowest eventual delivery rate, then the most leads
    not delivered. Costs the grouping already done for `by_site`, one query for the open circuits,
    one for the shown sites and one for their last errors.
    """
    open_circuits = Site.objects.filter(circuit_opened_at__isnull=False)
    if partners is not None:
        open_circuits = open_circuits.filter(partner__in=partners)
    tripped = set(open_circuits.values_list("pk", flat=True))
    empty = LeadOutcomes()

    def badness(site_id: int) -> tuple[int, float, int, int]:
        outcomes = by_site.get(site_id, empty)
        percent = outcomes.percent
        return (
            0 if site_id in tripped else 1,
            101.0 if percent is None else percent,
            -(outcomes.total - outcomes.delivered),
            site_id,
        )

    ranked = sorted(set(by_site) | tripped, key=badness)
    shown = ranked[:limit]
    sites = Site.objects.select_related("partner").in_bulk(shown)
    erring = [
        site_id for site_id in shown if site_id in by_site and (by_site[site_id].failed or by_site[site_id].in_progress)
    ]
    errors = _last_errors(erring, window) if erring else {}
    rows = []
    for site_id in shown:
        site = sites[site_id]
        outcomes = by_site.get(site_id, empty)
        circuit = circuit_state(site, now=now)
        error = errors.get(site_id, "")
        rows.append(
            SiteHealth(site=site, outcomes=outcomes, circuit=circuit, last_error=error or circuit["last_error"])
        )
    return rows, len(ranked)


@dataclass(frozen=True)
class Backlog:
    """Deliveries due now: pending or retrying with their next attempt time passed."""

    due: int
    capped: bool  # more than `due` are due; counting stopped there
    oldest_due_at: Optional[datetime]

    def oldest_seconds(self, now: datetime) -> Optional[int]:
        """How long the longest-waiting due delivery has been due, in whole seconds."""
        if self.oldest_due_at is None:
            return None
        return max(0, int((now - self.oldest_due_at).total_seconds()))


BACKLOG_COUNT_MAX = 10_000


def backlog(*, partners: Partners, now: datetime) -> Backlog:
    """On the `delivery_due` partial index (the sweeper's): a capped count and its first entry."""
    due = Delivery.objects.due(now).order_by()
    if partners is not None:
        due = due.filter(lead__partner__in=partners)
    count = due[: BACKLOG_COUNT_MAX + 1].count()
    oldest = due.order_by("next_attempt_at").values_list("next_attempt_at", flat=True).first()
    return Backlog(due=min(count, BACKLOG_COUNT_MAX), capped=count > BACKLOG_COUNT_MAX, oldest_due_at=oldest)
