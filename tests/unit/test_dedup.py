"""The worker's duplicate check (``stream.worker.dedup``) and its stored form: watermarks
catch redeliveries whatever the fingerprint horizon, fingerprints catch re-sends within
it, the record a commit leaves equals a from-scratch reference, the packed ``dedup``
field round-trips, and a customer stored by the previous release keeps its fingerprints."""

from __future__ import annotations

import asyncio
import itertools

from hypothesis import given
from hypothesis import strategies as st

from stream.adapters.redis_fields import decode_applied, encode_applied
from stream.config.settings import TopicNames
from stream.core.customer import CustomerState, advance
from stream.core.decode import decode_event
from stream.core.events import Event, fingerprint
from stream.ports import Applied, Incoming, pack_marks, source_id, unpack_marks
from stream.worker.dedup import DedupPolicy, Seen, after
from stream.worker.processor import BatchProcessor
from tests.doubles import MemoryScoreStore, RecordingPublisher
from tests.factories import DAY_MS, NOW_MS, default_model, native

MODEL = default_model()
TOPICS = TopicNames()
HOUR_MS = 3_600_000
_offsets = itertools.count(1000)

_mark = st.binary(min_size=8, max_size=8)
_moment = st.integers(NOW_MS - 5000, NOW_MS + 5000)
_applied = st.builds(
    Applied.of,
    st.dictionaries(_mark, st.tuples(st.integers(0, 2**62), _moment), max_size=4),
    st.lists(st.tuples(_mark, _moment), max_size=6).map(pack_marks),
)


