"""The internal ``state`` hash field of a customer: a versioned binary envelope.

Owned by the Redis store (``stream.adapters.redis_store.state_fields`` writes it,
``state_from_fields`` reads it); nothing outside the store reads it. Layout 1, integers
little-endian:

- byte 0: the layout version (1). A field whose first byte is ``{`` is the JSON object
  written before this layout (``{"w": buckets, "a": armed, ...}``); it still loads, and
  is rewritten in this layout at the customer's next commit.
- header ``<HqiiH``: flags (1 armed, 2 onboarded, 4 last alert, 8 first seen, 16 prior
  active bucket, 32 own model version, 64 own model version unknown), updated ms, input
  partition, tenure days, number of further rules' gates; then the 8-byte last alert,
  first seen and prior active bucket that the flags announce, and the own model version
  (2-byte length, UTF-8) when flag 32 is set without 64 (else the state's model version
  is the hash's ``model_version``);
- the further rules' gates: each a name (2-byte length, UTF-8), a flags byte (1 armed,
  2 has last alert) and an 8-byte last alert;
- the rest: the window as a JSON object ``{"<bucket index>": {"<factor>": centipoints}}``.

The window stays JSON on purpose: orjson writes and reads it in C, and every pure-Python
packing of it measured slower (``devtools.corebench``, CHANGELOG.md, 0.2.0); everything
else is fixed-size binary.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any, NamedTuple

import orjson

from stream.core.alerts import AlertGate, RuleGate
from stream.core.window import Buckets

__all__ = ["LAYOUT", "Internal", "pack_state", "unpack_state"]

LAYOUT = 1
_HEAD = struct.Struct("<BHqiiH")
_LONG = struct.Struct("<q")
_TEXT = struct.Struct("<H")
_GATE = struct.Struct("<Bq")
_ARMED, _ONBOARDED, _LAST, _FIRST, _PRIOR, _OWN, _UNKNOWN = (1 << i for i in range(7))
_NON_STR_KEYS = orjson.OPT_NON_STR_KEYS


class Internal(NamedTuple):
    """What the ``state`` field holds (the rest of a state is in the public fields).

    ``version`` is the state's own model version when ``own_version`` (it differs from the
    hash's ``model_version``; None: unknown). A named tuple: built once per commit, and a
    frozen dataclass costs several times as much to build."""

    buckets: Buckets
    gate: AlertGate
    updated_ms: int
    partition: int | None
    first_seen_ms: int | None
    tenure_days: int
    prior_active: int | None
    rule_gates: dict[str, RuleGate]
    own_version: bool
    version: str | None


def pack_state(internal: Internal) -> bytes:
    """The ``state`` field in layout 1."""
    gate = internal.gate
    flags = (_ARMED if gate.armed else 0) | (_ONBOARDED if gate.onboarded else 0)
    if internal.own_version:
        flags |= _OWN if internal.version is not None else _OWN | _UNKNOWN
    longs = b""
    for flag, value in ((_LAST, gate.last_alert_ms), (_FIRST, internal.first_seen_ms),
                        (_PRIOR, internal.prior_active)):  # fmt: skip
        if value is not None:
            flags |= flag
            longs += _LONG.pack(value)
    head = (LAYOUT, flags, internal.updated_ms, internal.partition or 0, internal.tenure_days)
    parts = [_HEAD.pack(*head, len(internal.rule_gates)), longs]
    if internal.own_version and internal.version is not None:
        parts.append(_text_bytes(internal.version))
    for name, rule_gate in internal.rule_gates.items():
        last = rule_gate.last_alert_ms
        flag = (1 if rule_gate.armed else 0) | (2 if last is not None else 0)
        parts += (_text_bytes(name), _GATE.pack(flag, last or 0))
    parts.append(orjson.dumps(internal.buckets, option=_NON_STR_KEYS))
    return b"".join(parts)


def unpack_state(raw: bytes) -> Internal:
    """The contents of a ``state`` field, in layout 1 or in the JSON written before it."""
    if raw[:1] == b"{":
        return _from_json(orjson.loads(raw))
    version, flags, updated, partition, tenure, gates = _HEAD.unpack_from(raw)
    if version != LAYOUT:
        raise ValueError(f"unknown state layout {version}")
    at = _HEAD.size
    longs: list[int | None] = []
    for flag in (_LAST, _FIRST, _PRIOR):
        if flags & flag:
            longs.append(_LONG.unpack_from(raw, at)[0])
            at += 8
        else:
            longs.append(None)
    own_version: str | None = None
    if flags & _OWN and not flags & _UNKNOWN:
        own_version, at = _text(raw, at)
    rule_gates: dict[str, RuleGate] = {}
    for _ in range(gates):
        name, at = _text(raw, at)
        gate_flags, last = _GATE.unpack_from(raw, at)
        at += _GATE.size
        rule_gates[name] = RuleGate(bool(gate_flags & 1), last if gate_flags & 2 else None)
    window = orjson.loads(memoryview(raw)[at:])
    return Internal(
        buckets={int(b): slot for b, slot in window.items()},
        gate=AlertGate(bool(flags & _ARMED), longs[0], bool(flags & _ONBOARDED)),
        updated_ms=updated,
        partition=partition,
        first_seen_ms=longs[1],
        tenure_days=tenure,
        prior_active=longs[2],
        rule_gates=rule_gates,
        own_version=bool(flags & _OWN),
        version=own_version,
    )


def _text_bytes(text: str) -> bytes:
    data = text.encode()
    return _TEXT.pack(len(data)) + data


def _text(raw: bytes, at: int) -> tuple[str, int]:
    (size,) = _TEXT.unpack_from(raw, at)
    start = at + 2
    return raw[start : start + size].decode(), start + size


def _from_json(internal: Mapping[str, Any]) -> Internal:
    """The JSON object written before layout 1 (its newer members are optional)."""
    return Internal(
        buckets={int(b): slot for b, slot in internal["w"].items()},
        gate=AlertGate(
            armed=bool(internal["a"]),
            last_alert_ms=internal["l"],
            onboarded=bool(internal.get("o", 0)),
        ),
        updated_ms=int(internal["u"]),
        partition=internal.get("p"),
        first_seen_ms=internal.get("f"),
        tenure_days=int(internal.get("t", 0)),
        prior_active=internal.get("r"),
        rule_gates={
            name: RuleGate(bool(armed), last)
            for name, (armed, last) in internal.get("g", {}).items()
        },
        own_version="m" in internal,
        version=internal.get("m"),
    )
