"""deploy/Dockerfile, parsed with Docker's own parser: pinned, non-root, healthy, no secrets."""

from __future__ import annotations

import re
from pathlib import Path

import dockerfile
import pytest

from stream.config.settings import Settings
from tests.deploy.support import DEPLOY, ROOT, settings_env_names

DOCKERFILE = DEPLOY / "Dockerfile"
_PINNED_BASE = re.compile(
    r"^[\w./-]+(:\d+\.\d+\.\d+[\w.-]*(@sha256:[0-9a-f]{64})?|@sha256:[0-9a-f]{64})$"
)
_SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|CREDENTIAL", re.IGNORECASE)


def dockerfile_problems(text: str) -> list[str]:
    """Everything wrong with a worker Dockerfile; empty when fine."""
    commands = dockerfile.parse_string(text)
    problems: list[str] = []
    bases = [c.value[0] for c in commands if c.cmd == "FROM"]
    problems += [f"base image {b} is not pinned" for b in bases if not _PINNED_BASE.match(b)]
    users = [c.value[0] for c in commands if c.cmd == "USER"]
    uid = users[-1].split(":")[0] if users else "0"
    if not uid.isdigit() or int(uid) == 0:
        problems.append(f"the final user must be a numeric non-root uid, not {uid!r}")
    checks = [c for c in commands if c.cmd == "HEALTHCHECK"]
    if not checks or checks[-1].value[0] != "CMD" or "/health" not in checks[-1].value[1]:
        problems.append("no HEALTHCHECK probing /health")
    problems += _env_problems(commands)
    for c in commands:
        if c.cmd in {"COPY", "ADD"} and not any(f.startswith("--from=") for f in c.flags):
            problems += [f"{c.cmd} {s}: not in the repository" for s in c.value[:-1]
                         if not (ROOT / s).exists()]  # fmt: skip
            problems += [f"{c.cmd} {s} would bake a secret in" for s in c.value[:-1]
                         if _SECRET_NAME.search(s) or s.startswith(".env")]  # fmt: skip
    return problems


def _env_problems(commands: tuple[dockerfile.Command, ...]) -> list[str]:
    problems = []
    known = settings_env_names()
    for c in commands:
        if c.cmd not in {"ENV", "ARG"}:
            continue
        pairs = dict(zip(c.value[::2], c.value[1::2], strict=True)) if c.cmd == "ENV" else {
            item.split("=", 1)[0]: item.partition("=")[2] for item in c.value
        }  # fmt: skip
        for name, value in pairs.items():
            if _SECRET_NAME.search(name) and value:
                problems.append(f"{c.cmd} {name} bakes a secret into the image")
            if name.startswith("ENGAGEMENT_") and name not in known:
                problems.append(f"ENV {name} is not a setting")
    return problems


def _commands(name: str) -> list[dockerfile.Command]:
    return [c for c in dockerfile.parse_file(str(DOCKERFILE)) if c.cmd == name]


def test_dockerfile_has_no_problems() -> None:
    """Pinned base, numeric non-root user, /health check, real settings, no baked secrets."""
    assert dockerfile_problems(DOCKERFILE.read_text()) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (("FROM python:3.11.7-slim-bookworm", "FROM python:3.11-slim"), "not pinned"),
        (("FROM python:3.11.7-slim-bookworm", "FROM python:latest"), "not pinned"),
        (("USER 10001:10001", "USER root"), "non-root"),
        (("USER 10001:10001", "USER 0"), "non-root"),
        (("HEALTHCHECK", "# HEALTHCHECK"), "no HEALTHCHECK"),
        (("ENGAGEMENT_DATA_DIR=", "ENGAGEMENT_DATADIR="), "not a setting"),
        (
            (
                "ENV PYTHONDONTWRITEBYTECODE=1",
                "ENV ENGAGEMENT_REDIS_PASSWORD=hunter2 PYTHONDONTWRITEBYTECODE=1",
            ),
            "bakes a secret",
        ),
        (("COPY stream /tmp/src/stream", "COPY .env /tmp/src/.env"), "not in the repository"),
    ],
)
def test_dockerfile_checks_catch_mistakes(change: tuple[str, str], problem: str) -> None:
    """Each check reports the mistake it exists for."""
    text = DOCKERFILE.read_text()
    assert change[0] in text
    found = dockerfile_problems(text.replace(change[0], change[1], 1))
    assert any(problem in p for p in found), found


def test_image_serves_the_worker_on_the_exposed_port() -> None:
    """The image runs `engagement worker`, listening on all interfaces at the exposed port."""
    (entrypoint,) = _commands("ENTRYPOINT")
    (cmd,) = _commands("CMD")
    assert entrypoint.json and list(entrypoint.value) == ["engagement"]
    assert list(cmd.value) == ["worker"]
    env: dict[str, str] = {}
    for c in _commands("ENV"):
        env.update(zip(c.value[::2], c.value[1::2], strict=True))
    settings = Settings.from_env(env)
    assert settings.web_host == "0.0.0.0"
    (expose,) = _commands("EXPOSE")
    assert list(expose.value) == [str(settings.web_port)]


def test_image_is_built_from_files_the_context_filter_keeps() -> None:
    """What the Dockerfile copies passes deploy/Dockerfile.dockerignore; the rest stays out."""
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    rules = [line for line in ignore if line and not line.startswith("#")]
    assert rules[0] == "**", "the filter starts by excluding everything"
    kept = {rule[1:] for rule in rules if rule.startswith("!")}
    copied = {s for c in _commands("COPY") if not c.flags for s in c.value[:-1]}
    for source in copied:
        assert source in kept or f"{source}/**" in kept, source
    assert not any(Path(k).parts[0] in {".venv", ".git", ".env"} for k in kept)
