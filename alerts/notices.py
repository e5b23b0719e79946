"""What a notice says: its email subject, its text (email body and Slack message) and its
webhook body. Pure functions of the incident or channel; fixed when a notification is queued,
so every retry sends the same words."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Optional

from django.conf import settings
from django.urls import reverse

from alerts.models import Channel, Incident, Notification

PRODUCT = "Partner Portal"
# What a recovery means, per rule: the rule no longer sees what opened the incident.
RESOLUTIONS: dict[str, str] = {
    Incident.Rule.NEEDS_HUMAN: "No recent failed or dead delivery is left: retried, or older than the window.",
    Incident.Rule.CIRCUIT_OPEN: "The circuit closed: deliveries to the site go out again.",
    Incident.Rule.SITE_ACCESS: "The site is active again, or its revocation is older than the alert window.",
    Incident.Rule.BACKLOG_LATE: "No delivery has been due that long any more.",
    Incident.Rule.WORKERS_SILENT: "A worker recorded a heartbeat: deliveries go out again.",
    Incident.Rule.GRANT_EMAIL_REVIEW: "No grant email is waiting for review any more.",
}


@dataclass(frozen=True)
class Notice:
    subject: str
    text: str
    payload: dict[str, Any]


def _stamp(moment: Optional[datetime]) -> Optional[str]:
    return moment.isoformat() if moment else None


def _page(incident: Incident) -> str:
    return settings.PORTAL_BASE_URL.rstrip("/") + reverse("portal:alert_incident", args=[incident.public_id])


def _lasted(incident: Incident) -> str:
    seconds = int(((incident.resolved_at or incident.opened_at) - incident.opened_at).total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"


def incident_notice(incident: Incident, event: str, *, now: datetime) -> Notice:
    """The notice that `incident` opened or recovered (`event`: a Notification.Event)."""
    whose = incident.partner.name if incident.partner else "Operators"
    summary = str(incident.details.get("summary", ""))
    if event == Notification.Event.RECOVERED:
        subject = f"[{PRODUCT}] Resolved: {incident.title}"
        first = f"Resolved after {_lasted(incident)} ({whose}): {incident.title}"
        summary = RESOLUTIONS.get(incident.rule, "The rule no longer sees it.")
    else:
        subject = f"[{PRODUCT}] {incident.title}"
        first = f"Incident ({whose}): {incident.title}"
    text = "\n".join(line for line in (first, summary, _page(incident)) if line)
    payload = {
        "type": f"incident.{event}",
        "timestamp": now.isoformat(),
        "data": {
            "id": str(incident.public_id),
            "rule": incident.rule,
            "rule_label": incident.get_rule_display(),
            "partner": incident.partner.slug if incident.partner else None,
            "subject": incident.subject,
            "title": incident.title,
            "opened_at": _stamp(incident.opened_at),
            "resolved_at": _stamp(incident.resolved_at),
            "details": incident.details,
            "url": _page(incident),
        },
    }
    return Notice(subject=subject[:300], text=text, payload=payload)


def test_notice(channel: Channel, *, now: datetime) -> Notice:
    """A notice that says only that the channel works (the dashboard's "send a test")."""
    text = f"Test from the {PRODUCT}: notices for {channel.partner or 'operators'} reach this channel ({channel.name})."
    payload = {
        "type": "alert.test",
        "timestamp": now.isoformat(),
        "data": {"channel": str(channel.public_id), "partner": channel.partner.slug if channel.partner else None},
    }
    return Notice(subject=f"[{PRODUCT}] Test notice", text=text, payload=payload)
