"""The scoring agent as a Faust user sees it, and the fetches it is handed."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from stream.config.model_file import load_model
from stream.config.settings import Settings
from stream.ports import Incoming
from stream.worker.app import SCORING_AGENT, assemble_app
from stream.worker.fetches import Fetch, FetchChannel, channel_of


def test_the_app_registry_lists_the_scoring_agent_on_the_input_topics() -> None:
    settings = Settings()
    app = assemble_app(settings, load_model(settings.model))
    assert list(app.agents) == [SCORING_AGENT]
    agent = app.agents[SCORING_AGENT]
    assert isinstance(agent.channel, FetchChannel)
    assert agent.channel is channel_of(app)
    assert agent.channel.get_topic_name().split(",") == list(settings.topics.inputs)
    assert agent.concurrency == 1


def _messages(count: int) -> list[Incoming]:
    return [Incoming("t", 0, offset, b"k", b"{}", 0) for offset in range(count)]


def test_a_processed_fetch_is_done_once_its_handler_returned() -> None:
    seen: list[int] = []

    async def handler(batch: Sequence[Incoming]) -> None:
        await asyncio.sleep(0)
        seen.append(len(batch))

    async def main() -> Fetch:
        fetch = Fetch(_messages(3))
        assert not fetch.done.done()
        await fetch.process(handler)
        return fetch

    fetch = asyncio.run(main())
    assert seen == [3]
    assert fetch.done.result() is None


def test_a_failing_handler_fails_the_fetch() -> None:
    async def handler(batch: Sequence[Incoming]) -> None:
        raise ValueError("bug")

    async def main() -> Fetch:
        fetch = Fetch(_messages(1))
        await fetch.process(handler)
        return fetch

    with pytest.raises(ValueError, match="bug"):
        asyncio.run(main()).done.result()


def test_an_abandoned_fetch_is_cancelled_whether_or_not_the_agent_took_it() -> None:
    started = []

    async def handler(batch: Sequence[Incoming]) -> None:
        started.append(True)
        await asyncio.sleep(3600)

    async def main() -> tuple[Fetch, Fetch]:
        untaken = Fetch(_messages(1))
        untaken.abandon()
        await untaken.process(handler)  # the agent takes it after the abandon: skipped
        running = Fetch(_messages(1))
        agent = asyncio.ensure_future(running.process(handler))
        while not started:
            await asyncio.sleep(0)
        running.abandon()
        await asyncio.wait({running.done})
        await agent
        return untaken, running

    untaken, running = asyncio.run(main())
    assert untaken.done.cancelled() and running.done.cancelled()
    assert started == [True]


def test_a_fetch_is_started_once_the_agent_runs_its_handler() -> None:
    async def handler(batch: Sequence[Incoming]) -> None:
        return None

    async def main() -> tuple[bool, bool]:
        fetch = Fetch(_messages(1))
        before = fetch.started
        await fetch.process(handler)
        return before, fetch.started

    assert asyncio.run(main()) == (False, True)


def test_faust_agents_lists_the_scoring_agent_and_its_topics() -> None:
    """What a Faust user runs: ``faust -A stream.worker.faust_app agents``."""
    import os  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    faust = Path(sys.executable).parent / "faust"
    out = subprocess.run(
        [str(faust), "-A", "stream.worker.faust_app", "agents"],
        capture_output=True, text=True, check=True, timeout=120,
        cwd=Path(__file__).resolve().parents[2],
        env={k: v for k, v in os.environ.items() if not k.startswith("ENGAGEMENT_")},
    ).stdout  # fmt: skip
    row = next(line for line in out.splitlines() if "@score" in line)
    assert "clickstream,app-installs,sessions" in row
