"""Accounts (B2B): an account's score from its users' scores, its band, and its alerts.

A customer belongs to at most one account (the latest ``group`` call or ``context.groupId``,
``stream.core.profile``). An account's score is an aggregate of its users' current scores,
all in integer centipoints so it is exact and independent of the order of updates:

- ``mean``: the users' mean, rounded half up to a centipoint (``floor(sum / n + 1/2)``);
- ``max``: the highest user score;
- ``top_n``: the sum of the ``top_n`` highest user scores (fewer users: all of them).

The store keeps, per account, the users' scores, their running sum and the highest ones
(``Rollup``); this module turns a rollup into the account's score and band and decides the
account's alerts (``evaluate``), against the account's last evaluated state:

- ``churn_risk`` (type ``account_churn_risk``): the account entered the alert band from
  another band, while armed (re-armed once its score climbs above ``rearm_above``) and at
  least ``cooldown`` after its last such alert (``stream.core.alerts.pass_gate``);
- ``score_drop`` (type ``account_score_drop``): the score fell by at least ``points`` or
  ``percent`` against the account's score ``over`` earlier, from the account's own bounded
  score history (one point per model bucket, ``stream.core.score_history``); re-armed once the
  condition no longer holds (``stream.core.alerts.pass_rule``).

An account is evaluated only when its score or its number of users changed since the last
evaluation, at the batch's moment (the worker's clock): a replay that sets the same user
scores changes nothing and decides nothing, so it raises no alert twice. Alert ids are
deterministic: a hash of the model version, the account, the rule and the moment.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from stream.core import score_history
from stream.core.account_settings import AccountSettings
from stream.core.alerts import AlertGate, RuleGate, pass_gate, pass_rule

__all__ = [
    "AccountAlert",
    "AccountResult",
    "AccountState",
    "Rollup",
    "account_alert_id",
    "aggregate",
    "evaluate",
    "reference_aggregate",
]

AccountRule = Literal["churn_risk", "score_drop"]


@dataclass(frozen=True, slots=True)
class Rollup:
    """What the store knows of an account's users: how many, their scores' sum, and the
    ``top_needed`` highest scores, highest first (all centipoints)."""

    users: int
    sum_cp: int
    top_cp: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class AccountState:
    """An account as last evaluated: score (None without users), band, user count, the
    moment, the bounded score history and the alert gates."""

    score_cp: int | None = None
    band: str | None = None
    users: int = 0
    updated_ms: int = 0
    history: score_history.History = ()
    churn_gate: AlertGate = field(default_factory=AlertGate)
    drop_gate: RuleGate = field(default_factory=RuleGate)


@dataclass(frozen=True, slots=True)
class AccountAlert:
    """An account alert (published with ``scope: account``)."""

    alert_id: str
    rule: AccountRule
    account_id: str
    previous_band: str | None
    band: str
    previous_score_cp: int | None
    score_cp: int
    reference_score_cp: int | None  # score_drop: the score ``over`` earlier
    users: int
    occurred_at_ms: int
    model_version: str

    @property
    def type(self) -> str:
        return f"account_{self.rule}"


@dataclass(frozen=True, slots=True)
class AccountResult:
    """The account after an evaluation, its alerts, and whether anything changed."""

    state: AccountState
    alerts: tuple[AccountAlert, ...] = ()
    changed: bool = False


def aggregate(settings: AccountSettings, rollup: Rollup) -> int | None:
    """The account's score in centipoints from its rollup (None: no users)."""
    if rollup.users <= 0:
        return None
    if settings.aggregate == "mean":
        return (2 * rollup.sum_cp + rollup.users) // (2 * rollup.users)
    if settings.aggregate == "max":
        return rollup.top_cp[0]
    return sum(rollup.top_cp[: settings.top_n])


def reference_aggregate(settings: AccountSettings, scores_cp: Sequence[int]) -> int | None:
    """The aggregate computed from scratch from every user score (the tests' reference)."""
    if not scores_cp:
        return None
    ordered = sorted(scores_cp, reverse=True)
    return aggregate(
        settings, Rollup(len(ordered), sum(ordered), tuple(ordered[: settings.top_needed]))
    )


def account_alert_id(model_version: str, account_id: str, rule: str, at_ms: int) -> str:
    """Deterministic id of an account alert (never equal to a customer alert's: the
    material starts with ``account``)."""
    material = f"account|{model_version}|{account_id}|{rule}|{at_ms}".encode()
    return hashlib.sha256(material).hexdigest()[:32]


def evaluate(
    settings: AccountSettings,
    account_id: str,
    state: AccountState,
    rollup: Rollup,
    now_ms: int,
    bucket_ms: int,
    model_version: str,
) -> AccountResult:
    """The account after its users' scores became ``rollup``, at ``now_ms``.

    Unchanged score and user count: nothing happens (``changed`` False). Otherwise the
    score and band are recorded (the history gets the score at the bucket of ``now_ms``)
    and the alert rules are checked. An account seen for the first time never alerts.
    """
    score = aggregate(settings, rollup)
    if score == state.score_cp and rollup.users == state.users:
        return AccountResult(state)
    if score is None:  # every user left: keep history and gates, no score, no band
        return AccountResult(
            replace(state, score_cp=None, band=None, users=0, updated_ms=now_ms), changed=True
        )
    band = settings.bands.band_for(score / 100)
    bucket = now_ms // bucket_ms * bucket_ms
    alerts: list[AccountAlert] = []

    def alert(rule: AccountRule, reference: int | None = None) -> AccountAlert:
        return AccountAlert(
            account_alert_id(model_version, account_id, rule, now_ms), rule, account_id,
            state.band, band, state.score_cp, score, reference, rollup.users, now_ms,
            model_version,
        )  # fmt: skip

    churn_gate = state.churn_gate
    if settings.churn_risk is not None:
        fire, churn_gate = pass_gate(settings.churn_risk, churn_gate, state.band, band,
                                     score / 100, now_ms)  # fmt: skip
        if fire:
            alerts.append(alert("churn_risk"))
    drop_gate = state.drop_gate
    rule = settings.score_drop
    if rule is not None:
        then = (now_ms - rule.over_ms) // bucket_ms * bucket_ms
        reference = score_history.value_at(state.history, then)
        fire, drop_gate = pass_rule(rule, drop_gate, state.band, band, score, reference, now_ms)
        if fire:
            alerts.append(alert("score_drop", reference))
    points = score_history.record(state.history, bucket, score, settings.history_points)
    new = AccountState(score, band, rollup.users, now_ms, points, churn_gate, drop_gate)
    return AccountResult(new, tuple(alerts), changed=True)
