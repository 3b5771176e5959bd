"""The generated reference pages of the documentation site (docs/reference/): the CLI from
the argparse parser, the settings from the settings class, the metrics from the Prometheus
registry. ``python -m devtools.docs`` writes them (``make docs`` runs it before the build);
``--check`` exits 1 and names the pages that differ from what the code says."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from devtools.docs.cli_page import cli_page
from devtools.docs.metrics_page import metrics_page
from devtools.docs.settings_page import settings_page

__all__ = ["GENERATED", "ROOT", "pages", "stale_pages", "write_pages"]

ROOT = Path(__file__).resolve().parents[2]

GENERATED: dict[str, Callable[[], str]] = {
    "docs/reference/cli.md": cli_page,
    "docs/reference/settings.md": settings_page,
    "docs/reference/metrics.md": metrics_page,
}
"""Each generated page (relative to the checkout) and the function that renders it."""


def pages() -> dict[str, str]:
    """Every generated page's path and its text as the code now says it."""
    return {path: render() for path, render in GENERATED.items()}


def stale_pages(root: Path = ROOT) -> list[str]:
    """The generated pages whose committed text differs from a fresh rendering."""
    stale = []
    for path, text in pages().items():
        file = root / path
        if not file.is_file() or file.read_text() != text:
            stale.append(path)
    return stale


def write_pages(root: Path = ROOT) -> list[str]:
    """Write every generated page; returns those whose text changed."""
    changed = stale_pages(root)
    for path, text in pages().items():
        (root / path).write_text(text)
    return changed
