"""Settings, driven by the environment (django-environ).

Two shapes:
- development (the default, `PORTAL_ENV=development`): SQLite under var/, a broker that needs
  no server, the local sandbox as Real Geeks, secrets generated once into var/. `make run` and
  the tests need nothing else.
- production (`PORTAL_ENV=production`): every secret must come from the environment, and a
  missing one stops start-up with an error that names the variable.
"""

import contextlib
import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path

import environ
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("PORTAL_VAR_DIR", default=str(BASE_DIR / "var")))
# Secrets and the SQLite database live here: a directory made for them is its owner's alone.
VAR_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env")

PORTAL_ENV = env.str("PORTAL_ENV", default="development")
if PORTAL_ENV not in ("development", "production"):
    raise ImproperlyConfigured("PORTAL_ENV must be 'development' or 'production'.")
PRODUCTION = PORTAL_ENV == "production"

REALGEEKS_PRODUCTION_URL = "https://receivers.leadrouter.realgeeks.com/rest"


def _required_in_production(name: str, development_default: str) -> str:
    """The variable's value; in production its absence is an error naming it."""
    value = env.str(name, default="")
    if value:
        return value
    if PRODUCTION:
        raise ImproperlyConfigured(f"Set the {name} environment variable (required in production).")
    return development_default


def _owner_only(path: Path) -> None:
    """Take away the access of group and others that an older version (or the umask) gave a file."""
    if path.exists() and path.stat().st_mode & 0o077:
        with contextlib.suppress(PermissionError):  # another user's file is theirs to fix
            path.chmod(0o600)


def _development_secret(filename: str, make: Callable[[], str]) -> str:
    """A secret generated once into var/, so development restarts keep sessions and data readable.

    Written to a 0600 temporary file, then linked into place: no other user can read it at any
    moment, and of two processes starting at once (`make run` starts several) the first wins and
    the other reads its secret rather than writing a second one.
    """
    path = VAR_DIR / filename
    if not path.exists():
        fd, temporary = tempfile.mkstemp(dir=VAR_DIR, prefix=f".{filename}.")  # mode 0600
        with os.fdopen(fd, "w") as file:
            file.write(make())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(temporary)
    _owner_only(path)
    return path.read_text().strip()


