"""One error root, errors a person can act on: one line naming what was tried and what failed."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from devtools.localstack import StackError
from stream.config.settings import Settings
from stream.core.bands import Band, BandScale
from stream.core.decode import Rejection, decode_event
from stream.errors import (
    ConfigError,
    EngagementError,
    InvalidModelError,
    ProcessingError,
    ReplayError,
    UnreachableError,
)
from tests.factories import DAY_MS, NOW_MS, default_model

ROOT = Path(__file__).resolve().parents[2]


def test_every_kind_of_error_has_the_one_root() -> None:
    """Each purposeful error, the dev tools' included, is an EngagementError."""
    for kind in (ConfigError, InvalidModelError, UnreachableError, ReplayError, ProcessingError,
                 StackError):  # fmt: skip
        assert issubclass(kind, EngagementError), kind


def test_an_inconsistent_band_scale_is_an_invalid_model_and_still_a_value_error() -> None:
    """The core's own checks raise InvalidModelError (a ValueError, for older callers)."""
    with pytest.raises(InvalidModelError, match="increase"):
        BandScale((Band("a", 10), Band("b", 5), Band("c", None)))
    assert issubclass(InvalidModelError, ValueError)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    "command", [["bands"], ["top"], ["score", "c1"], ["score", "c1", "--json"]]
)
def test_commands_against_an_unreachable_redis_print_one_line(command: list[str]) -> None:
    """No traceback: one line naming Redis, its address and the failure; exit status 2."""
    port = _closed_port()
    env = {"PATH": "/usr/bin:/bin", "ENGAGEMENT_REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    done = subprocess.run(
        [sys.executable, "-m", "stream.cli.main", *command],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: cannot reach Redis at redis://127.0.0.1:{port}/0: ")
    assert "Traceback" not in done.stderr


def test_a_misspelt_variable_is_warned_about_with_a_suggestion(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """ENGAGEMENT_SWEEP_INTERVALL is not silently ignored."""
    with caplog.at_level(logging.WARNING, logger="stream.config"):
        Settings.from_env({"ENGAGEMENT_SWEEP_INTERVALL": "2s", "ENGAGEMENT_MODEL": "demo"})
    (record,) = caplog.records
    assert "ENGAGEMENT_SWEEP_INTERVALL is not a setting" in record.getMessage()
    assert "did you mean ENGAGEMENT_SWEEP_INTERVAL?" in record.getMessage()


def test_known_variables_and_secret_files_raise_no_warning(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """Every real setting, including X_FILE secrets and the settings file, is known."""
    secret = tmp_path / "token"
    secret.write_text("a-long-enough-token-1234\n")
    settings_file = tmp_path / "settings.yaml"
    settings_file.write_text("log_level: info\n")
    env = {"ENGAGEMENT_API_TOKEN_FILE": str(secret), "ENGAGEMENT_SWEEP_INTERVAL": "2s",
           "ENGAGEMENT_SETTINGS_FILE": str(settings_file)}  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="stream.config"):
        Settings.from_env(env)
    assert caplog.records == []


def test_a_relation_broken_in_the_settings_file_names_the_file(tmp_path: Path) -> None:
    """A value from the settings file is reported against that file, not 'environment'."""
    settings_file = tmp_path / "settings.yaml"
    settings_file.write_text("alert_bound: 1s\n")
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"ENGAGEMENT_SETTINGS_FILE": str(settings_file)})
    assert caught.value.source == str(settings_file)
    assert caught.value.key == "alert_bound"
    assert "must be shorter than ENGAGEMENT_ALERT_BOUND" in caught.value.problem


def _decode_timestamp(value: object) -> Rejection:
    raw = orjson.dumps({"customer_id": "c1", "type": "click", "timestamp": value})
    got = decode_event(raw, key=b"c1", topic_role="clickstream", model=default_model(),
                       now_ms=NOW_MS, fallback_id="clickstream/0/1")  # fmt: skip
    assert isinstance(got, Rejection)
    return got


def test_a_boolean_timestamp_is_named_as_such_not_as_missing() -> None:
    """``"timestamp": true`` says what is wrong with it."""
    got = _decode_timestamp(True)
    assert got.reason == "invalid_timestamp"
    assert "timestamp is true" in got.detail and "missing" not in got.detail


def test_epoch_seconds_get_a_hint_about_the_unit() -> None:
    """A timestamp in epoch seconds is too old as milliseconds, and the detail says why."""
    seconds = (NOW_MS - DAY_MS) // 1000
    got = _decode_timestamp(seconds)
    assert got.reason == "too_old"
    assert "looks like epoch seconds" in got.detail and str(seconds * 1000) in got.detail


def test_genuinely_old_milliseconds_get_no_unit_hint() -> None:
    """Only values in the epoch-seconds range get the hint."""
    got = _decode_timestamp(NOW_MS - 90 * DAY_MS)
    assert got.reason == "too_old" and "epoch seconds" not in got.detail
