"""A standalone Kafka publisher (aiokafka) for tools and tests that run without Faust."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer

from stream.adapters.kafka_security import client_options
from stream.config.security import KafkaSecurity
from stream.ports import OutMessage

__all__ = ["KafkaPublisher"]


class KafkaPublisher:
    """Produces with acks=all and returns once every message is acknowledged."""

    def __init__(self, bootstrap: str, security: KafkaSecurity | None = None) -> None:
        self.producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", **client_options(security or KafkaSecurity())
        )

    async def start(self) -> None:
        await self.producer.start()

    async def stop(self) -> None:
        await self.producer.stop()

    async def publish(self, messages: Sequence[OutMessage]) -> None:
        pending = [
            await self.producer.send(m.topic, m.value, key=m.key, headers=list(m.headers))
            for m in messages
        ]
        await asyncio.gather(*pending)
