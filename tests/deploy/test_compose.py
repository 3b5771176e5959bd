"""docker-compose.yml: valid against the Compose Specification schema, and coherent."""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import redis

from devtools.localstack.stack import free_port
from devtools.localstack.tools import ensure_program
from stream.config.model_file import load_model
from stream.config.settings import Settings
from tests.deploy.compose_checks import compose_problems, worker_env, worker_services
from tests.deploy.support import ROOT, interpolate, load_yaml
from tests.integration.conftest import wait_until

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


def _drop_token_file(doc: dict[str, Any]) -> None:
    for service in worker_services(doc["services"]).values():
        service["environment"] = dict(service["environment"])
        del service["environment"]["ENGAGEMENT_API_TOKEN_FILE"]


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
        (_set("services/worker-2/environment/ENGAGEMENT_INSTANCE_ID", "worker-1"), "share a"),
        (_set("services/worker-1/environment/ENGAGEMENT_INSTANCE_ID", ""), "worker-1 must set"),
        (
            _set("services/worker-1/environment/ENGAGEMENT_REDIS_URL", "redis://:hunter2@redis"),
            "password in a URL",
        ),
        (
            _set(
                "services/worker-1/environment/ENGAGEMENT_REDIS_URL",
                "redis://:${REDIS_PASSWORD}@redis:6379/0",
            ),
            "carries the secret REDIS_PASSWORD",
        ),
        (
            _set("services/worker-2/environment/ENGAGEMENT_API_TOKEN", "abcdefghijklmnopq"),
            "ENGAGEMENT_API_TOKEN holds a credential",
        ),
        (_set("services/worker-2/secrets", ["redis_password"]), "which is not a mounted secret"),
        (
            _set("services/worker-1/environment/ENGAGEMENT_REDIS_PASSWORD_FILE", "/etc/pw"),
            "which is not a mounted secret",
        ),
        (_drop_token_file, "ENGAGEMENT_API_TOKEN_FILE must be set"),
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


_SECRETS = {"REDIS_PASSWORD": "s3cret-redis", "API_TOKEN": "a-token-of-32-characters-exactly"}


def _worker_settings(doc: dict[str, Any], service: dict[str, Any], folder: Path) -> Settings:
    """The settings a service's container would read: variables interpolated as `up` does,
    its mounted secrets written as files (values from ``_SECRETS``)."""
    env = {k: interpolate(v, _SECRETS) for k, v in worker_env(service).items()}
    for entry in service.get("secrets") or []:
        name = entry if isinstance(entry, str) else entry["source"]
        path = folder / name
        path.write_text(_SECRETS[doc["secrets"][name]["environment"]] + "\n")
        env = {k: str(path) if v == f"/run/secrets/{name}" else v for k, v in env.items()}
    return Settings.from_env(env)


