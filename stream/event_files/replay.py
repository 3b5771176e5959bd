"""Replay history in event time through the real core: decode, sort, advance step by step.

The clock follows the events: events are applied in steps (one bucket by default), each
customer with events in a step is advanced once at the end of that step, exactly as a
worker that received them then would. At requested stops (snapshots, the as-of moment)
every customer is advanced to the stop, so scores, bands and window-driven alerts are
those the worker would show at that moment. Nothing is ``too_old`` against the wall clock.

The result equals a from-scratch rebuild of each customer at the end (see the tests), and
the alerts are those the live worker would have raised, with their event-time dates.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from stream.core.alerts import Alert
from stream.core.customer import CustomerState, advance
from stream.core.decode import DecodeLimits, Ignored, Rejection
from stream.core.events import Event, fingerprint
from stream.core.kernel import Decoder
from stream.core.model import ScoringModel
from stream.core.profile import Profile, apply_profile
from stream.event_files.sources import RawRecord

__all__ = ["DecodeSummary", "Replay", "decode_records"]


@dataclass(slots=True)
class DecodeSummary:
    """What was read: events kept, rejections by the worker's reasons, events left out."""

    read: int = 0
    decoded: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    after_as_of: int = 0
    ignored: int = 0  # unmapped track names and unscored calls, as the worker skips them

    def declined(self, outcome: Rejection | Ignored) -> None:
        """Count a message the decoder did not take an event from."""
        if isinstance(outcome, Rejection):
            self.rejected[outcome.reason] += 1
        else:
            self.ignored += 1

    def lines(self) -> list[str]:
        """Human-readable summary lines."""
        rejected = ", ".join(f"{reason} {n}" for reason, n in self.rejected.most_common())
        lines = [
            f"read {self.read} records: {self.decoded} events",
            f"  rejected   {self.rejected.total()}" + (f" ({rejected})" if rejected else ""),
        ]
        if self.ignored:
            lines.append(f"  ignored    {self.ignored} (unmapped track names, unscored calls)")
        if self.after_as_of:
            lines.append(f"  after the as-of moment (left to the live workers) {self.after_as_of}")
        return lines


def decode_records(
    records: Iterable[RawRecord],
    model: ScoringModel,
    *,
    now_ms: int,
    as_of_ms: int | None = None,
    limits: DecodeLimits | None = None,
    summary: DecodeSummary | None = None,
) -> tuple[list[Event], DecodeSummary]:
    """Decode ``records`` with the worker's decoder; return the events sorted by time.

    ``now_ms`` is the wall clock (events further ahead are ``future_timestamp``); events
    after ``as_of_ms`` are counted and left out.
    """
    report = summary or DecodeSummary()
    kept: list[Event] = []
    decode = Decoder(model, limits, replay=True)
    for record in records:
        report.read += 1
        decoded = decode(record.value, record.key, record.role, now_ms, record.fallback_id)
        if not isinstance(decoded, Event):
            report.declined(decoded)
        elif as_of_ms is not None and decoded.timestamp_ms > as_of_ms:
            report.after_as_of += 1
        else:
            kept.append(decoded)
    kept.sort(key=_event_time)
    report.decoded = len(kept)
    return kept, report


def _event_time(event: Event) -> int:
    return event.timestamp_ms


StopHook = Callable[[int, "Replay"], None]


class Replay:
    """Customers' states advanced through history in event time."""

    def __init__(self, model: ScoringModel, step_ms: int | None = None) -> None:
        self.model = model
        self.step_ms = step_ms or model.bucket_ms
        self.states: dict[str, CustomerState] = {}
        self.breakdowns: dict[str, dict[str, int]] = {}
        self.marks: dict[str, dict[bytes, int]] = {}
        self.first_seen: dict[str, int] = {}
        self.next_due: dict[str, int | None] = {}
        self.alerts: list[Alert] = []
        self.profiles: dict[str, Profile] = {}  # traits and account from identify/group
        self.applied = 0
        self.duplicates = 0
        self.clock_ms: int | None = None

    def run(
        self,
        events: Sequence[Event],
        stops: Sequence[int] = (),
        on_stop: StopHook | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Apply ``events`` (sorted by time); at each stop advance everyone and call back."""
        pending_stops = sorted(stops)
        stop_at = 0
        pending: dict[str, list[Event]] = {}
        boundary: int | None = None
        done = 0
        for event in events:
            at = event.timestamp_ms
            if boundary is None or at >= boundary:
                if boundary is not None:
                    self._flush(pending, boundary)
                    pending = {}
                while stop_at < len(pending_stops) and pending_stops[stop_at] <= at:
                    self._stop(pending_stops[stop_at], on_stop)
                    stop_at += 1
                boundary = (at // self.step_ms + 1) * self.step_ms
                if stop_at < len(pending_stops):
                    boundary = min(boundary, pending_stops[stop_at])
                if progress is not None:
                    progress(done)
                    done = 0
            pending.setdefault(event.customer_id, []).append(event)
            done += 1
        if boundary is not None:
            self._flush(pending, boundary)
        for stop in pending_stops[stop_at:]:
            self._stop(stop, on_stop)
        if progress is not None:
            progress(done)

    def advance_all(self, now_ms: int) -> None:
        """Advance every known customer to ``now_ms`` (window expiry only)."""
        for customer_id in self.states:
            self._advance(customer_id, [], now_ms)
        self.clock_ms = now_ms

    def live_marks(self, customer_id: str, now_ms: int) -> list[tuple[bytes, int]]:
        """(fingerprint, expiry) of the customer's events still inside the window."""
        return [(m, e) for m, e in self.marks.get(customer_id, {}).items() if e > now_ms]

    def _stop(self, at_ms: int, on_stop: StopHook | None) -> None:
        self.advance_all(at_ms)
        for customer_id, marks in self.marks.items():
            self.marks[customer_id] = {m: e for m, e in marks.items() if e > at_ms}
        if on_stop is not None:
            on_stop(at_ms, self)

    def _flush(self, pending: dict[str, list[Event]], now_ms: int) -> None:
        model = self.model
        for customer_id, batch in pending.items():
            marks = self.marks.setdefault(customer_id, {})
            fresh = []
            for event in batch:
                mark = fingerprint(event)
                if mark in marks:
                    self.duplicates += 1
                    continue
                marks[mark] = model.expiry_of(model.bucket_of(event.timestamp_ms))
                fresh.append(event)
            if customer_id not in self.first_seen:
                self.first_seen[customer_id] = batch[0].timestamp_ms
            if any(e.traits is not None or e.account is not None for e in fresh):
                self.profiles[customer_id] = apply_profile(
                    self.profiles.get(customer_id, Profile()), fresh
                )
            self._advance(customer_id, fresh, now_ms)
            self.applied += len(fresh)
        self.clock_ms = now_ms

    def _advance(self, customer_id: str, events: list[Event], now_ms: int) -> None:
        state = self.states.get(customer_id)
        evaluation = advance(
            self.model,
            customer_id,
            state if state is not None else CustomerState(),
            events,
            now_ms,
            self.breakdowns.get(customer_id),
        )
        self.states[customer_id] = evaluation.state
        self.breakdowns[customer_id] = evaluation.breakdown
        self.next_due[customer_id] = evaluation.next_due_ms
        if evaluation.alerts:
            self.alerts.extend(evaluation.alerts)
