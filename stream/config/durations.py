"""Parse human durations such as ``30d``, ``1h``, ``90s`` or ``250ms`` into milliseconds."""

from __future__ import annotations

import re

__all__ = ["parse_duration_ms"]

_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_PATTERN = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration_ms(text: str) -> int:
    """Milliseconds in ``text``; raises ValueError naming the accepted forms."""
    match = _PATTERN.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a duration such as 250ms, 90s, 15m, 24h, 30d or 1w")
    return round(float(match.group(1)) * _UNITS[match.group(2)])
