"""Semantic checks of docker-compose.yml that the Compose schema cannot express."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import yaml

from stream.config.settings import Settings
from tests.deploy.support import ROOT, WORKER_JOB, interpolate, settings_env_names

__all__ = ["compose_problems", "mounts", "worker_env", "worker_services"]

_PINNED = re.compile(r"^[\w./-]+(:v?\d+\.\d+\.\d+[\w.-]*|@sha256:[0-9a-f]{64})$")
_WORKER_DOCKERFILE = "deploy/Dockerfile"
_CREDENTIAL = re.compile(r"PASSWORD|TOKEN|SECRET|CREDENTIAL")
_URL_PASSWORD = re.compile(r"^\w+://[^/@]*:[^/@]+@")
_INSTANCE_ID = "ENGAGEMENT_INSTANCE_ID"


def compose_problems(doc: dict[str, Any], root: Path = ROOT) -> list[str]:
    """Everything wrong with the compose document beyond its schema; empty when fine."""
    services: dict[str, Any] = doc["services"]
    problems: list[str] = []
    for name, service in services.items():
        problems += _dependency_problems(name, service, services)
        problems += _mount_problems(name, service, doc, root)
        problems += _image_problems(name, service)
    problems += _worker_problems(services)
    problems += _redis_problems(services)
    problems += _secret_problems(doc)
    problems += _port_problems(services)
    problems += _prometheus_problems(services, root)
    problems += _grafana_problems(services, root)
    return problems


def worker_services(services: dict[str, Any]) -> dict[str, Any]:
    """Services that run the worker: built from deploy/Dockerfile, running its default command."""
    return {
        name: service
        for name, service in services.items()
        if _builds_worker_image(service) and "command" not in service
    }


def worker_env(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as strings (mapping or list form)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of every volume entry, short or long syntax."""
    found = []
    for entry in service.get("volumes") or []:
        if isinstance(entry, str):
            source, target = entry.split(":")[:2]
        else:
            source, target = entry.get("source", ""), entry["target"]
        found.append((source, target))
    return found


def _builds_worker_image(service: dict[str, Any]) -> bool:
    build = service.get("build")
    return isinstance(build, dict) and build.get("dockerfile") == _WORKER_DOCKERFILE


def _has_healthcheck(service: dict[str, Any]) -> bool:
    check = service.get("healthcheck")
    if check is not None:
        return not check.get("disable", False) and check.get("test") not in (None, ["NONE"])
    # The worker image declares a HEALTHCHECK (tests/deploy/test_dockerfile.py checks it).
    return _builds_worker_image(service)


def _dependency_problems(name: str, service: dict[str, Any], services: dict[str, Any]) -> list[str]:
    depends = service.get("depends_on") or {}
    if isinstance(depends, list):
        depends = {target: {"condition": "service_started"} for target in depends}
    problems = []
    for target, spec in depends.items():
        if target not in services:
            problems.append(f"{name} depends on unknown service {target}")
        elif spec.get("condition") == "service_healthy" and not _has_healthcheck(services[target]):
            problems.append(f"{name} waits for {target} to be healthy, but it has no health check")
    return problems


def _mount_problems(
    name: str, service: dict[str, Any], doc: dict[str, Any], root: Path
) -> list[str]:
    problems = []
    for source, _ in mounts(service):
        if source.startswith((".", "/")):
            if not (root / source).exists():
                problems.append(f"{name} mounts {source}, which does not exist in the repository")
        elif source not in (doc.get("volumes") or {}):
            problems.append(f"{name} mounts volume {source}, which is not declared")
    for secret in service.get("secrets") or []:
        secret_name = secret if isinstance(secret, str) else secret["source"]
        if secret_name not in (doc.get("secrets") or {}):
            problems.append(f"{name} uses secret {secret_name}, which is not declared")
    build = service.get("build")
    if isinstance(build, dict):
        context = root / build.get("context", ".")
        if not (context / build.get("dockerfile", "Dockerfile")).is_file():
            problems.append(f"{name} builds from a Dockerfile that does not exist")
    return problems


def _image_problems(name: str, service: dict[str, Any]) -> list[str]:
    image = service.get("image")
    if "build" in service or image is None:
        return []
    if not _PINNED.match(image):
        return [f"{name} image {image} is not pinned to an exact version or digest"]
    return []


def _worker_problems(services: dict[str, Any]) -> list[str]:
    workers = worker_services(services)
    if len(workers) < 2:
        return [f"expected at least two worker services, found {sorted(workers)}"]
    known = settings_env_names()
    problems = [
        f"{name} sets {key}, which is not a setting"
        for name, service in services.items()
        if _builds_worker_image(service)
        for key in sorted(worker_env(service))
        if key.startswith("ENGAGEMENT_") and key not in known
    ]
    envs = {name: worker_env(service) for name, service in workers.items()}
    shared = [{k: v for k, v in env.items() if k != _INSTANCE_ID} for env in envs.values()]
    if len({tuple(sorted(env.items())) for env in shared}) != 1:
        problems.append(f"worker services differ in environment (consumer group, topics): {envs}")
    return problems + _instance_id_problems(envs)


def _instance_id_problems(envs: dict[str, dict[str, str]]) -> list[str]:
    """Each worker is a static group member with an id of its own (a shared one fences)."""
    ids = {name: env.get(_INSTANCE_ID, "") for name, env in envs.items()}
    problems = [f"{name} must set {_INSTANCE_ID} (its static group member id)"
                for name, value in ids.items() if not value]  # fmt: skip
    given = [v for v in ids.values() if v]
    if len(set(given)) != len(given):
        problems.append(f"worker services share a {_INSTANCE_ID}: {ids}")
    return problems


