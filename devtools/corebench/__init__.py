"""Micro-benchmark of the pure core's per-event cost (``python -m devtools.corebench``).

Streams a synthetic customer population through ``advance`` one event per call, carrying
each customer's state from call to call (history and rule gates grow as they would in the
worker), then encodes and decodes each state with the Redis codec. Prints microseconds
per event for the core alone and with the codec. To compare two trees in one run, run it
twice with different ``PYTHONPATH`` values (see README, "Score history").
"""

from __future__ import annotations

import inspect
import random
import time
from typing import Any

from stream.adapters import redis_store as store_module
from stream.config.model_file import load_model
from stream.core.customer import CustomerState, advance
from stream.core.events import Event

__all__ = ["run"]

DAY_MS = 86_400_000
TYPES = ["page_view", "click", "feature_used", "conversion", "app_open", "like"]


def run(events: int = 60_000, customers: int = 500, seed: int = 7) -> dict[str, float]:
    """Microseconds per event: ``core`` (advance) and ``core+codec`` (plus encode/decode)."""
    model = load_model("default")
    rng = random.Random(seed)
    start = 1_790_000_000_000
    span = 120 * DAY_MS
    stream = sorted(
        (start + rng.randrange(span), f"c{rng.randrange(customers)}", rng.choice(TYPES), i)
        for i in range(events)
    )
    # An older tree's codec has no bucket_ms parameter; the same call works on both.
    extra: tuple[Any, ...] = ()
    state_fields = getattr(store_module, "state_fields", None) or _older("state_fields")
    state_from_fields = getattr(store_module, "state_from_fields", None) or _older(
        "state_from_fields"
    )
    if "bucket_ms" in inspect.signature(state_fields).parameters:
        extra = (model.bucket_ms,)
    states: dict[str, CustomerState] = {}
    core = codec = 0.0
    for at, customer, kind, i in stream:
        event = Event(f"e{i}", customer, kind, at, {})
        state = states.get(customer, CustomerState())
        t0 = time.perf_counter()
        result = advance(model, customer, state, [event], at)
        t1 = time.perf_counter()
        fields = state_fields(result.state, result.breakdown, model.version, 0, *extra)
        stored: dict[str, bytes | None] = {
            k: v.encode() if isinstance(v, str) else v for k, v in fields.items()
        }
        states[customer] = state_from_fields(stored)
        t2 = time.perf_counter()
        core += t1 - t0
        codec += t2 - t1
    return {"core_us": core / events * 1e6, "core_codec_us": (core + codec) / events * 1e6}


def _older(name: str) -> Any:
    """The codec function of a tree from before the store owned its encoding."""
    import importlib  # noqa: PLC0415

    return getattr(importlib.import_module("stream.adapters.codec"), name)
