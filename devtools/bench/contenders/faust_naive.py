"""Contender (c): a plain Faust agent iterating event by event, doing the job naively:
decode and score each event with the project's pure core, then one Redis round trip
(HINCRBY of the customer's points) per event. Run as
``python -m devtools.bench.contenders.faust_naive CONFIG_JSON``; the harness stops it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faust
from redis.asyncio import Redis

from devtools.bench.contenders.common import ContenderConfig, Reporter, Scorer

__all__ = ["build", "main"]


def build(config: ContenderConfig, reporter: Reporter) -> faust.App:
    """The Faust app with one event-by-event agent over the three topics."""
    scorer = Scorer()
    redis = Redis.from_url(config.redis_url)
    app = faust.App(
        config.group,
        broker=f"kafka://{config.bootstrap}",
        store="memory://",
        datadir=str(Path(config.workdir) / "faust-naive"),
        web_enabled=False,
        topic_allow_declare=False,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        logging_config=None,
    )
    inputs = app.topic(*config.topics, key_serializer="raw", value_serializer="raw")

    @app.agent(inputs, name="naive")
    async def naive(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            decoded = scorer.event(message.value, message.key, config.topics[message.topic],
                                   message.offset)  # fmt: skip
            if decoded is not None:
                key = f"{config.redis_prefix}:{{{decoded.customer_id}}}"
                await redis.hincrby(key, "points_cp", scorer.points_cp(decoded))
            reporter.add()

    del naive
    return app


def main() -> None:
    config = ContenderConfig.from_argv()
    app = build(config, Reporter(config.expect))
    faust.Worker(app, loglevel="WARNING", redirect_stdouts=False).execute_from_commandline()


if __name__ == "__main__":
    main()
