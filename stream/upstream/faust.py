"""faust-streaming internals (pinned ``faust-streaming==0.15.3``, with ``mode-streaming``
and ``aiokafka==0.14.0`` beneath it).

Relies on, in Faust's aiokafka driver (``faust.transport.drivers.aiokafka``) and its
consumer base (``faust.transport.consumer``):

- the Fetcher service runs ``Consumer._drain_messages(fetcher)`` as the consumer's whole
  fetch loop until ``fetcher.should_stop``, and cancels it at a stop or a rebalance;
- ``Consumer._wait_next_records(timeout)`` returns ``(records by partition, partitions
  fetched)`` from aiokafka's ``getmany``;
- ``Consumer._commit(offsets)`` commits ``{TP: next offset}`` through the driver thread;
- ``Consumer._thread`` is the driver thread: ``_ensure_consumer()`` is its aiokafka
  consumer, ``verify_recovery_event_path(now, tp)`` its fetch-side livelock check;
- ``Consumer._committed_offset`` maps each assigned partition to the committed offset it
  was sought to after the rebalance (``perform_seek``), popped at its revoke;
- ``Producer._ensure_producer()`` is the app producer's aiokafka producer;
- ``TableManager.on_start`` sleeps one second, then calls ``self._update_channels()`` and
  starts ``self.recovery`` (``PromptTableManager`` does the same without the sleep).

Why: Faust's public path from a fetch to user code is the conductor, one event, one
acknowledgement and one offset bookkeeping entry per message (about 170 µs per event
here). Faust has no public hook that hands a whole fetch to user code, nor one that reads
when a partition last had a fetch reply (adaptive batching needs it), which committed offset
a partition resumed from (the lag readiness counts) or asks the brokers for metadata (the
readiness probe), nor a setting for the table manager's wait for late table declarations (a
second of every start; the worker declares no tables). ``WholeFetchConsumer`` turns the
private methods into public-named hooks that ``stream.worker.fetch`` builds on; the
proposal for the upstream hook that would make it unnecessary is in the architecture notes.
``tests/unit/test_upstream_faust.py`` pins all of the above.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import faust
from faust.tables import TableManager
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

__all__ = ["AiokafkaTransport", "PromptTableManager", "WholeFetchConsumer", "kafka_metadata"]

Records = Mapping[TP, Sequence[Any]]

AiokafkaTransport = faust_aiokafka.Transport
"""Faust's aiokafka transport, to subclass with a ``WholeFetchConsumer``."""


class WholeFetchConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer whose fetch loop is ``run_fetches`` (subclasses define it),
    with public-named access to the internals that loop needs."""

    async def _drain_messages(self, fetcher: Any) -> None:
        await self.run_fetches(fetcher)

    async def run_fetches(self, fetcher: Any) -> None:
        """The fetch loop: run until ``self.should_stop or fetcher.should_stop``."""
        raise NotImplementedError

    async def next_records(self, timeout: float) -> tuple[Records, Iterable[TP]]:
        """What aiokafka fetched within ``timeout`` (by partition), and the partitions
        fetched from."""
        records, active = await self._wait_next_records(timeout)
        return records or {}, active or ()

    async def commit_offsets(self, offsets: Mapping[TP, int]) -> bool:
        """Commit ``{partition: next offset}`` through Faust's driver."""
        return bool(await self._commit(offsets))

    def replied_at(self, partitions: Iterable[TP]) -> list[int | None]:
        """When aiokafka last had a fetch reply for each partition (wall-clock ms; None
        for a partition not fetched yet, or when that cannot be read, e.g. mid-rebalance)."""
        try:
            consumer = self._thread._ensure_consumer()
            assigned = consumer.assignment()
            return [consumer.last_poll_timestamp(tp) if tp in assigned else None
                    for tp in partitions]  # fmt: skip
        except Exception:  # never fresh then: the batch waits out batch_within
            return [None]

    def resumed_from(self, tp: TP) -> int:
        """The committed offset ``tp`` resumed from at its current assignment (0: none, or
        not read yet). Faust reads it when it seeks the assignment to its committed offsets
        (``perform_seek``, once the rebalance completes) and forgets it at the revoke."""
        return self._committed_offset.get(tp) or 0

    def verify_event_path(self, now: float, tp: TP) -> None:
        """Faust's livelock check, fetch side only: the processing side is watched by the
        worker's own readiness (``keeping_up``), as messages bypass Faust's streams."""
        self._thread.verify_recovery_event_path(now, tp)


async def kafka_metadata(app: faust.App) -> None:
    """Ask the brokers for the cluster's metadata through the app's producer."""
    producer = app.producer._ensure_producer()  # type: ignore[attr-defined]
    await producer.client.fetch_all_metadata()


class PromptTableManager(TableManager):
    """Faust's table manager, minus the one-second wait at start: only after it registers
    the tables' channels does the conductor subscribe and the consumer join its group, and
    the worker declares no tables (its state is in Redis)."""

    async def on_start(self) -> None:
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()
