"""Churn labels: which customers left and when, read from CSV.

Columns: ``customer_id,churned,churn_date`` and optionally ``first_seen``. ``churned`` is
1/0, true/false or yes/no; dates are ISO 8601 (a bare date is midnight UTC) or epoch
milliseconds; ``churn_date`` is empty for customers who stayed.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from stream.event_files.sources import open_text

__all__ = ["Label", "parse_time_ms", "read_labels"]

_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f", ""}


@dataclass(frozen=True, slots=True)
class Label:
    """One customer's outcome."""

    customer_id: str
    churned: bool
    churn_ms: int | None
    first_seen_ms: int | None


def parse_time_ms(text: str) -> int:
    """Epoch milliseconds of ISO 8601 text (UTC when no zone is given) or of digits."""
    value = text.strip()
    if value.isdigit():
        return int(value)
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return round(parsed.timestamp() * 1000)


def read_labels(path: Path) -> dict[str, Label]:
    """Labels by customer id; raises ValueError naming the line of a malformed row."""
    with open_text(path) as text:
        return parse_labels(text, str(path))


def parse_labels(text: io.TextIOBase, source: str) -> dict[str, Label]:
    """Labels from CSV text (see the module doc)."""
    reader = csv.DictReader(text)
    fields = set(reader.fieldnames or [])
    missing = {"customer_id", "churned"} - fields
    if missing:
        raise ValueError(f"{source}: labels need the columns {sorted(missing)}")
    labels: dict[str, Label] = {}
    for number, row in enumerate(reader, start=2):
        try:
            label = _row(row)
        except ValueError as exc:
            raise ValueError(f"{source}:{number}: {exc}") from None
        labels[label.customer_id] = label
    return labels


def _row(row: dict[str, str]) -> Label:
    customer_id = (row.get("customer_id") or "").strip()
    if not customer_id:
        raise ValueError("customer_id is empty")
    flag = (row.get("churned") or "").strip().lower()
    if flag not in _TRUE | _FALSE:
        raise ValueError(f"churned must be 1/0 or true/false, got {flag!r}")
    churn_text = (row.get("churn_date") or "").strip()
    first_text = (row.get("first_seen") or "").strip()
    churned = flag in _TRUE
    if churned and not churn_text:
        raise ValueError("a churned customer needs a churn_date")
    return Label(
        customer_id=customer_id,
        churned=churned,
        churn_ms=parse_time_ms(churn_text) if churned else None,
        first_seen_ms=parse_time_ms(first_text) if first_text else None,
    )
