"""gunicorn settings, read from the environment so `make run` and docker-compose share them."""

import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Threads, not only processes: a request can wait on Real Geeks (the users list) or the
# sandbox's injected latency, and must not block the others.
worker_class = "gthread"
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
accesslog = "-"
# The default format logs the request line, which never carries credentials (Basic auth is a header).
