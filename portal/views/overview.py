"""The overview (the dashboard's home): how deliveries went in a time window, for the partners
the user may see, with charts drawn as inline SVG.

The first figure is the eventual delivery rate by lead (leads.stats.LeadOutcomes): attempts
count retries, so a recovered 503 blip lowers the attempt success while every lead arrived.

The attempt numbers (chart, attempt success, latency, failure reasons) are read from the hourly
rollup (leads.rollup), so the page costs the same at any attempt rate; the latency percentiles
are estimated from its duration buckets, and the page says so.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Optional
from urllib.parse import urlencode

from django.conf import settings
from django.core.validators import slug_re
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone

from core.access import staff_required
from core.health import workers_last_seen
from grants.access import partners_visible_to
from grants.models import Partner, Site
from leads import stats
from leads.models import DeliveryAttempt
from portal import charts

OUTCOME_SERIES = [
    charts.Series(DeliveryAttempt.Outcome.DELIVERED, "Delivered", "#2da44e"),
    charts.Series(DeliveryAttempt.Outcome.RETRY, "Will retry", "#d4a72c"),
    charts.Series(DeliveryAttempt.Outcome.FAILED, "Failed", "#cf222e"),
    charts.Series(DeliveryAttempt.Outcome.DEAD, "Dead", "#82071e"),
    charts.Series(DeliveryAttempt.Outcome.INTERRUPTED, "Interrupted", "#8c959f"),
]


def _scope(request: HttpRequest, visible: QuerySet[Partner]) -> tuple[Optional[Partner], stats.Partners]:
    """The partner picked in ?partner= (404 if the user may not see it), and the partners to count."""
    slug = request.GET.get("partner", "")
    if slug:
        if not slug_re.fullmatch(slug):
            raise Http404("No such partner.")  # not a slug, so no partner's (and no NUL for PostgreSQL)
        partner = get_object_or_404(visible, slug=slug)
        return partner, visible.filter(pk=partner.pk)
    # A superuser sees everything: no partner filter at all, so no join through delivery and lead.
    return None, (None if request.user.is_superuser else visible)


def _open_circuits(
    partner: Optional[Partner], partners: stats.Partners, visible: QuerySet[Partner]
) -> dict[str, object]:
    """How many sites' circuits are open (deliveries to them wait), and the sites page listing them."""
    sites = Site.objects.filter(circuit_opened_at__isnull=False)
    if partners is not None:
        sites = sites.filter(partner__in=partners)
    # One partner in view: straight to its sites with an open circuit; else the sites index, per partner.
    only = partner or (visible[0] if len(visible) == 1 else None)
    url = reverse("portal:site_list", args=[only.slug]) + "?circuit=open" if only else reverse("portal:site_index")
    return {"count": sites.count(), "url": url}


def _hour_label(hour_index: int, window: stats.Window, hours: list[stats.Hour]) -> str:
    start = hours[hour_index].start
    if window.key == "24h":
        return start.strftime("%H:%M") if start.hour % 3 == 0 else ""
    return start.strftime("%a %d") if start.hour == 0 else ""


def _hourly_chart(window: stats.Window, hours: list[stats.Hour]) -> charts.StackedBars:
    rows = [
        charts.Row(
            label=_hour_label(n, window, hours),
            name=f"{hour.start:%Y-%m-%d %H:00} UTC",
            values={outcome: hour.counts.get(outcome, 0) for outcome in stats.CHARTED_OUTCOMES},
        )
        for n, hour in enumerate(hours)
    ]
    total = sum(hour.total for hour in hours)
    return charts.stacked_bars(
        title=f"Delivery attempts per hour by outcome, {window.label.lower()}",
        description=f"{total:,} attempts from {window.start:%Y-%m-%d %H:00} to {window.end:%Y-%m-%d %H:00} UTC, "
        f"one bar per hour, stacked by outcome.",
        rows=rows,
        series=OUTCOME_SERIES,
    )


# The per-site health table shows this many sites, worst first; /sites/ lists them all.
SITE_HEALTH_ROWS = 10
# The backlog tile turns amber once a due delivery has waited this long (the sweeper runs every minute or so).
BACKLOG_WARN_SECONDS = 5 * 60


@dataclass(frozen=True)
class ReasonRow:
    """One failure reason with what staff can do about it: its leads, and retry links or why not."""

    reason: stats.FailureReason
    width: float
    leads_url: str
    retry_links: list[tuple[str, str]]
    note: str


def _leads_url(reason: stats.FailureReason, window: stats.Window, partner: Optional[Partner]) -> str:
    """The leads list filtered to exactly the leads behind the reason's attempts in the window."""
    params = {
        "partner": partner.slug if partner else "",
        "failed_status": reason.status if reason.status is not None else 0,
        "failed_error": reason.error,
        "failed_after": window.start.isoformat(),
        "failed_before": window.end.isoformat(),
    }
    return reverse("portal:lead_list") + "?" + urlencode({k: v for k, v in params.items() if v != ""})


