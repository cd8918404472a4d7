"""The Prometheus configuration, the rules and their unit tests, checked by promtool."""

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.ops.tools import PROMETHEUS_DIR, require_tool

pytestmark = pytest.mark.tools

RULE_FILES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*_test.yml"))


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    tool = require_tool("promtool", "prometheus")
    return subprocess.run(
        [tool, *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )


def test_there_are_rules_and_rule_tests() -> None:
    assert [p.name for p in RULE_FILES] == ["kpis.yml", "operations.yml"]
    assert [p.name for p in RULE_TESTS] == ["alerts_test.yml", "kpis_test.yml"]


def test_config_and_rules_are_valid() -> None:
    result = promtool("check", "config", PROMETHEUS_DIR / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 rule files found" in result.stdout


def test_rules_pass_promtool_lint() -> None:
    result = promtool("check", "rules", *RULE_FILES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_FILES)


def test_rule_unit_tests_pass() -> None:
    result = promtool("test", "rules", *RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_TESTS)


def _rules() -> list[dict[str, str]]:
    rules: list[dict[str, str]] = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules.extend(group["rules"])
    return rules


def test_every_alert_is_unit_tested_and_has_a_runbook() -> None:
    alerts = [rule["alert"] for rule in _rules() if "alert" in rule]
    tested = (PROMETHEUS_DIR / "tests" / "alerts_test.yml").read_text()
    runbooks = (PROMETHEUS_DIR.parents[1] / "docs" / "operations.md").read_text()
    headings = {line[4:].strip() for line in runbooks.splitlines() if line.startswith("### ")}
    assert len(alerts) >= 8
    for name in alerts:
        assert f"alertname: {name}\n" in tested, f"{name} has no firing test"
        assert name in headings, f"{name} has no runbook section (### {name})"
    for rule in _rules():
        if "alert" in rule:
            anchor = rule["annotations"]["runbook_url"].split("#")[1]  # type: ignore[index]
            assert anchor == rule["alert"].lower()


def test_every_kpi_rule_is_unit_tested() -> None:
    tested = (PROMETHEUS_DIR / "tests" / "kpis_test.yml").read_text()
    kpis = yaml.safe_load((PROMETHEUS_DIR / "rules" / "kpis.yml").read_text())
    for rule in kpis["groups"][0]["rules"]:
        if rule["record"].endswith(("ratio:1d", "_1d")) or "scorer_" in rule["record"]:
            assert f"expr: {rule['record']}" in tested, rule["record"]
