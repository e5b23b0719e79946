from typing import Any

from django.apps import AppConfig


class OperationsConfig(AppConfig):
    """Running the portal: /metrics, the retention of stored bodies, the log format."""

    name = "operations"

    def ready(self) -> None:
        from celery.signals import worker_init

        worker_init.connect(_worker_starting, dispatch_uid="operations.worker_starting")


def _worker_starting(**kwargs: Any) -> None:
    # Celery's main process, before it forks its pool: the pool's processes count in the
    # worker's folder (operations/multiprocess.py).
    from django.conf import settings

    from operations import multiprocess

    multiprocess.process_start(settings.METRICS_DIR, "worker")
