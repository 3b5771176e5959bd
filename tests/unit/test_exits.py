"""The worker's exit code contract (``stream.worker.exits``)."""

from __future__ import annotations

import pytest

from stream.errors import ConfigError, EngagementError
from stream.worker.exits import (
    EXIT_CRASHED,
    EXIT_OK,
    EXIT_UNFINISHED,
    UnfinishedBatchError,
    worker_exit_code,
)


@pytest.mark.parametrize(
    ("crash", "status", "code"),
    [
        (None, 0, EXIT_OK),
        (None, None, EXIT_OK),
        (UnfinishedBatchError("batch"), 1, EXIT_UNFINISHED),
        (RuntimeError("bug"), 1, EXIT_CRASHED),
        (ConfigError("env", "KEY", "bad"), 1, EXIT_CRASHED),
        (None, "text", EXIT_CRASHED),
        (None, 3, 3),
    ],
)
def test_exit_codes(crash: BaseException | None, status: object, code: int) -> None:
    assert worker_exit_code(crash, status) == code


def test_the_unfinished_batch_is_an_engagement_error() -> None:
    assert issubclass(UnfinishedBatchError, EngagementError)
    assert EXIT_UNFINISHED == 70
