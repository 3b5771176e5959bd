"""deploy/k8s: valid against Kubernetes' OpenAPI schemas (strict), and coherent."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import dockerfile
import pytest
import yaml
from kubernetes_validate import utils as k8s

from stream.config.durations import parse_duration_ms
from stream.config.model_file import load_model
from stream.config.settings import Settings
from tests.deploy.support import DEPLOY, ROOT, load_yaml, settings_env_names

K8S = DEPLOY / "k8s"
# The oldest and the newest Kubernetes minor this package ships schemas for that we support.
VERSIONS = ("1.30", "1.37")
_REFERENCE = re.compile(r"\$\((\w+)\)")
_CREDENTIAL = re.compile(r"PASSWORD|TOKEN|SECRET|CREDENTIAL")
_URL_PASSWORD = re.compile(r"^\w+://[^/@]*:[^/@]+@")


def _manifests() -> dict[str, dict[str, Any]]:
    """Every resource of the kustomization, by kind."""
    kustomization = load_yaml(K8S / "kustomization.yaml")
    docs = [
        d
        for name in kustomization["resources"]
        for d in yaml.safe_load_all((K8S / name).read_text())
    ]
    return {doc["kind"]: doc for doc in docs}


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _env(container: dict[str, Any]) -> dict[str, str]:
    """Plain env values with $(VAR) references to other plain values expanded."""
    values = {e["name"]: e.get("value") for e in container["env"]}
    secret = {name: "s3cret" for name, value in values.items() if value is None}
    plain = {**{k: v for k, v in values.items() if v is not None}, **secret}
    return {k: _REFERENCE.sub(lambda m: plain[m[1]], v) for k, v in plain.items()}


def k8s_problems(kinds: dict[str, dict[str, Any]]) -> list[str]:
    """Everything wrong between the manifests that their schemas cannot see; empty when fine."""
    deployment, service = kinds["StatefulSet"], kinds["Service"]
    pod = deployment["spec"]["template"]
    container = _container(deployment)
    labels = pod["metadata"]["labels"]
    problems = [
        f"{kind} selector {sel} does not select the pods"
        for kind, sel in [
            ("StatefulSet", deployment["spec"]["selector"]["matchLabels"]),
            (
                "PodDisruptionBudget",
                kinds["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
            ),
            ("Service", service["spec"]["selector"]),
        ]
        if not sel.items() <= labels.items()
    ]
    problems += _probe_problems(container, pod, service)
    problems += _env_problems(container)
    problems += _secret_file_problems(container, pod)
    problems += _volume_problems(container, pod, kinds)
    problems += _security_problems(container, pod)
    problems += _membership_problems(container)
    return problems


def _membership_problems(container: dict[str, Any]) -> list[str]:
    """Each pod is a static group member named by its stable pod name (a StatefulSet's)."""
    items = [e for e in container["env"] if e["name"] == "ENGAGEMENT_INSTANCE_ID"]
    path = items[0].get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") if items else None
    if path != "metadata.name":
        return ["ENGAGEMENT_INSTANCE_ID must be the pod's name (downward API: metadata.name)"]
    return []


def _probe_problems(
    container: dict[str, Any], pod: dict[str, Any], service: dict[str, Any]
) -> list[str]:
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    # Secret files exist only in the pod; the web port does not depend on them.
    plain = {k: v for k, v in _env(container).items() if not k.endswith("_FILE")}
    web_port = Settings.from_env(plain).web_port
    problems = []
    for probe, path in [
        ("livenessProbe", "/health"),
        ("readinessProbe", "/ready"),
        ("startupProbe", "/health"),
    ]:
        get = container.get(probe, {}).get("httpGet", {})
        if get.get("path") != path or ports.get(get.get("port"), get.get("port")) != web_port:
            problems.append(f"{probe} must GET {path} on the web port {web_port}")
    annotations = pod["metadata"].get("annotations", {})
    if annotations.get("prometheus.io/scrape") != "true" or annotations.get(
        "prometheus.io/port"
    ) != str(web_port):
        problems.append(f"pod scrape annotations must point at port {web_port}")
    if annotations.get("prometheus.io/path") != "/metrics":
        problems.append("pod scrape annotations must point at /metrics")
    for port in service["spec"]["ports"]:
        if ports.get(port["targetPort"], port["targetPort"]) != web_port:
            problems.append(f"Service port {port['name']} does not reach the web port")
    resources = container.get("resources", {})
    if not {"cpu", "memory"} <= resources.get(
        "requests", {}
    ).keys() or "memory" not in resources.get("limits", {}):
        problems.append("resources need cpu and memory requests and a memory limit")
    return problems


def _env_problems(container: dict[str, Any]) -> list[str]:
    known = settings_env_names()
    problems = []
    defined: set[str] = set()
    for item in container["env"]:
        name = item["name"]
        if name.startswith("ENGAGEMENT_") and name not in known:
            problems.append(f"env {name} is not a setting")
        undefined = [r for r in _REFERENCE.findall(item.get("value", "")) if r not in defined]
        problems += [f"env {name} uses $({ref}) before it is defined" for ref in undefined]
        if "value" in item and _CREDENTIAL.search(name) and not name.endswith("_FILE"):
            problems.append(f"env {name} holds a credential in plain text; use a Secret")
        if "secretKeyRef" in item.get("valueFrom", {}):
            problems.append(f"env {name} takes a Secret as a variable; mount it as a file")
        if _URL_PASSWORD.search(item.get("value", "")):
            problems.append(f"env {name} has a password in a URL; use a secret file")
        defined.add(name)
    env = _env(container)
    problems += [
        f"{name} must be set (the secret as a file)"
        for name in ("ENGAGEMENT_REDIS_PASSWORD_FILE", "ENGAGEMENT_API_TOKEN_FILE")
        if name not in env
    ]
    return problems


def _secret_file_problems(container: dict[str, Any], pod: dict[str, Any]) -> list[str]:
    """Every credential file a setting names is a key of a Secret mounted into the container."""
    files = _secret_files(container, pod)
    return [
        f"env {name} is {value}, which is not a file of a mounted Secret"
        for name, value in _env(container).items()
        if name.endswith("_FILE") and _CREDENTIAL.search(name) and value not in files
    ]


def _secret_files(container: dict[str, Any], pod: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Path in the container -> (Secret name, key) of every mounted Secret item."""
    volumes = {v["name"]: v for v in pod["spec"].get("volumes", [])}
    files = {}
    for mount in container.get("volumeMounts", []):
        secret = volumes.get(mount["name"], {}).get("secret")
        if secret is None:
            continue
        for item in secret.get("items", []):
            path = str(PurePosixPath(mount["mountPath"]) / item["path"])
            files[path] = (secret["secretName"], item["key"])
    return files


def _volume_problems(
    container: dict[str, Any], pod: dict[str, Any], kinds: dict[str, dict[str, Any]]
) -> list[str]:
    volumes = {v["name"]: v for v in pod["spec"].get("volumes", [])}
    mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
    env = _env(container)
    model = Path(env.get("ENGAGEMENT_MODEL", "default"))
    volume = volumes.get(mounts.get(str(model.parent), ""), {})
    config_map = kinds.get("ConfigMap", {})
    problems = []
    if volume.get("configMap", {}).get("name") != config_map.get("metadata", {}).get("name") or (
        model.name not in config_map.get("data", {})
    ):
        problems.append(f"ENGAGEMENT_MODEL {model} is not a file of the model ConfigMap")
    if env.get("ENGAGEMENT_DATA_DIR") not in mounts:
        problems.append("ENGAGEMENT_DATA_DIR must be a writable volume (read-only root filesystem)")
    return problems


def _security_problems(container: dict[str, Any], pod: dict[str, Any]) -> list[str]:
    context = pod["spec"].get("securityContext", {})
    (user,) = [c for c in dockerfile.parse_file(str(DEPLOY / "Dockerfile")) if c.cmd == "USER"]
    problems = []
    if (
        not context.get("runAsNonRoot")
        or str(context.get("runAsUser")) != user.value[0].split(":")[0]
    ):
        problems.append("pods must run as non-root, as the image's user")
    grace_ms = parse_duration_ms(_env(container).get("ENGAGEMENT_SHUTDOWN_GRACE", "30s"))
    if pod["spec"].get("terminationGracePeriodSeconds", 30) * 1000 <= grace_ms:
        problems.append("terminationGracePeriodSeconds must exceed ENGAGEMENT_SHUTDOWN_GRACE")
    return problems


@pytest.mark.parametrize("version", VERSIONS)
def test_manifests_are_valid_kubernetes_resources(version: str) -> None:
    """Each manifest validates against the strict schema of its kind."""
    for kind, doc in _manifests().items():
        assert k8s.validate(doc, version, strict=True), kind


def test_kustomization_lists_every_manifest() -> None:
    """`kubectl apply -k deploy/k8s` applies every manifest in the folder."""
    listed = set(load_yaml(K8S / "kustomization.yaml")["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(_manifests()) == {
        "Namespace",
        "ConfigMap",
        "StatefulSet",
        "Service",
        "PodDisruptionBudget",
    }


def _set(kind: str, path: str, value: object) -> Callable[[dict[str, dict[str, Any]]], None]:
    def mutate(kinds: dict[str, dict[str, Any]]) -> None:
        node: Any = kinds[kind]
        *parents, last = path.split("/")
        for key in parents:
            node = node[_key(node, key)]
        node[_key(node, last)] = value

    return mutate


def _key(node: Any, key: str) -> Any:
    # A path step: a list index, or a mapping key with "~1" standing for "/".
    return int(key) if isinstance(node, list) else key.replace("~1", "/")


_CONTAINER = "spec/template/spec/containers/0"


def _env_list(kinds: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = kinds["StatefulSet"]["spec"]["template"]["spec"]["containers"][0][
        "env"
    ]
    return env


def _replace_env(name: str, *items: dict[str, Any]) -> Callable[[dict[str, dict[str, Any]]], None]:
    """Replace the env entry ``name`` by ``items`` (none: remove it)."""

    def mutate(kinds: dict[str, dict[str, Any]]) -> None:
        env = _env_list(kinds)
        (index,) = [i for i, item in enumerate(env) if item["name"] == name]
        env[index : index + 1] = list(items)

    return mutate


_SECRET_VARIABLE = {
    "name": "REDIS_PASSWORD",
    "valueFrom": {"secretKeyRef": {"name": "engagement-credentials", "key": "redis-password"}},
}
_URL_WITH_PASSWORD = {
    "name": "ENGAGEMENT_REDIS_URL",
    "value": "redis://:$(REDIS_PASSWORD)@redis.engagement.svc:6379/0",
}


def _drop_token_item(kinds: dict[str, dict[str, Any]]) -> None:
    (volume,) = [v for v in kinds["StatefulSet"]["spec"]["template"]["spec"]["volumes"]
                 if "secret" in v]  # fmt: skip
    volume["secret"]["items"] = [i for i in volume["secret"]["items"] if i["key"] != "api-token"]


@pytest.mark.parametrize(
    "mutate",
    [
        _set("StatefulSet", f"{_CONTAINER}/livenessProbe/httpGet/port", [6066]),
        _set(
            "StatefulSet",
            f"{_CONTAINER}/livenesProbe",
            {"httpGet": {"path": "/health", "port": 6066}},
        ),
        _set("StatefulSet", "spec/replicas", "two"),
        _set("StatefulSet", f"{_CONTAINER}/resources/limit", {"memory": "512Mi"}),
        _set("PodDisruptionBudget", "spec/maxUnavailable", {"pods": 1}),
        _set("Service", "spec/ports/0/protocol", 6066),
        _set("ConfigMap", "data/model.yaml", {"version": "x"}),
    ],
)
def test_schema_validation_rejects_broken_manifests(
    mutate: Callable[[dict[str, dict[str, Any]]], None],
) -> None:
    """A misspelt field, a wrongly typed value or an unknown key fails schema validation."""
    kinds = copy.deepcopy(_manifests())
    mutate(kinds)
    errors = []
    for doc in kinds.values():
        try:
            k8s.validate(doc, VERSIONS[-1], strict=True)
        except k8s.ValidationError as error:
            errors.append(error)
    assert errors


def test_manifests_are_coherent() -> None:
    """Selectors, probes, ports, scrape annotations, settings, model and security line up."""
    assert k8s_problems(_manifests()) == []


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (
            _set("PodDisruptionBudget", "spec/selector/matchLabels", {"app": "other"}),
            "PodDisruptionBudget selector",
        ),
        (
            _set("StatefulSet", f"{_CONTAINER}/readinessProbe/httpGet/path", "/health"),
            "readinessProbe must GET /ready",
        ),
        (_set("StatefulSet", f"{_CONTAINER}/livenessProbe/httpGet/port", 8080), "livenessProbe"),
        (
            _set("StatefulSet", "spec/template/metadata/annotations/prometheus.io~1port", "9090"),
            "scrape annotations",
        ),
        (_set("Service", "spec/ports/0/targetPort", 80), "does not reach the web port"),
        (
            _replace_env(
                "ENGAGEMENT_KAFKA_BOOTSTRAP",
                {"name": "ENGAGEMENT_KAFKA_SERVERS", "value": "kafka:9092"},
            ),
            "not a setting",
        ),
        (
            _replace_env(
                "ENGAGEMENT_REDIS_PASSWORD_FILE",
                {"name": "ENGAGEMENT_REDIS_PASSWORD", "value": "hunter2"},
            ),
            "plain text",
        ),
        (
            _replace_env("ENGAGEMENT_REDIS_URL", _SECRET_VARIABLE, _URL_WITH_PASSWORD),
            "takes a Secret as a variable",
        ),
        (
            _replace_env("ENGAGEMENT_REDIS_URL", _SECRET_VARIABLE, _URL_WITH_PASSWORD),
            "password in a URL",
        ),
        (
            _replace_env("ENGAGEMENT_REDIS_URL", _URL_WITH_PASSWORD, _SECRET_VARIABLE),
            "uses $(REDIS_PASSWORD) before it is defined",
        ),
        (
            _replace_env(
                "ENGAGEMENT_API_TOKEN_FILE",
                {"name": "ENGAGEMENT_API_TOKEN_FILE", "value": "/etc/engagement/model/token"},
            ),
            "not a file of a mounted Secret",
        ),
        (_drop_token_item, "ENGAGEMENT_API_TOKEN_FILE is /etc/engagement/secrets/api-token"),
        (_replace_env("ENGAGEMENT_REDIS_PASSWORD_FILE"), "ENGAGEMENT_REDIS_PASSWORD_FILE must be"),
        (
            _replace_env(
                "ENGAGEMENT_MODEL",
                {"name": "ENGAGEMENT_MODEL", "value": "/etc/engagement/model/other.yaml"},
            ),
            "ENGAGEMENT_MODEL",
        ),
        (_set("StatefulSet", "spec/template/spec/securityContext/runAsUser", 0), "non-root"),
        (
            _set("StatefulSet", "spec/template/spec/terminationGracePeriodSeconds", 30),
            "terminationGrace",
        ),
        (_set("StatefulSet", f"{_CONTAINER}/resources", {}), "resources need"),
        (
            _replace_env(
                "ENGAGEMENT_INSTANCE_ID", {"name": "ENGAGEMENT_INSTANCE_ID", "value": "worker"}
            ),
            "ENGAGEMENT_INSTANCE_ID must be the pod's name",
        ),
        (_replace_env("ENGAGEMENT_INSTANCE_ID"), "ENGAGEMENT_INSTANCE_ID must be the pod's name"),
    ],
)
def test_coherence_checks_catch_mistakes(
    mutate: Callable[[dict[str, dict[str, Any]]], None], problem: str
) -> None:
    """Each semantic check reports the mistake it exists for."""
    kinds = copy.deepcopy(_manifests())
    mutate(kinds)
    found = k8s_problems(kinds)
    assert any(problem in p for p in found), found


def test_worker_environment_is_accepted_by_settings(tmp_path: Path) -> None:
    """The StatefulSet's environment, its Secret files written locally, parses into Settings
    with the Redis password and the API token read from those files."""
    kinds = _manifests()
    container, pod = _container(kinds["StatefulSet"]), kinds["StatefulSet"]["spec"]["template"]
    values = {"redis-password": "s3cret-redis", "api-token": "a-token-of-32-characters-exactly"}
    local = {}
    for path, (_, key) in _secret_files(container, pod).items():
        local[path] = tmp_path / key
        local[path].write_text(values[key])
    env = {k: str(local.get(v, v)) for k, v in _env(container).items()}
    settings = Settings.from_env(env)
    assert settings.redis_url == "redis://redis.engagement.svc:6379/0"
    assert settings.redis_security.password is not None
    assert settings.redis_security.password.reveal() == "s3cret-redis"
    assert settings.api_token is not None
    assert settings.api_token.reveal() == values["api-token"]
    assert settings.web_host == "0.0.0.0"
    assert settings.app_id == "engagement-stream"


def test_model_configmap_loads_and_matches_its_version(tmp_path: Path) -> None:
    """The ConfigMap's model loads; under the shipped version it is the shipped model exactly."""
    text = _manifests()["ConfigMap"]["data"]["model.yaml"]
    path = tmp_path / "model.yaml"
    path.write_text(text)
    model = load_model(str(path))
    shipped = ROOT / "stream/config/models/default.yaml"
    if model.version == load_model("default").version:
        # The model version travels in alerts: one version must mean one model.
        assert yaml.safe_load(text) == yaml.safe_load(shipped.read_text())
