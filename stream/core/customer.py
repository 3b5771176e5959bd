"""One customer's state and the pure step that moves it forward in time."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from stream.core import score_history as hist
from stream.core import window
from stream.core.alerts import (
    Alert,
    AlertGate,
    Reason,
    RuleGate,
    Trigger,
    alert_id,
    falling_factors,
    moved_factors,
    pass_gate,
    pass_onboarding,
    pass_rule,
)
from stream.core.events import PROFILE_TYPES, Event, fingerprint
from stream.core.model import TENURE, ScoringModel

__all__ = [
    "CustomerState",
    "Evaluation",
    "advance",
    "breakdown_of",
    "drop_duplicates",
    "factor_totals",
    "running_of",
]


@dataclass(slots=True)
class CustomerState:
    """Everything remembered about one customer between evaluations.

    ``first_seen_ms`` is the earliest event time ever applied (None: never, or state
    written before it was kept); ``tenure_days`` the whole days of tenure the score last
    counted; ``prior_active`` the latest active bucket that has left the window.
    ``history`` holds the score's points per bucket and ``markers`` the model-version changes
    (see ``stream.core.score_history``); ``version`` is the model version that last advanced the
    state (None: unknown); ``rule_gates`` the gates of the model's further alert rules, by
    rule name (a rule without an entry is armed and has never alerted).

    ``running`` is the window's running totals, as ``advance`` left them (None, or totals
    of other buckets: rebuilt from the buckets when needed). It is a cache, not part of the
    state's value, and it is why a state's ``buckets`` (and their slots) must never be
    changed in place: ``advance`` never changes the state it is given, and a new state
    shares the slots it did not change with the old one.
    """

    buckets: window.Buckets = field(default_factory=dict)
    score_cp: int = 0
    band: str | None = None
    gate: AlertGate = field(default_factory=AlertGate)
    updated_ms: int = 0
    first_seen_ms: int | None = None
    tenure_days: int = 0
    prior_active: int | None = None
    history: hist.History = ()
    markers: tuple[hist.Marker, ...] = ()
    version: str | None = None
    rule_gates: dict[str, RuleGate] = field(default_factory=dict)
    running: window.Running | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The result of advancing a customer: new state, its explanation and any alerts."""

    state: CustomerState
    breakdown: dict[str, int]
    alerts: tuple[Alert, ...]
    next_due_ms: int | None
    applied: int


def breakdown_of(model: ScoringModel, state: CustomerState) -> dict[str, int]:
    """Centipoints each factor contributes to the state's score (sums to the score)."""
    return _breakdown(model, running_of(model, state), state.tenure_days)


def factor_totals(model: ScoringModel, state: CustomerState) -> dict[str, int]:
    """Each factor's raw window total in centipoints, before ``factors`` transforms and
    without the baseline (what a calibration fits weights to)."""
    return _totals(model, running_of(model, state), state.tenure_days)


def running_of(model: ScoringModel, state: CustomerState) -> window.Running:
    """The state's running window totals: its own when they describe its buckets, else
    built from the buckets (once; not stored in the state, which is not changed)."""
    running = state.running
    if running is not None and running.matches(model, state.buckets, state.prior_active):
        return running
    return window.Running.build(model, state.buckets, state.prior_active)


def _totals(model: ScoringModel, running: window.Running, tenure_days: int) -> dict[str, int]:
    totals = running.totals(model)
    if tenure_days and model.tenure is not None and model.tenure.points_cp_per_day:
        totals[TENURE] = tenure_days * model.tenure.points_cp_per_day
    return totals


