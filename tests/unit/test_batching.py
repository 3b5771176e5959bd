"""Adaptive batching: the top-up rule (``stream.worker.batching``) and the fetch loop that
applies it (``FetchConsumer._next_batch``, driven here by scripted fetches)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from types import SimpleNamespace
from typing import Any

from faust.types import TP
from hypothesis import given
from hypothesis import strategies as st

from stream.ports import Incoming
from stream.worker.batching import TopUp, caught_up
from stream.worker.fetch import FetchConsumer, FetchOptions

_stamps = st.lists(st.one_of(st.none(), st.integers(0, 10_000)), max_size=30)


@given(_stamps, st.integers(0, 10_000))
def test_caught_up_only_when_every_partition_replied_since(
    stamps: list[int | None], since: int
) -> None:
    expected = True
    for stamp in stamps:  # from scratch: one stale or never-fetched partition is enough
        if stamp is None or stamp < since:
            expected = False
    assert caught_up(stamps, since) is expected


def test_caught_up_examples() -> None:
    assert caught_up([], 5)
    assert caught_up([5, 9], 5)
    assert not caught_up([5, 4], 5)
    assert not caught_up([None, 9], 5)


@given(
    size=st.integers(1, 5000),
    batch_max=st.integers(1, 5000),
    within=st.floats(0.0, 1.0),
    waited=st.floats(0.0, 2.0),
    fresh=st.booleans(),
)
def test_top_up_waits_only_for_an_unfinished_batch_and_never_past_its_window(
    size: int, batch_max: int, within: float, waited: float, fresh: bool
) -> None:
    first_at = 100.0
    wait = TopUp(batch_max, within).wait_s(size, first_at=first_at, now=first_at + waited,
                                           fresh=fresh)  # fmt: skip
    if size >= batch_max or fresh or first_at + waited >= first_at + within:
        assert wait is None
    else:
        assert wait is not None
        assert 0 < wait <= within + 1e-9
        assert abs(first_at + waited + wait - (first_at + within)) < 1e-9


# -- the fetch loop, with scripted aiokafka replies

_TP = TP("t", 0)


def _messages(count: int, start: int = 0) -> list[Any]:
    return [
        SimpleNamespace(topic="t", partition=0, offset=start + i, key=b"k", value=b"v", timestamp=0)
        for i in range(count)
    ]


class _Script:
    """Stands in for the consumer the loop reads: each fetch returns the next scripted
    reply (record count, whether every partition has replied since the batch began)."""

    def __init__(self, replies: list[tuple[int, bool]]) -> None:
        self.replies = replies
        self.calls: list[float] = []  # the timeout of each fetch
        self.fresh = False
        self.offset = 0
        self.app = SimpleNamespace(consumer_generation_id=1)
        self.should_stop = False
        self.flow_active = True

    async def next_records(self, timeout: float) -> tuple[dict[TP, list[Any]], set[TP]]:
        self.calls.append(timeout)
        count, self.fresh = self.replies.pop(0) if self.replies else (0, self.fresh)
        if not count:  # as aiokafka: nothing fetched, so the wait lasted its whole timeout
            await asyncio.sleep(timeout)
        records = _messages(count, self.offset)
        self.offset += count
        return ({_TP: records} if records else {}), {_TP}

    def replied_at(self, partitions: Iterable[TP]) -> list[int | None]:
        return [2**62 if self.fresh else 0 for _ in partitions]

    async def _rewind(self, dropped: list[Incoming]) -> None:
        raise AssertionError("no rebalance in these scripts")


def _next_batch(
    script: _Script, batch_max: int = 100, within_s: float = 5.0, ends: list[str] | None = None
) -> list[Incoming]:
    options = FetchOptions(batch_max=batch_max, batch_within_s=within_s,
                           observe=(ends if ends is not None else []).append)  # fmt: skip
    _, batch = asyncio.run(FetchConsumer._next_batch(script, options))  # type: ignore[arg-type]
    return batch


def test_an_idle_worker_processes_the_first_fresh_fetch_at_once() -> None:
    script = _Script([(0, False), (3, True), (50, True)])
    batch = _next_batch(script)
    assert [m.offset for m in batch] == [0, 1, 2]
    assert len(script.calls) == 2  # the empty wait, then the fetch: no top-up


def test_a_stale_first_fetch_is_topped_up_by_one_fresh_fetch_only() -> None:
    script = _Script([(4, False), (20, True), (50, True)])
    batch = _next_batch(script)
    assert len(batch) == 24
    assert len(script.calls) == 2
    assert 0 < script.calls[1] <= 5.0


def test_never_caught_up_waits_out_the_window_then_stops() -> None:
    script = _Script([(4, False), (1, False), (1, False)])  # then empty replies
    ends: list[str] = []
    started = time.monotonic()
    batch = _next_batch(script, within_s=0.3, ends=ends)
    assert len(batch) == 6 and ends == ["window"]
    assert time.monotonic() - started >= 0.3
    assert all(0 < timeout <= 0.05 for timeout in script.calls[1:])  # stamps re-read often


def test_a_stale_fetch_ends_as_soon_as_a_reply_without_records_catches_it_up() -> None:
    """The stamps move on a fetch reply with no records too, which wakes no wait: the loop
    re-reads them instead of waiting out the window (seen under load: one 20 s wait)."""
    script = _Script([(4, False), (0, False), (0, True)])
    ends: list[str] = []
    batch = _next_batch(script, within_s=60.0, ends=ends)
    assert len(batch) == 4 and ends == ["caught_up"]
    assert len(script.calls) == 3


def test_a_window_that_has_passed_stops_topping_up() -> None:
    script = _Script([(4, False), (1, False), (1, False)])
    batch = _next_batch(script, within_s=0.0)
    assert len(batch) == 4
    assert len(script.calls) == 1


def test_a_full_first_fetch_is_processed_at_once() -> None:
    script = _Script([(100, False), (5, True)])
    batch = _next_batch(script, batch_max=100)
    assert len(batch) == 100
    assert len(script.calls) == 1


@given(size=st.integers(1, 5000), batch_max=st.integers(1, 5000), fresh=st.booleans())
def test_a_batch_ends_full_before_caught_up_before_its_window(
    size: int, batch_max: int, fresh: bool
) -> None:
    end = TopUp(batch_max, 0.05).ended_by(size, fresh=fresh)
    assert end == ("full" if size >= batch_max else "caught_up" if fresh else "window")


def test_the_fetch_loop_reports_why_each_batch_ended() -> None:
    ends: list[str] = []
    scripts = [
        ([(3, True)], 5.0),  # idle: the first reply is fresh
        ([(100, False)], 5.0),  # a backlog
        ([(4, False), (1, False)], 0.3),  # never caught up: waited out, then an empty fetch
    ]
    for replies, within_s in scripts:
        options = FetchOptions(batch_max=100, batch_within_s=within_s, observe=ends.append)
        asyncio.run(FetchConsumer._next_batch(_Script(replies), options))  # type: ignore[arg-type]
    assert ends == ["caught_up", "full", "window"]


def test_the_loop_times_every_message_in_kafka_and_waiting_for_its_batch() -> None:
    script = _Script([(4, False), (20, True)])
    seen: dict[str, list[float]] = {}

    def keep(stage: str, seconds: Sequence[float]) -> None:
        seen.setdefault(stage, []).extend(seconds)

    options = FetchOptions(batch_max=100, batch_within_s=5.0, stage=keep)
    _, batch = asyncio.run(FetchConsumer._next_batch(script, options))  # type: ignore[arg-type]
    assert len(batch) == 24
    assert len(seen["kafka"]) == len(seen["batch"]) == 24
    # the scripted records carry Kafka timestamp 0: in Kafka since the epoch, by the wall clock
    assert min(seen["kafka"]) > time.time() - 60
    assert all(0 <= wait < 60 for wait in seen["batch"])