def _redis_problems(services: dict[str, Any]) -> list[str]:
    redis = services.get("redis", {})
    command = " ".join(_as_list(redis.get("entrypoint")) + _as_list(redis.get("command")))
    if "--appendonly yes" not in command or "--requirepass" not in command:
        return ["redis must run with --appendonly yes and --requirepass"]
    return []


def _secret_problems(doc: dict[str, Any]) -> list[str]:
    """Secrets travel as mounted files: never in a variable, a URL or a command line."""
    declared = doc.get("secrets") or {}
    # A distinctive value for every variable a secret is read from, to find it anywhere.
    values = {spec["environment"]: f"SeCrEt-{name}" for name, spec in declared.items()
              if "environment" in spec}  # fmt: skip
    problems = []
    for name, service in doc["services"].items():
        mounted = {f"/run/secrets/{s if isinstance(s, str) else s.get('target', s['source'])}"
                   for s in service.get("secrets") or []}  # fmt: skip
        for key, raw in worker_env(service).items():
            try:
                value = interpolate(raw, values)
            except KeyError:  # a variable `up` requires: not a secret of ours
                value = raw
            leaked = [var for var, secret in values.items() if secret in value]
            if leaked:
                problems.append(f"{name}: {key} carries the secret {', '.join(leaked)}")
            if _CREDENTIAL.search(key) and not key.endswith("FILE") and value:
                problems.append(f"{name}: {key} holds a credential; mount it as a secret file")
            if _URL_PASSWORD.search(value):
                problems.append(f"{name}: {key} has a password in a URL; use a secret file")
            if key.endswith("FILE") and _CREDENTIAL.search(key) and value not in mounted:
                problems.append(f"{name}: {key} is {value}, which is not a mounted secret")
    for name, service in worker_services(doc["services"]).items():
        env = worker_env(service)
        problems += [
            f"{name}: {key} must be set (the secret as a file)"
            for key in ("ENGAGEMENT_REDIS_PASSWORD_FILE", "ENGAGEMENT_API_TOKEN_FILE")
            if key not in env
        ]
    return problems


def _port_problems(services: dict[str, Any]) -> list[str]:
    seen: dict[str, str] = {}
    problems = []
    for name, service in services.items():
        for port in service.get("ports") or []:
            host = str(port).rsplit(":", 1)[0] if ":" in str(port) else str(port)
            if host in seen:
                problems.append(f"{name} and {seen[host]} both publish host port {host}")
            seen[host] = name
    return problems


def _mounted_file(service: dict[str, Any], target: str, root: Path) -> Path | None:
    for source, mount_target in mounts(service):
        inside = PurePosixPath(target)
        if inside == PurePosixPath(mount_target) or PurePosixPath(mount_target) in inside.parents:
            relative = inside.relative_to(mount_target)
            return root / source / relative
    return None


def _prometheus_problems(services: dict[str, Any], root: Path) -> list[str]:
    service = services.get("prometheus")
    if service is None:
        return ["no prometheus service"]
    flags = dict(arg.split("=", 1) for arg in service.get("command", []) if "=" in arg)
    config_path = flags.get("--config.file", "/etc/prometheus/prometheus.yml")
    config_file = _mounted_file(service, config_path, root)
    if config_file is None or not config_file.is_file():
        return [f"prometheus config {config_path} is not mounted from the repository"]
    config = yaml.safe_load(config_file.read_text())
    problems = []
    for rule_file in config.get("rule_files", []):
        inside = PurePosixPath(config_path).parent / rule_file
        mounted = _mounted_file(service, str(inside), root)
        if mounted is None or not mounted.is_file():
            problems.append(f"prometheus rule file {inside} is not mounted from the repository")
    jobs = {job["job_name"]: job for job in config.get("scrape_configs", [])}
    if WORKER_JOB not in jobs:
        return [*problems, f"prometheus has no scrape job {WORKER_JOB}"]
    targets = {
        t for static in jobs[WORKER_JOB].get("static_configs", []) for t in static["targets"]
    }
    expected = {
        f"{name}:{worker_env(s).get('ENGAGEMENT_WEB_PORT') or Settings().web_port}"
        for name, s in worker_services(services).items()
    }
    if targets != expected:
        problems.append(
            f"prometheus scrape targets {sorted(targets)} != workers {sorted(expected)}"
        )
    return problems


def _grafana_problems(services: dict[str, Any], root: Path) -> list[str]:
    service = services.get("grafana")
    if service is None:
        return ["no grafana service"]
    problems = []
    datasources = _mounted_file(service, "/etc/grafana/provisioning/datasources", root)
    for path in sorted(datasources.glob("*.yml")) if datasources else []:
        for source in yaml.safe_load(path.read_text())["datasources"]:
            url = urlsplit(source["url"])
            if url.hostname not in services or url.port != 9090:
                problems.append(f"grafana datasource {source['url']} is not the prometheus service")
    providers = _mounted_file(service, "/etc/grafana/provisioning/dashboards", root)
    for path in sorted(providers.glob("*.yml")) if providers else []:
        for provider in yaml.safe_load(path.read_text())["providers"]:
            folder = _mounted_file(service, provider["options"]["path"], root)
            if folder is None or not list(folder.glob("*.json")):
                problems.append(f"grafana dashboards path {provider['options']['path']} is empty")
    if not datasources or not providers:
        problems.append("grafana provisioning is not mounted from the repository")
    return problems


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]
