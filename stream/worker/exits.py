"""The worker's exit status: how a stop or a crash becomes the process's exit code.

0: stopped (SIGTERM, SIGINT) with the in-flight batch finished and committed.
1: crashed (an unexpected error; Faust logs it as the crash reason).
2: a setting, argument or credential is wrong (``engagement`` prints one ``error:`` line).
70: stopped, but the in-flight batch did not finish within ``ENGAGEMENT_SHUTDOWN_GRACE``;
    its offsets were not committed, so it is redelivered.

Failures reach the exit code through mode's crash path: the fetch loop crashes the app with
an ``UnfinishedBatchError``, mode stops every service as usual and re-raises the crash
reason when the loop closes, and ``worker_exit_code`` maps it here. Nothing calls
``os._exit``.
"""

from __future__ import annotations

from typing import Final

from stream.errors import EngagementError

__all__ = [
    "EXIT_CONFIG",
    "EXIT_CRASHED",
    "EXIT_OK",
    "EXIT_UNFINISHED",
    "UnfinishedBatchError",
    "worker_exit_code",
]

EXIT_OK: Final = 0
EXIT_CRASHED: Final = 1
EXIT_CONFIG: Final = 2
EXIT_UNFINISHED: Final = 70


class UnfinishedBatchError(EngagementError):
    """The in-flight batch did not finish within the grace period at a stop; its offsets
    were not committed (it is redelivered)."""


def worker_exit_code(crash_reason: BaseException | None, status: object) -> int:
    """The exit code for a worker that stopped with ``crash_reason`` (mode's, or None)
    and ``status`` (the ``SystemExit`` code mode chose)."""
    if isinstance(crash_reason, UnfinishedBatchError):
        return EXIT_UNFINISHED
    if crash_reason is not None:
        return EXIT_CRASHED
    if status is None:
        return EXIT_OK
    return status if isinstance(status, int) else EXIT_CRASHED
