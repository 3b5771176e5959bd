"""Contender (b): Quix Streams computing each customer's points per day with its own
RocksDB window state (tumbling 1-day window sum, like the worker's daily buckets), over
the three topics concatenated into one stream keyed by customer id.

Events are decoded and scored with the project's pure core, so the difference to the
worker is the framework and the state store. Run as
``python -m devtools.bench.contenders.quix CONFIG_JSON``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from quixstreams import Application

from devtools.bench.contenders.common import ContenderConfig, Reporter, Scorer

__all__ = ["build", "main"]


def build(config: ContenderConfig, reporter: Reporter) -> Application:
    """The Quix application: decode + score, concat, a 1-day tumbling window sum per key."""
    scorer = Scorer()
    app_holder: list[Application] = []

    def processed(_topic: str, _partition: int, _offset: int) -> None:
        reporter.add()
        if reporter.done:
            app_holder[0].stop()

    app = Application(
        broker_address=config.bootstrap,
        consumer_group=config.group,
        auto_offset_reset="earliest",
        state_dir=str(Path(config.workdir) / "quix-state"),
        loglevel="WARNING",
        on_message_processed=processed,
    )
    app_holder.append(app)
    frames = []
    for name, role in config.topics.items():
        topic = app.topic(name, value_deserializer="bytes", key_deserializer="bytes")
        frame = app.dataframe(topic)
        frame = frame.apply(_points(scorer, role), metadata=True).filter(lambda p: p is not None)
        frames.append(frame)
    merged = frames[0]
    for other in frames[1:]:
        merged = merged.concat(other)
    merged.tumbling_window(timedelta(days=1), grace_ms=timedelta(days=30)).sum().current()
    return app


def _points(scorer: Scorer, role: str) -> Any:
    def points(value: bytes, key: bytes, _timestamp: int, _headers: Any) -> int | None:
        event = scorer.event(value, key, role, 0)
        return None if event is None else scorer.points_cp(event)

    return points


def main() -> None:
    config = ContenderConfig.from_argv()
    reporter = Reporter(config.expect)
    build(config, reporter).run()


if __name__ == "__main__":
    main()
