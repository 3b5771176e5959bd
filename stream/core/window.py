"""Rolling windows as time buckets: add points, expire buckets, explain the total.

A customer's window is a mapping ``bucket index -> {factor: centipoints}``. A bucket
counts until its start plus the window length, so the window is exact at bucket
resolution (one day of a thirty-day window by default).

``totals`` recomputes a window's totals from its buckets (the reference); ``Running`` keeps
them up to date as events are added and buckets expire, at a cost per event and per
expired bucket that does not grow with the number of buckets. A bucket's slot is never
changed in place once it belongs to a ``Running`` (a change replaces the slot), so a copy
of a ``Running`` may share its slots with the original.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left, insort
from collections.abc import Iterable, Mapping

from stream.core.model import ACTIVE, SESSION, ScoringModel, is_counter

__all__ = [
    "Buckets",
    "Running",
    "add",
    "expiry_moments",
    "next_expiry",
    "pop_expired",
    "returning_gap",
    "totals",
]

Buckets = dict[int, dict[str, int]]


def add(buckets: Buckets, bucket: int, contributions: Mapping[str, int]) -> None:
    """Add an event's contributions to one bucket, in place."""
    slot = buckets.setdefault(bucket, {})
    for key, value in contributions.items():
        slot[key] = slot.get(key, 0) + value


def expiry_moments(model: ScoringModel, buckets: Iterable[int], now_ms: int) -> list[int]:
    """Distinct expiry moments at or before ``now_ms``, oldest first."""
    return sorted({model.expiry_of(b) for b in buckets if model.expiry_of(b) <= now_ms})


def pop_expired(model: ScoringModel, buckets: Buckets, at_ms: int) -> int | None:
    """Remove, in place, every bucket that no longer counts at ``at_ms``.

    Returns the latest removed bucket that was active (None if none was): the memory
    that decides whether the oldest visit left in the window is a returning one.
    """
    latest: int | None = None
    for bucket in [b for b in buckets if model.expiry_of(b) <= at_ms]:
        if buckets.pop(bucket).get(ACTIVE, 0) > 0 and (latest is None or bucket > latest):
            latest = bucket
    return latest


def next_expiry(model: ScoringModel, buckets: Iterable[int]) -> int | None:
    """The next moment the window changes on its own, or None when it is empty."""
    return min((model.expiry_of(b) for b in buckets), default=None)


def totals(
    model: ScoringModel, buckets: Buckets, prior_active: int | None = None
) -> dict[str, int]:
    """Raw centipoints per factor over the buckets, including the derived factors.

    Regularity pays for every active bucket; a returning visit is a bucket with a
    session whose latest earlier active bucket lies more than ``returning.away_ms``
    (rounded up to whole buckets) before it. ``prior_active`` is the latest active bucket
    that has already left the window: it stands in for the activity before the window, so
    a visit's returning status does not change when that activity ages out.
    """
    out: dict[str, int] = {}
    for slot in buckets.values():
        for key, value in slot.items():
            if not is_counter(key):
                out[key] = out.get(key, 0) + value
    regularity, returning = model.regularity, model.returning
    if regularity is None and returning is None:
        return {k: v for k, v in out.items() if v}
    active = sorted(b for b, slot in buckets.items() if slot.get(ACTIVE, 0) > 0)
    if active and regularity is not None and regularity.points_cp_per_active_bucket:
        out["regularity"] = len(active) * regularity.points_cp_per_active_bucket
    if returning is not None and returning.points_cp:
        returns = _returning_visits(model, returning.away_ms, buckets, active, prior_active)
        if returns:
            out["returning_visits"] = returns * returning.points_cp
    return {k: v for k, v in out.items() if v}