def _sqlite_file(name: str) -> None:
    """Create the SQLite database empty and 0600 before SQLite does (it would use the umask,
    usually 0644); SQLite gives its -wal and -shm files the database's mode."""
    if name == ":memory:" or name.startswith("file:"):
        return
    path = Path(name)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        for existing in (path, *(path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal"))):
            _owner_only(existing)
    except FileNotFoundError:
        pass  # no such directory: SQLite will say so when it connects


SECRET_KEY = _required_in_production(
    "SECRET_KEY",
    "" if PRODUCTION else _development_secret("dev-secret-key", lambda: secrets.token_urlsafe(50)),
)
# Newest key first: new values are encrypted with the first, old values decrypt with any.
# `manage.py rotate_encryption_keys` re-encrypts every stored secret with the first key.
FIELD_ENCRYPTION_KEYS = [
    key.strip()
    for key in _required_in_production(
        "FIELD_ENCRYPTION_KEYS",
        "" if PRODUCTION else _development_secret("dev-encryption-key", lambda: Fernet.generate_key().decode()),
    ).split(",")
    if key.strip()
]
# Checked here, at start-up, rather than at the first write of a secret: a mistyped key must
# stop a deploy, not fail a partner's save hours later.
from grants.encryption import keys_check  # noqa: E402

keys_check(FIELD_ENCRYPTION_KEYS)
# Django's own deploy check calls a key weak below 50 characters or 5 distinct ones; in production
# such a key (or Django's generated `django-insecure-` kind) stops start-up instead of warning.
if PRODUCTION and (len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("django-insecure-")):
    raise ImproperlyConfigured(
        "SECRET_KEY is too weak for production: use at least 50 random characters, e.g. "
        "python -c 'import secrets; print(secrets.token_urlsafe(50))'."
    )

DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[] if PRODUCTION else ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "anymail",
    "axes",
    "core",
    "portal",
    "grants",
    "leads",
    "sandbox",
    "operations",
    "alerts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "partner_portal.csp.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns locked-out logins into the lockout response.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "partner_portal.urls"
WSGI_APPLICATION = "partner_portal.wsgi.application"
ASGI_APPLICATION = "partner_portal.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'portal.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    _sqlite_file(str(DATABASES["default"]["NAME"]))
    # WAL lets the web process read while a worker writes; IMMEDIATE takes the write lock at
    # BEGIN so two writers queue on `timeout` instead of failing with "database is locked", and
    # the backend queues writers on a lock of its own first, so they go in turn rather than
    # polling SQLite's lock (partner_portal.sqlite.write_lock says why).
    if env.bool("SQLITE_WRITE_QUEUE", default=True):
        DATABASES["default"]["ENGINE"] = "partner_portal.sqlite"
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # Tests use SQLite's in-memory database, as Django does by default. Said outright because
    # the backend above has its own name, and pytest-xdist's per-worker databases (`make test`
    # runs the unit tests two at a time) would otherwise become files named after the path.
    DATABASES["default"]["TEST"] = {"NAME": ":memory:"}
# Connections are kept between requests on every database: opening one per request cost the
# embedded default (SQLite: connect, the PRAGMAs, Django's functions) more than a push itself.
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Shared by every process in production (CACHE_URL=redis://...): API-key failure counts per
# client address and RG's cached users lists. The default is per process, enough for one host.
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Staff login lockout (django-axes): this many failures per username and address locks the
# pair out for AXES_COOLOFF_TIME hours.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=1.0)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_SENSITIVE_PARAMETERS = ["password"]
# Dashboard: the locked-out page in the portal's layout (status 429), not axes' plain text.
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=PRODUCTION)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=PRODUCTION)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if PRODUCTION else None
X_FRAME_OPTIONS = "DENY"
# HTTPS only in production: plain HTTP is redirected, and browsers are told (HSTS) never to try
# it again. /healthz stays answerable over plain HTTP for load balancers that probe that way.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=PRODUCTION)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=PRODUCTION)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=PRODUCTION)

# Content-Security-Policy (django-csp): only the portal's own scripts, styles and images, no
# inline code anywhere (confirmations and the progress poll are static files), nothing framed.
# /api/docs/ relaxes styles only, for Swagger UI (leads/urls.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# Real Geeks and the sandbox that stands in for it.
SANDBOX_ENABLED = env.bool("SANDBOX_ENABLED", default=not PRODUCTION)
PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="http://127.0.0.1:8000")
REALGEEKS_API_URL = env.str(
    "REALGEEKS_API_URL",
    default=REALGEEKS_PRODUCTION_URL if PRODUCTION else f"{PORTAL_BASE_URL}/sandbox/rest",
)
# Hosts that may receive a partner's RG credentials (grants/rg_url.py): https on the entry's port
# (443 unless it says host:port); loopback entries also admit http, on any port unless they name one.
REALGEEKS_ALLOWED_HOSTS = env.list(
    "REALGEEKS_ALLOWED_HOSTS",
    default=["receivers.leadrouter.realgeeks.com"] + ([] if PRODUCTION else ["127.0.0.1", "localhost", "::1"]),
)
from grants import rg_url  # noqa: E402

# Parsing the list happens here in every environment; a refused URL stops production only.
if (_problem := rg_url.refusal(REALGEEKS_API_URL, REALGEEKS_ALLOWED_HOSTS)) and PRODUCTION:
    raise ImproperlyConfigured(f"REALGEEKS_API_URL is refused: {_problem}")
REALGEEKS_GRANT_URL_TEMPLATE = "https://leadrouter.realgeeks.com/dev/{company_id}/grant/"
# DESIGN.md: connect ~5 s, read ~20 s. RG's own 2 s client timeout misreads slow successes.
REALGEEKS_CONNECT_TIMEOUT = env.float("REALGEEKS_CONNECT_TIMEOUT", default=5.0)
REALGEEKS_READ_TIMEOUT = env.float("REALGEEKS_READ_TIMEOUT", default=20.0)

