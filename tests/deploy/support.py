"""Shared helpers for the deployment checks: repository paths, settings names, promtool."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from devtools.localstack.tools import ensure_program
from stream.adapters.metrics import Metrics
from stream.config.settings import Settings

__all__ = [
    "DASHBOARD",
    "DEPLOY",
    "ROOT",
    "RULES",
    "WORKER_JOB",
    "alert_rules",
    "dashboard_expressions",
    "interpolate",
    "load_yaml",
    "metric_names_in",
    "promtool",
    "series_names",
    "settings_env_names",
    "worker_series_names",
]

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RULES = DEPLOY / "prometheus" / "rules.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "engagement-stream.json"
WORKER_JOB = "engagement-worker"
# Grafana's built-in variables, replaced by what Grafana would send for a short time range.
_GRAFANA_VARIABLES = {"$__rate_interval": "1m"}

_METRIC = re.compile(r"\bengagement_[a-z_]+\b")
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
}


def load_yaml(path: Path) -> Any:
    """One YAML document from a file."""
    return yaml.safe_load(path.read_text())


def alert_rules(path: Path = RULES) -> dict[str, dict[str, Any]]:
    """The alerting rules of a rules file, by alert name."""
    groups = load_yaml(path)["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}


def dashboard_expressions(path: Path = DASHBOARD) -> dict[str, str]:
    """Every panel query of the dashboard, as sent to Prometheus, by "panel title/refId"."""
    found = {}
    for panel in json.loads(path.read_text())["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in _GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            found[f"{panel['title']}/{target['refId']}"] = expr
    return found


class _RecordingEnv(Mapping[str, str]):
    """An empty environment that remembers every variable looked up in it."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.seen.add(key)
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.seen.add(key)
        return False

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def settings_env_names() -> set[str]:
    """Every environment variable ``Settings.from_env`` reads (recorded, not parsed)."""
    env = _RecordingEnv()
    Settings.from_env(env)
    return env.seen


_INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:-|:\?)(?P<arg>[^}]*))?\}")


def interpolate(value: str, given: Mapping[str, str]) -> str:
    """Resolve Compose ``${NAME}``, ``${NAME:-default}`` and ``${NAME:?error}`` as ``up`` would."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if name in given:
            return given[name]
        if op == ":-":
            return str(arg)
        raise KeyError(f"{name} is required: {arg or 'unset'}")

    return _INTERPOLATION.sub(one, value.replace("$$", "\0")).replace("\0", "$")


def promtool(*args: str, cwd: Path = DEPLOY / "prometheus") -> subprocess.CompletedProcess[str]:
    """Run Debian's promtool (installed when missing)."""
    command = [ensure_program("promtool"), *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)


def series_names(exposition: str) -> set[str]:
    """Every series name the exposition text can carry, from its metric families and types."""
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
    return names


def worker_series_names() -> set[str]:
    """Series names of the worker's ``/metrics`` page (the exposition its registry renders)."""
    return series_names(Metrics().render().decode())


def metric_names_in(expression: str) -> set[str]:
    """The project's metric names (``engagement_*``) a PromQL expression refers to."""
    return set(_METRIC.findall(expression))
