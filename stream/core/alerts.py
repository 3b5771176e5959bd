"""Churn-risk alert rules: when entering the alert band raises an alert, and its content."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from stream.core.model import AlertPolicy

__all__ = [
    "Alert",
    "AlertGate",
    "Reason",
    "Trigger",
    "alert_id",
    "falling_factors",
    "pass_gate",
    "pass_onboarding",
]

# What moved the score: new events, a bucket leaving the window, a new day of tenure, or
# the end of the onboarding period.
Trigger = Literal["event", "window", "tenure", "onboarding"]


@dataclass(frozen=True, slots=True)
class Reason:
    """A factor whose points fell, with the amounts in points."""

    factor: str
    change: float
    before: float
    after: float


@dataclass(frozen=True, slots=True)
class Alert:
    """A customer entered the alert band."""

    alert_id: str
    type: str
    customer_id: str
    previous_band: str
    band: str
    previous_score: float
    score: float
    occurred_at_ms: int
    trigger: Trigger
    reasons: tuple[Reason, ...]
    model_version: str


@dataclass(frozen=True, slots=True)
class AlertGate:
    """Per-customer alert memory: armed or not, when the last alert fired, and whether the
    end of the customer's onboarding period has been checked (it is checked once)."""

    armed: bool = True
    last_alert_ms: int | None = None
    onboarded: bool = False


def pass_gate(
    policy: AlertPolicy,
    gate: AlertGate,
    previous_band: str | None,
    band: str,
    score: float,
    at_ms: int,
) -> tuple[bool, AlertGate]:
    """Decide whether this band change fires an alert; return the decision and the new gate.

    Fires only on entering the alert band from another band (a brand-new customer has
    no previous band and never fires), while armed, and after the cooldown.
    """
    armed = gate.armed or score > policy.rearm_above
    entering = band == policy.band and previous_band not in (None, policy.band)
    cooled = gate.last_alert_ms is None or at_ms - gate.last_alert_ms >= policy.cooldown_ms
    if entering and armed and cooled:
        return True, replace(gate, armed=False, last_alert_ms=at_ms)
    if armed == gate.armed:
        return False, gate
    return False, replace(gate, armed=armed)


def pass_onboarding(
    policy: AlertPolicy, gate: AlertGate, band: str, at_ms: int, first_sight: bool
) -> tuple[bool, AlertGate]:
    """Check the end of the onboarding period, once; return whether it alerts and the gate.

    It alerts when the customer is in the alert band, armed and cooled down, unless the
    check happens on the customer's first sight (nothing to compare with, as for bands).
    Alerting disarms and starts the cooldown, like any alert.
    """
    if gate.onboarded:
        return False, gate
    cooled = gate.last_alert_ms is None or at_ms - gate.last_alert_ms >= policy.cooldown_ms
    if band == policy.band and gate.armed and cooled and not first_sight:
        return True, replace(gate, armed=False, last_alert_ms=at_ms, onboarded=True)
    return False, replace(gate, onboarded=True)


def falling_factors(before: Mapping[str, int], after: Mapping[str, int]) -> tuple[Reason, ...]:
    """Factors whose centipoints fell, largest fall first."""
    reasons = [
        Reason(factor, (after.get(factor, 0) - old) / 100, old / 100, after.get(factor, 0) / 100)
        for factor, old in before.items()
        if after.get(factor, 0) < old
    ]
    reasons += [
        Reason(factor, new / 100, 0.0, new / 100)
        for factor, new in after.items()
        if factor not in before and new < 0
    ]
    return tuple(sorted(reasons, key=lambda r: (r.change, r.factor)))


def alert_id(model_version: str, customer_id: str, trigger: Trigger, occurred_at_ms: int) -> str:
    """Deterministic alert identity: replaying the same input yields the same id."""
    material = f"{model_version}|{customer_id}|{trigger}|{occurred_at_ms}".encode()
    return hashlib.sha256(material).hexdigest()[:32]
