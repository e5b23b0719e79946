"""The Celery app. Configuration comes from settings (the CELERY_ names); tasks live in apps."""

import os

from celery import Celery
from kombu.transport import TRANSPORT_ALIASES  # type: ignore[attr-defined]

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "partner_portal.settings")

# `filesystem://` (the development default broker) means our transport, not kombu's: kombu's can
# hand the worker a half-written message, which kills it (partner_portal/broker.py). Every
# process (web publishing, beat, the worker consuming, manage.py) imports this module through
# the `partner_portal` package before it opens a broker connection.
TRANSPORT_ALIASES["filesystem"] = "partner_portal.broker:Transport"

app = Celery("partner_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
