"""The service package ships alone: no development tooling in it, every import declared."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import dockerfile

ROOT = Path(__file__).resolve().parents[2]
_NAME = re.compile(r"^[A-Za-z0-9_.-]+")


# The only service modules that may import the optional ``calibrate`` extra: the calibration
# itself, and the CLI's check that names the extra when it is missing.
# Parquet history (stream/event_files/sources.py) needs the calibrate extra's pyarrow, imported
# only when a Parquet file is read.
_OPTIONAL_USERS = ("stream/calibrate/", "stream/cli/offline.py", "stream/event_files/sources.py")

# Tools with a virtualenv and a requirements.txt of their own (not the project's .venv).
_OWN_VENV = ("devtools/churnsim", "devtools/calibration_polars")


def _imports(package: str) -> dict[str, set[str]]:
    """Top-level modules imported anywhere in a package -> the files importing them."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        if package == "devtools" and any(path.is_relative_to(ROOT / o) for o in _OWN_VENV):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(ROOT)))
    return found


def _declared(*extras: str) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in extras:
        requirements += project["optional-dependencies"][extra]
    requirements = [r for r in requirements if not r.startswith("engagement-stream")]
    names = {_NAME.match(r).group(0).lower().replace("_", "-") for r in requirements}  # type: ignore[union-attr]
    return {n.split("[")[0] for n in names}


def _undeclared(package: str, declared: set[str]) -> dict[str, set[str]]:
    distributions = packages_distributions()
    local = {"stream", "devtools", "tests"}
    missing = {}
    for module, files in _imports(package).items():
        if module in sys.stdlib_module_names or module in local:
            continue
        dists = {d.lower().replace("_", "-") for d in distributions.get(module, [module])}
        if not dists & declared:
            missing[module] = files
    return missing


def test_the_service_imports_only_declared_runtime_dependencies() -> None:
    """Every third-party module the service imports is a runtime dependency, except in
    ``stream/calibrate``, which may also use the optional ``calibrate`` extra."""
    missing = _undeclared("stream", _declared())
    outside = {m: f for m, f in missing.items()
               if any(not name.startswith(_OPTIONAL_USERS) for name in f)}  # fmt: skip
    assert outside == {}
    assert _undeclared("stream", _declared("calibrate")) == {}


def test_the_development_tools_declare_their_imports_in_the_bench_extra() -> None:
    """devtools/ imports only runtime dependencies and the ``bench`` and ``calibrate`` extras."""
    assert _undeclared("devtools", _declared("bench", "calibrate")) == {}


def test_tools_with_their_own_virtualenv_declare_their_imports_there() -> None:
    """devtools/churnsim runs in its own venv: its requirements.txt names what it imports."""
    for folder in _OWN_VENV:
        lines = (ROOT / folder / "requirements.txt").read_text().splitlines()
        declared = {_NAME.match(line).group(0).lower() for line in lines  # type: ignore[union-attr]
                    if line and not line.startswith("#")}  # fmt: skip
        aliases = {"sklearn": "scikit-learn", "psycopg2": "psycopg2-binary"}
        imported = set()
        for path in (ROOT / folder).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    imported |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    imported.add(node.module.split(".")[0])
        third_party = {m for m in imported if m not in sys.stdlib_module_names}
        third_party -= {"stream", "devtools"}
        assert {aliases.get(m, m) for m in third_party} <= declared, folder


def test_the_service_does_not_depend_on_the_development_tools() -> None:
    """No service module names devtools; the development commands register themselves
    through the ``engagement.commands`` entry point."""
    assert _imports("stream").get("devtools", set()) == set()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["engagement.commands"] == {
        "devtools": "devtools.cli:add_commands"
    }


def test_the_worker_image_copies_the_service_only() -> None:
    """deploy/Dockerfile copies pyproject, README, stream/ and the kernel's crate (built in a
    builder stage, whose wheel alone the runtime stage takes), and the package list is
    stream."""
    commands = dockerfile.parse_file(str(ROOT / "deploy/Dockerfile"))
    copied = {
        source
        for command in commands
        if command.cmd == "COPY" and not command.flags
        for source in command.value[:-1]
    }
    assert copied == {"pyproject.toml", "README.md", "stream", "kernel"}
    staged = [c.value for c in commands if c.cmd == "COPY" and c.flags]
    assert staged == [("/tmp/wheels", "/tmp/wheels")]
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert find["packages"]["find"]["include"] == ["stream*"]


def test_without_devtools_the_cli_offers_only_service_commands() -> None:
    """In the image (no devtools), ``engagement --help`` lists no stack, demo or bench."""
    script = (
        "import sys; sys.modules['devtools'] = None\n"
        "from stream.cli.main import main\n"
        "main(['--help'])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, cwd=ROOT
    ).stdout
    assert "rescore" in out and "worker" in out
    for dev_command in ("bench", "demo", "stack", "simulate"):
        assert not re.search(rf"^\s+{dev_command}\s", out, re.MULTILINE), out
