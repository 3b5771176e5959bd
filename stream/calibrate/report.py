"""The validity report: Markdown text (printed and written) and PNG charts (matplotlib, Agg)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stream.calibrate.curve import CurvePoint
from stream.calibrate.metrics import AlertStats, Metrics
from stream.calibrate.skill import Interval, SkillVerdict
from stream.calibrate.snapshots import Snapshots
from stream.core.model import ScoringModel

__all__ = [
    "CURVE_CHART",
    "ReportInput",
    "duration_text",
    "render_markdown",
    "write_charts",
    "write_report",
]

CHARTS = ("roc.png", "bands.png", "scores.png", "lead_time.png")
CURVE_CHART = "alert_curve.png"


@dataclass(frozen=True, slots=True)
class ReportInput:
    """Everything the report shows."""

    model: ScoringModel
    model_source: str
    metrics: Metrics
    alerts: AlertStats
    period: str
    horizon_ms: int
    cadence: str
    rows: Snapshots
    keep: np.ndarray
    notes: Sequence[str] = ()
    verdict: SkillVerdict | None = None
    ceiling: Interval | None = None  # gradient boosting on the calibration's features
    curve: tuple[CurvePoint, ...] = ()  # alert trade-off at a few alert-band shares
    alert_sample: tuple[int, int] | None = None  # alerts of (sampled, labelled) customers


def duration_text(millis: int) -> str:
    """Whole days, hours, minutes or seconds as a duration the model file accepts."""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if millis % size == 0:
            return f"{millis // size}{unit}"
    return f"{millis}ms"


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def render_markdown(data: ReportInput, charts: bool = True) -> str:
    """The report as Markdown."""
    m, a = data.metrics, data.alerts
    horizon = duration_text(data.horizon_ms)
    window = duration_text(data.model.window_ms)
    lines = [
        f"# Validity report: {data.model.version}",
        "",
        f"Model `{data.model_source}` (version {data.model.version}), evaluated on "
        f"{data.period}: {m.snapshots} {data.cadence} snapshots, {m.rows} customer-snapshots of "
        f"{m.customers} customers. Label: churns within {horizon} of the snapshot. "
        f"Base churn rate {_pct(m.base_rate)}.",
        "",
        *_no_skill(data),
        "## Ranking",
        "",
        "AUC with its 95% bootstrap interval (customers resampled, 1000 draws).",
        "",
        "| score | AUC | 95% interval |",
        "| --- | ---: | ---: |",
        f"| model score | {m.auc:.3f} | {_span(m.auc_interval)} |",
        f"| naive: events in the last window ({window}) | {m.naive_auc:.3f} "
        f"| {_span(m.naive_interval)} |",
        f"| naive: events in the last 30 days | {m.naive_30d_auc:.3f} "
        f"| {_span(m.naive_30d_interval)} |",
        *_ceiling(data.ceiling),
        f"| margin over the better naive count (or 0.5) | {m.margin:+.3f} | |",
        "",
        "## Bands",
        "",
        "| band | customers | share | churn rate | lift |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {b.band} | {b.rows} | {_pct(b.share)} | {_pct(b.churn_rate)} | {b.lift:.2f}x |"
        for b in m.bands
    ]
    lines += [
        "",
        f"`{m.alert_band}`: precision {_pct(m.precision)} (lift {m.alert_lift:.2f}x the base "
        f"rate), recall {_pct(m.recall)} of the customers who churned within {horizon}.",
        "",
        "## Alerts",
        "",
        "Replayed in event time through the core, as the worker raises them"
        + _alert_sample(data.alert_sample)
        + ".",
        "",
        f"- churners in the period alerted before their churn date (alert within "
        f"{a.lookback_days:g} days before it): {a.alerted_before} of {a.churners} "
        f"({_pct(a.share_alerted)})",
        "- median lead time: "
        + (f"{a.median_lead_days:.1f} days" if a.median_lead_days is not None else "n/a"),
        f"- alerts per retained customer in the period: {a.per_retained:.3f} "
        f"({a.alerts_on_retained} alerts on {a.retained} retained customers; "
        f"{a.alerts} alerts in all)",
    ]
    lines += _curve(data)
    if data.notes:
        lines += ["", "## Notes", "", *[f"- {note}" for note in data.notes]]
    if charts:
        names = [*CHARTS, CURVE_CHART] if data.curve else list(CHARTS)
        lines += ["", "## Charts", ""] + [f"![{c[:-4]}]({c})" for c in names]
    return "\n".join(lines) + "\n"


def _alert_sample(sample: tuple[int, int] | None) -> str:
    if sample is None:
        return ""
    return (f", for a fixed sample of {sample[0]} of the {sample[1]} labelled customers "
            "(by a hash of the id)")  # fmt: skip


def _curve(data: ReportInput) -> list[str]:
    if not data.curve:
        return []
    band = data.metrics.alert_band
    lines = [
        "",
        "## Alert trade-off",
        "",
        f"The same model with `{band}` holding other shares of the training snapshots, "
        "replayed through the core (a fixed sample of at most 5000 labelled customers, "
        "by a hash of the id): churners alerted before their churn date, median lead "
        "time and alerts per retained customer, on the last two training months (where "
        "`--target-alerts-per-customer` chooses) and on the held-out period.",
        "",
        f"| {band} share | threshold | alerted before churn (training / held out) "
        "| median lead, days (held out) | alerts per retained customer (training / held out) |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for p in data.curve:
        lead = p.held_out.median_lead_days
        lines.append(
            f"| {p.share:.2f} | {p.threshold:.2f} | {_pct(p.training.share_alerted)} / "
            f"{_pct(p.held_out.share_alerted)} | {f'{lead:.1f}' if lead is not None else 'n/a'} "
            f"| {p.training.per_retained:.3f} / {p.held_out.per_retained:.3f} |"
        )
    return lines


def _span(interval: Interval) -> str:
    return f"{interval.low:.3f} to {interval.high:.3f}"


def _ceiling(ceiling: Interval | None) -> list[str]:
    if ceiling is None:
        return []
    return [f"| ceiling: gradient boosting on the same features and rows "
            f"(HistGradientBoostingClassifier; not a points score) | {ceiling.value:.3f} "
            f"| {_span(ceiling)} |"]  # fmt: skip


def _no_skill(data: ReportInput) -> list[str]:
    verdict = data.verdict
    if verdict is None or verdict.skill:
        return []
    keep = data.keep
    churners = len({c for c, y, k in zip(data.rows.customer, data.rows.label, keep,
                                         strict=True) if y and k})  # fmt: skip
    return [
        "## No skill: these events do not predict churn on this history",
        "",
        "The score ranks churners no better than a coin (AUC 0.5) by the margin required: "
        + "; ".join(verdict.reasons)
        + ". Its bands and alerts should not be used.",
        "",
        f"What it would need: more churners (the held-out period has {churners}), more "
        "history (longer training and held-out periods), or other events (actions that "
        "change before customers leave: logins, use of key features, support tickets, "
        "billing events).",
        "",
    ]


def write_charts(data: ReportInput, out: Path) -> list[Path]:
    """The report's PNG charts under ``out``."""
    import matplotlib  # noqa: PLC0415 (optional extra)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from sklearn.metrics import roc_curve  # noqa: PLC0415

    out.mkdir(parents=True, exist_ok=True)
    keep = data.keep
    labels = np.asarray(data.rows.label)[keep]
    scores = np.asarray(data.rows.score, dtype=float)[keep]
    naive = np.asarray(data.rows.naive, dtype=float)[keep]
    naive_30d = np.asarray(data.rows.naive_30d, dtype=float)[keep]
    paths = []

    fig, ax = plt.subplots(figsize=(5, 5))
    if labels.min(initial=1) != labels.max(initial=0):
        curves = [(-scores, "model score"), (-naive, "events in last window")]
        if data.model.window_ms != 30 * 86_400_000:
            curves.append((-naive_30d, "events in last 30 days"))
        for risk, name in curves:
            fpr, tpr, _ = roc_curve(labels, risk)
            ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, held-out")
    ax.legend(loc="lower right")
    paths.append(_save(fig, out / CHARTS[0]))

    bands = data.metrics.bands
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar([b.band for b in bands], [100 * b.churn_rate for b in bands], color="tab:red")
    ax.axhline(100 * data.metrics.base_rate, color="black", linestyle="--", label="base rate")
    for index, band in enumerate(bands):
        ax.annotate(
            f"{_pct(band.share)} of customers",
            (index, 100 * band.churn_rate),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set(ylabel="churn rate (%)", title="Churn rate per band, held-out")
    ax.legend()
    ax.tick_params(axis="x", labelsize=8)
    paths.append(_save(fig, out / CHARTS[1]))

    fig, ax = plt.subplots(figsize=(7, 4))
    low, high = (float(v) for v in np.percentile(scores, [0.5, 99.5])) if scores.size else (0, 1)
    edges = np.linspace(low, max(high, low + 1), 40)
    ax.hist(scores[labels == 0], bins=edges.tolist(), alpha=0.6, density=True, label="stayed")
    ax.hist(scores[labels == 1], bins=edges.tolist(), alpha=0.6, density=True, label="churned")
    upper = data.model.bands.score_range(data.metrics.alert_band)[1]
    if upper is not None:
        ax.axvline(upper, color="black", linestyle="--", label=f"{data.metrics.alert_band} top")
    ax.set(xlabel="score", ylabel="density", title="Score at the snapshot, held-out")
    ax.legend()
    paths.append(_save(fig, out / CHARTS[2]))

    fig, ax = plt.subplots(figsize=(7, 4))
    leads = data.alerts.lead_days
    ax.hist(leads, bins=20, color="tab:green")
    ax.set(
        xlabel="days from the alert to the churn date",
        ylabel="churners",
        title=f"Lead time of alerts ({_pct(data.alerts.share_alerted)} of churners alerted)",
    )
    paths.append(_save(fig, out / CHARTS[3]))
    if data.curve:
        paths.append(_curve_chart(data.curve, data.metrics.alert_band, out / CURVE_CHART))
    return paths


def _curve_chart(curve: Sequence[CurvePoint], band: str, path: Path) -> Path:
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(6, 4))
    for period in ("training", "held out"):
        sides = [p.training if period == "training" else p.held_out for p in curve]
        xs = [side.per_retained for side in sides]
        ys = [100 * side.share_alerted for side in sides]
        ax.plot(xs, ys, marker="o", label=period)
        for p, x, y in zip(curve, xs, ys, strict=True):
            ax.annotate(f"{p.share:.2f}", (x, y), fontsize=8, xytext=(3, 3),
                        textcoords="offset points")  # fmt: skip
    ax.set(xlabel="alerts per retained customer", ylabel="churners alerted before churn (%)",
           title=f"Alert trade-off by {band} share")  # fmt: skip
    ax.legend()
    return _save(fig, path)


def _save(fig: object, path: Path) -> Path:
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig.savefig(path, dpi=90, bbox_inches="tight")  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
    return path


def write_report(data: ReportInput, out: Path) -> Path:
    """Write ``report.md`` and the charts under ``out``; return the Markdown's path."""
    write_charts(data, out)
    path = out / "report.md"
    path.write_text(render_markdown(data))
    return path
