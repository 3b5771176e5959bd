"""Alert rules: the churn-risk band rule (with onboarding), further band and score rules,
when each raises an alert, and the alert's content."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace

from stream.core.rules import AlertPolicy, AlertRule
from stream.core.vocabulary import Trigger

__all__ = [
    "Alert",
    "AlertGate",
    "Reason",
    "RuleGate",
    "Trigger",
    "alert_id",
    "falling_factors",
    "moved_factors",
    "pass_gate",
    "pass_onboarding",
    "pass_rule",
    "rising_factors",
]

# What moved the score: new events, a bucket leaving the window, a new day of tenure, or
# the end of the onboarding period.


@dataclass(frozen=True, slots=True)
class Reason:
    """A factor whose points moved (fell, or rose for an alert on a rise), with the amounts
    in points."""

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
    rule: str = "churn_risk"


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
    if not policy.enabled:
        return False, gate
    armed = gate.armed or score > policy.rearm_above
    entering = band == policy.band and previous_band not in (None, policy.band)
    cooled = gate.last_alert_ms is None or at_ms - gate.last_alert_ms >= policy.cooldown_ms
    if entering and armed and cooled:
        return True, replace(gate, armed=False, last_alert_ms=at_ms)
    if armed == gate.armed:
        return False, gate
    return False, replace(gate, armed=armed)


@dataclass(frozen=True, slots=True)
class RuleGate:
    """Per-customer memory of one further rule: armed or not, and its last alert."""

    armed: bool = True
    last_alert_ms: int | None = None


def pass_rule(
    rule: AlertRule,
    gate: RuleGate,
    previous_band: str | None,
    band: str,
    score_cp: int,
    reference_cp: int | None,
    at_ms: int,
) -> tuple[bool, RuleGate]:
    """Decide whether a further rule fires at this moment; return it and the new gate.

    ``reference_cp`` is the score ``rule.over_ms`` earlier (None: no history that old, and a
    score rule neither fires nor re-arms). A customer seen for the first time (no previous
    band) never fires.
    """
    if rule.when == "band_entered":
        holds = band == rule.band and previous_band not in (None, rule.band)
        if rule.rearm_above is not None:
            armed = gate.armed or score_cp > round(rule.rearm_above * 100)
        else:
            armed = gate.armed or band != rule.band
    else:
        if reference_cp is None:
            return False, gate
        holds = rule.crossed(reference_cp, score_cp) and previous_band is not None
        armed = gate.armed or not rule.crossed(reference_cp, score_cp)
    cooled = gate.last_alert_ms is None or at_ms - gate.last_alert_ms >= rule.cooldown_ms
    if holds and armed and cooled:
        return True, RuleGate(armed=False, last_alert_ms=at_ms)
    if armed == gate.armed:
        return False, gate
    return False, RuleGate(armed=armed, last_alert_ms=gate.last_alert_ms)


def pass_onboarding(
    policy: AlertPolicy, gate: AlertGate, band: str, at_ms: int, first_sight: bool
) -> tuple[bool, AlertGate]:
    """Check the end of the onboarding period, once; return whether it alerts and the gate.

    It alerts when the customer is in the alert band, armed and cooled down, unless the
    check happens on the customer's first sight (nothing to compare with, as for bands).
    Alerting disarms and starts the cooldown, like any alert.
    """
    if gate.onboarded or not policy.enabled:
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


def rising_factors(before: Mapping[str, int], after: Mapping[str, int]) -> tuple[Reason, ...]:
    """Factors whose centipoints rose, largest rise first."""
    fell = falling_factors({k: -v for k, v in before.items()}, {k: -v for k, v in after.items()})
    return tuple(Reason(r.factor, -r.change, -r.before, -r.after) for r in fell)


def moved_factors(
    before: Mapping[str, int], after: Mapping[str, int], *, rose: bool
) -> tuple[Reason, ...]:
    """The factors that moved the score the way it went: those that rose when the score
    rose (a band entered from below), else those that fell."""
    return rising_factors(before, after) if rose else falling_factors(before, after)


def alert_id(
    model_version: str,
    customer_id: str,
    trigger: Trigger,
    occurred_at_ms: int,
    rule: str | None = None,
) -> str:
    """Deterministic alert identity: replaying the same input yields the same id.

    The churn-risk rule's ids (``rule`` None) are those of earlier releases; a further
    rule's name is part of its ids, so two rules firing at one moment differ.
    """
    material = f"{model_version}|{customer_id}|{trigger}|{occurred_at_ms}"
    if rule is not None:
        material += f"|{rule}"
    material_bytes = material.encode()
    return hashlib.sha256(material_bytes).hexdigest()[:32]