def test_worker_environment_is_accepted_by_settings(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    """The workers' environment and secret files, as `docker compose up` provides them, parse
    into Settings with the Redis password and the API token read from the files."""
    members = set()
    for name, service in worker_services(compose["services"]).items():
        settings = _worker_settings(compose, service, tmp_path)
        assert settings.instance_id == name  # a static group member of its own
        members.add(settings.instance_id)
        assert settings.redis_url == "redis://redis:6379/0"
        assert settings.redis_security.password is not None
        assert settings.redis_security.password.reveal() == _SECRETS["REDIS_PASSWORD"]
        assert settings.api_token is not None
        assert settings.api_token.reveal() == _SECRETS["API_TOKEN"]
        assert settings.web_host == "0.0.0.0"
        assert settings.kafka_bootstrap == "kafka:9092"
        load_model(settings.model)
    assert len(members) == len(worker_services(compose["services"]))


def test_no_secret_reaches_a_variable_a_url_or_the_image(compose: dict[str, Any]) -> None:
    """With distinctive secret values, none appears in any service's interpolated environment,
    command or entrypoint; every secret a service reads is a file it mounts."""
    values = {var: f"SeCrEt-{var}" for var in ("REDIS_PASSWORD", "API_TOKEN",
                                                  "GRAFANA_ADMIN_PASSWORD")}  # fmt: skip
    declared = {spec["environment"] for spec in compose["secrets"].values()}
    assert declared == set(values)
    for name, service in compose["services"].items():
        parts = [*worker_env(service).values(), *map(str, service.get("command") or []),
                 *map(str, service.get("entrypoint") or [])]  # fmt: skip
        text = interpolate("\n".join(parts), values)
        assert not [v for v in values.values() if v in text], name


def test_workers_reach_kafka_on_its_advertised_listener(compose: dict[str, Any]) -> None:
    """The bootstrap address the workers use is the one the broker advertises."""
    advertised = compose["services"]["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    hosts = {listener.split("://", 1)[1] for listener in advertised.split(",")}
    for service in worker_services(compose["services"]).values():
        assert worker_env(service)["ENGAGEMENT_KAFKA_BOOTSTRAP"] in hosts


def test_simulator_runs_only_in_its_profile_and_feeds_the_workers_topics(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    """The simulator is opt-in and produces to the topics the workers consume."""
    services = compose["services"]
    simulator = services["simulator"]
    assert simulator["profiles"] == ["simulator"]
    assert simulator["command"][0] == "simulate"
    sim_topics = Settings.from_env(worker_env(simulator)).topics
    for service in worker_services(services).values():
        assert _worker_settings(compose, service, tmp_path).topics == sim_topics


def _redis_entrypoint(compose: dict[str, Any], secret: Path, folder: Path, port: int) -> str:
    """The Redis service's entrypoint script as Compose runs it, pointed at a local secret file
    and the local redis-server (the image's wrapper only drops root before it execs)."""
    script = interpolate(compose["services"]["redis"]["entrypoint"][-1], {})
    assert (
        "/run/secrets/redis_password" in script
        and "exec docker-entrypoint.sh redis-server" in script
    )
    script = script.replace("/run/secrets/redis_password", str(secret))
    server = ensure_program("redis-server")
    return script.replace(
        "exec docker-entrypoint.sh redis-server",
        f"exec {server} --port {port} --bind 127.0.0.1 --dir {folder}",
    )


def test_redis_entrypoint_requires_the_password_from_the_secret(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    """Run with the real redis-server: the secret is the password, and an empty secret (an
    unset REDIS_PASSWORD) stops Redis instead of letting it run without a password."""
    secret, port = tmp_path / "redis_password", free_port()
    secret.write_text("")
    empty = subprocess.run(["sh", "-c", _redis_entrypoint(compose, secret, tmp_path, port)],
                           capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    assert empty.returncode == 1
    assert "set REDIS_PASSWORD" in empty.stderr
    secret.write_text("s3cret-redis")
    script = _redis_entrypoint(compose, secret, tmp_path, port)
    server = subprocess.Popen(["sh", "-c", script], stdout=subprocess.DEVNULL)
    try:
        client = redis.Redis(port=port, password="s3cret-redis", socket_timeout=2)
        wait_until(lambda: _answers(client))
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port, socket_timeout=2).ping()
        assert client.config_get("appendonly") == {"appendonly": "yes"}
    finally:
        server.terminate()
        server.wait(timeout=30)


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def test_an_override_runs_the_workers_without_a_token(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    """The override the deployment guide documents (an empty ENGAGEMENT_API_TOKEN_FILE) turns
    the token off, and only that: the Redis password still comes from its file."""
    worker = copy.deepcopy(compose["services"]["worker-1"])
    worker["environment"] = {**worker["environment"], "ENGAGEMENT_API_TOKEN_FILE": ""}
    settings = _worker_settings(compose, worker, tmp_path)
    assert settings.api_token is None
    assert settings.redis_security.password is not None
