"""Faust's start-up without its fixed wait for late table declarations.

Faust's table manager sleeps one second before it registers the tables' channels, in case
more tables are declared while the app starts; only then does the conductor subscribe and
the consumer join its group. The worker declares no tables (its state is in Redis), so
that second is pure delay on every start and restart. This table manager registers at once.
The Faust internals it relies on are pinned by ``faust-streaming==0.15.3`` and checked by
``tests/unit/test_startup.py``.
"""

from __future__ import annotations

from faust.tables import TableManager

__all__ = ["PromptTableManager"]


class PromptTableManager(TableManager):
    """Faust's table manager, minus the one-second wait at start."""

    async def on_start(self) -> None:
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()
