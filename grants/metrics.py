"""What the callback webhook counts, in the process doing it (see leads/metrics.py). Rejected
callbacks are counted in the database already (WebhookRejection); /metrics reads them there."""

from prometheus_client import Counter

CALLBACKS_RECEIVED = Counter(
    "portal_callbacks_received",
    "Signed Destination callbacks stored and answered (replays and bodies that are not JSON included), by partner.",
    ["partner"],
)
