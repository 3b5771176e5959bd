"""Benchmark of the backfill's replay: decode + event-time replay through the core, no Redis.

    .venv/bin/python devtools/backfill_bench.py [--customers 2000] [--days 120] [--model default]
        [--events FILE...]

Without ``--events`` the simulator's labelled history is generated in memory first (not
timed). Prints events per second of decoding, of the replay, and of both together.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from devtools.sim.event_files import HistorySpec, history_records, make_history
from stream.config.model_file import load_model
from stream.event_files.replay import Replay, decode_records
from stream.event_files.sources import RawRecord, read_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--rate", type=float, default=10.0, help="simulated events per day")
    parser.add_argument("--model", default="default")
    parser.add_argument("--step", default=None, type=int, help="replay step in ms")
    parser.add_argument("--events", nargs="*", type=Path, default=[])
    args = parser.parse_args()
    model = load_model(args.model)
    if args.events:
        records: list[RawRecord] = [r for path in args.events for r in read_file(path)]
    else:
        customers, events = make_history(
            HistorySpec(customers=args.customers, days=args.days, base_rate=args.rate)
        )
        records = list(history_records(customers, events))
    started = time.process_time()
    decoded, summary = decode_records(records, model, now_ms=int(time.time() * 1000))
    decode_s = time.process_time() - started
    started = time.process_time()
    replay = Replay(model, args.step)
    replay.run(decoded, [decoded[-1].timestamp_ms + 1])
    replay_s = time.process_time() - started
    total = len(decoded)
    print(f"{total} events of {len(replay.states)} customers ({summary.rejected.total()} rejected)")
    print(f"decode  {decode_s:6.2f} CPU s  {total / decode_s:>10,.0f} events/s")
    print(f"replay  {replay_s:6.2f} CPU s  {total / replay_s:>10,.0f} events/s")
    both = decode_s + replay_s
    print(f"both    {both:6.2f} CPU s  {total / both:>10,.0f} events/s")


if __name__ == "__main__":
    main()
