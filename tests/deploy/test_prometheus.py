"""Prometheus rules and configuration: promtool checks them, and unit-tests every alert."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from tests.deploy.support import (
    DEPLOY,
    ROOT,
    RULES,
    WORKER_JOB,
    alert_rules,
    load_yaml,
    metric_names_in,
    promtool,
    worker_series_names,
)

RULE_TESTS = DEPLOY / "prometheus" / "rules.test.yml"
EXPECTED_ALERTS = {
    "EngagementWorkerDown",
    "EngagementWorkerNotReady",
    "EngagementDependencyDown",
    "EngagementConsumerLagGrowing",
    "EngagementDeadLettersHigh",
    "EngagementAlertRateSpike",
    "EngagementRedisErrors",
    "EngagementSweeperBehind",
}


def test_promtool_accepts_the_rules() -> None:
    """`promtool check rules` passes and counts every alert."""
    result = promtool("check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    """A rule with an unparsable expression fails the same check."""
    doc = load_yaml(RULES)
    doc["groups"][0]["rules"][0]["expr"] = "sum by (job (up)"
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(doc))
    result = promtool("check", "rules", "rules.yml", cwd=tmp_path)
    assert result.returncode != 0


def test_rule_unit_tests_pass() -> None:
    """`promtool test rules`: every alert fires where it should and stays quiet elsewhere."""
    result = promtool("test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_rule_unit_tests_fail_when_a_threshold_changes(tmp_path: Path) -> None:
    """Loosening one threshold makes the unit tests fail: they pin the rules' behaviour."""
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    text = RULES.read_text().replace(
        "engagement_sweep_behind_seconds) > 30", "engagement_sweep_behind_seconds) > 0"
    )
    (tmp_path / "rules.yml").write_text(text)
    result = promtool("test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert result.returncode != 0
    assert "EngagementSweeperBehind" in result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    """rules.test.yml has, for each alert, a case where it fires and one where it does not."""
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in load_yaml(RULE_TESTS)["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    assert set(alert_rules()) == EXPECTED_ALERTS
    assert firing == EXPECTED_ALERTS
    assert quiet == EXPECTED_ALERTS


def test_every_alert_has_severity_text_and_a_runbook_entry() -> None:
    """Each alert carries a severity, a summary, a description and an entry in the runbook
    page of the documentation (docs/guides/runbook.md), which its annotation names."""
    runbook = (ROOT / "docs" / "guides" / "runbook.md").read_text()
    for name, rule in alert_rules().items():
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
        assert rule["annotations"]["runbook"] == f"docs/guides/runbook.md#{name.lower()}", name
        assert f"\n## {name}\n" in runbook, f"the runbook has no entry for {name}"


def test_rules_use_only_metrics_the_worker_exposes() -> None:
    """Every engagement_* series a rule reads is on the worker's /metrics page."""
    exposed = worker_series_names()
    for name, rule in alert_rules().items():
        assert metric_names_in(rule["expr"]) <= exposed, name
    assert set().union(*(metric_names_in(r["expr"]) for r in alert_rules().values()))


def test_rules_select_the_scrape_job_of_the_workers() -> None:
    """The `up` rule names the job that the compose Prometheus scrapes the workers under."""
    jobs = set(re.findall(r'job="([^"]+)"', alert_rules()["EngagementWorkerDown"]["expr"]))
    assert jobs == {WORKER_JOB}
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    assert WORKER_JOB in {job["job_name"] for job in config["scrape_configs"]}


def test_promtool_accepts_the_compose_prometheus_config() -> None:
    """`promtool check config` passes on the compose Prometheus config and finds its rules."""
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("scrape_interval: 15s", "scrape_interval: often"),
        ("  - rules.yml", "  - missing-rules.yml"),
        ("static_configs:", "static_config:"),
    ],
)
def test_promtool_rejects_a_broken_config(tmp_path: Path, old: str, new: str) -> None:
    """A broken copy of the compose config (bad value, missing rule file, typo) fails the check."""
    text = (DEPLOY / "prometheus" / "prometheus.yml").read_text()
    assert old in text
    (tmp_path / "prometheus.yml").write_text(text.replace(old, new, 1))
    shutil.copy(RULES, tmp_path / "rules.yml")
    result = promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert result.returncode != 0
