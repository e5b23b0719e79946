"""Sending notifications: claim, attempt, record, and retry with backoff until they go through.

    pending, retrying (due)      claimed by a sender                  sending (claimed_until)
    sending                      the channel took it (2xx, mail sent)  sent
    sending                      anything else, attempts left          retrying (next_attempt_at)
    sending                      anything else, none left              failed
    sending, claim ran out       claimed again by another sender (its attempt stays "sending")

The schedule is in the database (next_attempt_at), not in broker countdowns: the beat task
sends whatever is due, so a lost message or a dead worker only delays a notice. Every attempt
is a row, written before the call and completed after it, so the channel's history shows each
try with its answer.
"""

import json
import logging
import smtplib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional

import requests
from django.conf import settings
from django.core.mail import send_mail
from django.db.models import F
from django.utils import timezone

from alerts import outbound, signing
from alerts.models import Channel, Notification, NotificationAttempt

logger = logging.getLogger(__name__)

RESPONSE_EXCERPT_CHARS = 300
MAX_RETRY_SECONDS = 3600.0


@dataclass(frozen=True)
class Result:
    """How one attempt went: `ok`, the HTTP status if there was one, what went wrong."""

    ok: bool
    status_code: Optional[int] = None
    error: str = ""
    excerpt: str = ""


def retry_delay_seconds(attempt_count: int) -> float:
    """Wait after the attempt_count-th failed attempt: ALERTS_NOTIFY_RETRY_SECONDS, doubling, at most an hour."""
    return float(min(settings.ALERTS_NOTIFY_RETRY_SECONDS * 2 ** max(attempt_count - 1, 0), MAX_RETRY_SECONDS))


def _lease_seconds() -> float:
    # Longer than any one attempt (an HTTP call's connect and read timeouts, or a mail server's).
    return 2 * settings.ALERTS_HTTP_TIMEOUT_SECONDS + 30.0


def _http_result(response: requests.Response) -> Result:
    excerpt = response.text[:RESPONSE_EXCERPT_CHARS]
    if 200 <= response.status_code < 300:
        return Result(ok=True, status_code=response.status_code, excerpt=excerpt)
    return Result(ok=False, status_code=response.status_code, error=f"HTTP {response.status_code}", excerpt=excerpt)


def _send_email(notification: Notification, channel: Channel) -> Result:
    addresses = channel.email_addresses()
    if not addresses:
        return Result(ok=False, error="The channel has no email address.")
    send_mail(notification.subject, notification.text, settings.ALERTS_EMAIL_FROM, addresses, fail_silently=False)
    return Result(ok=True)


def _send_slack(notification: Notification, channel: Channel) -> Result:
    body = json.dumps({"text": notification.text}).encode()
    return _http_result(outbound.post(channel.target, body=body, headers={}))


def _send_webhook(notification: Notification, channel: Channel) -> Result:
    if signing.secret_refusal(channel.secret):
        return Result(ok=False, error="The channel's signing secret is missing or invalid; set a new one.")
    body = json.dumps(notification.payload, separators=(",", ":"), sort_keys=True).encode()
    headers = signing.headers(
        secret=channel.secret, msg_id=notification.webhook_id, timestamp=int(time.time()), body=body
    )
    return _http_result(outbound.post(channel.target, body=body, headers=headers))


SENDERS: dict[str, Callable[[Notification, Channel], Result]] = {
    Channel.Kind.EMAIL: _send_email,
    Channel.Kind.SLACK: _send_slack,
    Channel.Kind.WEBHOOK: _send_webhook,
}


def _attempt(notification: Notification) -> Result:
    """One try, any failure turned into a Result with a short reason (never a secret: URLs are
    not quoted, since a Slack URL is one)."""
    channel = notification.channel
    try:
        return SENDERS[channel.kind](notification, channel)
    except outbound.AddressRefused as exc:
        return Result(ok=False, error=str(exc))
    except ValueError as exc:  # the URL is refused outright (outbound.url_refusal)
        return Result(ok=False, error=f"URL refused: {exc}")
    except requests.Timeout:
        return Result(ok=False, error=f"No answer within {settings.ALERTS_HTTP_TIMEOUT_SECONDS:g} s.")
    except requests.ConnectionError:
        return Result(ok=False, error="Could not connect to the channel's host.")
    except requests.RequestException as exc:
        return Result(ok=False, error=f"Request failed: {type(exc).__name__}.")
    except (smtplib.SMTPException, OSError) as exc:
        return Result(ok=False, error=f"Mail not sent: {type(exc).__name__}: {exc}"[:500])


def _claim(notification_id: int, now: datetime) -> Optional[Notification]:
    """The notification, claimed by this caller alone; None if another sender took it first."""
    claimed_until = now + timedelta(seconds=_lease_seconds())
    claimed = (
        Notification.objects.due(now)
        .filter(pk=notification_id)
        .update(status=Notification.Status.SENDING, claimed_until=claimed_until, attempt_count=F("attempt_count") + 1)
    )
    if not claimed:
        return None
    return Notification.objects.select_related("channel__partner").get(pk=notification_id)


def notification_send(notification: Notification, *, now: Optional[datetime] = None) -> NotificationAttempt:
    """Attempt a claimed notification once and record how it went (see the module's table).
    `now` stands for the clock in tests; otherwise the attempt is timed as it happens."""
    attempt = NotificationAttempt.objects.create(
        notification=notification, number=notification.attempt_count, started=now or timezone.now()
    )
    result = _attempt(notification)
    now = now or timezone.now()
    attempt.outcome = NotificationAttempt.Outcome.SENT if result.ok else NotificationAttempt.Outcome.FAILED
    attempt.status_code, attempt.error = result.status_code, result.error[:500]
    attempt.response_excerpt, attempt.finished = result.excerpt[:500], now
    attempt.save(update_fields=["outcome", "status_code", "error", "response_excerpt", "finished"])
    fields: dict[str, object] = {"claimed_until": None, "last_status_code": result.status_code}
    if result.ok:
        fields.update(status=Notification.Status.SENT, sent_at=now, next_attempt_at=None, last_error="")
    elif notification.attempt_count >= settings.ALERTS_NOTIFY_MAX_ATTEMPTS:
        fields.update(status=Notification.Status.FAILED, next_attempt_at=None, last_error=result.error[:500])
        logger.warning("notification %s to %s failed for good: %s", notification.pk, notification.channel, result.error)
    else:
        retry_at = now + timedelta(seconds=retry_delay_seconds(notification.attempt_count))
        fields.update(status=Notification.Status.RETRYING, next_attempt_at=retry_at, last_error=result.error[:500])
    # Only while this sender's claim holds: a claim that ran out belongs to another sender now.
    Notification.objects.filter(
        pk=notification.pk, status=Notification.Status.SENDING, claimed_until=notification.claimed_until
    ).update(**fields)
    return attempt


def notifications_send(*, limit: int = 100, operators_only: bool = False, now: Optional[datetime] = None) -> int:
    """Send up to `limit` due notifications, oldest first (`operators_only`: those to operator
    channels, for the watchdog); how many were attempted. `now` stands for the clock in tests."""
    due = Notification.objects.due(now or timezone.now())
    if operators_only:
        due = due.filter(channel__partner__isnull=True)
    sent = 0
    for notification_id in list(due.order_by("next_attempt_at", "id").values_list("pk", flat=True)[:limit]):
        notification = _claim(notification_id, now or timezone.now())
        if notification is not None:
            notification_send(notification, now=now)
            sent += 1
    return sent
