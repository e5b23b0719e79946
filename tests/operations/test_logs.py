"""LOG_FORMAT=json: a delivery's log lines are JSON objects carrying its lead, delivery and partner
ids as fields; in text they are in the line itself."""

import json
import logging
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.utils.module_loading import import_string

from leads.models import Delivery
from leads.services import lead_submit
from tests.leads.conftest import SITE_UUID

ROOT = Path(__file__).resolve().parents[2]


def json_formatter() -> logging.Formatter:
    """The formatter settings.LOGGING names for LOG_FORMAT=json, made as logging's dictConfig makes it."""
    logging_config: dict[str, Any] = settings.LOGGING
    spec = dict(logging_config["formatters"]["json"])
    formatter: logging.Formatter = import_string(spec.pop("()"))(**spec)
    return formatter


@pytest.fixture
def json_lines():
    """What the delivery engine logs while the test runs, formatted as with LOG_FORMAT=json."""
    stream = StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    loggers = [logging.getLogger(name) for name in ("leads.delivery", "leads.engine")]
    for logger in loggers:
        logger.addHandler(handler)
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


@pytest.mark.django_db
def test_a_deliverys_json_log_lines_carry_its_lead_delivery_and_partner_ids(
    json_lines, partner, site, rg, django_capture_on_commit_callbacks
):
    rg.answer((503, '{"error": "Service Unavailable"}'))
    with django_capture_on_commit_callbacks(execute=True):
        delivery = lead_submit(
            partner=partner,
            site_uuid=SITE_UUID,
            operation="create_lead",
            data={"source": "Zillow", "email": "jack@example.com"},
        )
    delivery = Delivery.objects.get(pk=delivery.pk)

    lines = json_lines()

    (line,) = [line for line in lines if line["logger"] == "leads.delivery"]
    assert (line["lead_id"], line["delivery_id"], line["partner_id"]) == (
        str(delivery.lead.lead_id),
        delivery.pk,
        partner.pk,
    )
    assert (line["attempt"], line["delivery_status"], line["http_status"]) == (1, "retrying", 503)
    assert line["level"] == "INFO" and line["time"] and isinstance(line["duration_ms"], int)
    assert (
        line["message"]
        == f"delivery {delivery.pk} attempt 1: retrying (lead {delivery.lead.lead_id}, partner {partner.pk})"
    )
    (pump,) = [line for line in lines if line["logger"] == "leads.engine"]
    assert pump["recorded"] == 1 and pump["pump"]


def settings_in(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = (
        "import json; from django.conf import settings as s; "
        "print(json.dumps([s.LOGGING['handlers']['console']['formatter'], s.CELERY_WORKER_HIJACK_ROOT_LOGGER]))"
    )
    environment = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_log_format_json_picks_the_json_formatter_and_keeps_celery_from_installing_its_own(tmp_path):
    json_mode = settings_in({"LOG_FORMAT": "json", "PORTAL_VAR_DIR": str(tmp_path)})
    text_mode = settings_in({"LOG_FORMAT": "text", "PORTAL_VAR_DIR": str(tmp_path)})

    assert json.loads(json_mode.stdout.splitlines()[-1]) == ["json", False]
    assert json.loads(text_mode.stdout.splitlines()[-1]) == ["plain", True]


def test_an_unknown_log_format_stops_start_up_naming_the_setting(tmp_path):
    result = settings_in({"LOG_FORMAT": "xml", "PORTAL_VAR_DIR": str(tmp_path)})

    assert result.returncode != 0
    assert "LOG_FORMAT must be 'text' or 'json'." in result.stderr
