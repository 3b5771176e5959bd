"""The alert rules a model configures: the band rule (``AlertPolicy``) and the further
rules (``AlertRule``), for customers and accounts alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from stream.errors import InvalidModelError

__all__ = ["DAY_MS", "RULE_KINDS", "AlertPolicy", "AlertRule", "RuleKind"]

DAY_MS = 86_400_000
RuleKind = Literal["band_entered", "score_drop", "score_rise"]
RULE_KINDS: tuple[RuleKind, ...] = get_args(RuleKind)


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """When entering the alert band raises an alert.

    A customer alerts on entering ``band`` only while armed. Alerting disarms; the
    customer is re-armed once their score climbs above ``rearm_above``. ``cooldown_ms``
    additionally spaces two alerts of one customer by at least that long.

    With ``onboarding_after_ms``, a customer who is in ``band`` when that long has passed
    since they were first seen alerts once (type ``<band>_after_onboarding``), through the
    same gate (armed and cooled down). ``name`` is the rule's name in alerts; a model whose
    ``rules`` have no band rule has this rule switched off (``enabled`` False).
    """

    band: str = "churn_risk"
    rearm_above: float = 10.0
    cooldown_ms: int = 86_400_000
    onboarding_after_ms: int | None = None
    name: str = "churn_risk"
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class AlertRule:
    """A further alert rule, with its own gate (armed, last alert) per customer.

    - ``band_entered``: the customer entered ``band`` from another band. Re-armed once the
      score climbs above ``rearm_above``, or (None) once the customer has left ``band``.
    - ``score_drop`` / ``score_rise``: the score fell / rose against its value ``over_ms``
      earlier (from the history) by at least ``points_cp`` or by at least ``percent`` of that
      earlier value (when it was above zero); either threshold suffices, None disables it.
      Re-armed once the condition no longer holds.

    Two alerts of one rule and customer are at least ``cooldown_ms`` apart.
    """

    name: str
    when: RuleKind
    band: str | None = None
    rearm_above: float | None = None
    percent: float | None = None
    points_cp: int | None = None
    over_ms: int = 7 * DAY_MS
    cooldown_ms: int = DAY_MS

    def __post_init__(self) -> None:
        if self.when == "band_entered" and self.band is None:
            raise InvalidModelError(f"rule {self.name!r}: band_entered needs a band")
        if self.when != "band_entered" and self.percent is None and self.points_cp is None:
            raise InvalidModelError(f"rule {self.name!r}: {self.when} needs percent or points")

    def crossed(self, before_cp: int, after_cp: int) -> bool:
        """For score rules: has the score moved far enough from ``before_cp``?"""
        delta = before_cp - after_cp if self.when == "score_drop" else after_cp - before_cp
        if delta <= 0:
            return False
        if self.points_cp is not None and delta >= self.points_cp:
            return True
        percent = self.percent
        return percent is not None and before_cp > 0 and delta * 100 >= percent * before_cp
