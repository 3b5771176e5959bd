"""One version: pyproject.toml, the installed metadata, ``engagement --version`` and the
newest release in CHANGELOG.md agree."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

from stream import __version__
from stream.cli.main import main

ROOT = Path(__file__).parents[2]


def _project_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as file:
        found: str = tomllib.load(file)["project"]["version"]
    return found


def test_the_package_version_is_the_project_version() -> None:
    assert __version__ == version("engagement-stream") == _project_version()


def test_engagement_version_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out.strip() == f"engagement {_project_version()}"


def test_the_changelog_names_the_version() -> None:
    releases = re.findall(r"^## \[([^\]]+)\]", (ROOT / "CHANGELOG.md").read_text(), re.M)
    numbered = [release for release in releases if release != "Unreleased"]
    assert numbered and numbered[0] == _project_version()
