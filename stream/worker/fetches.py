"""One fetch of the input topics as the scoring agent receives it, and the channel it
travels on.

The transport driver (``stream.worker.fetch``) puts one ``Fetch`` per fetch on the app's
``FetchChannel``; the scoring agent (``stream.worker.app``, listed in ``app.agents``)
iterates the channel as any Faust agent iterates its stream, and calls ``Fetch.process``
with its batch handler. The driver waits on ``Fetch.done`` before it records the fetch's
offsets, so offsets are committed only after the handler (the Redis commit and the alert
publish) has returned. At a revoke past its wait, ``abandon`` cancels the handler (or the
fetch, if the agent has not taken it yet), and the fetch stays uncommitted. Faust suspends
and clears the agents' queues when a rebalance begins (flow control), so a fetch the agent
has not taken by then is abandoned at once; the agent skips an abandoned fetch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust

from stream.ports import Incoming
from stream.worker.batching import BatchEnd
from stream.worker.stages import StageObserver, unobserved

__all__ = ["BatchHandler", "Fetch", "FetchChannel", "FetchOptions", "channel_of", "fetch_channel"]

BatchHandler = Callable[[Sequence[Incoming]], Awaitable[None]]


def _unobserved(_end: BatchEnd) -> None:
    return None


@dataclass(frozen=True, slots=True)
class FetchOptions:
    """How fetches become batches, and how long a batch may delay a revoke or a stop."""

    batch_max: int = 2000
    batch_within_s: float = 0.05
    grace_s: float = 30.0
    revoke_wait_s: float = 30.0
    commit_interval_s: float = 1.0
    #: told why each batch stopped growing (the worker counts it in a metric)
    observe: Callable[[BatchEnd], None] = _unobserved
    #: told the seconds each message spent in Kafka and waiting for its batch, and each
    #: offset commit's (``stream.worker.stages``)
    stage: StageObserver = unobserved


@dataclass(eq=False, slots=True)
class Fetch:
    """One fetch (at most ``batch_max`` messages, each partition's in offset order)."""

    messages: Sequence[Incoming]
    #: done once the handler returned (result None), failed (its exception), or the
    #: fetch was abandoned (cancelled)
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    handling: asyncio.Future[None] | None = None

    async def process(self, handler: BatchHandler) -> None:
        """Run ``handler`` on the messages (the agent calls this) and settle ``done``.

        The handler runs in a task of its own: stopping the agent does not interrupt it
        (the driver decides, within the grace period, whether it finishes)."""
        if self.done.done():  # abandoned before the agent took it
            return
        task = asyncio.ensure_future(handler(self.messages))
        self.handling = task
        task.add_done_callback(self._settle)
        await asyncio.wait({task})

    @property
    def started(self) -> bool:
        """Whether the agent has begun the handler (once begun, only it settles ``done``)."""
        return self.handling is not None

    def abandon(self) -> None:
        """Give the fetch up uncommitted: cancel its handler, or the fetch if not begun."""
        if self.handling is not None:
            self.handling.cancel()
        elif not self.done.done():
            self.done.cancel()

    def _settle(self, task: asyncio.Future[None]) -> None:
        if self.done.done():
            return
        if task.cancelled():
            self.done.cancel()
        elif (error := task.exception()) is not None:
            self.done.set_exception(error)
        else:
            self.done.set_result(None)


class FetchChannel(faust.Channel[Fetch]):
    """The in-memory channel that carries fetches from the driver to the scoring agent;
    it names the input topics it carries (``faust agents`` shows them)."""

    topics: tuple[str, ...] = ()
    options: FetchOptions = FetchOptions()

    def get_topic_name(self) -> str:
        return ",".join(self.topics) or super().get_topic_name()

    async def hand_over(self, fetch: Fetch) -> None:
        """Put ``fetch`` before the agent (exactly one agent actor must be iterating)."""
        if self.subscriber_count != 1:
            raise RuntimeError(
                f"{self.subscriber_count} agent actors iterate the fetch channel; need 1"
            )
        await self.put(fetch)  # type: ignore[arg-type]  # a Fetch, not an Event: no ack


def fetch_channel(app: faust.App, topics: Sequence[str], options: FetchOptions) -> FetchChannel:
    """The app's fetch channel for ``topics``."""
    channel = FetchChannel(app)
    channel.topics = tuple(topics)
    channel.options = options
    return channel


def channel_of(app: Any) -> FetchChannel:
    """The fetch channel of the app's scoring agent (the one agent on a ``FetchChannel``)."""
    found = [agent.channel for agent in app.agents.values()
             if isinstance(agent.channel, FetchChannel)]  # fmt: skip
    if len(found) != 1:
        raise RuntimeError(f"{len(found)} agents consume fetches in app {app.conf.id!r}; need 1")
    return found[0]
