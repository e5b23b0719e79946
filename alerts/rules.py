"""The alert rules: each looks at the current state and says what is wrong now, as findings.

A rule is a function of the time that reads a few rows through indexes and returns one
`Finding` per thing wrong; `alerts.incidents` turns findings into incidents (a finding that was
not there before opens one, an incident whose finding is gone recovers). Rules never look at
the delivery hot path's work in progress, only at what it left in the tables.

Each rule has its threshold setting (ALERTS_*, see settings.py and the README). All but the
worker heartbeat are per partner; that one is no partner's, and is evaluated by the watchdog in
the beat process (alerts.watchdog), because a check run by workers cannot notice that every
worker is gone.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Optional

from django.conf import settings
from django.db.models import Count, Exists, Max, Min, OuterRef

from alerts.models import Incident
from core.models import WorkerHeartbeat
from grants.models import GrantEmail, Site
from leads.models import Delivery

Key = tuple[Optional[int], str]


@dataclass(frozen=True)
class Finding:
    """One thing wrong: whose (None: no partner's), about what (`subject`, empty for the partner as
    a whole), and what to tell people. `details` is plain JSON; its `summary` is one line of text."""

    partner_id: Optional[int]
    subject: str
    title: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> Key:
        return (self.partner_id, self.subject)


def _stamp(moment: Optional[datetime]) -> Optional[str]:
    return moment.isoformat() if moment else None


def _minutes(since: datetime, now: datetime) -> int:
    return max(int((now - since).total_seconds() // 60), 0)


def deliveries_needing_a_human(now: datetime) -> list[Finding]:
    """Per partner: at least ALERTS_NEEDS_HUMAN_COUNT deliveries became failed (RG refused them) or
    dead (out of attempts) in the last ALERTS_NEEDS_HUMAN_HOURS and still are.

    Recovers when staff retry them (or they age out of the window). The `created` bound lets the
    database read the (status, created) index: a delivery fails or dies at most a held period or a
    whole retry schedule after it was accepted; one a person retried months later is missed.
    """
    since = now - timedelta(hours=settings.ALERTS_NEEDS_HUMAN_HOURS)
    longest_life = timedelta(
        hours=settings.DELIVERY_HELD_MAX_AGE_HOURS,
        seconds=settings.DELIVERY_RETRY_MAX_SECONDS * settings.DELIVERY_MAX_ATTEMPTS,
    )
    rows = (
        Delivery.objects.filter(
            status__in=[Delivery.Status.FAILED, Delivery.Status.DEAD],
            created__gte=since - longest_life,
            updated__gte=since,
        )
        .values("lead__partner")
        .annotate(count=Count("id"), newest=Max("updated"))
        .order_by()
    )
    findings = []
    for row in rows:
        if row["count"] < settings.ALERTS_NEEDS_HUMAN_COUNT:
            continue
        count = row["count"]
        findings.append(
            Finding(
                partner_id=row["lead__partner"],
                subject="",
                title=f"{count} deliver{'y' if count == 1 else 'ies'} failed or dead: a person must look",
                details={
                    "summary": f"{count} in the last {settings.ALERTS_NEEDS_HUMAN_HOURS:g} h, "
                    f"the latest at {row['newest']:%Y-%m-%d %H:%M} UTC. Retry or correct them on the dashboard.",
                    "count": count,
                    "latest_at": _stamp(row["newest"]),
                },
            )
        )
    return findings


def circuits_open(now: datetime) -> list[Finding]:
    """Per site: its delivery circuit has been open for ALERTS_CIRCUIT_OPEN_MINUTES or more (RG kept
    answering 5xx or not at all). Recovers when a probe succeeds or staff resume it."""
    cutoff = now - timedelta(minutes=settings.ALERTS_CIRCUIT_OPEN_MINUTES)
    sites = Site.objects.filter(circuit_opened_at__isnull=False, circuit_opened_at__lte=cutoff).select_related(
        "partner"
    )
    return [
        Finding(
            partner_id=site.partner_id,
            subject=str(site.site_uuid),
            title=f"Deliveries to site {site} paused: its circuit is open",
            details={
                "summary": f"Open since {site.circuit_opened_at:%Y-%m-%d %H:%M} UTC after "
                f"{site.circuit_failures} failures in a row; last: {site.circuit_last_error or 'no answer'}.",
                "site_uuid": str(site.site_uuid),
                "site_name": site.name,
                "opened_at": _stamp(site.circuit_opened_at),
                "consecutive_failures": site.circuit_failures,
                "last_error": site.circuit_last_error,
            },
        )
        for site in sites
    ]


def sites_losing_access(now: datetime) -> list[Finding]:
    """Per site: RG answered 401 (doubtful, until the site is active again), or the grant was
    revoked in the last ALERTS_SITE_REVOKED_HOURS (a revocation is final; it is told, then let go)."""
    revoked_since = now - timedelta(hours=settings.ALERTS_SITE_REVOKED_HOURS)
    sites = Site.objects.filter(status=Site.Status.DOUBTFUL) | Site.objects.filter(
        status=Site.Status.REVOKED, status_changed_at__gte=revoked_since
    )
    findings = []
    for site in sites:
        doubtful = site.status == Site.Status.DOUBTFUL
        findings.append(
            Finding(
                partner_id=site.partner_id,
                subject=str(site.site_uuid),
                title=f"Site {site} is doubtful: RG answered 401" if doubtful else f"Site {site} was revoked",
                details={
                    "summary": (
                        "Deliveries still go out; RG refuses them until the grant is confirmed."
                        if doubtful
                        else "Nothing more is sent to this site; its deliveries wait as held."
                    )
                    + f" Since {site.status_changed_at:%Y-%m-%d %H:%M} UTC.",
                    "site_uuid": str(site.site_uuid),
                    "site_name": site.name,
                    "status": site.status,
                    "since": _stamp(site.status_changed_at),
                },
            )
        )
    return findings


def backlog_late(now: datetime) -> list[Finding]:
    """Per partner: its oldest claimable delivery has been due for ALERTS_BACKLOG_MINUTES or more
    (workers are not keeping up, or not consuming).

    Claimable as the engine means it: pending or retrying, due, first of its lead's queue, to a
    site whose circuit is closed (an open circuit is its own incident). Read through the partial
    `delivery_due` index from its old end: in a healthy portal no row is that late.
    """
    cutoff = now - timedelta(minutes=settings.ALERTS_BACKLOG_MINUTES)
    blocked = Delivery.objects.filter(
        lead=OuterRef("lead"), sequence__lt=OuterRef("sequence"), status__in=Delivery.BLOCKING_STATUSES
    )
    rows = (
        Delivery.objects.due(cutoff)  # due ALERTS_BACKLOG_MINUTES ago or earlier
        .filter(lead__site__circuit_opened_at__isnull=True)
        .filter(~Exists(blocked))
        .values("lead__partner")
        .annotate(count=Count("id"), oldest=Min("next_attempt_at"))
        .order_by()
    )
    return [
        Finding(
            partner_id=row["lead__partner"],
            subject="",
            title=f"Deliveries are late: the oldest has been due for {_minutes(row['oldest'], now)} min",
            details={
                "summary": f"{row['count']} due for more than {settings.ALERTS_BACKLOG_MINUTES:g} min. "
                "Are the workers running and keeping up?",
                "count": row["count"],
                "oldest_due_at": _stamp(row["oldest"]),
                "minutes": _minutes(row["oldest"], now),
            },
        )
        for row in rows
    ]


def workers_silent(now: datetime) -> list[Finding]:
    """No partner's: no worker has recorded a heartbeat for ALERTS_HEARTBEAT_MINUTES (none ever
    counts as silent). Nothing is delivered meanwhile; the outbox keeps it all."""
    newest = WorkerHeartbeat.objects.aggregate(newest=Max("last_seen"))["newest"]
    if newest is not None and newest > now - timedelta(minutes=settings.ALERTS_HEARTBEAT_MINUTES):
        return []
    summary = (
        f"The last heartbeat was at {newest:%Y-%m-%d %H:%M:%S} UTC." if newest else "No worker has ever recorded one."
    )
    return [
        Finding(
            partner_id=None,
            subject="",
            title=f"No worker heartbeat for {settings.ALERTS_HEARTBEAT_MINUTES:g} min: nothing is being delivered",
            details={
                "summary": summary + " Leads are kept and go out once a worker runs.",
                "last_seen": _stamp(newest),
            },
        )
    ]


def grant_emails_waiting(now: datetime) -> list[Finding]:
    """Per partner (or no partner's, for an email none claims): grant emails have waited for review
    ALERTS_GRANT_EMAIL_REVIEW_MINUTES or more. Their sites are not granted until someone decides."""
    cutoff = now - timedelta(minutes=settings.ALERTS_GRANT_EMAIL_REVIEW_MINUTES)
    rows = list(
        GrantEmail.objects.filter(status=GrantEmail.Status.NEEDS_REVIEW, received_at__lte=cutoff)
        .values("partner")
        .annotate(count=Count("id"), oldest=Min("received_at"))
        .order_by()
    )
    findings = []
    for row in rows:
        count = row["count"]
        whose = "" if row["partner"] is not None else " (no partner claims them)"
        findings.append(
            Finding(
                partner_id=row["partner"],
                subject="",
                title=f"{count} grant email{'' if count == 1 else 's'} waiting for review{whose}",
                details={
                    "summary": f"The oldest arrived at {row['oldest']:%Y-%m-%d %H:%M} UTC. Its sites are not "
                    "granted until someone resolves it on the grant emails page.",
                    "count": count,
                    "oldest_received_at": _stamp(row["oldest"]),
                },
            )
        )
    return findings


RULES: dict[str, Callable[[datetime], list[Finding]]] = {
    Incident.Rule.NEEDS_HUMAN: deliveries_needing_a_human,
    Incident.Rule.CIRCUIT_OPEN: circuits_open,
    Incident.Rule.SITE_ACCESS: sites_losing_access,
    Incident.Rule.BACKLOG_LATE: backlog_late,
    Incident.Rule.WORKERS_SILENT: workers_silent,
    Incident.Rule.GRANT_EMAIL_REVIEW: grant_emails_waiting,
}
# The beat task (run by a worker) evaluates these; the watchdog in beat evaluates the rest.
WATCHDOG_RULES = (Incident.Rule.WORKERS_SILENT,)
WORKER_RULES = tuple(rule for rule in RULES if rule not in WATCHDOG_RULES)
