"""The circuit breaker per partner and site: stop hammering an RG site that keeps failing.

States, kept on the Site row so every worker process sees the same circuit:

    closed     circuit_opened_at is empty. Deliveries go out; circuit_failures counts the
               consecutive 5xx answers, timeouts and connection errors.
    open       DELIVERY_CIRCUIT_FAILURES of them in a row: circuit_opened_at is set and nothing
               is sent to the site until circuit_open_until.
    probing    circuit_open_until has passed: one worker takes the probe (a conditional UPDATE
               moves circuit_open_until a cool-down ahead, so only one does) and sends one
               delivery. Any answer that is not a 5xx or a timeout closes the circuit; a failure
               keeps it open for another cool-down.

While the circuit is open, deliveries are not claimed at all, so those never sent keep their
whole retry budget (Convoy and Svix disable an endpoint for the same reason). Staff can close it
at once ("resume now").
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Optional

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from grants.models import Site

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SiteOutcome:
    """One finished call, as the circuit sees it: `failed` means a 5xx, a timeout or no answer."""

    site_id: int
    failed: bool
    error: str = ""


def cool_down_until(now: datetime) -> datetime:
    return now + timedelta(seconds=settings.DELIVERY_CIRCUIT_COOLDOWN_SECONDS)


def probes_take(now: datetime) -> list[int]:
    """Sites whose cool-down is over, each now reserved for one probe by this caller."""
    due = Site.objects.filter(circuit_opened_at__isnull=False, circuit_open_until__lte=now)
    taken = []
    for site_id in due.values_list("pk", flat=True)[:100]:
        # Only the worker whose UPDATE changes the row sends the probe.
        if Site.objects.filter(pk=site_id, circuit_open_until__lte=now).update(circuit_open_until=cool_down_until(now)):
            taken.append(site_id)
    return taken


def circuits_record(outcomes: Iterable[SiteOutcome], *, failures_before: dict[int, int], now: datetime) -> None:
    """Count a batch's calls, in the order they finished, against their sites' circuits.

    `failures_before` is each site's circuit_failures as read when the batch was claimed; a site
    whose count stays zero is not written, so a healthy batch costs no statement here.
    """
    trailing: dict[int, int] = {}
    succeeded: set[int] = set()
    last_error: dict[int, str] = {}
    for outcome in outcomes:
        if outcome.failed:
            trailing[outcome.site_id] = trailing.get(outcome.site_id, 0) + 1
            last_error[outcome.site_id] = outcome.error
        else:
            trailing[outcome.site_id] = 0
            succeeded.add(outcome.site_id)
    threshold = settings.DELIVERY_CIRCUIT_FAILURES
    for site_id, failures in trailing.items():
        if site_id in succeeded:
            if failures == 0 and failures_before.get(site_id, 0) == 0:
                continue
            # A success closes the circuit (and ends a probe); failures after it start a new count.
            Site.objects.filter(pk=site_id).update(
                circuit_failures=failures, circuit_opened_at=None, circuit_open_until=None
            )
            if failures_before.get(site_id, 0) >= threshold:
                logger.info("circuit closed for site %s", site_id)
            if failures < threshold:
                continue
        else:
            Site.objects.filter(pk=site_id).update(circuit_failures=F("circuit_failures") + failures)
        _open_if_tripped(site_id, now=now, error=last_error.get(site_id, ""))


def _open_if_tripped(site_id: int, *, now: datetime, error: str) -> None:
    threshold = settings.DELIVERY_CIRCUIT_FAILURES
    opened = Site.objects.filter(pk=site_id, circuit_failures__gte=threshold, circuit_opened_at__isnull=True).update(
        circuit_opened_at=now, circuit_open_until=cool_down_until(now), circuit_last_error=error[:500]
    )
    if opened:
        logger.warning("circuit opened for site %s after %s consecutive failures: %s", site_id, threshold, error)
    else:
        # Already open: a failed probe keeps it open for another cool-down.
        Site.objects.filter(pk=site_id, circuit_opened_at__isnull=False).update(
            circuit_open_until=cool_down_until(now), circuit_last_error=error[:500]
        )


def circuit_resume(*, site: Site, actor: Optional[Any] = None) -> bool:
    """Close the site's circuit now (staff's "resume now"). True if it was open."""
    changed = Site.objects.filter(pk=site.pk, circuit_opened_at__isnull=False).update(
        circuit_failures=0, circuit_opened_at=None, circuit_open_until=None
    )
    if changed:
        logger.info("circuit for site %s resumed by %s", site.pk, getattr(actor, "username", "the system"))
    site.refresh_from_db(fields=["circuit_failures", "circuit_opened_at", "circuit_open_until"])
    return bool(changed)


def circuit_state(site: Site, *, now: Optional[datetime] = None) -> dict[str, Any]:
    """What the read API and the dashboard show: closed, open (until when) or probing."""
    now = now or timezone.now()
    if site.circuit_opened_at is None:
        state = "closed"
    elif site.circuit_open_until is not None and site.circuit_open_until > now:
        state = "open"
    else:
        state = "probing"
    return {
        "state": state,
        "consecutive_failures": site.circuit_failures,
        "opened_at": site.circuit_opened_at,
        "retry_at": site.circuit_open_until if state != "closed" else None,
        "last_error": site.circuit_last_error if state != "closed" else "",
    }
