"""The Faust internals ``stream.upstream.faust`` subclasses or calls, pinned.

The whole-fetch consumer relies on faust-streaming 0.15.3 behaving as read from its source: the
Fetcher service runs ``Consumer._drain_messages(fetcher)``; ``_wait_next_records(timeout)``
returns the records aiokafka fetched; ``position``/``seek_wait`` put dropped ones back;
``_commit(offsets)`` is the driver's commit; Faust calls ``wait_empty()`` before a revoke
and at a stop and ``commit()`` on its timer; the rebalance listener sets
``app.consumer_generation_id``; the producer's ``_ensure_producer()`` is its aiokafka
producer. If an upgrade changes any of that, these tests fail and
name what changed; do not upgrade Faust without re-reading them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.consumer.fetcher import Fetcher
from aiokafka.structs import ConsumerRecord
from faust.app import base as app_base
from faust.tables import recovery as faust_recovery
from faust.transport import by_url
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from stream.upstream.faust import WholeFetchConsumer
from stream.worker.fetch import SCHEME, FetchConsumer, Transport, broker_url, incoming

FAUST_VERSION = "0.15.3"
AIOKAFKA_VERSION = "0.14.0"


def _source(obj: Any) -> str:
    """Source of a function, or of the function behind a mode ``Service.task``."""
    return inspect.getsource(getattr(obj, "fun", obj))


def _parameters(function: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_faust_is_the_pinned_version() -> None:
    assert version("faust-streaming") == FAUST_VERSION
    assert faust.__version__ == FAUST_VERSION


def test_the_fetcher_runs_the_consumers_drain_loop_with_itself() -> None:
    source = _source(faust_consumer.Fetcher._fetcher)
    assert "consumer._drain_messages(self)" in source
    assert _parameters(faust_consumer.Consumer._drain_messages) == ["self", "fetcher"]


@pytest.mark.parametrize(
    ("name", "parameters"),
    [
        ("_wait_next_records", ["self", "timeout"]),
        ("_commit", ["self", "offsets"]),
        ("commit", ["self", "topics", "start_new_transaction"]),
        ("position", ["self", "tp"]),
        ("seek_wait", ["self", "partitions"]),
        ("wait_empty", ["self"]),
        ("verify_event_path", ["self", "now", "tp"]),
    ],
)
def test_consumer_methods_keep_their_signatures(name: str, parameters: list[str]) -> None:
    method = getattr(faust_aiokafka.Consumer, name)
    assert _parameters(method) == parameters, f"Consumer.{name} changed"


def test_wait_next_records_returns_the_fetched_records_and_partitions() -> None:
    source = _source(faust_consumer.Consumer._wait_next_records)
    assert "records = await self._getmany(" in source
    assert "return records, active_partitions" in source


def test_faust_commits_and_waits_through_the_methods_the_fetch_consumer_overrides() -> None:
    assert "await self.commit()" in _source(faust_consumer.Consumer._commit_handler)
    assert "await self.wait_empty()" in _source(faust_consumer.Consumer.on_stop)
    assert "await consumer.wait_empty()" in _source(app_base.App._consumer_wait_empty)
    assert "_consumer_wait_empty" in _source(app_base.App._on_partitions_revoked)
    assert "_stop_fetcher" in _source(app_base.App._stop_consumer)
    revoked = _source(app_base.App._on_partitions_revoked)
    assert revoked.index("_consumer_wait_empty") < revoked.index("on_partitions_revoked.send")


def test_the_rebalance_listener_sets_the_generation_and_the_flow_flags_exist() -> None:
    listener = _source(faust_aiokafka.ConsumerRebalanceListener.on_partitions_assigned)
    assert "app.consumer_generation_id = generation" in listener
    assert "flow_active" in _source(faust_consumer.Consumer.stop_flow)
    assert faust_aiokafka.Consumer.consumer_stopped_errors


def test_faust_keeps_the_committed_offsets_each_assignment_resumed_from() -> None:
    """``FetchConsumer.resumed_from`` (the start of the readiness lag) reads the committed
    offsets Faust stores when it seeks an assignment to them, and drops at a revoke."""
    seek = _source(faust_consumer.Consumer.perform_seek)
    assert "await self.seek_to_committed()" in seek
    assert "self._committed_offset.update(committed_offsets)" in seek
    assert "consumer.perform_seek()" in _source(faust_recovery.Recovery.on_recovery_completed)
    assert "self._committed_offset.pop(tp, None)" in _source(
        faust_consumer.Consumer.on_partitions_revoked
    )
    consumer = faust.App("resumed-from", broker=broker_url("127.0.0.1:1")).consumer
    assert isinstance(consumer, FetchConsumer)
    tp = TP("t", 0)
    assert consumer.resumed_from(tp) == 0
    consumer._committed_offset.update({tp: 492})
    assert consumer.resumed_from(tp) == 492


def test_the_driver_thread_has_the_fetch_side_livelock_check() -> None:
    thread = faust_aiokafka.AIOKafkaConsumerThread
    assert _parameters(thread.verify_recovery_event_path) == ["self", "now", "tp"]
    assert "_verify_aiokafka_event_path" in _source(thread.verify_recovery_event_path)


def test_aiokafka_stamps_each_partitions_fetch_reply_in_wall_clock_ms() -> None:
    """Adaptive batching (``stream.worker.batching``) reads when each partition last had a
    fetch reply through the driver thread's aiokafka consumer, and compares it with
    ``time.time()`` in ms; a reply stamps every partition it covers, records or not."""
    assert version("aiokafka") == AIOKAFKA_VERSION
    assert "_ensure_consumer" in vars(faust_aiokafka.AIOKafkaConsumerThread)
    stamp = _source(AIOKafkaConsumer.last_poll_timestamp)
    assert "state_value(partition).timestamp" in stamp
    reply = _source(Fetcher._proc_fetch_request)
    assert "now_ms = int(1000 * time.time())" in reply
    assert reply.index("tp_state.timestamp = now_ms") < reply.index("if records.has_next():")
    assert "tp_state.highwater = highwater" in reply


def test_the_broker_scheme_selects_the_fetch_transport_and_consumer() -> None:
    assert by_url(f"{SCHEME}://127.0.0.1:9092") is Transport
    assert issubclass(Transport, faust_aiokafka.Transport)
    assert Transport.Consumer is FetchConsumer
    app = faust.App("fetch-internals", broker=broker_url("127.0.0.1:1"))
    assert type(app.transport) is Transport


def test_broker_url_lists_every_bootstrap_server() -> None:
    assert broker_url("a:1, b:2") == f"{SCHEME}://a:1;{SCHEME}://b:2"


def test_incoming_keeps_each_partitions_order_and_converts_fields() -> None:
    def record(topic: str, partition: int, offset: int, value: bytes | None) -> Any:
        return ConsumerRecord(topic, partition, offset, 1_700_000_000_123, 0, b"k", value,
                              None, 1, 1, ())  # fmt: skip

    records = {
        ("t", 0): [record("t", 0, 5, b"a"), record("t", 0, 6, None)],
        ("u", 1): [record("u", 1, 9, b"c")],
    }
    got = incoming(records)
    assert [(m.topic, m.partition, m.offset) for m in got] == [("t", 0, 5), ("t", 0, 6),
                                                               ("u", 1, 9)]  # fmt: skip
    assert got[1].value == b""
    assert got[0].key == b"k"
    assert got[0].timestamp_ms == 1_700_000_000_123


def test_the_seam_overrides_the_drain_loop_and_nothing_else_private() -> None:
    private = {name for name, value in vars(WholeFetchConsumer).items() if callable(value)
               and name.startswith("_") and not name.startswith("__")}  # fmt: skip
    assert private == {"_drain_messages"}
    assert issubclass(FetchConsumer, WholeFetchConsumer)
    overridden = {n for n in vars(FetchConsumer) if n.startswith("_") and n != "_abc_impl"
                  and hasattr(faust_aiokafka.Consumer, n) and not n.startswith("__")}  # fmt: skip
    assert not overridden, f"FetchConsumer overrides private names: {overridden}"


def test_the_producer_exposes_its_aiokafka_producer() -> None:
    ensure = faust_aiokafka.Producer._ensure_producer
    assert _parameters(ensure) == ["self"]
    assert "AIOKafkaProducer" in _source(faust_aiokafka.Producer._new_producer)


def test_a_stream_yields_a_channel_value_that_is_not_an_event_as_is() -> None:
    """The scoring agent receives ``Fetch`` objects put on its channel (``Channel.put``
    fans a value out to the iterating clones) and never acknowledges them."""
    from faust import channels, streams  # noqa: PLC0415

    aiter = _source(streams.Stream._py_aiter)
    assert "if isinstance(channel_value, event_cls):" in aiter
    assert "value = channel_value" in aiter
    assert "await subscriber.queue.put(value)" in _source(channels.Channel.put)


def test_a_revoke_clears_the_agents_queues_before_waiting_for_the_consumer() -> None:
    """Why ``FetchConsumer.wait_empty`` abandons a fetch the agent has not taken at once."""
    revoked = _source(app_base.App._on_partitions_revoked)
    assert revoked.index("self.flow_control.clear") < revoked.index("_consumer_wait_empty")
