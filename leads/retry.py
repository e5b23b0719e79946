"""The delivery rules (DESIGN.md), in one place: what an answer from RG means for a delivery.

2xx: delivered. 400/401/403/404/422: failed, a human decides (a 401 also casts doubt on the
site's grant). 429: retry after Retry-After. 5xx, timeouts, connection errors: retry with
exponential backoff and jitter until DELIVERY_MAX_ATTEMPTS, then dead.
"""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional

from django.conf import settings

from leads import realgeeks
from leads.models import Delivery, DeliveryAttempt


@dataclass(frozen=True)
class Verdict:
    status: str  # a Delivery.Status
    outcome: str  # a DeliveryAttempt.Outcome
    next_attempt_at: Optional[datetime] = None
    site_doubtful: bool = False


DELIVERED = Verdict(Delivery.Status.DELIVERED, DeliveryAttempt.Outcome.DELIVERED)


def backoff_seconds(attempt_count: int, *, rng: random.Random | None = None) -> float:
    """Delay after the attempt_count-th failed attempt: BASE * FACTOR**(n-1), +-JITTER, capped.

    Jitter spreads retries of many deliveries that failed together (an RG outage) so they do
    not all come back in the same second.
    """
    base = settings.DELIVERY_RETRY_BASE_SECONDS * settings.DELIVERY_RETRY_FACTOR ** max(0, attempt_count - 1)
    jitter = settings.DELIVERY_RETRY_JITTER
    delay = base * (rng or random).uniform(1 - jitter, 1 + jitter)
    return float(min(delay, settings.DELIVERY_RETRY_MAX_SECONDS))


def verdict_for_error(error: realgeeks.RealGeeksError, *, attempt_count: int, now: datetime) -> Verdict:
    """What a failed attempt (the attempt_count-th) means for its delivery."""
    if error.permanent:
        return Verdict(Delivery.Status.FAILED, DeliveryAttempt.Outcome.FAILED, site_doubtful=error.status == 401)
    if attempt_count >= settings.DELIVERY_MAX_ATTEMPTS:
        return Verdict(Delivery.Status.DEAD, DeliveryAttempt.Outcome.DEAD)
    if error.retry_after is not None:
        delay = min(error.retry_after, settings.DELIVERY_RETRY_MAX_SECONDS)
    else:
        delay = backoff_seconds(attempt_count)
    return Verdict(Delivery.Status.RETRYING, DeliveryAttempt.Outcome.RETRY, now + timedelta(seconds=delay))


def held_too_long_before(now: datetime) -> datetime:
    """Held deliveries created before this moment fail instead of waiting on."""
    return now - timedelta(hours=settings.DELIVERY_HELD_MAX_AGE_HOURS)


def held_too_long_reason() -> str:
    hours = settings.DELIVERY_HELD_MAX_AGE_HOURS
    age = f"{hours / 24:g} days" if hours >= 48 else f"{hours:g} hours"
    return f"The site was not granted to this partner within {age}; grant it, then retry."


def lease_until(now: datetime) -> datetime:
    return now + timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)
