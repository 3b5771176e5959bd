"""Hostile input: malformed messages of every kind an attacker or a broken producer sends."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import orjson

__all__ = ["HOSTILE_KINDS", "hostile_messages"]

Hostile = tuple[str, bytes | None, bytes]  # (topic role, key, value)
_YEAR_3000_MS = 32_503_680_000_000
# Ids no customer can have: control characters, invisible format characters (bidi
# overrides, isolates and marks, zero-width space: spoofing), empty, too long. (Any other
# Unicode text, spaces and braces included, is a valid id; see docs/reference/input.md.)
_ODD_IDS = ["a\x00b", "tab\there", "new\nline", "", "x" * 5000, "x" * 129, "del\x7f",
            "esc\x1b[31m", "bell\x07", "invoice\u202etxt.exe", "admin\u2066x\u2069",
            "c\u200f1", "zero\u200bwidth", "bom\ufeff"]  # fmt: skip


def _doc(rng: random.Random, customer: str, now_ms: int, **changes: Any) -> dict[str, Any]:
    doc = {"event_id": f"h{rng.getrandbits(48):x}", "customer_id": customer,
           "type": "page_view", "timestamp": now_ms - rng.randrange(3_600_000)}  # fmt: skip
    doc.update(changes)
    return doc


def _random_bytes(rng: random.Random, c: str, now: int) -> Hostile:
    return "clickstream", c.encode(), rng.randbytes(rng.randrange(1, 2000))


def _truncated(rng: random.Random, c: str, now: int) -> Hostile:
    raw = orjson.dumps(_doc(rng, c, now))
    return "clickstream", c.encode(), raw[: rng.randrange(1, len(raw) - 1)]


def _deeply_nested(rng: random.Random, c: str, now: int) -> Hostile:
    depth = rng.randrange(1100, 20_000)
    return "clickstream", c.encode(), b'{"a":' * depth + b"1" + b"}" * depth


def _nested_properties(rng: random.Random, c: str, now: int) -> Hostile:
    raw = orjson.dumps(_doc(rng, c, now, properties={}))
    depth = rng.randrange(1100, 5000)
    nested = b'{"p":' * depth + b"0" + b"}" * depth
    return "clickstream", c.encode(), raw.replace(b'"properties":{}', b'"properties":' + nested)


def _huge_string(rng: random.Random, c: str, now: int) -> Hostile:
    blob = "z" * rng.randrange(65_600, 150_000)
    return "clickstream", c.encode(), orjson.dumps(_doc(rng, c, now, note=blob))


def _huge_array(rng: random.Random, c: str, now: int) -> Hostile:
    field = rng.choice(["event_id", "timestamp", "customer_id", "type", "properties"])
    return "clickstream", c.encode(), orjson.dumps(_doc(rng, c, now, **{field: [0] * 5000}))


def _wrong_types(rng: random.Random, c: str, now: int) -> Hostile:
    change = rng.choice([{"customer_id": 12345}, {"type": 7}, {"timestamp": "yesterday"},
                         {"timestamp": True}, {"properties": "none"}, {"event_id": 3.5},
                         {"customer_id": None}, {"type": None},
                         {"timestamp": {"ms": 1}}])  # fmt: skip
    return "clickstream", c.encode(), orjson.dumps(_doc(rng, c, now, **change))


def _not_an_object(rng: random.Random, c: str, now: int) -> Hostile:
    value = rng.choice([b"[]", b"null", b'"text"', b"42", b"true", b"[{}]", b""])
    return "clickstream", c.encode(), value


def _non_finite(rng: random.Random, c: str, now: int) -> Hostile:
    number = rng.choice([b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e999"])
    raw = orjson.dumps(_doc(rng, c, now, timestamp=0)).replace(b'"timestamp":0', b'"timestamp":'
                                                              + number)  # fmt: skip
    return "clickstream", c.encode(), raw


def _invalid_utf8(rng: random.Random, c: str, now: int) -> Hostile:
    raw = orjson.dumps(_doc(rng, c, now, event_id="EVENTID"))
    return "clickstream", c.encode(), raw.replace(b"EVENTID", rng.choice([b"\xff\xfe", b"\xc3("]))


def _odd_id(rng: random.Random, c: str, now: int) -> Hostile:
    odd = rng.choice(_ODD_IDS)
    return "clickstream", odd.encode(), orjson.dumps(_doc(rng, odd, now))


def _far_future(rng: random.Random, c: str, now: int) -> Hostile:
    when = rng.choice([_YEAR_3000_MS, "2999-01-01T00:00:00Z", now + 400 * 86_400_000])
    return "clickstream", c.encode(), orjson.dumps(_doc(rng, c, now, timestamp=when))


def _before_1970(rng: random.Random, c: str, now: int) -> Hostile:
    when = rng.choice([-1, 0, -86_400_000, "1969-12-31T23:59:59Z", "1900-01-01T00:00:00+00:00"])
    return "clickstream", c.encode(), orjson.dumps(_doc(rng, c, now, timestamp=when))


def _empty_key(rng: random.Random, c: str, now: int) -> Hostile:
    return "clickstream", rng.choice([b"", None]), orjson.dumps(_doc(rng, c, now))


def _key_disagrees(rng: random.Random, c: str, now: int) -> Hostile:
    return "clickstream", f"not-{c}".encode(), orjson.dumps(_doc(rng, c, now))


def _wrong_topic(rng: random.Random, c: str, now: int) -> Hostile:
    return "sessions", c.encode(), orjson.dumps(_doc(rng, c, now, type="conversion"))


def _bad_session(rng: random.Random, c: str, now: int) -> Hostile:
    props = rng.choice([{"duration_seconds": -5, "page_count": 1}, {"page_count": 1},
                        {"duration_seconds": 10**12, "page_count": 1},
                        {"duration_seconds": 10, "page_count": 2.5}])  # fmt: skip
    return "sessions", c.encode(), orjson.dumps(_doc(rng, c, now, type="session_end",
                                                     properties=props))  # fmt: skip


HOSTILE_KINDS: dict[str, Callable[[random.Random, str, int], Hostile]] = {
    f.__name__.lstrip("_"): f
    for f in (_random_bytes, _truncated, _deeply_nested, _nested_properties, _huge_string,
              _huge_array, _wrong_types, _not_an_object, _non_finite, _invalid_utf8, _odd_id,
              _far_future, _before_1970, _empty_key, _key_disagrees, _wrong_topic, _bad_session)
}  # fmt: skip


def hostile_messages(
    rng: random.Random, count: int, customers: list[str], now_ms: int
) -> list[tuple[str, Hostile]]:
    """``count`` hostile messages, cycling through every kind: (kind, message)."""
    kinds = list(HOSTILE_KINDS.items())
    return [
        (name, make(rng, rng.choice(customers), now_ms))
        for name, make in (kinds[i % len(kinds)] for i in range(count))
    ]
