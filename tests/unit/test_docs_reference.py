"""The generated reference pages of the documentation site are what the code says: the CLI
(argparse), the settings (the settings class) and the metrics (the Prometheus registry),
regenerated here, must equal the committed pages, so the reference cannot drift."""

from __future__ import annotations

import argparse
import re

import pytest

from devtools.docs import GENERATED, ROOT, pages
from devtools.docs.settings_page import read_setting_names
from stream.adapters.metrics import Metrics
from stream.cli.main import build_parser
from stream.config.settings_help import HELP


@pytest.mark.parametrize("path", sorted(GENERATED))
def test_the_committed_page_is_the_generated_one(path: str) -> None:
    committed = (ROOT / path).read_text()
    assert committed == pages()[path], f"{path} is stale: run `python -m devtools.docs`"


def test_every_setting_the_code_reads_has_its_meaning() -> None:
    names = read_setting_names()
    assert "KAFKA_BOOTSTRAP" in names and "API_TOKEN" in names
    assert set(names) == set(HELP)


def test_the_settings_page_names_every_variable() -> None:
    page = pages()["docs/reference/settings.md"]
    for name in read_setting_names():
        assert f"| `ENGAGEMENT_{name}`" in page, name


def test_the_metrics_page_names_every_exposed_family() -> None:
    exposition = Metrics().render().decode()
    families = set(re.findall(r"^# TYPE (\S+) ", exposition, re.M))
    page = pages()["docs/reference/metrics.md"]
    assert families
    for family in families - {f for f in families if f.endswith("_created")}:
        assert f"`{family}`" in page, family


def test_the_cli_page_has_a_section_per_service_command() -> None:
    page = pages()["docs/reference/cli.md"]
    actions = build_parser(development=False)._actions
    sub = next(a for a in actions if isinstance(a, argparse._SubParsersAction))
    assert sub.choices
    for name in sub.choices:
        assert f"\n## engagement {name}\n" in page, name
