"""Segment rollups and the engagement index, in pure terms (no I/O).

A model may name *segment dimensions*: trait names such as ``plan``, ``country`` or
``channel`` (from Segment ``identify`` calls). Every customer then belongs, per dimension,
to one *segment value*: its trait's value normalised to a string (``normalise``), or
``(none)`` when the trait is missing, null or empty. Per dimension and value the rollup keeps
how many customers are in each band and the sum of their scores (in centipoints), so the
mean score and the engagement index follow without reading a single customer.

Cardinality is bounded: at most ``max_values`` distinct values per dimension are tracked
(the first ones seen); a customer whose value is not admitted counts under ``(other)``.
``(none)`` and ``(other)`` are always tracked and not counted against the limit. Which values
are admitted is decided by the store, consistently across workers (see
``stream.adapters.redis_segments``); this module only says how a membership contributes.

The rollup is maintained incrementally: a customer's *membership* (band, score, value per
dimension) is stored with the counters, and writing a new membership adjusts the counters
by the difference from the old one (``apply_change``), so writing the same membership again
changes nothing (idempotent) and the counters always equal the sum over stored memberships
(``rollup`` computes that sum from scratch; the tests compare the two).

Engagement index: each band belongs to one of three groups, and the index is the share of
customers per group, in percent. With the shipped bands: ``power_user`` and
``highly_engaged`` are *engaged*, ``somewhat_engaged`` is *responsive*, ``very_disengaged``
and ``churn_risk`` are *disengaged*. Bands of another model are grouped by position: the
lowest two fifths disengaged, the highest two fifths engaged, the rest responsive.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from stream.core.bands import BandScale

__all__ = [
    "DEFAULT_MAX_VALUES",
    "GROUPS",
    "MAX_DIMENSIONS",
    "MAX_VALUES_LIMIT",
    "MAX_VALUE_LENGTH",
    "NONE_VALUE",
    "OTHER_VALUE",
    "Group",
    "Membership",
    "SegmentRow",
    "SegmentSettings",
    "apply_change",
    "contribution",
    "decode_membership",
    "encode_membership",
    "engagement_index",
    "index_group",
    "membership",
    "normalise",
    "rollup",
    "segment_rows",
]

Group = Literal["engaged", "responsive", "disengaged"]
GROUPS: tuple[Group, ...] = ("engaged", "responsive", "disengaged")
_SHIPPED_GROUPS: dict[str, Group] = {
    "power_user": "engaged",
    "highly_engaged": "engaged",
    "somewhat_engaged": "responsive",
    "very_disengaged": "disengaged",
    "churn_risk": "disengaged",
}

NONE_VALUE = "(none)"
OTHER_VALUE = "(other)"
DEFAULT_MAX_VALUES = 50
MAX_VALUES_LIMIT = 1000  # the most a model may ask for, per dimension
MAX_DIMENSIONS = 10
MAX_VALUE_LENGTH = 64  # characters; longer values are cut
# Separators of the stored encoding (values never contain control characters).
_PART = "\x1f"  # between dimension, value and band in a counter field
_ITEM = "\x1e"  # between the parts of a stored membership


@dataclass(frozen=True, slots=True)
class SegmentSettings:
    """The model's ``segments`` section: the dimensions (trait names) and the limit of
    distinct values tracked per dimension."""

    dimensions: tuple[str, ...]
    max_values: int = DEFAULT_MAX_VALUES


@dataclass(frozen=True, slots=True)
class Membership:
    """What one customer contributes to the rollups: its band, its score in centipoints and
    its value per dimension (``values`` pairs, in the model's dimension order)."""

    band: str
    score_cp: int
    values: tuple[tuple[str, str], ...]
    max_values: int = DEFAULT_MAX_VALUES


@dataclass(slots=True)
class SegmentRow:
    """One segment value's figures, as read back from the counters."""

    value: str
    customers: int
    mean_score: float
    bands: dict[str, int]
    index: dict[Group, float]

    def as_json(self) -> dict[str, Any]:
        return {"value": self.value, "customers": self.customers,
                "mean_score": self.mean_score, "bands": self.bands,
                "index": self.index}  # fmt: skip


def index_group(bands: BandScale, name: str) -> Group:
    """The engagement-index group of a band (see the module doc)."""
    if set(bands.names) <= set(_SHIPPED_GROUPS):
        return _SHIPPED_GROUPS[name]
    position = bands.names.index(name) / len(bands.names)
    if position < 0.4:
        return "disengaged"
    return "engaged" if position >= 0.6 else "responsive"


def engagement_index(bands: BandScale, counts: Mapping[str, int]) -> dict[Group, float]:
    """Percent of customers per group (all zero when there are no customers); counts of
    names that are not bands of ``bands`` are left out."""
    known = {name: count for name, count in counts.items() if name in bands.names}
    total = sum(known.values())
    shares: dict[Group, float] = dict.fromkeys(GROUPS, 0.0)
    if total == 0:
        return shares
    for name, count in known.items():
        shares[index_group(bands, name)] += 100.0 * count / total
    return shares


def normalise(value: Any) -> str:
    """A trait value as a segment value: strings as they are, numbers and booleans as their
    JSON text, lists and objects as compact JSON; control characters become U+FFFD, and the
    result is cut to ``MAX_VALUE_LENGTH`` characters. Missing, null and empty: ``(none)``."""
    if value is None:
        return NONE_VALUE
    if isinstance(value, str) and value.isprintable() and 0 < len(value) <= MAX_VALUE_LENGTH:
        return value if not value.isspace() else NONE_VALUE  # the common case, fast
    if isinstance(value, str):
        text = value
    else:
        try:
            text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
        except TypeError:  # not serialisable: cannot come from JSON, but stay total
            text = str(value)
    if not text.strip():
        return NONE_VALUE
    text = text[:MAX_VALUE_LENGTH]
    return "".join("\ufffd" if unicodedata.category(c) == "Cc" else c for c in text)


def membership(
    settings: SegmentSettings | None, traits: Mapping[str, Any], band: str, score_cp: int
) -> Membership | None:
    """A customer's membership from its traits (None when the model has no segments).
    The values are not yet checked against the limit: the store does that."""
    if settings is None:
        return None
    values = []
    for dim in settings.dimensions:  # the worker's hot path: plain strings skip normalise()
        value = traits.get(dim)
        if (type(value) is not str or not value.isprintable() or value.isspace()
                or not 0 < len(value) <= MAX_VALUE_LENGTH):  # fmt: skip
            value = normalise(value)
        values.append((dim, value))
    return Membership(band, score_cp, tuple(values), settings.max_values)


def contribution(member: Membership) -> dict[str, int]:
    """The counter fields a membership adds to: ``dim\\x1fvalue\\x1fband`` by one (customers
    in that band) and ``dim\\x1fvalue`` by its score (centipoints)."""
    out: dict[str, int] = {}
    for dim, value in member.values:
        out[f"{dim}{_PART}{value}{_PART}{member.band}"] = 1
        out[f"{dim}{_PART}{value}"] = member.score_cp
    return out


def apply_change(counts: dict[str, int], old: Membership | None, new: Membership | None) -> None:
    """Move ``counts`` from including ``old`` to including ``new`` (either may be None);
    fields that reach zero are removed, as the Redis script does."""
    delta: dict[str, int] = {}
    for sign, member in ((-1, old), (1, new)):
        if member is not None:
            for name, amount in contribution(member).items():
                delta[name] = delta.get(name, 0) + sign * amount
    for name, amount in delta.items():
        if amount:
            total = counts.get(name, 0) + amount
            if total:
                counts[name] = total
            else:
                counts.pop(name, None)


def rollup(members: Iterable[Membership]) -> dict[str, int]:
    """The counters of a set of memberships, from scratch (the reference)."""
    counts: dict[str, int] = {}
    for member in members:
        apply_change(counts, None, member)
    return counts


def encode_membership(member: Membership) -> str:
    """The stored form: ``score_cp``, band, then ``dim\\x1fvalue`` per dimension, joined by
    ``\\x1e`` (the Redis script reads it)."""
    parts = [str(member.score_cp), member.band, *(f"{d}{_PART}{v}" for d, v in member.values)]
    return _ITEM.join(parts)


def decode_membership(raw: str, max_values: int = DEFAULT_MAX_VALUES) -> Membership:
    """The membership of ``encode_membership``'s text."""
    score, band, *pairs = raw.split(_ITEM)
    values = tuple(tuple(p.split(_PART, 1)) for p in pairs)
    return Membership(band, int(score), values, max_values)  # type: ignore[arg-type]


@dataclass(slots=True)
class _Totals:
    bands: dict[str, int] = field(default_factory=dict)
    sum_cp: int = 0


def segment_rows(
    counts: Mapping[str, int], settings: SegmentSettings, bands: BandScale
) -> dict[str, list[SegmentRow]]:
    """Per configured dimension, one row per value with customers, most customers first
    (ties by value). Counter fields of other dimensions (a model that changed its
    dimensions, before every customer was re-evaluated) are left out."""
    totals: dict[str, dict[str, _Totals]] = {dim: {} for dim in settings.dimensions}
    for name, amount in counts.items():
        parts = name.split(_PART)
        if parts[0] not in totals or len(parts) not in (2, 3):
            continue
        entry = totals[parts[0]].setdefault(parts[1], _Totals())
        if len(parts) == 3:
            entry.bands[parts[2]] = entry.bands.get(parts[2], 0) + amount
        else:
            entry.sum_cp += amount
    out: dict[str, list[SegmentRow]] = {}
    for dim, values in totals.items():
        rows = []
        for value, entry in values.items():
            customers = sum(entry.bands.values())
            if customers <= 0:
                continue
            in_bands = {name: entry.bands.get(name, 0) for name in bands.names}
            rows.append(SegmentRow(value, customers, round(entry.sum_cp / customers / 100, 2),
                                   in_bands, engagement_index(bands, in_bands)))  # fmt: skip
        out[dim] = sorted(rows, key=lambda r: (-r.customers, r.value))
    return out
