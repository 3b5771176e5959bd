"""``engagement segments``: per segment value, customers, mean score, band counts and the
engagement index, read from the segment rollups (docs/concepts/segments.md)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from stream.cli.store import query_store
from stream.config.errors import ConfigError
from stream.config.model_file import load_model
from stream.config.settings import Settings
from stream.core.bands import BandScale
from stream.core.segments import SegmentRow

__all__ = ["add_segments", "format_table"]


def add_segments(sub: Any) -> None:
    """Register the ``segments`` command."""
    parser = sub.add_parser(
        "segments",
        help="customers, mean score, bands and engagement index per segment value "
        "(the model's 'segments' dimensions)",
    )
    parser.add_argument("--dimension", help="only this dimension, e.g. plan")
    parser.add_argument("--json", action="store_true", help="print JSON (as GET /api/segments)")
    parser.set_defaults(handler=_segments)


def _segments(args: argparse.Namespace, settings: Settings) -> int:

    model = load_model(settings.model)
    if model.segments is None:
        problem = (
            "is not set: the model has no segment dimensions "
            "(see the Segments page of the documentation)"
        )
        raise ConfigError(settings.model, "segments", problem)
    dims = model.segments.dimensions
    if args.dimension is not None and args.dimension not in dims:
        raise ConfigError("arguments", "--dimension", f"must be one of {list(dims)}")
    settings_ = model.segments
    rows = query_store(settings, lambda store: store.segments.rows(settings_, model.bands))
    chosen = {d: rows[d] for d in dims if args.dimension in (None, d)}
    if args.json:
        doc = {"dimensions": {d: [r.as_json() for r in found] for d, found in chosen.items()}}
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return 0
    print("\n\n".join(format_table(d, found, model.bands) for d, found in chosen.items()))
    return 0


def format_table(dimension: str, rows: list[SegmentRow], bands: BandScale) -> str:
    """One dimension as a text table: value, customers, mean score, engagement index
    (engaged / responsive / disengaged, percent), then customers per band."""
    short = [name[:10] for name in bands.names]
    head = (f"{dimension:<24} {'customers':>9} {'mean':>8} {'engaged':>8} {'respons.':>8} "
            f"{'diseng.':>8}  " + " ".join(f"{s:>10}" for s in short))  # fmt: skip
    lines = [head]
    for row in rows:
        index = row.index
        lines.append(
            f"{row.value[:24]:<24} {row.customers:>9} {row.mean_score:>8.2f} "
            f"{index['engaged']:>7.1f}% {index['responsive']:>7.1f}% {index['disengaged']:>7.1f}%  "
            + " ".join(f"{row.bands.get(b, 0):>10}" for b in bands.names)
        )
    if not rows:
        lines.append("  (no customers yet)")
    return "\n".join(lines)
