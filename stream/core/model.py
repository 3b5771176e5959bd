"""The scoring model: how many points each event is worth, and to which factor.

Points are kept as integer centipoints (1 point = 100) so that sums are exact and
independent of the order in which events arrive.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from stream.core.bands import DEFAULT_BANDS, BandScale
from stream.core.events import Event
from stream.errors import InvalidModelError

__all__ = [
    "ACTIVE",
    "SESSION",
    "AlertPolicy",
    "EventRule",
    "RegularityRule",
    "ReturningRule",
    "ScoringModel",
    "SessionRules",
    "SurveyRules",
    "is_counter",
    "to_centipoints",
]

# Hidden per-bucket counters (not factors): a bucket with activity, a bucket with a session.
ACTIVE = "_active"
SESSION = "_session"


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
    """Points for each return after at least ``away_ms`` without any activity."""

    away_ms: int = 86_400_000
    points_cp: int = 500


@dataclass(frozen=True, slots=True)
class RegularityRule:
    """Points for each distinct active day (bucket) in the window."""

    points_cp_per_active_bucket: int = 200


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """When entering the alert band raises an alert.

    A customer alerts on entering ``band`` only while armed. Alerting disarms; the
    customer is re-armed once their score climbs above ``rearm_above``. ``cooldown_ms``
    additionally spaces two alerts of one customer by at least that long.
    """

    band: str = "churn_risk"
    rearm_above: float = 10.0
    cooldown_ms: int = 86_400_000


@dataclass(frozen=True, slots=True)
class ScoringModel:
    """Everything that decides a score: window, event points, rules, bands and alerts."""

    version: str
    window_ms: int
    bucket_ms: int
    events: Mapping[str, EventRule]
    sessions: SessionRules = SessionRules()
    surveys: SurveyRules = SurveyRules()
    returning: ReturningRule = ReturningRule()
    regularity: RegularityRule = RegularityRule()
    bands: BandScale = DEFAULT_BANDS
    alerts: AlertPolicy = AlertPolicy()
    max_future_skew_ms: int = 300_000
    inactive_types: frozenset[str] = frozenset({"app_uninstall"})
    segment_events: Mapping[str, str] = field(default_factory=dict)
    topic_types: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.bucket_ms <= 0 or self.window_ms <= 0:
            raise InvalidModelError("window and bucket must be positive")
        if self.window_ms % self.bucket_ms:
            raise InvalidModelError("window must be a whole number of buckets")
        if self.alerts.band not in self.bands.names:
            raise InvalidModelError(f"alert band {self.alerts.band!r} is not a configured band")

    @property
    def factors(self) -> tuple[str, ...]:
        """Every factor a breakdown can contain, in a stable order."""
        names = dict.fromkeys(rule.factor for rule in self.events.values())
        for extra in ("time_on_site", "pages_per_session", "bounces", "nps", "csat"):
            names.setdefault(extra)
        names.setdefault("returning_visits")
        names.setdefault("regularity")
        return tuple(names)

    def bucket_of(self, timestamp_ms: int) -> int:
        """Index of the time bucket an event time falls in."""
        return timestamp_ms // self.bucket_ms

    def expiry_of(self, bucket: int) -> int:
        """Moment (ms) from which a bucket no longer counts: its start plus the window."""
        return bucket * self.bucket_ms + self.window_ms

    def is_live(self, timestamp_ms: int, now_ms: int) -> bool:
        """True while an event at ``timestamp_ms`` still counts at ``now_ms``."""
        return self.expiry_of(self.bucket_of(timestamp_ms)) > now_ms

    def contributions(self, event: Event) -> dict[str, int]:
        """Centipoints the event adds to each factor, plus the hidden bucket counters."""
        out: dict[str, int] = {}
        rule = self.events[event.type]
        if rule.points_cp:
            out[rule.factor] = rule.points_cp
        if event.type == "session_end":
            self._score_session(event, out)
        elif event.type == "survey_response":
            self._score_survey(event, out)
        if event.type not in self.inactive_types:
            out[ACTIVE] = 1
        if event.type in ("session_start", "session_end"):
            out[SESSION] = 1
        return {k: v for k, v in out.items() if v}

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
