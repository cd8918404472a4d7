"""The dashboard opens without edits and queries only what exists."""

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.handoff.metrics import HandoffMetrics
from services.ingest.metrics import IngestMetrics
from services.scorer.metrics import ScorerMetrics
from tests.ops.promql import exposed_names, metric_names
from tests.ops.tools import PROMETHEUS_DIR, ROOT, require_tool

GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "hotlead-overview.json"
DATASOURCE_UID = "hotlead-prometheus"


def service_metrics() -> set[str]:
    names = {"up"}  # Prometheus' own per target
    for metrics in (IngestMetrics(), ScorerMetrics(), HandoffMetrics()):
        names |= exposed_names(metrics.registry)
    return names


def rules() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in sorted((PROMETHEUS_DIR / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            found.extend(group["rules"])
    return found


def panels() -> list[dict[str, Any]]:
    return [p for p in json.loads(DASHBOARD.read_text())["panels"] if p["type"] != "row"]


def queries() -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in panels() for t in p["targets"]]


def test_parser_finds_metric_names_and_skips_labels_functions_and_ranges() -> None:
    expr = (
        'sum by (route, le) (rate(hotlead_x_total{route="/o/{token}.gif",le="+Inf"}[5m])) '
        "/ on (route) group_left sum(hotlead:y:rate5m) > 0.5 or vector(0)"
    )
    assert metric_names(expr) == {"hotlead_x_total", "hotlead:y:rate5m"}


def test_dashboard_has_a_stable_uid_and_a_fixed_datasource() -> None:
    text = DASHBOARD.read_text()
    dashboard = json.loads(text)
    assert dashboard["uid"] == "hotlead-overview"
    assert "${DS" not in text
    assert "__inputs" not in dashboard
    assert len(panels()) >= 20
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == DATASOURCE_UID
    provisioned = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    assert [d["uid"] for d in provisioned["datasources"]] == [DATASOURCE_UID]
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/hotlead.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards/hotlead"


def test_every_panel_query_uses_only_existing_metrics_or_recording_rules() -> None:
    known = service_metrics() | {rule["record"] for rule in rules() if "record" in rule}
    used: set[str] = set()
    for title, expr in queries():
        names = metric_names(expr)
        assert names, (title, expr)
        assert names <= known, (title, sorted(names - known))
        used |= names
    # the dashboard covers operations and the funnel
    for needed in (
        "hotlead:ingest_error_ratio:rate5m",
        "hotlead:scorer_event_lag_seconds:p99_5m",
        "hotlead:ingest_request_duration_seconds:p99_5m",
        "hotlead:email_human_open_ratio:1d",
        "hotlead:email_open_ratio:1d",
        "hotlead:email_click_ratio:1d",
        "hotlead:conversion_ratio:1d",
        "hotlead:handoff_opportunity_ratio:1d",
        "hotlead:scorer_handoffs:increase1d",
        "hotlead:qualified_to_accepted_seconds:p50_1d",
    ):
        assert needed in used, needed


def test_every_rule_reads_only_service_metrics_or_earlier_rules() -> None:
    known = service_metrics()
    for rule in rules():
        names = metric_names(rule["expr"])
        assert names, rule
        assert names <= known, (rule.get("record") or rule.get("alert"), sorted(names - known))
        if "record" in rule:
            known.add(rule["record"])


@pytest.mark.tools
def test_every_panel_query_parses(tmp_path: Path) -> None:
    """promtool parses each panel query (as a recording rule of a throwaway file)."""
    group = {
        "name": "panels",
        "rules": [{"record": f"panel:query_{i}", "expr": e} for i, (_, e) in enumerate(queries())],
    }
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump({"groups": [group]}))
    tool = require_tool("promtool", "prometheus")
    result = subprocess.run(
        [tool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(queries())} rules found" in result.stdout
