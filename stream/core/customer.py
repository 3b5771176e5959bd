"""One customer's state and the pure step that moves it forward in time."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from stream.core import window
from stream.core.alerts import Alert, AlertGate, alert_id, falling_factors, pass_gate
from stream.core.events import Event, fingerprint
from stream.core.model import ScoringModel

__all__ = ["CustomerState", "Evaluation", "advance", "drop_duplicates"]


@dataclass(slots=True)
class CustomerState:
    """Everything remembered about one customer between evaluations."""

    buckets: window.Buckets = field(default_factory=dict)
    score_cp: int = 0
    band: str | None = None
    gate: AlertGate = field(default_factory=AlertGate)
    updated_ms: int = 0


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The result of advancing a customer: new state, its explanation and any alerts."""

    state: CustomerState
    breakdown: dict[str, int]
    alerts: tuple[Alert, ...]
    next_due_ms: int | None
    applied: int


def drop_duplicates(
    events: Iterable[Event], seen: set[bytes], marks: Iterable[bytes] | None = None
) -> list[Event]:
    """Events whose fingerprint is not in ``seen``, first occurrence only; ``seen`` grows.

    ``marks`` are the events' fingerprints when the caller has computed them already.
    """
    fresh: list[Event] = []
    pairs = (
        zip(events, marks, strict=True)
        if marks is not None
        else ((event, fingerprint(event)) for event in events)
    )
    for event, mark in pairs:
        if mark not in seen:
            seen.add(mark)
            fresh.append(event)
    return fresh


def advance(
    model: ScoringModel,
    customer_id: str,
    state: CustomerState,
    events: Sequence[Event],
    now_ms: int,
    breakdown: dict[str, int] | None = None,
) -> Evaluation:
    """Expire what has aged out by ``now_ms``, then apply ``events`` (already de-duplicated).

    Expiry is replayed moment by moment, so a window-driven crossing is dated at the
    moment it happened; the batch of events is applied as one moment dated by its
    latest event. ``breakdown`` is the state's breakdown if the caller kept it from the
    previous evaluation (it is recomputed otherwise).
    """
    buckets = {b: dict(slot) for b, slot in state.buckets.items()}
    start = breakdown if breakdown is not None else window.breakdown(model, buckets)
    tracker = _Tracker(model, customer_id, state, start)
    for moment in window.expiry_moments(model, buckets, now_ms):
        window.pop_expired(model, buckets, moment)
        tracker.observe(window.breakdown(model, buckets), "window", moment)
    live = [e for e in events if model.is_live(e.timestamp_ms, now_ms)]
    for event in live:
        window.add(buckets, model.bucket_of(event.timestamp_ms), model.contributions(event))
    if live:
        tracker.observe(
            window.breakdown(model, buckets), "event", max(e.timestamp_ms for e in live)
        )
    new_state = CustomerState(
        buckets=buckets,
        score_cp=tracker.score_cp,
        band=tracker.band if tracker.band is not None else model.bands.band_for(0),
        gate=tracker.gate,
        updated_ms=now_ms if tracker.changed else state.updated_ms,
    )
    return Evaluation(
        state=new_state,
        breakdown=tracker.breakdown,
        alerts=tuple(tracker.alerts),
        next_due_ms=window.next_expiry(model, buckets),
        applied=len(live),
    )


class _Tracker:
    """Follows score and band through successive moments and collects alerts."""

    def __init__(
        self, model: ScoringModel, customer_id: str, state: CustomerState, start: dict[str, int]
    ) -> None:
        self.model = model
        self.customer_id = customer_id
        self.breakdown = start
        self.score_cp = state.score_cp
        self.band = state.band
        self.gate = state.gate
        self.alerts: list[Alert] = []
        self.changed = False

    def observe(self, breakdown: dict[str, int], trigger: str, at_ms: int) -> None:
        score_cp = sum(breakdown.values())
        band = self.model.bands.band_for(score_cp / 100)
        fire, self.gate = pass_gate(
            self.model.alerts, self.gate, self.band, band, score_cp / 100, at_ms
        )
        if fire and self.band is not None:
            self.alerts.append(
                Alert(
                    alert_id=alert_id(self.model.version, self.customer_id, trigger, at_ms),
                    type=f"{band}_entered",
                    customer_id=self.customer_id,
                    previous_band=self.band,
                    band=band,
                    previous_score=self.score_cp / 100,
                    score=score_cp / 100,
                    occurred_at_ms=at_ms,
                    trigger=trigger,
                    reasons=falling_factors(self.breakdown, breakdown),
                    model_version=self.model.version,
                )
            )
        self.changed = self.changed or breakdown != self.breakdown or band != self.band
        self.breakdown, self.score_cp, self.band = breakdown, score_cp, band
