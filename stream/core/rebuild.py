"""Rebuild a customer's state from its retained events, as if a model had always run.

Used when the scoring model changes (``engagement rescore``): the window is computed from
scratch, so nothing of the old model's points survives, while the customer's alert memory
(armed, last alert, onboarding checked) and first-seen time are carried over, so a customer
alerted shortly before the switch is not alerted again within the cooldown, and tenure keeps
counting from the customer's first event rather than from the oldest retained one. A
rebuild never alerts: the customer starts without a band, and entering a band from none is
not an alert (nor is an onboarding period found already over), so history is not
re-announced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from stream.core.customer import CustomerState, Evaluation, advance, drop_duplicates
from stream.core.events import Event
from stream.core.model import ScoringModel
from stream.errors import ProcessingError

__all__ = ["Rebuilt", "carried_over", "rebuild"]


@dataclass(frozen=True, slots=True)
class Rebuilt:
    """A customer's rebuilt evaluation, the events it applied, and how many were repeats."""

    evaluation: Evaluation
    applied: tuple[Event, ...]
    duplicates: int


def carried_over(previous: CustomerState) -> CustomerState:
    """What survives a model change: the alert memory (of every rule), the last update
    time, the first-seen time and the score history with its model-version markers (the
    rebuild adds a marker for the new version); no window."""
    return CustomerState(
        gate=previous.gate,
        updated_ms=previous.updated_ms,
        first_seen_ms=previous.first_seen_ms,
        history=previous.history,
        markers=previous.markers,
        version=previous.version,
        rule_gates=previous.rule_gates,
    )


def rebuild(
    model: ScoringModel,
    customer_id: str,
    events: Sequence[Event],
    now_ms: int,
    previous: CustomerState | None = None,
) -> Rebuilt:
    """The customer's state at ``now_ms`` from ``events`` (repeats dropped, first one kept)."""
    fresh = drop_duplicates(events, set())
    start = carried_over(previous) if previous is not None else CustomerState()
    evaluation = advance(model, customer_id, start, fresh, now_ms)
    if evaluation.alerts:  # cannot happen: the customer starts without a band
        raise ProcessingError(f"a rebuild of {customer_id!r} produced alerts")
    applied = tuple(e for e in fresh if model.is_live(e.timestamp_ms, now_ms))
    return Rebuilt(evaluation, applied, len(events) - len(fresh))
