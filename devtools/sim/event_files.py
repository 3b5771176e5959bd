"""Labelled event history, offline and fast: events and churn labels written to files.

Each customer has a latent engagement level. It sets how active the customer is and,
with noise, how likely they are to churn: churn depends on engagement level, not only on
going silent. Churners become steadily less active over their last weeks; some (the
"silent leavers") stop well before their churn date. Customers join over the whole period,
so tenure varies. The event types are the default model's, so any model can be tried on it.
"""

from __future__ import annotations

import csv
import gzip
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from stream.event_files.labels import Label
from stream.event_files.sources import RawRecord

__all__ = [
    "HistoryCustomer",
    "HistorySpec",
    "history_labels",
    "history_records",
    "make_history",
    "write_history",
]

DAY_MS = 86_400_000
_TYPES = ("page_view", "click", "feature_used", "like", "comment", "share", "app_open")
_MIX = np.array([0.40, 0.25, 0.12, 0.08, 0.05, 0.03, 0.07])
_SLOPES = np.array([0.2, 0.2, 0.9, 0.6, 0.8, 0.8, 0.7])  # how much engagement drives each type
_SEGMENT_NAMES = {"page_view": "Page Viewed", "click": "Button Clicked"}


@dataclass(frozen=True, slots=True)
class HistorySpec:
    """How much history to simulate."""

    customers: int = 1000
    days: int = 180
    start: str = "2026-01-01"
    seed: int = 7
    base_rate: float = 2.5  # events per active day of an average customer
    monthly_churn: float = 0.06  # average churn hazard per 30 days
    silent_share: float = 0.2  # churners who stop 1-4 weeks before their churn date
    # No skill to find: churn independent of behaviour (the same hazard for everyone, no
    # slowing down or going silent before it), for testing that calibrate says so.
    no_skill: bool = False

    @property
    def start_ms(self) -> int:
        return int(datetime.fromisoformat(self.start).replace(tzinfo=UTC).timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class HistoryCustomer:
    """One simulated customer: latent engagement, join day and churn day (None: stayed)."""

    customer_id: str
    engagement: float
    join_day: int
    churn_day: int | None
    silent_from: int | None


def make_history(spec: HistorySpec) -> tuple[list[HistoryCustomer], list[tuple[int, str, int]]]:
    """Customers and their events as (timestamp ms, customer index, type index)."""
    rng = np.random.default_rng(spec.seed)
    customers = [_customer(spec, rng, i) for i in range(spec.customers)]
    events: list[tuple[int, str, int]] = []
    for index, person in enumerate(customers):
        events += _events(spec, rng, index, person)
    events.sort()
    return customers, events


def _customer(spec: HistorySpec, rng: np.random.Generator, index: int) -> HistoryCustomer:
    engagement = float(rng.normal())
    join = int(rng.integers(0, 14)) if rng.random() < 0.5 else int(rng.integers(0, spec.days))
    # Monthly hazard: logistic in engagement plus per-customer noise.
    base = math.log(spec.monthly_churn / (1 - spec.monthly_churn))
    noise = float(rng.normal(0, 0.6))
    hazard = 1 / (1 + math.exp(-(base - 1.1 * engagement + noise)))
    if spec.no_skill:
        hazard = spec.monthly_churn
    daily = 1 - (1 - hazard) ** (1 / 30)
    life = int(rng.geometric(daily)) if daily > 0 else spec.days * 10
    churn = join + max(life, 7)
    if churn >= spec.days:
        return HistoryCustomer(f"c{index:06d}", engagement, join, None, None)
    silent = churn - int(rng.integers(7, 29)) if rng.random() < spec.silent_share else None
    if spec.no_skill:
        return HistoryCustomer(f"c{index:06d}", engagement, join, churn, None)
    return HistoryCustomer(f"c{index:06d}", engagement, join, churn, silent)


def _events(
    spec: HistorySpec, rng: np.random.Generator, index: int, person: HistoryCustomer
) -> list[tuple[int, str, int]]:
    end = person.churn_day if person.churn_day is not None else spec.days
    days = np.arange(person.join_day, end)
    if days.size == 0:
        return []
    # Browsing volume (page views, clicks) varies a lot between customers and says little
    # about churn; the engaged actions (features, social, app) follow the engagement level.
    browse = rng.lognormal(0, 0.9)
    rates = spec.base_rate * _MIX * np.exp(_SLOPES * person.engagement)
    rates[:2] *= browse
    level = rng.lognormal(0, 0.3, days.size)
    if person.churn_day is not None and not spec.no_skill:  # less active over the last 60 days
        left = (person.churn_day - days) / 60.0
        level = level * np.clip(0.3 + 0.7 * left, 0.3, 1.0)
    if person.silent_from is not None:
        level = np.where(days >= person.silent_from, 0.0, level)
    active = rng.random(days.size) < 1 - math.exp(-0.35 * math.exp(0.5 * person.engagement))
    counts = rng.poisson(np.outer(level * active, rates))
    counts[0, 0] = max(counts[0, 0], 1)  # seen on the day they join
    out: list[tuple[int, str, int]] = []
    for row, day in enumerate(days.tolist()):
        for kind in np.flatnonzero(counts[row]).tolist():
            size = int(counts[row, kind])
            stamps = rng.integers(0, DAY_MS, size) + spec.start_ms + day * DAY_MS
            out += [(int(t), person.customer_id, kind) for t in stamps.tolist()]
    return out


def history_records(
    customers: list[HistoryCustomer], events: list[tuple[int, str, int]], segment_share: float = 0.2
) -> Iterator[RawRecord]:
    """The events as raw JSON messages (some in the Segment shape), for the replay."""
    for number, (stamp, customer_id, kind) in enumerate(events):
        doc = _document(number, stamp, customer_id, _TYPES[kind], segment_share)
        yield RawRecord(customer_id.encode(), orjson.dumps(doc), f"sim:{number}")


def _document(number: int, stamp: int, customer_id: str, kind: str, share: float) -> Any:
    event_id = f"e{number:09d}"
    if kind in _SEGMENT_NAMES and (number * 2654435761 % 1000) / 1000 < share:
        return {
            "type": "track",
            "event": _SEGMENT_NAMES[kind],
            "userId": customer_id,
            "messageId": event_id,
            "timestamp": _iso(stamp),
        }
    return {"event_id": event_id, "customer_id": customer_id, "type": kind, "timestamp": stamp}


def history_labels(spec: HistorySpec, customers: list[HistoryCustomer]) -> dict[str, Label]:
    """The customers' churn labels, as ``labels.csv`` holds them."""
    return {
        p.customer_id: Label(
            p.customer_id,
            p.churn_day is not None,
            spec.start_ms + p.churn_day * DAY_MS if p.churn_day is not None else None,
            spec.start_ms + p.join_day * DAY_MS,
        )
        for p in customers
    }


def _iso(millis: int) -> str:
    return datetime.fromtimestamp(millis / 1000, tz=UTC).isoformat(timespec="milliseconds")


def write_history(spec: HistorySpec, out: Path, *, csv_events: bool = False) -> dict[str, Any]:
    """Write ``events.jsonl.gz`` (or ``events.csv.gz``) and ``labels.csv`` under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    customers, events = make_history(spec)
    name = "events.csv.gz" if csv_events else "events.jsonl.gz"
    with gzip.open(out / name, "wt", encoding="utf-8", newline="") as stream:
        if csv_events:
            writer = csv.writer(stream)
            writer.writerow(["customer_id", "timestamp", "type", "event_id"])
            for number, (stamp, customer_id, kind) in enumerate(events):
                writer.writerow([customer_id, stamp, _TYPES[kind], f"e{number:09d}"])
        else:
            for record in history_records(customers, events):
                stream.write(record.value.decode() + "\n")
    with (out / "labels.csv").open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["customer_id", "churned", "churn_date", "first_seen"])
        for person in customers:
            churn = (
                _iso(spec.start_ms + person.churn_day * DAY_MS)
                if person.churn_day is not None
                else ""
            )
            first = _iso(spec.start_ms + person.join_day * DAY_MS)
            writer.writerow([person.customer_id, int(churn != ""), churn, first])
    churned = sum(p.churn_day is not None for p in customers)
    return {"events": len(events), "customers": len(customers), "churned": churned, "file": name}
