"""What every contender process shares: its configuration, progress reporting, scoring."""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass

import orjson

from stream.config.model_file import load_model
from stream.core.decode import decode_event
from stream.core.events import Event
from stream.core.model import ScoringModel, is_counter

__all__ = ["ContenderConfig", "Reporter", "Scorer"]


@dataclass(frozen=True, slots=True)
class ContenderConfig:
    """Where to read, as whom, how much to expect; passed as JSON in ``argv[1]``."""

    bootstrap: str
    topics: dict[str, str]  # topic name -> role
    group: str
    expect: int
    workdir: str = ""
    redis_url: str = ""
    redis_prefix: str = ""

    def to_json(self) -> str:
        return orjson.dumps(asdict(self)).decode()

    @classmethod
    def from_argv(cls, argv: list[str] | None = None) -> ContenderConfig:
        args = sys.argv if argv is None else argv
        return cls(**orjson.loads(args[1]))


class Reporter:
    """Prints ``progress <count>`` lines, at most every 20 ms and at the end, for the harness."""

    def __init__(self, expect: int, every_s: float = 0.02) -> None:
        self.expect = expect
        self.every_s = every_s
        self.count = 0
        self._printed_at = 0.0

    @property
    def done(self) -> bool:
        return self.count >= self.expect

    def add(self, n: int = 1) -> None:
        self.count += n
        if self.count & 255 and n == 1 and not self.done:
            return
        now = time.monotonic()
        if now - self._printed_at >= self.every_s or self.done:
            self._printed_at = now
            sys.stdout.write(f"progress {self.count}\n")
            sys.stdout.flush()


class Scorer:
    """Decodes and validates a message with the project's pure core and sums its points."""

    def __init__(self, model: ScoringModel | None = None) -> None:
        self.model = model or load_model("default")

    def event(self, raw: bytes, key: bytes | None, role: str, offset: int) -> Event | None:
        outcome = decode_event(
            raw, key=key, topic_role=role, model=self.model,
            now_ms=int(time.time() * 1000), fallback_id=f"{role}/{offset}",
        )  # fmt: skip
        return outcome if isinstance(outcome, Event) else None

    def points_cp(self, event: Event) -> int:
        contributions = self.model.contributions(event)
        return sum(v for k, v in contributions.items() if not is_counter(k))