def _breakdown(model: ScoringModel, running: window.Running, tenure_days: int) -> dict[str, int]:
    totals = _totals(model, running, tenure_days)
    if not model.transforms and not model.baseline_cp:
        return totals  # already without zeros
    return model.weigh(totals)


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

    Time-driven changes (a bucket leaving the window, a new day of tenure, the end of the
    onboarding period) are replayed moment by moment, so a crossing they cause is dated
    at the moment it happened; the batch of events is applied as one moment dated by its
    latest event. A customer without a band (never evaluated, or rebuilt) jumps straight
    to ``now_ms``. ``breakdown`` is the state's breakdown if the caller kept it from the
    previous evaluation (it is recomputed otherwise).
    """
    clock = _Clock.of(model, state)
    start = breakdown if breakdown is not None else clock.breakdown()
    tracker = _Tracker(model, customer_id, state, start, clock.gate)
    if state.band is not None:
        onboarding = clock.onboarding_moment(tracker.gate)
        for moment, trigger in clock.moments(now_ms, onboarding):
            clock.move_to(moment)
            tracker.observe(clock.breakdown(), trigger, moment)
            if moment == onboarding:
                tracker.onboard(moment, silent=moment < state.updated_ms)
    else:
        clock.move_to(now_ms)
    # identify/group calls (profile-only) never touch the score
    live_from = model.live_from(now_ms)
    live = [e for e in events if e.timestamp_ms >= live_from and e.type not in PROFILE_TYPES]
    _apply(model, clock, tracker, live)
    if live:
        if len(live) == 1:
            earliest = latest = live[0].timestamp_ms
        else:
            earliest = min(e.timestamp_ms for e in live)
            latest = max(e.timestamp_ms for e in live)
        if clock.first_seen is None or earliest < clock.first_seen:
            clock.first_seen = earliest
            clock.count_tenure(now_ms)
        tracker.observe(clock.breakdown(), "event", latest)
    elif state.band is None:
        tracker.settle(clock.breakdown(), now_ms)
    onboarding = clock.onboarding_moment(tracker.gate)
    if onboarding is not None and onboarding <= now_ms:  # first seen moved back, or first sight
        tracker.onboard(onboarding, silent=state.band is None or onboarding < state.updated_ms)
    markers = state.markers
    if state.version is not None and state.version != model.version:
        markers = hist.mark(markers, now_ms, model.version)
    running = clock.running
    new_state = CustomerState(
        buckets=running.buckets,
        score_cp=tracker.score_cp,
        band=tracker.band if tracker.band is not None else model.bands.band_for(0),
        gate=tracker.gate,
        updated_ms=now_ms if tracker.changed else state.updated_ms,
        first_seen_ms=clock.first_seen,
        tenure_days=clock.tenure_days,
        prior_active=running.prior,
        history=tuple(tracker.history),
        markers=markers,
        version=model.version,
        rule_gates=tracker.rule_gates,
        running=running,
    )
    return Evaluation(
        state=new_state,
        breakdown=tracker.breakdown,
        alerts=tuple(tracker.alerts),
        next_due_ms=clock.next_due(tracker.gate),
        applied=len(live),
    )


def _apply(model: ScoringModel, clock: _Clock, tracker: _Tracker, live: list[Event]) -> None:
    """Add the events to the window. A batch spanning several buckets (a replay, a backlog)
    also leaves a history point for each of its buckets but the last, with the score of the
    events up to that bucket, as if each bucket had been evaluated on its own."""
    if not live:
        return
    bucket_of = model.bucket_of
    running = clock.own()
    first = bucket_of(live[0].timestamp_ms)
    if len(live) == 1:  # the usual case: one event of the customer in a batch
        running.add(first, model.contributions(live[0]))
        return
    if all(bucket_of(e.timestamp_ms) == first for e in live):
        for event in live:
            running.add(bucket_of(event.timestamp_ms), model.contributions(event))
        return
    ordered = sorted(live, key=lambda e: e.timestamp_ms)
    for index, event in enumerate(ordered):
        bucket = bucket_of(event.timestamp_ms)
        running.add(bucket, model.contributions(event))
        following = ordered[index + 1] if index + 1 < len(ordered) else None
        if following is not None and bucket_of(following.timestamp_ms) != bucket:
            tracker.note(sum(clock.breakdown().values()), event.timestamp_ms)


class _Clock:
    """The time-driven part of a customer's state while it is being advanced.

    ``running`` starts as the state's own running totals and is copied before its first
    change (``own``), so the state being advanced is never changed."""

    __slots__ = ("first_seen", "gate", "model", "owned", "running", "tenure_days")

    def __init__(
        self,
        model: ScoringModel,
        state: CustomerState,
        first_seen: int | None,
        gate: AlertGate,
    ) -> None:
        self.model = model
        self.running = running_of(model, state)
        self.owned = False  # even when built here: it holds the state's own buckets
        self.first_seen = first_seen
        self.tenure_days = state.tenure_days
        self.gate = gate

    @classmethod
    def of(cls, model: ScoringModel, state: CustomerState) -> _Clock:
        """A working copy; state written before ``first_seen_ms`` was kept takes the start
        of its oldest bucket as first seen, and is treated as past its onboarding."""
        if state.first_seen_ms is None and state.buckets:
            first_seen = min(state.buckets) * model.bucket_ms
            return cls(model, state, first_seen, replace(state.gate, onboarded=True))
        return cls(model, state, state.first_seen_ms, state.gate)

    def own(self) -> window.Running:
        """The running totals, copied first if they are still the advanced state's."""
        if not self.owned:
            self.running, self.owned = self.running.copy(), True
        return self.running

    def breakdown(self) -> dict[str, int]:
        return _breakdown(self.model, self.running, self.tenure_days)

    def move_to(self, at_ms: int) -> None:
        """Drop what has left the window by ``at_ms`` and count tenure up to it."""
        running = self.running
        if running.keys and self.model.expiry_of(running.keys[0]) <= at_ms:
            self.own().expire(self.model, at_ms)
        self.count_tenure(at_ms)

    def count_tenure(self, at_ms: int) -> None:
        """Whole days of tenure at ``at_ms``."""
        tenure = self.model.tenure
        if tenure is not None and tenure.points_cp_per_day:
            self.tenure_days = tenure.days(self.first_seen, at_ms)

    def onboarding_moment(self, gate: AlertGate) -> int | None:
        """When the onboarding period ends, while it has not been checked yet."""
        after = self.model.alerts.onboarding_after_ms
        if after is None or gate.onboarded or self.first_seen is None:
            return None
        return self.first_seen + after

    def moments(self, now_ms: int, onboarding: int | None) -> list[tuple[int, Trigger]]:
        """Time-driven moments at or before ``now_ms``, oldest first, each with its trigger."""
        expiries = self.running.expiry_moments(self.model, now_ms)
        tenure = self.model.tenure
        if tenure is None and onboarding is None:  # the usual case: nothing else to merge
            return [(moment, "window") for moment in expiries]
        found: dict[int, Trigger] = dict.fromkeys(expiries, "window")
        if tenure is not None:
            days = self.tenure_days
            change = tenure.next_change(self.first_seen, days)
            while change is not None and change <= now_ms:
                found.setdefault(change, "tenure")
                days += 1
                change = tenure.next_change(self.first_seen, days)
        if onboarding is not None and onboarding <= now_ms:
            found.setdefault(onboarding, "onboarding")
        return sorted(found.items())

    def next_due(self, gate: AlertGate) -> int | None:
        """The next moment the score may change on its own, or None."""
        due = self.running.next_expiry(self.model)
        if self.model.tenure is not None:
            due = _earlier(due, self.model.tenure.next_change(self.first_seen, self.tenure_days))
        return _earlier(due, self.onboarding_moment(gate))