def _returning_visits(
    model: ScoringModel, away_ms: int, buckets: Buckets, active: list[int], prior: int | None
) -> int:
    gap = -(-away_ms // model.bucket_ms)  # whole empty buckets needed
    chain = active if prior is None else [prior, *active]
    return sum(
        1
        for earlier, later in itertools.pairwise(chain)
        if later - earlier > gap and buckets[later].get(SESSION, 0) > 0
    )


def returning_gap(model: ScoringModel) -> int | None:
    """Whole empty buckets before a visit for it to be returning (None: no such factor)."""
    returning = model.returning
    if returning is None or not returning.points_cp:
        return None
    return -(-returning.away_ms // model.bucket_ms)


class Running:
    """A window's buckets with their totals kept up to date (``totals`` without the walk).

    ``sums`` holds the raw centipoints per factor over the buckets (a factor may be 0),
    ``keys`` the buckets in order, ``active`` the active buckets in order, ``returns`` the
    number of returning visits in the chain ``[prior, *active]`` (see ``totals``) and
    ``prior`` the latest active bucket that has left the window. ``gap`` is the model's
    ``returning_gap`` the count was kept for. Adding an event and expiring a bucket touch
    only that bucket and its neighbours in ``active``.
    """

    __slots__ = ("active", "buckets", "gap", "keys", "prior", "returns", "sums")

    def __init__(
        self,
        buckets: Buckets,
        sums: dict[str, int],
        keys: list[int],
        active: list[int],
        returns: int,
        prior: int | None,
        gap: int | None,
    ) -> None:
        self.buckets = buckets
        self.sums = sums
        self.keys = keys
        self.active = active
        self.returns = returns
        self.prior = prior
        self.gap = gap

    @classmethod
    def build(cls, model: ScoringModel, buckets: Buckets, prior: int | None) -> Running:
        """Running totals of ``buckets`` (the Running takes them over: do not change them)."""
        sums: dict[str, int] = {}
        get = sums.get
        for slot in buckets.values():
            for key, value in slot.items():
                sums[key] = get(key, 0) + value
        for key in [k for k in sums if is_counter(k)]:  # once per name, not per bucket
            del sums[key]
        active = sorted(b for b, slot in buckets.items() if slot.get(ACTIVE, 0) > 0)
        gap = returning_gap(model)
        running = cls(buckets, sums, sorted(buckets), active, 0, prior, gap)
        if gap is not None:
            chain = active if prior is None else [prior, *active]
            running.returns = sum(
                running._pair(earlier, later) for earlier, later in itertools.pairwise(chain)
            )
        return running

    def matches(self, model: ScoringModel, buckets: Buckets, prior: int | None) -> bool:
        """Whether these are the running totals of exactly ``buckets`` and ``prior``."""
        return self.buckets is buckets and self.prior == prior and self.gap == returning_gap(model)

    def copy(self) -> Running:
        """A copy to change without changing this one (the slots are shared, not copied)."""
        return Running(dict(self.buckets), dict(self.sums), list(self.keys), list(self.active),
                       self.returns, self.prior, self.gap)  # fmt: skip

    def totals(self, model: ScoringModel) -> dict[str, int]:
        """Equal to ``totals(model, self.buckets, self.prior)``, without walking the buckets."""
        out = {k: v for k, v in self.sums.items() if v}
        regularity = model.regularity
        if self.active and regularity is not None and regularity.points_cp_per_active_bucket:
            out["regularity"] = len(self.active) * regularity.points_cp_per_active_bucket
        if self.returns and self.gap is not None and model.returning is not None:
            out["returning_visits"] = self.returns * model.returning.points_cp
        return out

    def add(self, bucket: int, contributions: Mapping[str, int]) -> None:
        """Add an event's contributions to one bucket (its slot is replaced, not changed)."""
        old = self.buckets.get(bucket)
        slot = dict(old) if old is not None else {}
        sums = self.sums
        for key, value in contributions.items():
            slot[key] = slot.get(key, 0) + value
            if not key.startswith("_"):  # is_counter, inlined: this runs per event
                sums[key] = sums.get(key, 0) + value
        if old is None:
            insort(self.keys, bucket)
            old = {}
        was_active = old.get(ACTIVE, 0) > 0
        is_active = slot.get(ACTIVE, 0) > 0
        if self.gap is None:
            self.buckets[bucket] = slot
            if is_active != was_active:
                self._toggle(bucket, is_active)
            return
        if was_active:
            self.returns -= self._link(bucket)
        self.buckets[bucket] = slot
        if is_active != was_active:
            self._toggle(bucket, is_active)
        if is_active:
            self.returns += self._link(bucket)

    def expiry_moments(self, model: ScoringModel, now_ms: int) -> list[int]:
        """Distinct expiry moments at or before ``now_ms``, oldest first."""
        keys = self.keys
        if not keys or model.expiry_of(keys[0]) > now_ms:  # the usual case: nothing is due
            return []
        moments: list[int] = []
        for bucket in keys:
            moment = model.expiry_of(bucket)
            if moment > now_ms:
                break
            moments.append(moment)
        return moments

    def next_expiry(self, model: ScoringModel) -> int | None:
        """The next moment the window changes on its own, or None when it is empty."""
        return model.expiry_of(self.keys[0]) if self.keys else None

    def expire(self, model: ScoringModel, at_ms: int) -> None:
        """Remove every bucket that no longer counts at ``at_ms`` (oldest first); the latest
        active one removed becomes ``prior`` if it is later than it (as ``pop_expired``)."""
        keys = self.keys
        while keys and model.expiry_of(keys[0]) <= at_ms:
            bucket = keys.pop(0)
            slot = self.buckets[bucket]
            if slot.get(ACTIVE, 0) > 0:
                self._drop_first_active(bucket)
            del self.buckets[bucket]
            sums = self.sums
            for key, value in slot.items():
                if not is_counter(key):
                    left = sums.get(key, 0) - value
                    if left:
                        sums[key] = left
                    else:
                        sums.pop(key, None)

    def _drop_first_active(self, bucket: int) -> None:
        """Take ``bucket`` (the oldest active one) out of the chain, into ``prior``."""
        prior = self.prior
        later = bucket if prior is None or bucket > prior else prior
        if self.gap is not None:
            following = self.active[1] if len(self.active) > 1 else None
            self.returns -= self._pair(prior, bucket) + self._pair(bucket, following)
            self.returns += self._pair(later, following)
        del self.active[0]
        self.prior = later

    def _toggle(self, bucket: int, active: bool) -> None:
        """Insert ``bucket`` into, or remove it from, the active chain, keeping ``returns``
        for every pair except the ones ``bucket`` ends (the caller's ``_link``)."""
        index = bisect_left(self.active, bucket)
        if self.gap is not None:
            earlier = self.active[index - 1] if index else self.prior
            following = index + 1 if not active else index
            later = self.active[following] if following < len(self.active) else None
            if active:
                self.returns += self._pair(bucket, later) - self._pair(earlier, later)
            else:
                self.returns += self._pair(earlier, later) - self._pair(bucket, later)
        if active:
            self.active.insert(index, bucket)
        else:
            del self.active[index]

    def _link(self, bucket: int) -> int:
        """1 when the active ``bucket`` is a returning visit (the pair ending at it)."""
        index = bisect_left(self.active, bucket)
        return self._pair(self.active[index - 1] if index else self.prior, bucket)

    def _pair(self, earlier: int | None, later: int | None) -> int:
        """1 when ``later`` is a returning visit after ``earlier`` (``_returning_visits``)."""
        if earlier is None or later is None or self.gap is None:
            return 0
        return 1 if later - earlier > self.gap and self.buckets[later].get(SESSION, 0) > 0 else 0