def up(ms: int) -> int:
    """A moment as stored: rounded up to the second."""
    return -(-ms // 1000) * 1000


@given(_applied, st.lists(st.tuples(_mark, _moment), max_size=4),
       st.dictionaries(_mark, st.integers(0, 2**62), max_size=3), _moment)  # fmt: skip
def test_the_record_after_a_commit_equals_a_from_scratch_reference(
    applied: Applied, new: list[tuple[bytes, int]], taken: dict[bytes, int], now: int
) -> None:
    """Kept: what is not yet due at the commit's second (moments round up to the second),
    then the new fingerprints; each partition's watermark is the highest offset seen."""
    got = after(applied, now, new, taken, now + 99)
    second = now // 1000
    expected_marks = [(m, u) for m, u in unpack_marks(applied.marks) if u // 1000 > second]
    assert unpack_marks(got.marks) == expected_marks + [(m, up(u)) for m, u in new]
    again = after(got, now + 1500, [], {}, now)  # with the earliest moment remembered
    assert again == after(Applied(got.packed), now + 1500, [], {}, now)
    expected = {s: w for s, w in applied.watermarks.items() if w[1] // 1000 > second}
    for source, offset in taken.items():
        expected[source] = (max(offset, expected.get(source, (-1, 0))[0]), up(now + 99))
    assert dict(got.watermarks) == expected


@given(_applied)
def test_the_packed_field_round_trips_to_the_second(applied: Applied) -> None:
    """``decode_applied(encode_applied(r))`` is ``r`` with its moments rounded up to the
    second; nothing kept packs to nothing."""
    back = decode_applied(encode_applied(applied) or None)
    assert dict(back.watermarks) == {s: (o, up(u)) for s, (o, u) in applied.watermarks.items()}
    assert back.marks == applied.marks
    assert not back.legacy
    assert (encode_applied(applied) == b"") == (not applied.watermarks and not applied.marks)


def test_a_legacy_seen_field_reads_as_fingerprints_with_their_expiry() -> None:
    """The previous release's ``seen`` (4-byte header, 12-byte records) is read as
    fingerprints, flagged legacy so the next commit rewrites it."""
    second = NOW_MS // 1000
    seen = second.to_bytes(4, "big") + b"ABCDEFGH" + (second + 9).to_bytes(4, "big")
    applied = decode_applied(None, seen)
    assert unpack_marks(applied.marks) == [(b"ABCDEFGH", (second + 9) * 1000)] and applied.legacy
    assert Seen(applied).duplicate(source_id("t", 0), 5, b"ABCDEFGH")


def test_a_redelivery_is_known_by_its_offset_alone() -> None:
    """At or below the watermark of its own partition: taken; another partition: not."""
    seen = Seen(Applied.of({source_id("t", 1): (41, NOW_MS)}))
    assert seen.redelivered(source_id("t", 1), 41) and seen.redelivered(source_id("t", 1), 0)
    assert not seen.redelivered(source_id("t", 1), 42)
    assert not seen.redelivered(source_id("t", 2), 3)
    assert not seen.redelivered(source_id("u", 1), 3)


def _message(kind: str, at_ms: int = NOW_MS - 10, event_id: str = "a",
             offset: int | None = None, topic: str | None = None) -> Incoming:  # fmt: skip
    topic = topic or (TOPICS.app_installs if kind.startswith("app_") else TOPICS.clickstream)
    offset = next(_offsets) if offset is None else offset
    return Incoming(topic, 0, offset, b"c1", native(kind, "c1", at_ms, event_id), at_ms)


def _expected(messages: list[Incoming], now_ms: int) -> CustomerState:
    events = []
    for m in messages:
        decoded = decode_event(m.value, key=m.key, topic_role=TOPICS.inputs[m.topic],
                               model=MODEL, now_ms=now_ms, fallback_id=m.source)  # fmt: skip
        assert isinstance(decoded, Event)
        events.append(decoded)
    return advance(MODEL, "c1", CustomerState(), events, now_ms).state


class _Clock:
    def __init__(self) -> None:
        self.now_ms = NOW_MS

    def __call__(self) -> int:
        return self.now_ms


def _worker(store: MemoryScoreStore, clock: _Clock, horizon_ms: int) -> BatchProcessor:
    return BatchProcessor(MODEL, store, RecordingPublisher(), TOPICS, clock_ms=clock,
                          dedup=DedupPolicy(horizon_ms))  # fmt: skip


def test_a_redelivery_after_the_horizon_is_dropped_by_its_watermark() -> None:
    """The crash between the Redis commit and the offset commit, noticed late: the
    fingerprint is forgotten (horizon 1 s, trimmed by a later commit), yet a fresh worker
    that is handed the message again drops it by its offset."""
    store, clock = MemoryScoreStore(), _Clock()
    first = _message("page_view")
    asyncio.run(_worker(store, clock, 1000).process([first]))
    clock.now_ms += 2 * HOUR_MS
    later = _message("click", clock.now_ms - 10, "b")
    asyncio.run(_worker(store, clock, 1000).process([later]))
    assert fingerprint_of(first) not in {m for m, _ in unpack_marks(store.rows["c1"].applied.marks)}
    report = asyncio.run(_worker(store, clock, 1000).process([first, later]))
    assert (report.duplicates, report.scored) == (2, 0)
    assert store.rows["c1"].state == _expected([first, later], clock.now_ms)


def fingerprint_of(message: Incoming) -> bytes:
    decoded = decode_event(message.value, key=message.key, topic_role=TOPICS.inputs[message.topic],
                           model=MODEL, now_ms=NOW_MS, fallback_id=message.source)  # fmt: skip
    assert isinstance(decoded, Event)
    return fingerprint(decoded)


def test_a_re_send_within_the_horizon_is_dropped_and_raises_the_watermark() -> None:
    """A producer re-send (same event id, a new offset) within the horizon is a duplicate;
    the commit still raises the watermark, so a redelivery of the re-send is known by its
    offset once the fingerprint is gone."""
    store, clock = MemoryScoreStore(), _Clock()
    first = _message("page_view")
    asyncio.run(_worker(store, clock, HOUR_MS).process([first]))
    clock.now_ms += HOUR_MS // 2
    again = _message("page_view")
    version = store.rows["c1"].version
    report = asyncio.run(_worker(store, clock, HOUR_MS).process([again]))
    assert report.duplicates == 1 and store.rows["c1"].version == version + 1
    assert store.rows["c1"].applied.watermarks[source_id(again.topic, 0)][0] == again.offset
    stored, expected = store.rows["c1"].state, _expected([first], NOW_MS)
    assert (stored.buckets, stored.score_cp) == (expected.buckets, expected.score_cp)


def test_a_re_send_on_another_topic_within_the_horizon_is_dropped() -> None:
    """The same Segment ``identify`` (profile calls are accepted on every topic) re-sent
    on another topic is applied once."""
    store, clock = MemoryScoreStore(), _Clock()
    doc = b'{"type":"identify","userId":"c1","messageId":"i1","timestamp":%d,"traits":{"p":1}}'
    doc = doc % (NOW_MS - 10)
    first = Incoming(TOPICS.clickstream, 0, next(_offsets), b"c1", doc, NOW_MS)
    other = Incoming(TOPICS.sessions, 0, next(_offsets), b"c1", doc, NOW_MS)
    assert asyncio.run(_worker(store, clock, HOUR_MS).process([first])).profiled == 1
    version = store.rows["c1"].version
    assert asyncio.run(_worker(store, clock, HOUR_MS).process([other])).duplicates == 1
    assert store.rows["c1"].version == version + 1  # the watermark of the other topic


def test_a_re_send_after_the_horizon_counts_again_as_documented() -> None:
    """The documented limit: a re-send arriving after the horizon (and its trim) is a new
    event to the worker, unless it is too old by then."""
    store, clock = MemoryScoreStore(), _Clock()
    first = _message("page_view")
    asyncio.run(_worker(store, clock, HOUR_MS).process([first]))
    clock.now_ms += 2 * HOUR_MS
    asyncio.run(_worker(store, clock, HOUR_MS).process([_message("click", clock.now_ms, "b")]))
    report = asyncio.run(_worker(store, clock, HOUR_MS).process([_message("page_view")]))
    assert report.scored == 1
    clock.now_ms = NOW_MS + 31 * DAY_MS
    late = asyncio.run(_worker(store, clock, HOUR_MS).process([_message("page_view")]))
    assert late.dead_lettered == 1 and late.scored == 0


def test_fingerprints_of_the_previous_release_keep_their_events_applied() -> None:
    """A customer stored by the previous release: its events' fingerprints (kept until the
    event leaves the window) still drop re-sends after the upgrade, whatever the horizon;
    the first commit rewrites the record in the new form."""
    store, clock = MemoryScoreStore(), _Clock()
    first = _message("page_view")
    asyncio.run(_worker(store, clock, 1000).process([first]))
    row = store.rows["c1"]
    row.applied = Applied.of(
        {}, pack_marks([(fingerprint_of(first), NOW_MS + 20 * DAY_MS)]), legacy=True
    )
    clock.now_ms += 5 * DAY_MS
    report = asyncio.run(_worker(store, clock, 1000).process([_message("page_view")]))
    assert report.duplicates == 1
    assert not store.rows["c1"].applied.legacy
    kept = unpack_marks(store.rows["c1"].applied.marks)
    assert (fingerprint_of(first), NOW_MS + 20 * DAY_MS) in kept
