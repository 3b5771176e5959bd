"""Micro-benchmark of the pure core's per-event cost (``python -m devtools.corebench``).

Streams a synthetic customer population through ``advance`` one event per call, carrying
each customer's state from call to call (history and rule gates grow as they would in the
worker), then encodes and decodes each state with the Redis codec. Prints microseconds
per event:

- ``core_us``: ``advance`` on the state just decoded from the codec (a cache miss);
- ``core_codec_us``: ``core_us`` plus the encode and decode;
- ``encode_us`` / ``decode_us``: the store's ``state_fields`` / ``state_from_fields``;
- ``cached_us``: ``advance`` on the state the previous call returned (the worker's cache);
- ``decode_event_us``: ``decode_event`` on the benchmark's native JSON messages.

``compare`` runs it once per kernel (``stream.core.kernel``: the pure Python, and the
compiled one when it is built), alternating them ``rounds`` times, and reports each part's
median per kernel and the ratio python/rust; ``python -m devtools.corebench`` prints that.
Only the parts the compiled kernel implements differ between the two (today the state
codec, ``encode_us`` and ``decode_us``, the running totals of a decoded state, which the
worker builds when it loads a customer and which are counted in ``decode_us``, and
``decode_event``'s fast path, ``decode_event_us``); ``advance`` itself runs the same Python
code in both (``core_us`` is lower with the compiled kernel because the state arrives with
its running totals; ``cached_us`` is the same code on the same input).

To compare two trees in one run, run ``run`` alternately with each tree first on
``PYTHONPATH`` (see CHANGELOG.md, 0.2.0); it only uses calls both trees have.
"""

from __future__ import annotations

import inspect
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from stream.adapters import redis_fields as store_module
from stream.config.model_file import load_model
from stream.core.customer import CustomerState, advance
from stream.core.decode import decode_event
from stream.core.events import Event

__all__ = ["compare", "run"]

DAY_MS = 86_400_000
TYPES = ["page_view", "click", "feature_used", "conversion", "app_open", "like"]


def run(
    events: int = 60_000, customers: int = 500, seed: int = 7, kernel_name: str | None = None
) -> dict[str, float]:
    """Microseconds per event of each part (see the module doc), with the state codec of
    the kernel ``kernel_name`` (None: the store module's own functions)."""
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
    if kernel_name is not None:
        state_fields, state_from_fields = _kernel_codec(kernel_name, model)
    states: dict[str, CustomerState] = {}
    cached: dict[str, CustomerState] = {}
    core = encode = decode = warm = 0.0
    clock = time.perf_counter
    for at, customer, kind, i in stream:
        event = Event(f"e{i}", customer, kind, at, {})
        state = states.get(customer, CustomerState())
        t0 = clock()
        result = advance(model, customer, state, [event], at)
        t1 = clock()
        fields = state_fields(result.state, result.breakdown, model.version, 0, *extra)
        t2 = clock()
        stored: dict[str, bytes | None] = {
            k: v.encode() if isinstance(v, str) else v for k, v in fields.items()
        }
        t3 = clock()
        states[customer] = state_from_fields(stored)
        t4 = clock()
        kept = cached.get(customer, CustomerState())
        t5 = clock()
        cached[customer] = advance(model, customer, kept, [event], at).state
        t6 = clock()
        core += t1 - t0
        encode += t2 - t1
        decode += t4 - t3
        warm += t6 - t5
    per = 1e6 / events
    return {
        "core_us": core * per,
        "core_codec_us": (core + encode + decode) * per,
        "encode_us": encode * per,
        "decode_us": decode * per,
        "cached_us": warm * per,
        "decode_event_us": _decode_events(model, min(events, 20_000), kernel_name),
    }


def _kernel_codec(name: str, model: Any) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """``state_fields`` and ``state_from_fields`` with the codec of one kernel; with the
    compiled one, the decode also builds the state's running totals, as the worker's load
    does (``kernel.running_warmer``), so ``core_us`` is then ``advance`` on a warmed state."""
    from stream.adapters.redis_fields import STATE_FIELDS, state_codec  # noqa: PLC0415
    from stream.core import kernel  # noqa: PLC0415

    loaded = kernel.load(name)
    codec = state_codec(loaded)
    warm = kernel.running_warmer(model, loaded)

    def fields(*args: Any) -> dict[str, Any]:
        return dict(zip(STATE_FIELDS, codec.state_values(*args), strict=True))

    def decode(raw: Any) -> Any:
        state = codec.state_from_fields(raw)
        if warm is not None:
            warm(state)
        return state

    return fields, decode


def compare(rounds: int = 3, events: int = 60_000) -> dict[str, Any]:
    """Each part's median over ``rounds`` alternating runs, per kernel, and python/rust."""
    from stream.core import kernel  # noqa: PLC0415

    names = ["python"] + (["rust"] if kernel.load("auto").name == "rust" else [])
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for _ in range(rounds):
        for name in names:
            runs[name].append(run(events=events, kernel_name=name))
    medians = {
        name: {part: round(statistics.median(r[part] for r in got), 2) for part in got[0]}
        for name, got in runs.items()
    }
    report: dict[str, Any] = {"kernels": medians, "rounds": rounds, "events": events}
    if "rust" in medians:
        python, rust = medians["python"], medians["rust"]
        report["python_over_rust"] = {
            part: round(python[part] / rust[part], 2) for part in python if rust[part]
        }
    return report


def _decode_events(model: Any, count: int, kernel_name: str | None = None) -> float:
    """Microseconds per ``decode_event`` call on the ``make bench`` data set's messages
    (with the compiled kernel: its fast path first, as the worker calls it)."""
    from devtools.bench.dataset import records  # noqa: PLC0415
    from stream.config.settings import TopicNames  # noqa: PLC0415
    from stream.core import kernel  # noqa: PLC0415
    from stream.core.decode import DecodeLimits  # noqa: PLC0415

    now_ms = 1_795_000_000_000
    messages = list(records(500, count, now_ms=now_ms))
    roles = set(TopicNames().inputs.values())
    assert all(m.role in roles for m in messages)
    clock = time.perf_counter
    fast = None
    if kernel_name is not None:
        fast = kernel.fast_decoder(model, DecodeLimits(), kernel.load(kernel_name))
    t0 = clock()
    for message in messages:
        if fast is not None and fast.decode(message.value, message.key, message.role, now_ms,
                                            "x") is not None:  # fmt: skip
            continue
        decode_event(message.value, key=message.key, topic_role=message.role, model=model,
                     now_ms=now_ms, fallback_id="x")  # fmt: skip
    return (clock() - t0) / count * 1e6


def _older(name: str) -> Any:
    """The codec function of a tree from before the store owned its encoding."""
    import importlib  # noqa: PLC0415

    return getattr(importlib.import_module("stream.adapters.codec"), name)