# Lead delivery (leads app). Retry delays grow BASE * FACTOR**(n-1) with +-JITTER, capped at
# MAX; the defaults give 8 attempts over about 18 hours, then the delivery is dead.
DELIVERY_MAX_ATTEMPTS = env.int("DELIVERY_MAX_ATTEMPTS", default=8)
DELIVERY_RETRY_BASE_SECONDS = env.float("DELIVERY_RETRY_BASE_SECONDS", default=60.0)
DELIVERY_RETRY_FACTOR = env.float("DELIVERY_RETRY_FACTOR", default=3.0)
DELIVERY_RETRY_MAX_SECONDS = env.float("DELIVERY_RETRY_MAX_SECONDS", default=12 * 3600.0)
DELIVERY_RETRY_JITTER = env.float("DELIVERY_RETRY_JITTER", default=0.2)
# A worker's claim on a delivery; it must outlast one RG call (connect + read timeout).
DELIVERY_LEASE_SECONDS = env.float(
    "DELIVERY_LEASE_SECONDS", default=REALGEEKS_CONNECT_TIMEOUT + REALGEEKS_READ_TIMEOUT + 30.0
)
DELIVERY_SWEEP_INTERVAL_SECONDS = env.float("DELIVERY_SWEEP_INTERVAL_SECONDS", default=15.0)
DELIVERY_SWEEP_BATCH = env.int("DELIVERY_SWEEP_BATCH", default=500)
# Deliveries held for an ungranted site fail after this long, with a reason saying so.
DELIVERY_HELD_MAX_AGE_HOURS = env.float("DELIVERY_HELD_MAX_AGE_HOURS", default=7 * 24.0)
# The delivery engine (leads/engine.py). Each worker process runs a pump that keeps up to
# DELIVERY_IN_FLIGHT calls to RG in flight at once, claiming due deliveries in batches.
DELIVERY_IN_FLIGHT = env.int("DELIVERY_IN_FLIGHT", default=64)
# How those calls are made: "asyncio" (aiohttp, the default) or "threads" (requests in a thread
# pool); bench/senders.py measures both.
DELIVERY_SENDER = env.str("DELIVERY_SENDER", default="asyncio")
# Politeness toward RG, per partner (one set of RG credentials), across all worker processes:
# at most this many calls in flight, and (when above 0) at most this many calls a second.
DELIVERY_PARTNER_MAX_IN_FLIGHT = env.int("DELIVERY_PARTNER_MAX_IN_FLIGHT", default=64)
DELIVERY_PARTNER_MAX_PER_SECOND = env.float("DELIVERY_PARTNER_MAX_PER_SECOND", default=0.0)
# The circuit breaker per partner and site (leads/circuit.py): after this many consecutive 5xx
# answers or timeouts nothing is sent to the site for the cool-down, then one probe.
DELIVERY_CIRCUIT_FAILURES = env.int("DELIVERY_CIRCUIT_FAILURES", default=5)
DELIVERY_CIRCUIT_COOLDOWN_SECONDS = env.float("DELIVERY_CIRCUIT_COOLDOWN_SECONDS", default=60.0)
# A pump claims new work for this long, then finishes what is in flight and hands over (so
# other tasks get the worker process in turn); it lingers this long with nothing to do first.
DELIVERY_PUMP_SECONDS = env.float("DELIVERY_PUMP_SECONDS", default=20.0)
DELIVERY_PUMP_IDLE_SECONDS = env.float("DELIVERY_PUMP_IDLE_SECONDS", default=2.0)
ATTEMPT_BODY_MAX_CHARS = env.int("ATTEMPT_BODY_MAX_CHARS", default=4000)
PUSH_MAX_BODY_BYTES = env.int("PUSH_MAX_BODY_BYTES", default=1024 * 1024)
# API keys are kept per process this long (grants/authentication.py): a revoked key stops
# working everywhere within it. Failed key attempts past the rate get 429 per client address.
API_KEY_CACHE_SECONDS = env.float("API_KEY_CACHE_SECONDS", default=5.0)
API_KEY_FAILURES_PER_MINUTE = env.int("API_KEY_FAILURES_PER_MINUTE", default=30)
# A push repeating one accepted for the same lead within this many seconds (same operation and
# body) is a product's retry after a lost answer: it gets the same answer and no second delivery.
PUSH_IDEMPOTENCY_SECONDS = env.int("PUSH_IDEMPOTENCY_SECONDS", default=600)
# The push path's and the callback webhook's statements are prepared once per PostgreSQL
# connection (partner_portal/database.py).
# Turn this off behind a connection pooler in transaction mode that cannot keep prepared
# statements (PgBouncer before 1.21).
ACCEPT_PREPARED_STATEMENTS = env.bool("ACCEPT_PREPARED_STATEMENTS", default=True)
# Bounds on one lead: activities per request and over the lead's life are refused past these
# (RG-style 422 naming the setting); the lead's stored state keeps its latest LEAD_KEEP_ACTIVITIES
# (every activity stays in the payload of the delivery that carried it).
PUSH_MAX_ACTIVITIES = env.int("PUSH_MAX_ACTIVITIES", default=1000)
LEAD_MAX_ACTIVITIES = env.int("LEAD_MAX_ACTIVITIES", default=10000)
LEAD_KEEP_ACTIVITIES = env.int("LEAD_KEEP_ACTIVITIES", default=100)
# A lead's dashboard page and its API document show its latest deliveries, each with its latest
# attempts, and page through the rest; whatever the lead's history, a page holds no more.
LEAD_PAGE_DELIVERIES = env.int("LEAD_PAGE_DELIVERIES", default=50)
LEAD_PAGE_ATTEMPTS = env.int("LEAD_PAGE_ATTEMPTS", default=10)
if LEAD_PAGE_DELIVERIES < 1 or LEAD_PAGE_ATTEMPTS < 1:
    raise ImproperlyConfigured("LEAD_PAGE_DELIVERIES and LEAD_PAGE_ATTEMPTS must be at least 1.")
