"""docs/grafana-dashboard.json: valid for import, and every query names a series /metrics serves."""

import json
import re
from pathlib import Path

from tests.operations.test_metrics import SERIES

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"
# Series /metrics serves only once something happened: a worker heartbeat, a prune.
OCCASIONAL = {"portal_worker_heartbeat_age_seconds": "gauge", "portal_bodies_pruned": "counter"}


def queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def family(sample: str) -> str:
    return re.sub(r"_(total|bucket|count|sum)$", "", sample)


def test_every_query_names_a_series_that_metrics_serves_with_its_types_suffix():
    served = {**SERIES, **OCCASIONAL}

    for expr in queries():
        for sample in re.findall(r"\bportal_[a-z_]+", expr):
            name = family(sample)
            assert name in served, f"{sample} in {expr!r} is not served by /metrics"
            if served[name] == "counter":
                assert sample.endswith("_total"), expr
            if served[name] == "histogram":
                assert sample.endswith("_bucket"), expr


def test_the_dashboard_shows_every_series_the_issue_names():
    shown = {family(sample) for expr in queries() for sample in re.findall(r"\bportal_[a-z_]+", expr)}

    assert set(SERIES) <= shown
