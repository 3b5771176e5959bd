"""The scoring model: how many points each event is worth, and to which factor.

Points are kept as integer centipoints (1 point = 100) so that sums are exact and
independent of the order in which events arrive. A factor's window total may be
transformed (weighted, capped or log-saturated); each transformed contribution is
rounded to whole centipoints, so the score stays an exact, order-independent sum.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

from stream.core.account_settings import AccountSettings
from stream.core.bands import DEFAULT_BANDS, BandScale
from stream.core.events import Event
from stream.core.rules import DAY_MS, AlertPolicy, AlertRule
from stream.core.segments import SegmentSettings
from stream.core.vocabulary import UnmappedPolicy
from stream.errors import InvalidModelError

__all__ = [
    "ACTIVE",
    "BASELINE",
    "DAY_MS",
    "DERIVED_FACTORS",
    "PROPERTY_SCORED_TYPES",
    "SESSION",
    "TENURE",
    "TRANSFORMS",
    "EventRule",
    "FactorTransform",
    "RegularityRule",
    "ReturningRule",
    "ScoringModel",
    "SessionRules",
    "SurveyRules",
    "TenureRule",
    "Transform",
    "is_counter",
    "to_centipoints",
]

# Hidden per-bucket counters (not factors): a bucket with activity, a bucket with a session.
ACTIVE = "_active"
SESSION = "_session"

# Factors that are not an event type's: the constant and the days since first seen.
BASELINE = "baseline"
TENURE = "tenure"
#: event types whose points depend on the event's properties (all others: on the type only)
PROPERTY_SCORED_TYPES = frozenset({"session_end", "survey_response"})
# Factors derived from session_end / survey_response properties and from the window itself.
SESSION_FACTORS = ("time_on_site", "pages_per_session", "bounces")
SURVEY_FACTORS = ("nps", "csat")
DERIVED_FACTORS = (*SESSION_FACTORS, *SURVEY_FACTORS, "returning_visits", "regularity", TENURE)

Transform = Literal["linear", "cap", "log1p"]
TRANSFORMS: tuple[Transform, ...] = get_args(Transform)


def is_counter(key: str) -> bool:
    """True for the hidden bucket counters, which are not part of the score breakdown."""
    return key.startswith("_")


def to_centipoints(points: float) -> int:
    """Convert points to integer centipoints."""
    return round(points * 100)


@dataclass(frozen=True, slots=True)
class EventRule:
    """Flat points an event type earns, and the factor they are reported under."""

    factor: str
    points_cp: int


@dataclass(frozen=True, slots=True)
class SessionRules:
    """Time on site, pages per session and bounces, all read from ``session_end``."""

    time_cp_per_minute: int = 50
    time_cap_cp: int = 1000
    pages_cp_per_page: int = 50
    pages_cap_cp: int = 500
    pages_min: int = 2
    bounce_max_pages: int = 1
    bounce_max_duration_s: float = 10.0
    bounce_cp: int = -300


@dataclass(frozen=True, slots=True)
class SurveyRules:
    """NPS (0-10) promoters and detractors, and CSAT (1-5) points, from ``survey_response``."""

    nps_promoter_min: int = 9
    nps_promoter_cp: int = 1500
    nps_detractor_max: int = 6
    nps_detractor_cp: int = -1500
    csat_cp: Mapping[int, int] = field(
        default_factory=lambda: {1: -1000, 2: -500, 3: 0, 4: 500, 5: 1000}
    )


@dataclass(frozen=True, slots=True)
class ReturningRule:
    """Points for each return after at least ``away_ms`` without any activity.

    A visit (a bucket with a session) is returning when the customer's latest earlier
    activity, in or before the window, lies at least ``away_ms`` (rounded up to whole
    buckets) before it; the first visit ever is not returning.
    """

    away_ms: int = 86_400_000
    points_cp: int = 500


@dataclass(frozen=True, slots=True)
class RegularityRule:
    """Points for each distinct active day (bucket) in the window."""

    points_cp_per_active_bucket: int = 200


@dataclass(frozen=True, slots=True)
class TenureRule:
    """Points per whole day (``day_ms``) since the customer was first seen, capped.

    ``max_days`` None means no cap (the customer is then re-evaluated once a day forever).
    """

    points_cp_per_day: int
    max_days: int | None = None
    day_ms: int = DAY_MS

    def days(self, first_seen_ms: int | None, at_ms: int) -> int:
        """Whole days counted at ``at_ms`` (0 before the first day, at most ``max_days``)."""
        if first_seen_ms is None or at_ms < first_seen_ms:
            return 0
        days = (at_ms - first_seen_ms) // self.day_ms
        return days if self.max_days is None else min(days, self.max_days)

    def next_change(self, first_seen_ms: int | None, days: int) -> int | None:
        """The moment the day count next grows past ``days``, or None at the cap."""
        if first_seen_ms is None or not self.points_cp_per_day:
            return None
        if self.max_days is not None and days >= self.max_days:
            return None
        return first_seen_ms + (days + 1) * self.day_ms


@dataclass(frozen=True, slots=True)
class FactorTransform:
    """How a factor's window total ``t`` (points) becomes its contribution to the score.

    - ``linear``: ``weight * t``
    - ``cap``: ``weight * clamp(t, minimum, maximum)`` (``minimum`` defaults to ``-maximum``)
    - ``log1p``: ``weight * sign(t) * ln(1 + |t| / scale)``

    The result is rounded to whole centipoints. Every transform is non-decreasing in ``t``,
    so with a non-negative weight more of a factor never lowers its contribution.
    """

    transform: Transform = "linear"
    weight: float = 1.0
    scale: float = 1.0
    maximum: float | None = None
    minimum: float | None = None

    def __post_init__(self) -> None:
        if self.transform == "log1p" and not self.scale > 0:
            raise InvalidModelError("log1p needs a scale above zero")
        if self.transform == "cap":
            if self.maximum is None:
                raise InvalidModelError("cap needs a maximum")
            if self.lower > self.maximum:
                raise InvalidModelError("cap's minimum must not exceed its maximum")

    @property
    def lower(self) -> float:
        """The lower clamp of ``cap``, in points."""
        if self.minimum is not None:
            return self.minimum
        return -self.maximum if self.maximum is not None else -math.inf

    def apply(self, total_cp: int) -> int:
        """The contribution, in centipoints, of a window total of ``total_cp`` centipoints."""
        if self.transform == "cap":
            assert self.maximum is not None
            high, low = to_centipoints(self.maximum), to_centipoints(self.lower)
            return round(self.weight * min(max(total_cp, low), high))
        if self.transform == "log1p":
            points = math.copysign(math.log1p(abs(total_cp) / 100 / self.scale), total_cp)
            return round(self.weight * points * 100)
        return round(self.weight * total_cp)


@dataclass(frozen=True, slots=True)
class ScoringModel:
    """Everything that decides a score: window, event points, rules, bands and alerts."""

    version: str
    window_ms: int
    bucket_ms: int
    events: Mapping[str, EventRule]
    sessions: SessionRules = SessionRules()
    surveys: SurveyRules = SurveyRules()
    returning: ReturningRule | None = None
    regularity: RegularityRule | None = None
    bands: BandScale = DEFAULT_BANDS
    alerts: AlertPolicy = AlertPolicy()  # noqa: RUF009 (frozen, so sharing it is safe)
    max_future_skew_ms: int = 300_000
    inactive_types: frozenset[str] = frozenset()
    segment_events: Mapping[str, str] = field(default_factory=dict)
    topic_types: Mapping[str, frozenset[str]] = field(default_factory=dict)
    transforms: Mapping[str, FactorTransform] = field(default_factory=dict)
    baseline_cp: int = 0
    tenure: TenureRule | None = None
    rules: tuple[AlertRule, ...] = ()
    history_points: int = 120
    unmapped: UnmappedPolicy = "ignore"
    accounts: AccountSettings | None = None  # the ``accounts`` section; None: off
    segments: SegmentSettings | None = None  # segment dimensions (None: no segment rollups)

    def __post_init__(self) -> None:
        if self.bucket_ms <= 0 or self.window_ms <= 0:
            raise InvalidModelError("window and bucket must be positive")
        if self.window_ms % self.bucket_ms:
            raise InvalidModelError("window must be a whole number of buckets")
        if self.alerts.band not in self.bands.names:
            raise InvalidModelError(f"alert band {self.alerts.band!r} is not a configured band")
        for rule in self.rules:
            if rule.band is not None and rule.band not in self.bands.names:
                raise InvalidModelError(f"rule {rule.name!r}: {rule.band!r} is not a band")
        names = [self.alerts.name, *(rule.name for rule in self.rules)]
        if len(set(names)) != len(names):
            raise InvalidModelError("alert rule names must be unique")
        if self.history_points < 1:
            raise InvalidModelError("history points must be at least 1")
        unknown = sorted(set(self.transforms) - set(self.factors) - {BASELINE})
        if unknown or BASELINE in self.transforms:
            raise InvalidModelError(f"no such factor to transform: {(unknown or [BASELINE])[0]!r}")

    @property
    def factors(self) -> tuple[str, ...]:
        """Every factor a breakdown can contain, in a stable order."""
        names = dict.fromkeys(rule.factor for rule in self.events.values())
        if "session_end" in self.events:
            names.update(dict.fromkeys(SESSION_FACTORS))
        if "survey_response" in self.events:
            names.update(dict.fromkeys(SURVEY_FACTORS))
        if self.returning is not None:
            names.setdefault("returning_visits")
        if self.regularity is not None:
            names.setdefault("regularity")
        if self.tenure is not None:
            names.setdefault(TENURE)
        if self.baseline_cp:
            names.setdefault(BASELINE)
        return tuple(names)

    def weigh(self, totals: Mapping[str, int]) -> dict[str, int]:
        """Each factor's contribution from its raw window total, plus the baseline.

        Zero contributions are left out, so the result sums to the score.
        """
        transforms = self.transforms
        if not transforms and not self.baseline_cp:
            return {k: v for k, v in totals.items() if v}
        out: dict[str, int] = {}
        for factor, total in totals.items():
            rule = transforms.get(factor)
            value = rule.apply(total) if rule is not None else total
            if value:
                out[factor] = value
        if self.baseline_cp:
            out[BASELINE] = self.baseline_cp
        return out

    def bucket_of(self, timestamp_ms: int) -> int:
        """Index of the time bucket an event time falls in."""
        return timestamp_ms // self.bucket_ms

    def expiry_of(self, bucket: int) -> int:
        """Moment (ms) from which a bucket no longer counts: its start plus the window."""
        return bucket * self.bucket_ms + self.window_ms

    def is_live(self, timestamp_ms: int, now_ms: int) -> bool:
        """True while an event at ``timestamp_ms`` still counts at ``now_ms``."""
        return self.expiry_of(self.bucket_of(timestamp_ms)) > now_ms

    def live_from(self, now_ms: int) -> int:
        """The earliest event time that still counts at ``now_ms``: ``is_live(t, now_ms)``
        exactly when ``t >= live_from(now_ms)`` (one comparison per event)."""
        return ((now_ms - self.window_ms) // self.bucket_ms + 1) * self.bucket_ms

    def contributions(self, event: Event) -> dict[str, int]:
        """Centipoints the event adds to each factor, plus the hidden bucket counters."""
        out: dict[str, int] = {}
        kind = event.type
        rule = self.events[kind]
        if rule.points_cp:
            out[rule.factor] = rule.points_cp
        scored = kind in PROPERTY_SCORED_TYPES
        if kind == "session_end":
            self._score_session(event, out)
        elif kind == "survey_response":
            self._score_survey(event, out)
        if kind not in self.inactive_types:
            out[ACTIVE] = 1
        if kind in {"session_start", "session_end"}:
            out[SESSION] = 1
        # only the properties' points can be 0 (or cancel the flat points out)
        return {k: v for k, v in out.items() if v} if scored else out

    def _score_session(self, event: Event, out: dict[str, int]) -> None:
        rules = self.sessions
        duration_s = float(event.properties.get("duration_seconds", 0))
        pages = int(event.properties.get("page_count", 0))
        if pages <= rules.bounce_max_pages and duration_s <= rules.bounce_max_duration_s:
            out["bounces"] = out.get("bounces", 0) + rules.bounce_cp
            return
        minutes = duration_s / 60.0
        out["time_on_site"] = min(round(minutes * rules.time_cp_per_minute), rules.time_cap_cp)
        if pages >= rules.pages_min:
            out["pages_per_session"] = min(pages * rules.pages_cp_per_page, rules.pages_cap_cp)

    def _score_survey(self, event: Event, out: dict[str, int]) -> None:
        rules = self.surveys
        nps = event.properties.get("nps")
        if nps is not None:
            if nps >= rules.nps_promoter_min:
                out["nps"] = rules.nps_promoter_cp
            elif nps <= rules.nps_detractor_max:
                out["nps"] = rules.nps_detractor_cp
        csat = event.properties.get("csat")
        if csat is not None:
            out["csat"] = rules.csat_cp.get(int(csat), 0)