def _reason_rows(
    reasons: list[stats.FailureReason],
    retryable: dict[tuple[Optional[int], str], dict[int, int]],
    *,
    window: stats.Window,
    partner: Optional[Partner],
    visible: QuerySet[Partner],
) -> list[ReasonRow]:
    """Retry links go one per partner (a bulk retry is one partner's), so they work from "All partners"."""
    partner_ids = {pid for by_partner in retryable.values() for pid in by_partner}
    named = visible.in_bulk(partner_ids)
    one_partner = partner is not None or len(visible) == 1
    rows = []
    for reason, width in zip(reasons, charts.bar_widths([r.count for r in reasons]), strict=True):
        waiting = {pid: n for pid, n in retryable.get((reason.status, reason.error), {}).items() if pid in named}
        links: list[tuple[str, str]] = []
        if reason.status is not None:
            for pid, n in sorted(waiting.items(), key=lambda item: named[item[0]].name):
                query = urlencode({"partner": named[pid].slug, "http_status": reason.status})
                label = "Retry…" if one_partner else f"Retry {n} of {named[pid].name}…"
                links.append((label, f"{reverse('portal:bulk_retry')}?{query}"))
        if reason.retried_automatically:
            note = "Nothing to retry: the engine retried these automatically."
        elif waiting and reason.status is None:
            note = "Needs a human: no HTTP status to bulk-retry by; retry them from their leads."
        elif not waiting:
            note = "Nothing to retry: these deliveries were retried or resent since."
        elif reason.status is not None and 400 <= reason.status < 500:
            note = "Needs a human: RG refuses these as sent; fix the lead or its grant before retrying."
        else:
            note = ""
        rows.append(
            ReasonRow(
                reason=reason, width=width, leads_url=_leads_url(reason, window, partner), retry_links=links, note=note
            )
        )
    return rows


def _duration(seconds: Optional[float]) -> str:
    """A short, rounded-down duration: 45 s, 12 min, 3 h 5 min, 2 d 4 h."""
    if seconds is None:
        return ""
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, hours, days = whole // 60, whole // 3600, whole // 86400
    if hours < 1:
        return f"{minutes} min"
    if days < 1:
        return f"{hours} h {minutes % 60} min" if minutes % 60 else f"{hours} h"
    return f"{days} d {hours % 24} h" if hours % 24 else f"{days} d"


def _backlog(partners: stats.Partners, now: datetime) -> dict[str, object]:
    backlog = stats.backlog(partners=partners, now=now)
    oldest = backlog.oldest_seconds(now)
    return {
        "due": backlog.due,
        "capped": backlog.capped,
        "oldest": _duration(oldest),
        "late": oldest is not None and oldest >= BACKLOG_WARN_SECONDS,
    }


def _heartbeat() -> dict[str, object]:
    seconds = workers_last_seen()
    # Workers beat every WORKER_HEARTBEAT_SECONDS; three missed beats mean none is running.
    stale = seconds is None or seconds > 3 * settings.WORKER_HEARTBEAT_SECONDS
    return {
        "seconds": None if seconds is None else int(seconds),
        "ago": _duration(seconds),
        "stale": stale,
        "every": settings.WORKER_HEARTBEAT_SECONDS,
    }


@staff_required
def overview(request: HttpRequest) -> HttpResponse:
    visible = partners_visible_to(request.user)
    partner, partners = _scope(request, visible)
    now = timezone.now()
    window = stats.window_ending(request.GET.get("window", ""), now)
    hours = stats.attempts_by_hour_from_rollup(window, partners=partners)
    reasons = stats.failure_reasons_from_rollup(window, partners=partners)
    held = stats.held_by_site(partners=partners)
    by_site = stats.lead_outcomes_by_site(stats.leads_in(window, partners=partners))
    sites, sites_ranked = stats.site_health(window, partners=partners, by_site=by_site, now=now, limit=SITE_HEALTH_ROWS)
    context = {
        "section": "overview",
        "visible_partners": visible,
        "partner": partner,
        "window": window,
        "windows": [(key, label) for key, (_, label) in stats.WINDOWS.items()],
        "chart": _hourly_chart(window, hours),
        # The chart's numbers as a table, for screen readers and for copying; empty hours left out.
        "table": [
            (hour.start, [hour.counts.get(s.key, 0) for s in OUTCOME_SERIES], hour.total)
            for hour in hours
            if hour.total
        ],
        "outcome_series": OUTCOME_SERIES,
        "delivery": stats.lead_outcomes(by_site),
        "rate": stats.success_rate(hours),
        "latency": stats.latency_from_rollup(window, partners=partners),
        "reasons": _reason_rows(
            reasons,
            stats.retryable_by_reason(stats.attempts_in(window, partners=partners), reasons),
            window=window,
            partner=partner,
            visible=visible,
        ),
        "sites": sites,
        "sites_ranked": sites_ranked,
        "backlog": _backlog(partners, now),
        "heartbeat": _heartbeat(),
        "held": list(zip(held, charts.bar_widths([h.count for h in held]), strict=True)),
        "held_total": stats.held_total(partners=partners),
        "circuits": _open_circuits(partner, partners, visible),
        "needing_a_human": stats.needing_a_human(partners=partners),
        "callbacks": stats.recent_callbacks(partners=partners),
        "bar_width": charts.BAR_WIDTH,
    }
    return render(request, "portal/overview.html", context)
