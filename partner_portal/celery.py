"""The Celery app. Configuration comes from settings (the CELERY_ names); tasks live in apps."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "partner_portal.settings")

app = Celery("partner_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
