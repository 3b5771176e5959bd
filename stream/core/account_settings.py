"""The model's ``accounts`` section: how users' scores make an account's, its bands and
its alert rules (``stream.core.accounts`` evaluates accounts with it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from stream.core.bands import DEFAULT_BANDS, BandScale
from stream.core.rules import AlertPolicy, AlertRule

__all__ = ["AGGREGATES", "AccountSettings", "Aggregate"]

Aggregate = Literal["mean", "max", "top_n"]
AGGREGATES: tuple[Aggregate, ...] = get_args(Aggregate)


@dataclass(frozen=True, slots=True)
class AccountSettings:
    """The model's ``accounts`` section: how users' scores make an account's, its bands,
    and its alert rules (None: off)."""

    aggregate: Aggregate = "mean"
    top_n: int = 3
    bands: BandScale = DEFAULT_BANDS
    churn_risk: AlertPolicy | None = field(default_factory=AlertPolicy)
    score_drop: AlertRule | None = None
    history_points: int = 120

    def __post_init__(self) -> None:
        if self.top_n < 1:
            raise ValueError("accounts.top_n must be at least 1")
        if self.churn_risk is not None and self.churn_risk.band not in self.bands.names:
            raise ValueError(f"account alert band {self.churn_risk.band!r} is not a band")

    @property
    def top_needed(self) -> int:
        """How many of the highest user scores the aggregate reads (0: none, mean)."""
        return {"mean": 0, "max": 1, "top_n": self.top_n}[self.aggregate]