def _earlier(a: int | None, b: int | None) -> int | None:
    """The earlier of two optional moments."""
    if a is None:
        return b
    return a if b is None or a <= b else b


class _Tracker:
    """Follows score and band through successive moments and collects alerts."""

    __slots__ = ("alerts", "band", "breakdown", "changed", "customer_id", "gate", "history",
                 "model", "rule_gates", "score_cp")  # fmt: skip

    def __init__(
        self,
        model: ScoringModel,
        customer_id: str,
        state: CustomerState,
        start: dict[str, int],
        gate: AlertGate,
    ) -> None:
        self.model = model
        self.customer_id = customer_id
        self.breakdown = start
        self.score_cp = state.score_cp
        self.band = state.band
        self.gate = gate
        self.alerts: list[Alert] = []
        self.changed = False
        self.history = list(state.history)
        self.rule_gates = state.rule_gates

    def settle(self, breakdown: dict[str, int], at_ms: int) -> None:
        """Take a breakdown as the starting point, without alerts (a first evaluation)."""
        self.breakdown, self.score_cp = breakdown, sum(breakdown.values())
        self.band = self.model.bands.band_for(self.score_cp / 100)
        self.note(self.score_cp, at_ms)

    def note(self, score_cp: int, at_ms: int) -> None:
        """Write a score to the history at ``at_ms`` (no alerts)."""
        hist.record_into(self.history, self._start_of(at_ms), score_cp,
                         self.model.history_points)  # fmt: skip

    def observe(self, breakdown: dict[str, int], trigger: Trigger, at_ms: int) -> None:
        score_cp = sum(breakdown.values())
        band = self.model.bands.band_for(score_cp / 100)
        fire, self.gate = pass_gate(
            self.model.alerts, self.gate, self.band, band, score_cp / 100, at_ms
        )
        if fire and self.band is not None:
            self._alert(f"{band}_entered", band, score_cp, trigger, at_ms,
                        moved_factors(self.breakdown, breakdown,
                                      rose=score_cp > self.score_cp))  # fmt: skip
        if self.model.rules:
            self._rules(breakdown, band, score_cp, trigger, at_ms)
        self.changed = self.changed or band != self.band or breakdown != self.breakdown
        self.breakdown, self.score_cp, self.band = breakdown, score_cp, band
        self.note(score_cp, at_ms)

    def _start_of(self, at_ms: int) -> int:
        return self.model.bucket_of(at_ms) * self.model.bucket_ms

    def _rules(
        self, breakdown: dict[str, int], band: str, score_cp: int, trigger: Trigger, at_ms: int
    ) -> None:
        """Pass the moment through each further rule's gate, alerting where one fires."""
        gates = self.rule_gates
        for rule in self.model.rules:
            reference = None
            if rule.when != "band_entered":
                reference = hist.value_at(self.history, self._start_of(at_ms - rule.over_ms))
            gate = gates.get(rule.name, _ARMED)
            fire, new_gate = pass_rule(rule, gate, self.band, band, score_cp, reference, at_ms)
            if new_gate != gate:
                if gates is self.rule_gates:
                    gates = dict(gates)
                gates[rule.name] = new_gate
            if fire:
                kind = f"{band}_entered" if rule.when == "band_entered" else rule.when
                rose = rule.when == "score_rise" or (
                    rule.when == "band_entered" and score_cp > self.score_cp
                )
                reasons = moved_factors(self.breakdown, breakdown, rose=rose)
                self._alert(kind, band, score_cp, trigger, at_ms, reasons, rule.name)
        self.rule_gates = gates

    def onboard(self, at_ms: int, silent: bool) -> None:
        """Check the end of the onboarding period at ``at_ms`` (once per customer)."""
        band = self.band if self.band is not None else self.model.bands.band_for(0)
        fire, self.gate = pass_onboarding(self.model.alerts, self.gate, band, at_ms, silent)
        if fire:
            self._alert(f"{band}_after_onboarding", band, self.score_cp, "onboarding", at_ms,
                        falling_factors({}, self.breakdown))  # fmt: skip

    def _alert(
        self,
        kind: str,
        band: str,
        score_cp: int,
        trigger: Trigger,
        at_ms: int,
        reasons: tuple[Reason, ...],
        rule: str | None = None,
    ) -> None:
        self.alerts.append(
            Alert(
                alert_id=alert_id(self.model.version, self.customer_id, trigger, at_ms, rule),
                type=kind,
                customer_id=self.customer_id,
                previous_band=self.band if self.band is not None else band,
                band=band,
                previous_score=self.score_cp / 100,
                score=score_cp / 100,
                occurred_at_ms=at_ms,
                trigger=trigger,
                reasons=reasons,
                model_version=self.model.version,
                rule=rule if rule is not None else self.model.alerts.name,
            )
        )


_ARMED = RuleGate()
