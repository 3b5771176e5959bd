"""Choosing the per-event kernel: ENGAGEMENT_KERNEL, the fallback, and its info metric."""

from __future__ import annotations

import sys

import pytest

from stream.adapters.metrics import Metrics
from stream.config.errors import ConfigError
from stream.config.settings import Settings
from stream.core import kernel


@pytest.fixture
def not_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiled kernel as on a machine without Rust: its import fails."""
    monkeypatch.setitem(sys.modules, kernel.MODULE, None)


def test_python_never_loads_the_compiled_kernel() -> None:
    loaded = kernel.load("python")
    assert (loaded.name, loaded.native) == ("python", None)


@pytest.mark.usefixtures("not_built")
def test_auto_falls_back_to_python_when_not_built() -> None:
    loaded = kernel.load("auto")
    assert (loaded.name, loaded.native) == ("python", None)
    assert "not built" in loaded.reason


@pytest.mark.usefixtures("not_built")
def test_rust_fails_naming_the_fix_when_not_built() -> None:
    with pytest.raises(kernel.KernelUnavailableError, match="make install"):
        kernel.load("rust")


def test_auto_and_rust_load_the_compiled_kernel_when_built() -> None:
    native = pytest.importorskip(kernel.MODULE, reason="the compiled kernel is not built")
    for choice in ("auto", "rust"):
        loaded = kernel.load(choice)
        assert (loaded.name, loaded.native) == ("rust", native)


def test_an_unknown_choice_is_refused() -> None:
    with pytest.raises(kernel.KernelUnavailableError, match="'fast' is not one of"):
        kernel.load("fast")


def test_use_sets_the_kernel_in_force(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernel, "_active", None)
    assert kernel.active() == kernel.load("auto")
    assert kernel.use("python").name == "python"
    assert kernel.active().name == "python"


def test_the_setting_is_read_and_checked() -> None:
    assert Settings.from_env({}).kernel == "auto"
    assert Settings.from_env({"ENGAGEMENT_KERNEL": "Python"}).kernel == "python"
    with pytest.raises(ConfigError, match="ENGAGEMENT_KERNEL"):
        Settings.from_env({"ENGAGEMENT_KERNEL": "c"})


def test_the_info_metric_names_the_kernel() -> None:
    metrics = Metrics()
    metrics.kernel.info({"kernel": "rust"})
    assert b'engagement_kernel_info{kernel="rust"} 1.0' in metrics.render()
