"""The overview (the dashboard's home): how deliveries went in a time window, for the partners
the user may see, with charts drawn as inline SVG."""

from typing import Optional

from django.core.validators import slug_re
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone

from grants.models import Partner, Site
from leads import stats
from leads.models import DeliveryAttempt
from portal import charts
from portal.access import partners_visible_to, staff_required

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


@staff_required
def overview(request: HttpRequest) -> HttpResponse:
    visible = partners_visible_to(request.user)
    partner, partners = _scope(request, visible)
    window = stats.window_ending(request.GET.get("window", ""), timezone.now())
    attempts = stats.attempts_in(window, partners=partners)
    hours = stats.attempts_by_hour(attempts, window)
    reasons = stats.failure_reasons(attempts)
    held = stats.held_by_site(partners=partners)
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
        "rate": stats.success_rate(hours),
        "latency": stats.latency(attempts),
        "reasons": list(zip(reasons, charts.bar_widths([r.count for r in reasons]), strict=True)),
        "held": list(zip(held, charts.bar_widths([h.count for h in held]), strict=True)),
        "held_total": stats.held_total(partners=partners),
        "circuits": _open_circuits(partner, partners, visible),
        "needing_a_human": stats.needing_a_human(partners=partners),
        "callbacks": stats.recent_callbacks(partners=partners),
        "bar_width": charts.BAR_WIDTH,
    }
    return render(request, "portal/overview.html", context)
