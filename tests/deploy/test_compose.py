"""docker-compose.yml: valid against the Compose Specification schema, and coherent."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from importlib import resources
from typing import Any

import jsonschema
import pytest

from stream.config.model_file import load_model
from stream.config.settings import Settings
from tests.deploy.compose_checks import compose_problems, worker_env, worker_services
from tests.deploy.support import ROOT, interpolate, load_yaml

COMPOSE = ROOT / "docker-compose.yml"


def _schema() -> dict[str, Any]:
    # The Compose Specification's JSON schema, as vendored by check-jsonschema (pinned).
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    schema: dict[str, Any] = json.loads((vendor / "compose-spec.json").read_text())
    return schema


def _errors(doc: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(
        _schema(), format_checker=jsonschema.FormatChecker()
    )
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]


@pytest.fixture
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = load_yaml(COMPOSE)
    return doc


def test_the_schema_is_the_compose_specification() -> None:
    """The schema used is the Compose Specification's own (a 2020-12 schema of services)."""
    schema = _schema()
    assert schema["title"] == "Compose Specification"
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "services" in schema["properties"]


def test_compose_file_is_valid_against_the_compose_schema(compose: dict[str, Any]) -> None:
    """The compose file has no schema error."""
    assert _errors(compose) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("services", "redis", "healthcheck", "intervall"), "5s"),
        (("services", "worker-1", "depends_on", "kafka", "condition"), "service_happy"),
        (("services", "kafka", "ports"), "9092"),
        (("services", "grafana", "restart", "policy"), "always"),
    ],
)
def test_compose_schema_rejects_broken_files(
    compose: dict[str, Any], path: tuple[str, ...], value: object
) -> None:
    """A misspelt key, an unknown condition or a wrongly typed value fails validation."""
    broken = copy.deepcopy(compose)
    node = broken
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value
    assert _errors(broken)


def test_compose_file_is_coherent(compose: dict[str, Any]) -> None:
    """Dependencies, mounts, images, worker settings, scrape targets and Grafana all line up."""
    assert compose_problems(compose) == []


def _rename_worker(doc: dict[str, Any]) -> None:
    doc["services"]["worker-3"] = doc["services"].pop("worker-2")


def _second_consumer_group(doc: dict[str, Any]) -> None:
    # The workers share one environment mapping (a YAML anchor): give worker-2 its own.
    worker = doc["services"]["worker-2"]
    worker["environment"] = {**worker["environment"], "ENGAGEMENT_APP_ID": "another-group"}


def _set(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node = doc
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value

    return mutate


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (
            _set("services/grafana/depends_on/prometheus-2", {"condition": "service_started"}),
            "unknown service prometheus-2",
        ),
        (
            _set("services/grafana/depends_on/simulator", {"condition": "service_healthy"}),
            "has no health check",
        ),
        (
            _set(
                "services/prometheus/volumes",
                ["./deploy/prometheus/nope.yml:/etc/prometheus/prometheus.yml:ro"],
            ),
            "does not exist",
        ),
        (
            _set(
                "services/prometheus/volumes",
                ["./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro"],
            ),
            "rule file /etc/prometheus/rules.yml is not mounted",
        ),
        (_rename_worker, "scrape targets"),
        (
            _set("services/worker-2/environment/ENGAGEMENT_REDIS_ULR", "redis://redis"),
            "ENGAGEMENT_REDIS_ULR, which is not a setting",
        ),
        (_second_consumer_group, "differ"),
        (
            _set(
                "services/worker-1/environment/ENGAGEMENT_REDIS_URL",
                "redis://:hunter2@redis:6379/0",
            ),
            "hard-coded",
        ),
        (_set("services/redis/image", "redis:latest"), "not pinned"),
        (_set("services/redis/entrypoint", ["redis-server"]), "--appendonly yes"),
        (_set("services/worker-2/ports", ["6066:6066"]), "host port 6066"),
        (_set("services/grafana/volumes", []), "grafana provisioning is not mounted"),
    ],
)
def test_coherence_checks_catch_mistakes(
    compose: dict[str, Any], mutate: Callable[[dict[str, Any]], None], problem: str
) -> None:
    """Each semantic check reports the mistake it exists for."""
    broken = copy.deepcopy(compose)
    mutate(broken)
    found = compose_problems(broken)
    assert any(problem in p for p in found), found


def test_worker_environment_is_accepted_by_settings(compose: dict[str, Any]) -> None:
    """The workers' environment, interpolated as `docker compose up` would, parses into Settings."""
    secrets = {"REDIS_PASSWORD": "s3cret"}
    for service in worker_services(compose["services"]).values():
        env = {k: interpolate(v, secrets) for k, v in worker_env(service).items()}
        settings = Settings.from_env(env)
        assert settings.redis_url == "redis://:s3cret@redis:6379/0"
        assert settings.web_host == "0.0.0.0"
        assert settings.kafka_bootstrap == "kafka:9092"
        load_model(settings.model)
    with pytest.raises(KeyError, match="REDIS_PASSWORD"):
        interpolate(worker_env(compose["services"]["worker-1"])["ENGAGEMENT_REDIS_URL"], {})


def test_workers_reach_kafka_on_its_advertised_listener(compose: dict[str, Any]) -> None:
    """The bootstrap address the workers use is the one the broker advertises."""
    advertised = compose["services"]["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    hosts = {listener.split("://", 1)[1] for listener in advertised.split(",")}
    for service in worker_services(compose["services"]).values():
        assert worker_env(service)["ENGAGEMENT_KAFKA_BOOTSTRAP"] in hosts


def test_simulator_runs_only_in_its_profile_and_feeds_the_workers_topics(
    compose: dict[str, Any],
) -> None:
    """The simulator is opt-in and produces to the topics the workers consume."""
    services = compose["services"]
    simulator = services["simulator"]
    assert simulator["profiles"] == ["simulator"]
    assert simulator["command"][0] == "simulate"
    sim_topics = Settings.from_env(worker_env(simulator)).topics
    for service in worker_services(services).values():
        env = {k: interpolate(v, {"REDIS_PASSWORD": "x"}) for k, v in worker_env(service).items()}
        assert Settings.from_env(env).topics == sim_topics
