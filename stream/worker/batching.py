"""When a fetched batch is complete: take what is there, and top up only to catch up.

aiokafka prefetches: once the worker has taken everything buffered, its fetcher sends the
next fetch at once, and the reply (whatever the broker had at that moment, often a handful
of messages) waits in the buffer while the worker processes its batch. So the first fetch
of the next batch is usually stale: it holds what arrived just after the previous batch
began, while what arrived during its processing is still on the broker. Processing only
that would put the batch a whole cycle behind; topping up for a fixed time (the old rule)
added that time to every batch, and at half load the queue that forms multiplies it by
1 / (1 - load), about three times.

The rule here: a batch is complete as soon as every partition being fetched has had a
fetch reply sent after the batch began (so the batch holds everything the broker had then;
aiokafka stamps each partition's last reply, ``last_poll_timestamp``), or it holds
``batch_max`` messages, or ``batch_within`` has passed since its first message. A worker
that was idle (its first fetch had to wait) therefore processes at once; one that was busy
waits for one fresh fetch reply, a round trip; under a backlog the first fetch is already
``batch_max`` messages. Batches are as large as the load makes them: small at half load,
full at full load, so the per-batch overhead is amortised exactly when it matters.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = ["BatchEnd", "TopUp", "caught_up"]

BatchEnd = Literal["caught_up", "full", "window"]
"""Why a batch was processed when it was: it had caught up with the broker, it held
``batch_max`` messages (a backlog), or ``batch_within`` passed without catching up."""


def caught_up(replied_at_ms: Iterable[int | None], since_ms: int) -> bool:
    """Whether every partition's last fetch reply (wall-clock ms, None: never fetched) came
    at or after ``since_ms``. No partitions: nothing to wait for."""
    return all(at is not None and at >= since_ms for at in replied_at_ms)


@dataclass(frozen=True, slots=True)
class TopUp:
    """How long a batch may wait for more messages before it is processed."""

    batch_max: int
    within_s: float

    def wait_s(self, size: int, *, first_at: float, now: float, fresh: bool) -> float | None:
        """Seconds to wait for the next fetch for a batch of ``size`` messages whose first
        arrived at ``first_at`` (``now`` on the same monotonic clock), ``fresh`` if it has
        caught up (``caught_up``); None: process it now."""
        if size >= self.batch_max or fresh:
            return None
        remaining = first_at + self.within_s - now
        return remaining if remaining > 0 else None

    def ended_by(self, size: int, *, fresh: bool) -> BatchEnd:
        """Why a batch of ``size`` messages stopped growing (``fresh`` as for ``wait_s``)."""
        if size >= self.batch_max:
            return "full"
        return "caught_up" if fresh else "window"
