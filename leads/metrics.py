"""What the push API and the delivery engine count, in the process doing it. prometheus-client's
multiprocess mode keeps each process's values in a file (operations/multiprocess.py); /metrics
adds them up (operations/metrics.py).

Labels name partners by slug: there are few of them, and they are what staff know.
"""

import time
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from prometheus_client import Counter, Histogram

from grants.models import Partner

PUSHES_ACCEPTED = Counter(
    "portal_pushes_accepted",
    "Pushes the push API accepted (2xx, replays included), by partner and RG operation.",
    ["partner", "operation"],
)
ATTEMPTS = Counter(
    "portal_delivery_attempts",
    "Finished delivery attempts by outcome: delivered, retry, failed (needs a human) or dead (out of attempts).",
    ["partner", "outcome"],
)
ATTEMPT_SECONDS = Histogram(
    "portal_delivery_attempt_duration_seconds",
    "How long RG took to answer a delivery attempt (or to time out).",
    ["partner"],
    # RG answers in tens of milliseconds when well; REALGEEKS_READ_TIMEOUT (20 s) bounds the rest.
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0),
)


_slugs: dict[int, tuple[float, str]] = {}  # partner id -> (monotonic expiry, slug)


def _slug(partner_id: int) -> str:
    """A worker knows a delivery's partner by id; its slug is read once per PARTNER_CACHE_SECONDS."""
    now = time.monotonic()
    cached = _slugs.get(partner_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    slug = Partner.objects.filter(pk=partner_id).values_list("slug", flat=True).first() or str(partner_id)
    _slugs[partner_id] = (now + settings.PARTNER_CACHE_SECONDS, slug)
    return slug


def _slugs_forget(**signal_kwargs: Any) -> None:
    _slugs.clear()


# Not grants.process_cache: its save and delete receivers are named by setting and model, and the
# webhook's cache of partners already holds those names, so a second one would never be told.
post_save.connect(_slugs_forget, sender=Partner, dispatch_uid="leads.metrics.slugs.save")
post_delete.connect(_slugs_forget, sender=Partner, dispatch_uid="leads.metrics.slugs.delete")


def attempts_count(finished: Iterable[tuple[int, str, int]]) -> None:
    """Count recorded attempts, each given as (partner id, attempt outcome, duration in ms)."""
    for partner_id, outcome, duration_ms in finished:
        partner = _slug(partner_id)
        ATTEMPTS.labels(partner, outcome).inc()
        ATTEMPT_SECONDS.labels(partner).observe(duration_ms / 1000)
