"""The worker's duplicate check, done against a customer's verified ``Applied`` record.

Two kinds of second copy reach the worker (docs/concepts/exactly-once.md):

- **redeliveries**: Kafka hands the worker a message again (a crash or a rebalance between
  the Redis commit and the offset commit). The worker takes a partition's messages in
  offset order and commits all of a customer's messages of a batch at once, so every
  message of that customer and partition at or below the customer's watermark for it has
  been taken. A redelivery is recognised by its offset alone, for as long as it could count.
- **re-sends**: a producer sends the same event again (a retry, a replay), so it arrives at
  a new offset, maybe on another topic. It is recognised by its fingerprint, kept for the
  horizon ``H`` after the first copy was applied (and never past the end of the event's
  window); backfill and rescore keep theirs for the whole window.

Pure: no I/O. The processor loads the record, decides here, and commits the new record
with the state under the store's version check, which makes the decision exact (a
record that changed meanwhile is a conflict, and the customer is decided again).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from stream.core.model import ScoringModel
from stream.ports import Applied, AppliedMark, Watermark, pack_marks

__all__ = ["DEFAULT_HORIZON_MS", "DedupPolicy", "Seen", "after"]

DEFAULT_HORIZON_MS = 24 * 3_600_000
_RECORD = 12  # a packed fingerprint record: 8-byte fingerprint, 4-byte moment


@dataclass(frozen=True, slots=True)
class DedupPolicy:
    """How long a worker keeps what it applied.

    ``horizon_ms`` is ``H``: how long a fingerprint is kept after its event was applied.
    A watermark is kept for ``window + max_future_skew`` after it last moved: a message
    taken before then carries an event time at most ``max_future_skew`` ahead of when it
    was taken, so once that has passed any redelivery of it is too old to count anyway.
    """

    horizon_ms: int = DEFAULT_HORIZON_MS

    def mark_until(self, model: ScoringModel, timestamp_ms: int, now_ms: int) -> int:
        """When a fingerprint applied at ``now_ms`` may be forgotten."""
        return min(model.expiry_of(model.bucket_of(timestamp_ms)), now_ms + self.horizon_ms)

    @staticmethod
    def watermark_until(model: ScoringModel, now_ms: int) -> int:
        """When a watermark moved at ``now_ms`` may be forgotten."""
        return now_ms + model.window_ms + model.max_future_skew_ms


class Seen:
    """What a customer had applied when loaded: ``duplicate`` answers for one message.

    The fingerprints stay packed: a customer's few records are searched in place (an
    aligned ``bytes.find``) rather than copied into a set for the one or two events a
    batch usually brings."""

    __slots__ = ("packed", "watermarks")

    def __init__(self, applied: Applied) -> None:
        self.watermarks = applied.watermarks
        self.packed = applied.marks

    def redelivered(self, source: bytes, offset: int) -> bool:
        """Whether the message at ``offset`` of that partition was taken before."""
        taken = self.watermarks.get(source)
        return taken is not None and offset <= taken[0]

    def applied(self, mark: bytes) -> bool:
        """Whether an event with this fingerprint was applied (and is still remembered)."""
        packed = self.packed
        at = packed.find(mark)
        while at >= 0:
            if at % _RECORD == 0:
                return True
            at = packed.find(mark, at + 1)
        return False

    def duplicate(self, source: bytes | None, offset: int, mark: bytes) -> bool:
        """A redelivery (``source`` None: not from Kafka), or an event applied before."""
        return (source is not None and self.redelivered(source, offset)) or self.applied(mark)


def after(
    applied: Applied,
    now_ms: int,
    marks: Iterable[AppliedMark],
    taken: Mapping[bytes, int],
    watermark_until_ms: int,
    seen: Seen | None = None,
) -> Applied:
    """The record after a commit at ``now_ms``: expired watermarks and fingerprints
    forgotten (to the second, as stored), the new fingerprints added, each partition's
    watermark raised to the highest offset ``taken`` from it. ``seen`` is ``Seen(applied)``
    when the caller has read the record already."""
    now_s = now_ms // 1000
    if seen is None:
        seen = Seen(applied)
    packed, earliest = seen.packed, applied.earliest_s
    if earliest is None:
        earliest = min((u for _, u in _records(packed)), default=None)
    if earliest is not None and earliest <= now_s:
        kept = [(m, u) for m, u in _records(packed) if u > now_s]
        packed = b"".join(m + u.to_bytes(4, "big") for m, u in kept)
        earliest = min((u for _, u in kept), default=None)
    listed = list(marks)
    if listed:
        packed += pack_marks(listed)
        latest = min(-(-u // 1000) for _, u in listed)
        earliest = latest if earliest is None else min(earliest, latest)
    kept_marks: dict[bytes, Watermark] = {
        source: mark for source, mark in seen.watermarks.items() if mark[1] // 1000 > now_s
    }
    for source, offset in taken.items():
        before = kept_marks.get(source)
        kept_marks[source] = (offset if before is None or offset > before[0] else before[0],
                              watermark_until_ms)  # fmt: skip
    return Applied.of(kept_marks, packed, earliest_s=earliest)


def _records(packed: bytes) -> list[tuple[bytes, int]]:
    """(fingerprint, moment in epoch seconds) of each packed record."""
    return [(packed[i : i + 8], int.from_bytes(packed[i + 8 : i + 12], "big"))
            for i in range(0, len(packed), 12)]  # fmt: skip