REALGEEKS_USERS_CACHE_SECONDS = env.int("REALGEEKS_USERS_CACHE_SECONDS", default=60)

# Celery. The default broker is a folder of message files: no server process, so `make run`
# works on a bare machine. `filesystem://` is partner_portal/broker.py's transport (kombu's own,
# made safe for several processes; registered in celery.py). Production sets CELERY_BROKER_URL
# to Redis or RabbitMQ.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
from partner_portal.broker import folder_options as broker_folder_options  # noqa: E402

if CELERY_BROKER_URL.startswith("filesystem://"):
    # Every process makes the folders it needs at start-up; the transport makes them again if
    # they are removed while it runs.
    CELERY_BROKER_TRANSPORT_OPTIONS = broker_folder_options(VAR_DIR / "broker")
else:
    # Redis redelivers an unacknowledged message after this long; it must exceed the longest
    # task (see CELERY_TASK_TIME_LIMIT), or a slow task could run twice at once.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=120)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=150)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The web process must answer even when the broker is down: the outbox row is the truth and the
# sweeper enqueues it later, so publishing gives up quickly instead of hanging the request.
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=2.0)
CELERY_TASK_PUBLISH_RETRY = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {}
# How much lower than the web process's the worker's CPU priority is (nice(2), 0-19): on shared
# cores a push waiting on its answer goes first, a delivery waits in the outbox (partner_portal/celery.py).
WORKER_NICENESS = env.int("WORKER_NICENESS", default=10)
# core: worker liveness for /healthz. A tick no worker took in time is dropped (`expires`), so
# heartbeats do not pile up in the queue while every worker is down.
WORKER_HEARTBEAT_SECONDS = env.float("WORKER_HEARTBEAT_SECONDS", default=30.0)
CELERY_BEAT_SCHEDULE["portal-heartbeat"] = {
    "task": "portal.tasks.heartbeat_record",
    "schedule": WORKER_HEARTBEAT_SECONDS,
    "options": {"expires": WORKER_HEARTBEAT_SECONDS},
}
# leads: re-publish due, stale and orphaned deliveries. Sweeps are idempotent, so one missed
# while the workers are down is dropped rather than queued behind the others.
CELERY_BEAT_SCHEDULE["leads-sweep"] = {
    "task": "leads.tasks.deliveries_sweep_task",
    "schedule": DELIVERY_SWEEP_INTERVAL_SECONDS,
    "options": {"expires": max(DELIVERY_SWEEP_INTERVAL_SECONDS, 10.0)},
}

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
    # leads: every API error, DRF's own included, becomes RG's {"error": "..."} shape.
    "EXCEPTION_HANDLER": "leads.api.errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Partner Portal API",
    "DESCRIPTION": "The Real Geeks Incoming Leads API, path for path, plus the portal's read and act API.",
    "VERSION": "1",
    # leads: the docs page serves Swagger UI from the drf-spectacular-sidecar package, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "LeadStatusEnum": "leads.models.Lead.Status",
        "DeliveryStatusEnum": "leads.models.Delivery.Status",
        "SiteStatusEnum": "grants.models.Site.Status",
    },
}

