"""Contender (a): a raw aiokafka consumer that only decodes each value with orjson.

The ceiling for Python: no validation, no scoring, no state. Run as
``python -m devtools.bench.contenders.raw CONFIG_JSON``.
"""

from __future__ import annotations

import asyncio

import orjson
from aiokafka import AIOKafkaConsumer

from devtools.bench.contenders.common import ContenderConfig, Reporter

__all__ = ["consume", "main"]


async def consume(config: ContenderConfig) -> int:
    """Read and decode until ``config.expect`` messages have been seen; return the count."""
    consumer = AIOKafkaConsumer(
        *config.topics,
        bootstrap_servers=config.bootstrap,
        group_id=config.group,
        auto_offset_reset="earliest",
        enable_auto_commit=True,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    reporter = Reporter(config.expect)
    await consumer.start()
    try:
        while not reporter.done:
            batches = await consumer.getmany(timeout_ms=500, max_records=20_000)
            for records in batches.values():
                for record in records:
                    orjson.loads(record.value)
                reporter.add(len(records))
    finally:
        await consumer.stop()
    return reporter.count


def main() -> None:
    asyncio.run(consume(ContenderConfig.from_argv()))


if __name__ == "__main__":
    main()
