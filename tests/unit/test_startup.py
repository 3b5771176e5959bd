"""The Faust internals the worker's start-up and static membership rely on, pinned.

``stream.upstream.faust.PromptTableManager`` replaces Faust's table manager start (a one-
second sleep, then the channels and the recovery service); ``stream.worker.app`` passes the
instance id through Faust's ``consumer_group_instance_id`` setting, which Faust's aiokafka
driver hands to the consumer as ``group_instance_id``, and aiokafka leaves a group on close
only as a dynamic member; the lag of a partition not processed yet counts from the committed
offset Faust's seek at the assignment recorded. If an upgrade changes any of that, these
tests fail.
"""

from __future__ import annotations

import inspect

import faust
from aiokafka.consumer.group_coordinator import GroupCoordinator
from faust.tables import TableManager
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka

from stream.upstream.faust import PromptTableManager


def test_faust_table_manager_start_is_a_sleep_then_channels_then_recovery() -> None:
    source = inspect.getsource(TableManager.on_start)
    assert "await self.sleep(1.0)" in source
    assert source.index("self.sleep(1.0)") < source.index("self._update_channels()")
    assert "await self.recovery.start()" in source
    assert "sleep" not in inspect.getsource(PromptTableManager.on_start)


def test_the_app_setting_selects_the_prompt_table_manager() -> None:
    app = faust.App("startup-test", TableManager=PromptTableManager)
    assert isinstance(app.tables, PromptTableManager)


def test_the_instance_id_reaches_the_consumer_as_group_instance_id() -> None:
    app = faust.App("startup-test", consumer_group_instance_id="worker-7")
    assert app.conf.consumer_group_instance_id == "worker-7"
    source = inspect.getsource(faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer)
    assert "group_instance_id=conf.consumer_group_instance_id" in source


def test_a_static_member_does_not_leave_the_group_when_it_stops() -> None:
    """So a restart within the session timeout finds its partitions still its own."""
    source = inspect.getsource(GroupCoordinator._maybe_leave_group)
    assert "self._group_instance_id is None" in source


def test_the_seek_to_committed_offsets_records_them_for_the_lag_baseline() -> None:
    """``FetchConsumer.resumed_from`` reads what Faust's seek at each assignment records."""
    source = inspect.getsource(faust_consumer.Consumer.perform_seek)
    assert "self._committed_offset.update(committed_offsets)" in source
