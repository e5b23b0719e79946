"""Every time the dashboard shows, in one zone (settings.TIME_ZONE, labelled) with how long ago.

`{{ value|when }}` renders `<time datetime="2026-11-30T17:31:05Z" title="2026-11-30 17:31:05 UTC">
2026-11-30 17:31 UTC · 3 min ago</time>`; static/portal/times.js keeps the "ago" part current and
must word it exactly as `relative` does. Styles: "" (minutes), "seconds", "precise" (microseconds,
for callback order keys) and "compact" (tables: no year when it is this year, "3m ago").
`{{ value|when_text }}` is the plain text, for titles and attributes. None renders as an em dash.
"""

from datetime import UTC, date, datetime
from typing import Any, Optional
from zoneinfo import ZoneInfo

from django import template
from django.conf import settings
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()

MISSING = "—"
_FORMATS = {
    "": "%Y-%m-%d %H:%M",
    "seconds": "%Y-%m-%d %H:%M:%S",
    "precise": "%Y-%m-%d %H:%M:%S.%f",
    "compact": "%m-%d %H:%M",
}
# Under this many seconds either way a time is "just now" (or "in a moment"): clocks disagree.
_NOW_SECONDS = 45


def _zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def _aware(value: datetime) -> datetime:
    """Naive datetimes are in settings.TIME_ZONE (what Django stores with USE_TZ off)."""
    return timezone.make_aware(value, _zone()) if timezone.is_naive(value) else value


def relative(value: datetime, now: datetime, compact: bool = False) -> str:
    """How far `value` is from `now`: "just now", "3 min ago", "5 hours ago", "in 2 days"
    ("3m ago", "in 2d" when compact). Whole units, rounded down."""
    seconds = (_aware(now) - _aware(value)).total_seconds()
    past = seconds >= 0
    seconds = abs(seconds)
    if seconds < _NOW_SECONDS:
        return "now" if compact else ("just now" if past else "in a moment")
    if seconds < 3600:
        n, unit, short = max(1, int(seconds // 60)), "min", "m"
    elif seconds < 86400:
        n, unit, short = int(seconds // 3600), "hour", "h"
        unit = unit if n == 1 else "hours"
    else:
        n, unit, short = int(seconds // 86400), "day", "d"
        unit = unit if n == 1 else "days"
    amount = f"{n}{short}" if compact else f"{n} {unit}"
    return f"{amount} ago" if past else f"in {amount}"


def absolute(value: datetime, style: str = "", now: Optional[datetime] = None) -> str:
    """`value` in settings.TIME_ZONE with the zone's name: "2026-11-30 17:31 UTC"."""
    local = _aware(value).astimezone(_zone())
    pattern = _FORMATS.get(style, _FORMATS[""])
    if style == "compact" and local.year != (now or timezone.now()).astimezone(_zone()).year:
        pattern = _FORMATS[""]
    return f"{local.strftime(pattern)} {local.tzname()}"


def when_html(value: Any, style: str = "", now: Optional[datetime] = None) -> SafeString:
    """The `<time>` element for `value` (see the module docstring); an em dash for None or ""."""
    if value is None or value == "":
        return SafeString(MISSING)
    if not isinstance(value, datetime):
        if isinstance(value, date):
            return format_html('<time datetime="{}">{}</time>', value.isoformat(), value.isoformat())
        return format_html("{}", value)
    now = now or timezone.now()
    compact = style == "compact"
    moment = _aware(value).astimezone(UTC)
    machine = moment.isoformat(timespec="microseconds" if style == "precise" else "seconds").replace("+00:00", "Z")
    return format_html(
        '<time class="when" datetime="{}" title="{}" data-when="{}">{} · <span class="ago">{}</span></time>',
        machine,
        absolute(value, "precise" if style == "precise" else "seconds"),
        "compact" if compact else "long",
        absolute(value, style, now),
        relative(value, now, compact),
    )


@register.filter
def when(value: Any, style: str = "") -> SafeString:
    return when_html(value, style)


@register.filter
def when_text(value: Any, style: str = "") -> str:
    """The absolute time as plain text ("2026-11-30 17:31 UTC"), for titles and attributes."""
    if value is None or value == "":
        return MISSING
    if not isinstance(value, datetime):
        return value.isoformat() if isinstance(value, date) else str(value)
    return absolute(value, style)
