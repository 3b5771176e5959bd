"""Broken variants of the commit path, for the mutation test (``test_mutations.py``).

A worker started with this folder on ``PYTHONPATH`` and ``FAULT_MUTATION`` set runs one of
them; the gate-size fault scenario must then find events lost or counted twice:

- ``skip_fingerprint_check``: no event is ever a duplicate (neither a redelivery below the
  partition's watermark nor a re-send with a known fingerprint);
- ``ack_before_commit``: a batch counts as done as soon as it is handed over, so its
  offsets are committed while its store commit is still to come.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any


def _skip_fingerprint_check() -> None:
    from stream.worker.dedup import Seen  # noqa: PLC0415

    Seen.duplicate = lambda self, source, offset, mark: False  # type: ignore[method-assign]


def _ack_before_commit() -> None:
    from stream.worker.processor import BatchReport  # noqa: PLC0415
    from stream.worker.runner import Runner  # noqa: PLC0415

    honest = Runner.run_batch
    running: set[asyncio.Future[Any]] = set()

    async def run_batch(self: Runner, batch: Any) -> BatchReport:
        task = asyncio.ensure_future(honest(self, batch))
        running.add(task)
        task.add_done_callback(running.discard)
        return BatchReport()

    Runner.run_batch = run_batch  # type: ignore[method-assign]


_MUTANTS = {"skip_fingerprint_check": _skip_fingerprint_check,
            "ack_before_commit": _ack_before_commit}  # fmt: skip
_chosen = os.environ.get("FAULT_MUTATION")
if _chosen:
    _MUTANTS[_chosen]()
