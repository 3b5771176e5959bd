"""`engagement calibrate` and `engagement validate` on the simulator's labelled history:
the written model loads and runs in the core, and beats the shipped default on the held-out
months in AUC and in the recall of churn_risk."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.calibrate.fit import thresholds_from_shares
from stream.calibrate.pipeline import takes_longer_window
from stream.calibrate.report import CHARTS
from stream.cli.main import main
from stream.config.model_file import load_model
from tests.profiles import examples

_HISTORY = ["--customers", "700", "--days", "150", "--seed", "11"]


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("history")
    assert main(["simulate", "--history", "--out", str(folder), *_HISTORY]) == 0
    return folder


def _figures(text: str) -> dict[str, float]:
    auc = re.search(r"\| model score \| ([0-9.]+) \|", text)
    naive = re.search(r"\| naive: events in the last window \([0-9a-z]+\) \| ([0-9.]+) \|", text)
    naive30 = re.search(r"\| naive: events in the last 30 days \| ([0-9.]+) \|", text)
    recall = re.search(r"recall ([0-9.]+)%", text)
    alerted = re.search(r"before it\): \d+ of \d+ \(([0-9.]+)%\)", text)
    assert auc and naive and naive30 and recall and alerted, text
    return {"auc": float(auc[1]), "naive": float(naive[1]), "naive30": float(naive30[1]),
            "recall": float(recall[1]),
            "alerted": float(alerted[1])}  # fmt: skip


def test_calibrated_model_beats_the_default_on_held_out_months(
    history: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["--events", str(history / "events.jsonl.gz"), "--labels", str(history / "labels.csv")]
    out = tmp_path / "calibrated.yaml"
    assert main(["calibrate", *data, "--out", str(out), "--version", "sim-cal-1", "--window", "30d",
                 "--report", str(tmp_path / "cal")]) == 0  # fmt: skip
    calibrated = _figures(capsys.readouterr().out)
    assert calibrated["naive30"] == calibrated["naive"]  # a 30d window: the same baseline
    model = load_model(str(out))
    assert model.version == "sim-cal-1"
    assert model.transforms and model.alerts.onboarding_after_ms == 14 * 86_400_000
    assert "# Calibrated by `engagement calibrate`" in out.read_text()

    assert main(["validate", "default", *data, "--report", str(tmp_path / "default")]) == 0
    default = _figures(capsys.readouterr().out)
    for name in ("report.md", *CHARTS):
        assert (tmp_path / "default" / name).stat().st_size > 0
        assert (tmp_path / "cal" / name).stat().st_size > 0

    assert calibrated["auc"] / default["auc"] >= 1.02, (calibrated, default)
    assert calibrated["recall"] / max(default["recall"], 0.1) >= 2, (calibrated, default)
    assert calibrated["alerted"] / max(default["alerted"], 0.1) >= 2, (calibrated, default)

    assert main(["validate", str(out), *data]) == 0  # the written file, as any model
    assert _figures(capsys.readouterr().out) == calibrated


@settings(max_examples=examples(100), deadline=None)
@given(st.lists(st.integers(-400, 400), min_size=20, max_size=300), st.floats(0.05, 0.3))
def test_band_thresholds_follow_the_target_shares(quarters: list[int], share: float) -> None:
    """The lowest band holds its share of the scores, up to one score (ties aside)."""
    values = np.asarray(quarters) / 4
    names = ["churn_risk", "middle", "top"]
    uppers = thresholds_from_shares(values, names, {"churn_risk": share})
    low, mid = uppers["churn_risk"], uppers["middle"]
    assert low is not None and mid is not None and uppers["top"] is None
    assert low < mid
    step = 1 / len(values)
    assert float((values <= low).mean()) >= share - step
    assert float((values < low).mean()) <= share + step


def test_a_tie_between_windows_goes_to_the_longer_one() -> None:
    """Equal later-training AUCs (histories that fit in both windows) keep the longer
    window; a shorter window that ranks clearly better stays."""
    assert takes_longer_window(0.765, 0.765)
    assert takes_longer_window(0.7645, 0.765)
    assert takes_longer_window(0.80, 0.765)
    assert not takes_longer_window(0.76, 0.765)
