"""The transport driver: whole fetches of the input topics, handed to the scoring agent.

Faust keeps what it does well here: the app and worker lifecycle, consumer-group
membership and rebalancing, the agents, the web server and the timers. What it does per
message on its public path (the conductor, an event, the take buffer, one acknowledgement
and one offset bookkeeping entry per message) cost about 170 µs per event. So the app's
broker URL names this module's transport (``engagement-kafka://``, registered under
Faust's ``faust.transports`` entry-point group in ``pyproject.toml``): Faust's aiokafka
transport whose consumer's fetch loop puts each fetch (everything aiokafka's ``getmany``
returned, topped up only until it has caught up with the broker, holds ``batch_max``
messages or ``batch_within`` has passed: ``stream.worker.batching``) on the app's fetch
channel as one ``Fetch`` object, which the scoring agent consumes
(``stream.worker.fetches``). One fetch is in flight at a time.

Offsets: a fetch's offsets are recorded only once the agent's handler has returned (so
after the Redis commit and the alert publish), and committed through Faust's consumer
commit path (``Consumer.commit``), right after the fetch when due and on Faust's commit
timer. A fetch from one consumer generation is never committed in another. On a rebalance
Faust calls ``wait_empty`` before revoking: the in-flight fetch is finished (or, past
``revoke_wait_s``, abandoned uncommitted, so the new owner replays it), the finished
offsets are committed, and then the app's revoke handler drops the state cache. On
shutdown Faust cancels the fetch loop: the in-flight fetch gets up to ``grace_s`` to
finish and is committed at once; if it cannot finish, the loop crashes the app with an
``UnfinishedBatchError`` and mode stops it with exit code 70 (``stream.worker.exits``),
leaving the fetch uncommitted, so it is redelivered.

The Faust internals this relies on are reached only through ``stream.upstream.faust``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from faust.types import TP

from stream.ports import Incoming
from stream.upstream.faust import AiokafkaTransport, WholeFetchConsumer
from stream.worker.batching import TopUp, caught_up
from stream.worker.exits import UnfinishedBatchError
from stream.worker.fetches import Fetch, FetchChannel, FetchOptions, channel_of
from stream.worker.stages import fetch_waits

__all__ = ["SCHEME", "FetchConsumer", "Transport", "broker_url", "incoming"]

log = logging.getLogger(__name__)

SCHEME = "engagement-kafka"
_SHUTDOWN_COMMIT_TIMEOUT_S = 5.0
# How often a batch that has not caught up re-reads the fetch-reply stamps while waiting.
_RECHECK_S = 0.05
_REWIND_TIMEOUT_S = 10.0


def _wall_ms() -> int:
    """Wall-clock milliseconds, as aiokafka stamps fetch replies."""
    return int(time.time() * 1000)


def broker_url(bootstrap: str) -> str:
    """The Faust broker URL that selects this transport for ``host:port[,host:port]``."""
    return ";".join(f"{SCHEME}://{server.strip()}" for server in bootstrap.split(","))


def incoming(records: Mapping[Any, Sequence[Any]]) -> list[Incoming]:
    """aiokafka records by partition, as one list (each partition's in offset order)."""
    return [
        Incoming(r.topic, r.partition, r.offset, r.key,
                 r.value if r.value is not None else b"", int(r.timestamp))
        for partition_records in records.values()
        for r in partition_records
    ]  # fmt: skip


class FetchConsumer(WholeFetchConsumer):
    """Faust's aiokafka consumer, putting whole fetches on the app's fetch channel."""

    _in_hand: Fetch | None = None
    _fetches: FetchChannel | None = None
    _generation: int = -1
    #: next offset to commit per partition: batches finished in ``_generation``
    _finished: dict[TP, int]
    _committed: dict[TP, int]
    _offsets_lock: asyncio.Lock | None = None
    _last_commit: float = 0.0
    failure: str | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._finished = {}
        self._committed = {}

    # -- the fetch loop (Faust's Fetcher service runs it; it replaces the per-message one)

    async def run_fetches(self, fetcher: Any) -> None:
        channel = self._fetches = channel_of(self.app)
        options = channel.options
        try:
            while not (self.should_stop or fetcher.should_stop):
                generation, batch = await self._next_batch(options)
                if batch:
                    await self._run(channel, generation, batch, options)
        except self.consumer_stopped_errors:
            if self.app.should_stop:
                log.info("broker stopped the consumer while shutting down")
                return
            raise
        except asyncio.CancelledError:
            if self.app.should_stop:
                return
            raise
        except Exception as exc:
            self.failure = f"fetch loop: {type(exc).__name__}"
            log.exception("fetch loop failed")
            raise

    async def _next_batch(self, options: FetchOptions) -> tuple[int, list[Incoming]]:
        """One fetch, topped up until it has caught up with the broker, holds
        ``batch_max`` messages or ``batch_within`` has passed (``stream.worker.batching``),
        and the consumer generation it was fetched in; empty when a rebalance intervened."""
        batch: list[Incoming] = []
        arrivals: list[tuple[int, int]] = []  # (first index, wall ms) per reply with records
        generation = self.app.consumer_generation_id
        top_up = TopUp(options.batch_max, options.batch_within_s)
        first_at = 0.0
        since_ms = _wall_ms()
        fresh = False
        timeout: float | None = 1.0
        while timeout is not None:
            if not batch:
                since_ms = _wall_ms()  # a reply after this holds what the broker has now
            records, active = await self.next_records(timeout)
            if self.should_stop:
                return generation, []
            fetched = incoming(records) if records else []
            if not batch:
                generation = self.app.consumer_generation_id
            if not self.flow_active or self.app.consumer_generation_id != generation:
                # A rebalance intervened. What was accepted earlier was fetched before it
                # began, and the assignment that ends it restarts every partition at its
                # committed offset; only this last fetch may need putting back.
                await self._rewind(fetched)
                return generation, []
            if fetched:
                if not batch:
                    first_at = time.monotonic()
                arrivals.append((len(batch), _wall_ms()))
                batch.extend(fetched)
            elif not batch:
                continue
            fresh = len(batch) < options.batch_max and caught_up(self.replied_at(active), since_ms)
            timeout = top_up.wait_s(len(batch), first_at=first_at, now=time.monotonic(),
                                    fresh=fresh)  # fmt: skip
            if timeout is not None:
                # A fetch reply without records wakes nobody: look at the stamps again soon.
                timeout = min(timeout, _RECHECK_S)
        options.observe(top_up.ended_by(len(batch), fresh=fresh))
        in_kafka, waiting = fetch_waits(batch, arrivals, _wall_ms())
        options.stage("kafka", in_kafka)
        options.stage("batch", waiting)
        return generation, batch

    async def _rewind(self, dropped: Sequence[Incoming]) -> None:
        """Put back the messages of one fetch dropped unprocessed at a rebalance.

        A partition whose position is past a dropped message (the fetch came from its
        current assignment) is sought back to it. One whose position is not (the fetch came
        from an earlier assignment, and the new one restarts at the committed offset) is
        left alone, and so is a partition no longer assigned (its next owner starts at the
        committed offset). Faust's own seek to the committed offsets would not do: it
        leaves a partition with no committed offset where it is.
        """
        first: dict[TP, int] = {}
        for message in dropped:
            tp = TP(message.topic, message.partition)
            first[tp] = min(first.get(tp, message.offset), message.offset)
        for tp, offset in first.items():
            try:
                position = await asyncio.wait_for(self.position(tp), _REWIND_TIMEOUT_S)
                if position is not None and position > offset:
                    await asyncio.wait_for(self.seek_wait({tp: offset}), _REWIND_TIMEOUT_S)
            except Exception as exc:  # not assigned any more: its next owner re-reads it
                log.info("no rewind of %s/%d: %s", tp.topic, tp.partition, type(exc).__name__)

    async def _run(
        self, channel: FetchChannel, generation: int, batch: list[Incoming], options: FetchOptions
    ) -> None:
        for start in range(0, len(batch), options.batch_max):
            if not self.flow_active or self.app.consumer_generation_id != generation:
                return  # a rebalance began: the rest is re-read from the committed offsets
            chunk = batch[start : start + options.batch_max]
            fetch = self._in_hand = Fetch(chunk)
            try:
                await channel.hand_over(fetch)
                await asyncio.wait({fetch.done})
            except asyncio.CancelledError:  # Faust stops the fetcher: shutdown
                await self._finish_at_shutdown(fetch, generation, options.grace_s)
                raise
            finally:
                self._in_hand = None
            if fetch.done.cancelled():  # abandoned at a revoke: never committed
                return
            fetch.done.result()  # the handler retries until success; anything else is a bug
            self._record(chunk, generation)
            full = len(chunk) >= options.batch_max
            if full or time.monotonic() - self._last_commit >= options.commit_interval_s:
                await self.commit()

    def _record(self, chunk: Sequence[Incoming], generation: int) -> None:
        if generation != self.app.consumer_generation_id:
            return  # a rebalance happened meanwhile: another member may own it now
        if generation != self._generation:
            self._generation, self._finished, self._committed = generation, {}, {}
        finished = self._finished
        for message in chunk:
            tp = TP(message.topic, message.partition)
            if message.offset + 1 > finished.get(tp, -1):
                finished[tp] = message.offset + 1

    async def _finish_at_shutdown(self, fetch: Fetch, generation: int, grace_s: float) -> None:
        """The fetch loop is being cancelled: let the in-flight fetch finish within the
        grace period and commit it at once, or crash the app without committing it."""
        if not fetch.started:  # never taken by the agent (Faust cleared its queue at the
            fetch.abandon()  # stop): nothing of it was applied, and nothing will finish it
            return
        done = fetch.done
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        while not done.done() and loop.time() < deadline:
            try:
                await asyncio.wait({done}, timeout=deadline - loop.time())
            except asyncio.CancelledError:
                continue
        if not done.done() or done.cancelled() or done.exception() is not None:
            fetch.abandon()
            reason = UnfinishedBatchError(
                f"the in-flight batch of {len(fetch.messages)} messages did not finish within "
                f"{grace_s:g}s of the stop; its offsets are not committed (it is redelivered)"
            )
            await self.app.crash(reason)
            return
        self._record(fetch.messages, generation)
        try:
            await asyncio.wait_for(asyncio.shield(self.commit()), _SHUTDOWN_COMMIT_TIMEOUT_S)
        except (Exception, asyncio.CancelledError) as exc:  # best effort; replay is safe
            log.warning("final commit at shutdown failed (%s); the batch will be replayed",
                        type(exc).__name__)  # fmt: skip

    # -- Faust's hooks: commits, rebalance, stop, livelock checks

    async def commit(self, topics: Any = None, start_new_transaction: bool = True) -> bool:
        """Commit the offsets of finished batches (Faust's commit timer, rebalances and
        the stop call this too)."""
        if self._offsets_lock is None:
            self._offsets_lock = asyncio.Lock()
        async with self._offsets_lock:
            if self._generation != self.app.consumer_generation_id:
                return False
            due = {tp: o for tp, o in self._finished.items() if o > self._committed.get(tp, -1)}
            self._last_commit = time.monotonic()
            if not due or self.app.client_only:
                return False
            started = time.perf_counter()
            done = await self.commit_offsets(due)
            if self._fetches is not None:
                self._fetches.options.stage("offset_commit", [time.perf_counter() - started])
            if done:
                self._committed.update(due)
            return done

    async def wait_empty(self) -> None:
        """Before a revoke or at a stop: finish the in-flight batch (or abandon it past
        ``revoke_wait_s``), then commit what finished."""
        fetch = self._in_hand
        if fetch is not None and not fetch.started:
            # Faust has suspended and cleared the agents' queues before calling this: a
            # fetch the agent has not taken will not be taken (nor committed) now.
            fetch.abandon()
        if fetch is not None and not fetch.done.done():
            limit = self._fetches.options.revoke_wait_s if self._fetches else 0.0
            done, _ = await asyncio.wait({fetch.done}, timeout=limit)
            if not done:
                log.warning("in-flight batch unfinished after %.0fs at a rebalance; "
                            "abandoning it uncommitted (it will be replayed)", limit)  # fmt: skip
                fetch.abandon()
                await asyncio.wait({fetch.done})
        await self.commit()


class Transport(AiokafkaTransport):
    """Faust's aiokafka transport with the whole-fetch consumer."""

    Consumer: ClassVar[type[Any]] = FetchConsumer
