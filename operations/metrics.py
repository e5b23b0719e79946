"""What /metrics says: every process's counters and histograms on this host, added up, and gauges
read from the database as the scrape asks for them.

Process values are kept by prometheus-client's multiprocess mode (operations/multiprocess.py):
the push API's and the webhook's counters in the web processes (leads/metrics.py,
grants/metrics.py), the delivery outcomes and latencies in the worker's pool, the pruned bodies
wherever a prune ran (operations/retention.py). The database gauges are a few COUNTs on partial
indexes that hold only the rows counted (the outbox's open deliveries), and small tables (sites,
rejections, heartbeats): a scrape's cost follows what is open now, not the size of the history.
"""

from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Case, Count, Min, Value, When
from django.utils import timezone
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from core.health import workers_last_seen
from grants.models import Site, WebhookRejection
from leads.models import Delivery
from operations import multiprocess
from operations.retention import RULES

# A scrape that cannot read the database in this long answers without the database gauges.
DATABASE_TIMEOUT_MS = 5000
CIRCUIT_STATES = ("closed", "open", "probing")


def exposition(accept: str) -> tuple[bytes, str]:
    """The whole /metrics page and its content type: Prometheus's text format, or OpenMetrics
    when the scraper's Accept header asks for it."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ProcessesCollector(settings.METRICS_DIR))
    registry.register(DatabaseCollector())
    encode, content_type = choose_encoder(accept)
    return encode(registry), content_type


class ProcessesCollector(Collector):
    """Every process's counters and histograms, from their files under METRICS_DIR."""

    def __init__(self, base: Path) -> None:
        self.base = base

    def collect(self) -> Iterable[Metric]:
        try:
            return self._merge()
        except FileNotFoundError:
            # A starting gunicorn or Celery worker removed a dead process's file as it was read.
            return self._merge()

    def _merge(self) -> Iterable[Metric]:
        return MultiProcessCollector.merge([str(path) for path in multiprocess.files(self.base)], accumulate=True)


class DatabaseCollector(Collector):
    """Gauges of the outbox, the sites, rejected callbacks and the workers, read at scrape time,
    and the retention in force."""

    def collect(self) -> Iterator[Metric]:
        try:
            read = _database_read(timezone.now())
        except DatabaseError:
            read = []
        yield _gauge("portal_database_up", "1 when this scrape could read the database's gauges.", 1 if read else 0)
        yield from read
        retention = GaugeMetricFamily(
            "portal_retention_days",
            "Days stored bodies are kept before they are pruned; 0 keeps them.",
            labels=["rule"],
        )
        for rule in RULES:
            retention.add_metric([rule.name], rule.days)
        yield retention


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(name, documentation)
    gauge.add_metric([], value)
    return gauge


def _database_read(now: datetime) -> list[Metric]:
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL statement_timeout = {DATABASE_TIMEOUT_MS}")
        # Index delivery_due (pending and retrying rows only): the claimable backlog and its head.
        due = Delivery.objects.due(now).aggregate(count=Count("*"), oldest=Min("next_attempt_at"))
        # Indexes delivery_claim_expiry (claimed rows only) and delivery_held_age (held rows only).
        in_flight = Delivery.objects.filter(status=Delivery.Status.CLAIMED).count()
        held = Delivery.objects.filter(status=Delivery.Status.HELD).count()
        sites = _sites(now)
        rejected = list(WebhookRejection.objects.order_by("partner__slug").values_list("partner__slug", "count"))
        heartbeat = workers_last_seen()
    oldest = due["oldest"]
    read: list[Metric] = [
        _gauge(
            "portal_delivery_backlog", "Deliveries due now, waiting for a worker (pending or retrying).", due["count"]
        ),
        _gauge(
            "portal_delivery_oldest_due_age_seconds",
            "How long the oldest due delivery has waited for a worker; 0 when none is due.",
            max((now - oldest).total_seconds(), 0.0) if oldest else 0.0,
        ),
        _gauge("portal_deliveries_in_flight", "Deliveries a worker has claimed and is sending.", in_flight),
        _gauge("portal_deliveries_held", "Deliveries held because their site is not granted (yet).", held),
        *sites,
    ]
    rejections = CounterMetricFamily(
        "portal_callbacks_rejected",
        "Destination callbacks refused for a missing or wrong signature, by partner (counted in the database).",
        labels=["partner"],
    )
    for partner, count in rejected:
        rejections.add_metric([partner], count)
    read.append(rejections)
    if heartbeat is not None:
        read.append(
            _gauge(
                "portal_worker_heartbeat_age_seconds", "Seconds since a worker last ran the heartbeat task.", heartbeat
            )
        )
    return read


def _sites(now: datetime) -> list[Metric]:
    """Sites per partner by circuit state and by grant status, zeros included (a full read of the
    sites table: a few rows per partner)."""
    circuit = Case(
        When(circuit_opened_at__isnull=True, then=Value("closed")),
        When(circuit_open_until__gt=now, then=Value("open")),
        default=Value("probing"),
    )
    by_circuit = {
        (row["partner__slug"], row["state"]): row["n"]
        for row in Site.objects.order_by()
        .annotate(state=circuit)
        .values("partner__slug", "state")
        .annotate(n=Count("*"))
    }
    by_status = {
        (row["partner__slug"], row["status"]): row["n"]
        for row in Site.objects.order_by().values("partner__slug", "status").annotate(n=Count("*"))
    }
    circuits = GaugeMetricFamily(
        "portal_site_circuits", "Sites by delivery circuit state: closed, open or probing.", labels=["partner", "state"]
    )
    statuses = GaugeMetricFamily(
        "portal_sites", "Sites by grant status: pending, active, doubtful or revoked.", labels=["partner", "status"]
    )
    for partner in sorted({partner for partner, _ in by_status}):
        for state in CIRCUIT_STATES:
            circuits.add_metric([partner, state], by_circuit.get((partner, state), 0))
        for status in Site.Status.values:
            statuses.add_metric([partner, status], by_status.get((partner, status), 0))
    return [circuits, statuses]
