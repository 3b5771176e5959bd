"""Where the worker's time goes: py-spy samples of the running worker (idle included),
attributed to categories, plus Redis's own per-command server time (INFO commandstats).

Each sample of the worker's main thread is attributed to the innermost frame that is
not generic event-loop machinery (asyncio, selectors), so asyncio work done on behalf of
redis-py counts as redis-py. Time in C (orjson, hashlib) shows up on the calling line,
which is classified by its source text.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import redis

__all__ = ["classify", "commandstats", "record", "summarize"]

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>.*):(?P<line>\d+)\)$")
_GENERIC = ("asyncio/", "selectors.py", "<frozen", "threading.py", "contextlib.py",
            "functools.py", "typing.py", "<string>", "abc.py", "enum.py", "socket.py")  # fmt: skip
_PACKAGES = (
    ("redis/", "redis-py client (pack, parse, pipeline)"),
    ("prometheus_client/", "prometheus metrics"),
    ("faust/", "faust + mode (stream, acks, fetcher)"),
    ("mode/", "faust + mode (stream, acks, fetcher)"),
    ("aiokafka/", "aiokafka"),
    ("kafka/", "aiokafka"),
    ("stream/core/decode.py", "decode + validate"),
    ("stream/core/", "scoring core (window, model, alerts)"),
    ("stream/adapters/codec.py", "alert JSON"),
    ("stream/adapters/redis_store.py", "store (state encoding, commands)"),
    ("stream/adapters/redis_fields.py", "store (state encoding, commands)"),
    ("stream/adapters/redis_commit.py", "store (state encoding, commands)"),
    ("stream/adapters/redis_reads.py", "store (state encoding, commands)"),
    ("stream/adapters/redis_indexes.py", "store (state encoding, commands)"),
    ("stream/worker/", "worker glue (batch, outcomes)"),
    ("stream/adapters/", "worker glue (batch, outcomes)"),
)
# Frames below which only the event loop runs: a sample whose innermost owner is one of
# these is a loop callback (future done, task step) with no other owner in the stack.
_ENTRY_POINTS = ("Worker.execute_from_commandline", "_run_module_as_main", "<module>", "main")
_REPO = Path(__file__).resolve().parents[2]


@cache
def _source(file: str, line: int) -> str:
    path = _REPO / file
    try:
        return path.read_text().splitlines()[line - 1]
    except (OSError, IndexError):
        return ""


def classify(frames: list[str]) -> str:
    """The category of one sampled stack (root first, leaf last)."""
    if frames and frames[-1].startswith(("EpollSelector.select", "select ")):
        return "idle (event loop waiting)"
    for frame in reversed(frames):
        match = _FRAME.match(frame)
        if match is None:
            continue
        file, func = match["file"], match["func"]
        if file.startswith(_GENERIC):
            continue
        if func in _ENTRY_POINTS:
            break
        if file.startswith("stream/"):
            text = _source(file, int(match["line"]))
            if "orjson." in text:
                return "json (orjson)"
            if func in ("fingerprint", "alert_id") or "hashlib." in text:
                return "hashing (fingerprints, alert ids)"
            if "fromisoformat" in text:
                return "timestamp parsing"
        for prefix, category in _PACKAGES:
            if file.startswith(prefix):
                return category
        return f"other ({file.split('/')[0]})"
    return "asyncio scheduling"


def record(pid: int, seconds: float, out: Path, rate: int = 200) -> Path:
    """Sample the process with py-spy (idle frames and threads included) into ``out``."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    command = [spy, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", str(rate),
               "--idle", "--threads", "-f", "raw", "-o", str(out)]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True)
    return out


def summarize(path: Path, top: int = 25) -> dict[str, Any]:
    """Shares of the main thread's samples per category, the busiest functions, and how
    busy the other threads were."""
    main: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    others: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        frames = stack.split(";")
        thread, frames = frames[0], frames[1:]
        count = int(count_text)
        if "MainThread" not in thread:
            idle = frames[-1].startswith("EpollSelector.select")
            others["idle" if idle else "busy"] += count
            continue
        main[classify(frames)] += count
        functions[_FRAME.sub(r"\g<func> (\g<file>)", frames[-1])] += count
    total = sum(main.values()) or 1
    other_total = sum(others.values()) or 1
    return {
        "samples": sum(main.values()),
        "main_thread_share": {k: round(v / total, 4) for k, v in main.most_common()},
        "busiest_leaf_functions": {k: round(v / total, 4) for k, v in functions.most_common(top)},
        "other_threads_busy_share": round(others["busy"] / other_total, 4),
    }


def commandstats(client: redis.Redis, events: int) -> dict[str, Any]:
    """Redis server time and calls per command since the last ``CONFIG RESETSTAT``."""
    stats = client.info("commandstats")
    rows = {}
    for key, value in stats.items():
        name = key.removeprefix("cmdstat_")
        rows[name] = {
            "calls": int(value["calls"]),
            "usec_per_call": float(value["usec_per_call"]),
            "calls_per_event": round(int(value["calls"]) / events, 3) if events else None,
            "server_us_per_event": round(int(value["usec"]) / events, 2) if events else None,
        }
    return dict(sorted(rows.items(), key=lambda kv: -(kv[1]["server_us_per_event"] or 0)))
