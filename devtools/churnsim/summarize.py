"""Write a Markdown summary (README.md) of the data sets under a directory of ``seed<N>/``
folders produced by ``run.sh``: files and sizes, date range, accounts, churn rate, event-type
counts, and the held-out figures of ``analysis.json``.

Hand-written remarks in ``DATA_ROOT/notes.md`` are appended. Development tooling only.
Usage: ``python summarize.py DATA_ROOT``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["main", "render"]

HEADER = """# ChurnSim data sets (generated, not in git)

Made with `devtools/churnsim/run.sh SEED DIR` on branch `churnsim` (ChurnSim from PyPI
`fightchurn==1.2.0`, model `socialnet7`, unchanged parameters except the seed, 3000 initial
customers, 2020-01-01 to 2020-07-01 exclusive). See devtools/churnsim/README.md for the formats,
the churn definition and how ChurnSim decides churn.

Files in each `seed<N>/`:
- `events.csv.gz`: `customer_id,timestamp,type,event_id`, sorted by time, ISO-8601 UTC
  timestamps, unique `event_id` (`s<seed>-<customer>-<n>`).
- `labels.csv`: `customer_id,churned,churn_date,first_seen` (churn_date empty when not churned;
  first_seen = first subscription start).
- `meta.json` (counts), `analysis.json` (analyze.py), `churnsim_conf.yaml`, `churnsim.log`.
"""


def _size(path: Path) -> str:
    return f"{path.stat().st_size / 1e6:.1f} MB" if path.exists() else "missing"


def render(root: Path) -> str:
    parts = [HEADER]
    for d in sorted(root.glob("seed*")):
        meta_path = d / "meta.json"
        if not meta_path.exists():
            continue
        meta: dict[str, Any] = json.loads(meta_path.read_text())
        parts.append(f"\n## {d.name}\n")
        parts.append(
            f"- files: events.csv.gz {_size(d / 'events.csv.gz')}, "
            f"labels.csv {_size(d / 'labels.csv')}\n"
            f"- events from {meta['first_event']} to {meta['last_event']}: "
            f"{meta['events']:,} events\n"
            f"- accounts {meta['accounts']:,}, churned {meta['churned']:,} "
            f"({100 * meta['churn_rate']:.1f}%); channels {meta['channels']}\n"
            f"- generation took {meta['seconds']} s\n"
        )
        parts.append("\n| type | events |\n| --- | ---: |\n")
        for t, n in meta["event_types"].items():
            parts.append(f"| {t} | {n:,} |\n")
        ana_path = d / "analysis.json"
        if ana_path.exists():
            ana: dict[str, Any] = json.loads(ana_path.read_text())
            parts.append(
                f"\nSnapshots (churn within 30 days): train {', '.join(ana['train_snapshots'])}; "
                f"held out {', '.join(ana['test_snapshots'])} ({ana['test_rows']:,} rows, "
                f"churn rate {100 * ana['test_churn_rate']:.1f}%).\n\n"
                "| snapshot | eligible | 30-day churn | naive AUC |\n| --- | ---: | ---: | ---: |\n"
            )
            for s in ana["per_snapshot"]:
                auc = s["naive_auc"]
                parts.append(
                    f"| {s['snapshot']} | {s['eligible']:,} | {100 * s['churn_30d_rate']:.1f}% "
                    f"| {'n/a' if auc is None else f'{auc:.3f}'} |\n"
                )
            parts.append(
                "\n| held-out score | AUC [95% bootstrap] | top 10%: lift / recall "
                "| top 20%: lift / recall |\n"
                "| --- | ---: | ---: | ---: |\n"
            )
            for r in ana["held_out"]:
                t10, t20 = r["top10"], r["top20"]
                ci = r.get("auc_95", ["?", "?"])
                parts.append(
                    f"| {r['score']} | {r['auc']:.3f} [{ci[0]}, {ci[1]}] | {t10['lift']:.2f}x / "
                    f"{100 * t10['recall']:.0f}% | {t20['lift']:.2f}x / "
                    f"{100 * t20['recall']:.0f}% |\n"
                )
    notes = root / "notes.md"
    if notes.exists():
        parts.append("\n" + notes.read_text())
    return "".join(parts)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("root", type=Path)
    args = p.parse_args(argv)
    (args.root / "README.md").write_text(render(args.root))
    print((args.root / "README.md").read_text())


if __name__ == "__main__":
    main()
