"""gunicorn settings, read from the environment so `make run` and docker-compose share them."""

import os
from typing import Any

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Threads, not only processes: a request can wait on Real Geeks (the users list) or the
# sandbox's injected latency, and must not block the others.
worker_class = "gthread"
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
accesslog = "-"
# The default format logs the request line, which never carries credentials (Basic auth is a header).

if os.environ.get("LOG_FORMAT") == "json":
    # gunicorn's own lines (the access log, its master's messages) as JSON too, like the portal's.
    logconfig_dict = {
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": ["levelname", "name", "message"],
                "rename_fields": {"levelname": "level", "name": "logger"},
                "timestamp": "time",
            }
        },
        "handlers": {
            "error": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
            "access": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"},
        },
        "loggers": {
            "gunicorn.error": {"handlers": ["error"], "level": "INFO", "propagate": False},
            "gunicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
        "root": {"handlers": ["error"], "level": "INFO"},
    }


def on_starting(server: Any) -> None:
    """Before the workers are forked: they keep their metrics in the web folder, emptied of what
    dead processes left (operations/multiprocess.py)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "partner_portal.settings")
    from django.conf import settings

    from operations import multiprocess

    multiprocess.process_start(settings.METRICS_DIR, "web")


def post_worker_init(worker: Any) -> None:
    """In each worker, before it accepts: what its first requests would otherwise load."""
    from partner_portal.warm import warm

    warm()


def child_exit(server: Any, worker: Any) -> None:
    from operations import multiprocess

    multiprocess.process_exit(worker.pid)
