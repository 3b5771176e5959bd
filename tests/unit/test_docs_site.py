"""The front door stays short and the site keeps its shape: README under 300 lines with the
two Quick start commands, every navigation entry an existing page, and every contract at most
two clicks deep (a top tab, then the page)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).parents[2]
CONTRACTS = {
    "input shapes": "reference/input.md",
    "alert contract": "reference/alerts.md",
    "dead-letter contract": "reference/dead-letters.md",
    "Redis keys": "reference/redis-keys.md",
    "HTTP API": "reference/http-api.md",
    "CLI": "reference/cli.md",
    "settings": "reference/settings.md",
    "model file": "reference/model-file.md",
    "metrics": "reference/metrics.md",
}


def _nav_pages(entries: list[Any], depth: int = 1) -> dict[str, int]:
    """Each page of the navigation and how many clicks reach it."""
    pages: dict[str, int] = {}
    for entry in entries:
        for value in entry.values():
            if isinstance(value, str):
                pages[value] = depth
            else:
                pages |= _nav_pages(value, depth + 1)
    return pages


def _nav() -> dict[str, int]:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    return _nav_pages(config["nav"])


def test_the_readme_is_short_and_its_quick_start_is_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 300
    quick_start = readme.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", quick_start, re.S)
    assert block, "README's Quick start lost its command block"
    assert block.group(1).split("\n")[:-1] == ["make demo", "make test"]


def test_every_navigation_entry_is_a_page() -> None:
    for page in _nav():
        assert (ROOT / "docs" / page).is_file(), page


def test_every_contract_is_at_most_two_clicks_deep() -> None:
    nav = _nav()
    for contract, page in CONTRACTS.items():
        assert page in nav, f"the {contract} page is not in the navigation"
        assert nav[page] <= 2, f"the {contract} page is {nav[page]} clicks deep"
