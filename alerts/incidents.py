"""Incidents from rule findings, and the notices they owe.

    a finding with no open incident of its key    opens one; notified unless rate-limited
    an open incident whose finding is still there  keeps its title and details current
    an open incident whose finding is gone         resolves; its recovery is notified if its
                                                   opening was
    an open incident kept quiet by the rate limit  is notified once the limit has passed

A key is (partner, rule, subject). The rate limit: an incident that opens within
ALERTS_RATE_LIMIT_MINUTES of the last notice about the same key (a flapping circuit, a second
outage) is recorded but sends nothing, neither its opening nor its recovery; if it is still open
when the limit has passed, its opening is notified then, so a long outage is never silent.

Each change is a conditional UPDATE (or an INSERT the one-open-per-key constraint guards), so
two evaluations at once (a slow tick overlapping the next) notify each event once.
"""

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Optional

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from alerts import notices
from alerts.models import Channel, Incident, Notification
from alerts.rules import RULES, Finding, Key

logger = logging.getLogger(__name__)


def _key(incident: Incident) -> Key:
    return (incident.partner_id, incident.subject)


def _last_notice(rule: str, key: Key) -> Optional[datetime]:
    partner_id, subject = key
    incidents = Incident.objects.filter(rule=rule, subject=subject, last_notified_at__isnull=False)
    if partner_id is None:
        incidents = incidents.filter(partner__isnull=True)
    else:
        incidents = incidents.filter(partner_id=partner_id)
    return incidents.aggregate(last=Max("last_notified_at"))["last"]


def _rate_limited(rule: str, key: Key, now: datetime) -> bool:
    last = _last_notice(rule, key)
    return last is not None and last > now - timedelta(minutes=settings.ALERTS_RATE_LIMIT_MINUTES)


def channels_for(partner_id: Optional[int]) -> list[Channel]:
    """The active channels an incident of this partner (None: no partner's) goes to."""
    channels = Channel.objects.filter(is_active=True).select_related("partner")
    if partner_id is None:
        return list(channels.filter(partner__isnull=True))
    return list(channels.filter(partner_id=partner_id))


def _notices_queue(incident: Incident, event: str, now: datetime) -> list[Notification]:
    notice = notices.incident_notice(incident, event, now=now)
    return Notification.objects.bulk_create(
        Notification(
            channel=channel,
            incident=incident,
            event=event,
            subject=notice.subject,
            text=notice.text,
            payload=notice.payload,
            next_attempt_at=now,
        )
        for channel in channels_for(incident.partner_id)
    )


def _announce(incident: Incident, now: datetime) -> list[Notification]:
    """Notify the opening, once: only the evaluation whose UPDATE changes the row does."""
    if not Incident.objects.filter(pk=incident.pk, announced=False).update(announced=True, last_notified_at=now):
        return []
    incident.announced, incident.last_notified_at = True, now
    return _notices_queue(incident, Notification.Event.OPENED, now)


def _open(rule: str, finding: Finding, now: datetime) -> list[Notification]:
    try:
        with transaction.atomic():
            incident = Incident.objects.create(
                partner_id=finding.partner_id,
                rule=rule,
                subject=finding.subject,
                title=finding.title[:300],
                details=finding.details,
                opened_at=now,
            )
    except IntegrityError:
        return []  # another evaluation opened it a moment ago
    if _rate_limited(rule, finding.key, now):
        logger.info("incident %s opened quietly (rate limit): %s", incident.public_id, incident.title)
        return []
    logger.warning("incident %s opened: %s", incident.public_id, incident.title)
    return _announce(incident, now)


def _resolve(incident: Incident, now: datetime) -> list[Notification]:
    fields = {"resolved_at": now}
    if incident.announced:
        fields["last_notified_at"] = now
    if not Incident.objects.filter(pk=incident.pk, resolved_at__isnull=True).update(**fields):
        return []
    incident.resolved_at = now
    logger.info("incident %s resolved: %s", incident.public_id, incident.title)
    if not incident.announced:
        return []
    return _notices_queue(incident, Notification.Event.RECOVERED, now)


def _refresh(incident: Incident, finding: Finding) -> None:
    title = finding.title[:300]
    if (incident.title, incident.details) != (title, finding.details):
        Incident.objects.filter(pk=incident.pk).update(title=title, details=finding.details)
        incident.title, incident.details = title, finding.details


def incidents_evaluate(*, rules: Iterable[str], now: Optional[datetime] = None) -> list[Notification]:
    """Run the rules, open, refresh and resolve their incidents, and queue the notices owed; the
    notifications queued (sending them is `alerts.sending`'s)."""
    now = now or timezone.now()
    queued: list[Notification] = []
    for rule in rules:
        findings = {finding.key: finding for finding in RULES[rule](now)}
        with transaction.atomic():
            open_incidents = Incident.objects.filter(rule=rule, resolved_at__isnull=True).select_related("partner")
            seen: set[Key] = set()
            for incident in open_incidents:
                seen.add(_key(incident))
                finding = findings.get(_key(incident))
                if finding is None:
                    queued += _resolve(incident, now)
                    continue
                _refresh(incident, finding)
                if not incident.announced and not _rate_limited(rule, _key(incident), now):
                    queued += _announce(incident, now)
            for key, finding in findings.items():
                if key not in seen:
                    queued += _open(rule, finding, now)
    return queued
