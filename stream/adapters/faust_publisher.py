"""The worker's publisher: produces through the Faust app's producer (``acks=all``)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import faust

from stream.ports import OutMessage

__all__ = ["FaustPublisher"]


class FaustPublisher:
    """Produces through the app's producer and waits until Kafka acknowledges every message."""

    def __init__(self, app: faust.App) -> None:
        self.app = app

    async def publish(self, messages: Sequence[OutMessage]) -> None:
        pending = [
            await self.app.producer.send(
                m.topic, m.key, m.value, partition=None, timestamp=None, headers=list(m.headers)
            )
            for m in messages
        ]
        await asyncio.gather(*pending)