# LOG_FORMAT=json: one JSON object a line (python-json-logger), with a log call's `extra` as fields
# (the delivery lines carry lead, delivery and partner ids). Celery then keeps this configuration
# instead of putting its own text handler on the root logger; gunicorn.conf.py does the same for
# gunicorn's lines.
LOG_FORMAT = env.str("LOG_FORMAT", default="text")
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured("LOG_FORMAT must be 'text' or 'json'.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": ["levelname", "name", "message"],
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json" if LOG_FORMAT == "json" else "plain"}
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = LOG_FORMAT != "json"

# --- Operating it (operations app): /metrics and the retention of stored bodies ---------------------
# /metrics answers only a request carrying one of these (comma-separated, so a token can rotate)
# as `Authorization: Bearer <token>`; with none set it is a 404.
METRICS_TOKENS = [token.strip() for token in env.list("METRICS_TOKEN", default=[]) if token.strip()]
# Each process of this host keeps its counters in files here, one folder per kind of process
# (operations/multiprocess.py); /metrics adds them up. Local to one machine or container.
METRICS_DIR = Path(env.str("METRICS_DIR", default=str(VAR_DIR / "metrics")))
from operations import multiprocess  # noqa: E402

multiprocess.use(METRICS_DIR)
# Bodies older than this many days are pruned (0 keeps them forever); the rows and their summary
# fields stay. Attempts: the delivery keeps the whole payload, and a month covers any retry or
# investigation. Callbacks: they are the evidence of a grant, kept a quarter. Grant emails: rare
# and small, the evidence of a grant; a year. Those waiting for review are never pruned.
RETENTION_ATTEMPT_BODY_DAYS = env.int("RETENTION_ATTEMPT_BODY_DAYS", default=30)
RETENTION_CALLBACK_BODY_DAYS = env.int("RETENTION_CALLBACK_BODY_DAYS", default=90)
RETENTION_GRANT_EMAIL_DAYS = env.int("RETENTION_GRANT_EMAIL_DAYS", default=365)
# Rows a prune changes per UPDATE (its own short transaction).
RETENTION_BATCH_SIZE = env.int("RETENTION_BATCH_SIZE", default=2000)
if min(RETENTION_ATTEMPT_BODY_DAYS, RETENTION_CALLBACK_BODY_DAYS, RETENTION_GRANT_EMAIL_DAYS) < 0:
    raise ImproperlyConfigured("RETENTION_*_DAYS must be 0 (keep forever) or more.")
if RETENTION_BATCH_SIZE < 1:
    raise ImproperlyConfigured("RETENTION_BATCH_SIZE must be at least 1.")
CELERY_BEAT_SCHEDULE["operations-bodies-prune"] = {
    "task": "operations.tasks.bodies_prune_task",
    "schedule": 3600.0,
    "options": {"expires": 3600.0},
}

# --- Site grants (grants app): Destination callbacks and grant emails ----------------------------
# A callback body over this size gets 413 before it is read (RG's callbacks are a few KiB).
GRANT_WEBHOOK_MAX_BODY_BYTES = env.int("GRANT_WEBHOOK_MAX_BODY_BYTES", default=1024 * 1024)
# Each web process keeps what the callback webhook reads about a partner (active, decrypted
# Destination secrets) this long: a deactivation or a rotated secret takes effect within it.
PARTNER_CACHE_SECONDS = env.float("PARTNER_CACHE_SECONDS", default=5.0)
# Raw grant emails are kept up to this many bytes; the parser has read the whole message anyway.
GRANT_EMAIL_STORE_MAX_BYTES = env.int("GRANT_EMAIL_STORE_MAX_BYTES", default=2 * 1024 * 1024)
# The inbound-email provider, in anymail's spelling ("postmark", "mailgun", "amazon_ses", ...);
# blank turns the webhook off. Its URL: /webhooks/grant-email/<esp>/inbound/. Anymail's own
# settings come from ANYMAIL_* variables, e.g. ANYMAIL_WEBHOOK_SECRET=user:password (the basic
# auth in the URL given to the provider) or ANYMAIL_MAILGUN_WEBHOOK_SIGNING_KEY.
GRANT_EMAIL_INBOUND_ESP = env.str("GRANT_EMAIL_INBOUND_ESP", default="")
ANYMAIL = {name.removeprefix("ANYMAIL_"): value for name, value in env.ENVIRON.items() if name.startswith("ANYMAIL_")}
if PRODUCTION and GRANT_EMAIL_INBOUND_ESP and not ANYMAIL.get("WEBHOOK_SECRET"):
    raise ImproperlyConfigured("Set ANYMAIL_WEBHOOK_SECRET (user:password) to protect the grant-email webhook.")
# Anyone can email the grant address, so the webhook and the mailbox grant only what the receiving
# server authenticated (grants/sender_auth.py): its Authentication-Results (RFC 8601) shows DKIM
# or SPF passing for one of these domains (or a subdomain) that the From address is under too.
GRANT_EMAIL_SENDER_DOMAINS = env.list("GRANT_EMAIL_SENDER_DOMAINS", default=["realgeeks.com"])
# The authserv-ids of the servers that receive grant emails and stamp every message with their
# Authentication-Results (the provider behind the webhook, the mailbox's server). Empty: nothing
# is verified, and every message from the webhook or the mailbox waits for review.
GRANT_EMAIL_TRUSTED_AUTHSERV_IDS = env.list("GRANT_EMAIL_TRUSTED_AUTHSERV_IDS", default=[])
# The grant mailbox poll (IMAP) runs only when GRANT_IMAP_HOST is set.
GRANT_IMAP_HOST = env.str("GRANT_IMAP_HOST", default="")
GRANT_IMAP_PORT = env.int("GRANT_IMAP_PORT", default=993)
GRANT_IMAP_SSL = env.bool("GRANT_IMAP_SSL", default=True)
GRANT_IMAP_USER = env.str("GRANT_IMAP_USER", default="")
GRANT_IMAP_PASSWORD = env.str("GRANT_IMAP_PASSWORD", default="")
GRANT_IMAP_FOLDER = env.str("GRANT_IMAP_FOLDER", default="INBOX")
GRANT_IMAP_BATCH = env.int("GRANT_IMAP_BATCH", default=100)
GRANT_IMAP_TIMEOUT = env.float("GRANT_IMAP_TIMEOUT", default=30.0)
GRANT_IMAP_POLL_SECONDS = env.float("GRANT_IMAP_POLL_SECONDS", default=60.0)
if GRANT_IMAP_HOST and not (GRANT_IMAP_USER and GRANT_IMAP_PASSWORD):
    raise ImproperlyConfigured("GRANT_IMAP_HOST is set: also set GRANT_IMAP_USER and GRANT_IMAP_PASSWORD.")
# Callbacks a lost processing hint left waiting (or whose worker died) are asked for again.
CELERY_BEAT_SCHEDULE["grants-webhook-events-requeue"] = {
    "task": "grants.tasks.webhook_events_requeue",
    "schedule": 60.0,
}
if GRANT_IMAP_HOST:
    CELERY_BEAT_SCHEDULE["grants-mailbox-poll"] = {
        "task": "grants.tasks.grant_mailbox_poll",
        "schedule": GRANT_IMAP_POLL_SECONDS,
    }

# --- Staff dashboard, bulk retry (leads.bulk) ------------------------------------------------------
# A job retries at most this many failed/dead deliveries (the page says so); a worker handles them
# BULK_RETRY_CHUNK_SIZE per task, so one task stays far inside CELERY_TASK_SOFT_TIME_LIMIT.
BULK_RETRY_MAX_DELIVERIES = env.int("BULK_RETRY_MAX_DELIVERIES", default=10_000)
BULK_RETRY_CHUNK_SIZE = env.int("BULK_RETRY_CHUNK_SIZE", default=200)
# An unfinished job with no progress for this long (a lost broker message) is published again.
BULK_RETRY_STALL_SECONDS = env.float("BULK_RETRY_STALL_SECONDS", default=120.0)
CELERY_BEAT_SCHEDULE["leads-bulk-retries-resume"] = {
    "task": "leads.tasks.bulk_retries_resume_task",
    "schedule": 60.0,
    "options": {"expires": 60.0},
}

# --- Alerts (alerts app): rules, incidents and notices to channels --------------------------------
# Beat runs the per-partner rules this often (a worker evaluates them), and sends due notices; the
# worker-heartbeat rule is checked by a watchdog inside beat itself (alerts/watchdog.py).
ALERTS_EVALUATE_SECONDS = env.float("ALERTS_EVALUATE_SECONDS", default=30.0)
# An incident opening within this long of the last notice about the same partner, rule and subject
# is recorded but sends nothing (nor its recovery) unless it is still open when the time is up.
ALERTS_RATE_LIMIT_MINUTES = env.float("ALERTS_RATE_LIMIT_MINUTES", default=60.0)
# The rules' thresholds (alerts/rules.py).
ALERTS_NEEDS_HUMAN_COUNT = env.int("ALERTS_NEEDS_HUMAN_COUNT", default=1)
ALERTS_NEEDS_HUMAN_HOURS = env.float("ALERTS_NEEDS_HUMAN_HOURS", default=24.0)
ALERTS_CIRCUIT_OPEN_MINUTES = env.float("ALERTS_CIRCUIT_OPEN_MINUTES", default=0.0)
ALERTS_SITE_REVOKED_HOURS = env.float("ALERTS_SITE_REVOKED_HOURS", default=24.0)
ALERTS_BACKLOG_MINUTES = env.float("ALERTS_BACKLOG_MINUTES", default=15.0)
ALERTS_HEARTBEAT_MINUTES = env.float("ALERTS_HEARTBEAT_MINUTES", default=5.0)
ALERTS_GRANT_EMAIL_REVIEW_MINUTES = env.float("ALERTS_GRANT_EMAIL_REVIEW_MINUTES", default=0.0)
# Sending: attempts per notice, the first retry's delay (doubling, at most an hour), HTTP timeout.
ALERTS_NOTIFY_MAX_ATTEMPTS = env.int("ALERTS_NOTIFY_MAX_ATTEMPTS", default=8)
ALERTS_NOTIFY_RETRY_SECONDS = env.float("ALERTS_NOTIFY_RETRY_SECONDS", default=60.0)
ALERTS_HTTP_TIMEOUT_SECONDS = env.float("ALERTS_HTTP_TIMEOUT_SECONDS", default=10.0)
# Partners choose the Slack and webhook URLs, so in production they must be https and reach public
# addresses only (checked on each connection, alerts/outbound.py). Development allows http and
# loopback, for local receivers.
ALERTS_ALLOW_LOCAL_URLS = env.bool("ALERTS_ALLOW_LOCAL_URLS", default=not PRODUCTION)
ALERTS_EMAIL_FROM = env.str("ALERTS_EMAIL_FROM", default="Partner Portal <alerts@localhost>")
# Outgoing mail, for email channels. Development prints messages to the worker's log; production
# sends by SMTP, or through a provider with anymail (e.g. EMAIL_BACKEND=
# anymail.backends.postmark.EmailBackend and ANYMAIL_POSTMARK_SERVER_TOKEN).
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.smtp.EmailBackend"
    if PRODUCTION
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(VAR_DIR / "mail"))
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = ALERTS_HTTP_TIMEOUT_SECONDS
# Both are idempotent, so a tick no worker took in time is dropped rather than queued behind others.
CELERY_BEAT_SCHEDULE["alerts-evaluate"] = {
    "task": "alerts.tasks.alerts_evaluate_task",
    "schedule": ALERTS_EVALUATE_SECONDS,
    "options": {"expires": max(ALERTS_EVALUATE_SECONDS, 10.0)},
}
CELERY_BEAT_SCHEDULE["alerts-notifications-send"] = {
    "task": "alerts.tasks.notifications_send_task",
    "schedule": ALERTS_EVALUATE_SECONDS,
    "options": {"expires": max(ALERTS_EVALUATE_SECONDS, 10.0)},
}
