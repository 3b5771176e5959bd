"""How a customer's hash fields encode its state, profile, history, outbox and applied
record (the state codec of the score table).

The public fields (score, band, updated_at, breakdown, model_version, traits, account,
history, history_markers) are the read contract in README; ``state``
(``stream.adapters.redis_state``: binary, versioned), ``dedup``, ``outbox`` and
``profile_at`` are internal. What a customer has applied (``stream.ports.Applied``: per
input partition the highest offset taken, and recent fingerprints) is one packed string
(``dedup``), stored exactly as the port packs it: a 3-byte header (layout 1, watermark
count), 20-byte watermarks (8-byte partition id, 8-byte offset, 4-byte forget-at in epoch
seconds), then 12-byte fingerprint records (8-byte fingerprint, 4-byte forget-at).
Releases before this one kept fingerprints in ``seen`` (4-byte header, then 12-byte
records); ``decode_applied`` still reads it, and the next commit deletes it.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Mapping, Sequence
from itertools import chain
from typing import Any, NamedTuple

import orjson

from stream.adapters.codec import iso_ms, points
from stream.adapters.redis_state import Internal, pack_state, unpack_state
from stream.core import kernel
from stream.core.customer import CustomerState
from stream.core.profile import Profile
from stream.core.score_history import History, Marker
from stream.ports import Applied, Loaded, OutboxAlert

__all__ = [
    "LOADED_FIELDS",
    "STATE_FIELDS",
    "StateCodec",
    "decode_applied",
    "encode_applied",
    "encode_outbox",
    "history_from_bytes",
    "history_to_bytes",
    "loaded_from_fields",
    "markers_from_json",
    "markers_to_json",
    "profile_fields",
    "profile_from_fields",
    "state_codec",
    "state_fields",
    "state_from_fields",
    "state_values",
]

#: the fields the worker reads of a customer before evaluating it
LOADED_FIELDS = ("state", "score", "band", "ver", "outbox", "history", "history_markers",
                 "model_version", "traits", "account", "profile_at", "dedup",
                 "seen")  # fmt: skip
_HISTORY_POINT = struct.Struct("<qq")  # also the history field's header (layout, bucket_ms)

#: the fields ``state_fields`` writes, in order; all but the last are set by every commit
STATE_FIELDS = ("score", "band", "updated_at", "breakdown", "model_version", "state", "history",
                "history_markers")  # fmt: skip


_SORTED = orjson.OPT_SORT_KEYS
# A batch's states share their ``updated_at`` (the moment they were evaluated).
_iso_ms = functools.lru_cache(maxsize=256)(iso_ms)


def state_fields(
    state: CustomerState,
    breakdown: Mapping[str, int],
    model_version: str,
    partition: int,
    bucket_ms: int = 86_400_000,
) -> dict[str, str | bytes]:
    """Hash fields for a customer: the public read contract plus one internal ``state``
    (``stream.adapters.redis_state``: binary, versioned)."""
    return dict(zip(STATE_FIELDS, state_values(state, breakdown, model_version, partition,
                                                 bucket_ms), strict=True))  # fmt: skip


def state_values(
    state: CustomerState,
    breakdown: Mapping[str, int],
    model_version: str,
    partition: int,
    bucket_ms: int,
) -> tuple[str, str, str, bytes, str, bytes, bytes, bytes]:
    """The values of ``STATE_FIELDS``, in order."""
    internal = Internal(
        buckets=state.buckets,
        gate=state.gate,
        updated_ms=state.updated_ms,
        partition=partition,
        first_seen_ms=state.first_seen_ms,
        tenure_days=state.tenure_days,
        prior_active=state.prior_active,
        rule_gates=state.rule_gates,
        own_version=state.version != model_version,  # usually equal: then ``model_version``
        version=state.version,
    )
    return (
        f"{points(state.score_cp):g}",
        state.band or "",
        _iso_ms(state.updated_ms),
        orjson.dumps({k: points(v) for k, v in breakdown.items()}, option=_SORTED),
        model_version,
        pack_state(internal),
        history_to_bytes(state.history, bucket_ms),
        markers_to_json(state.markers) if state.markers else b"",
    )


def history_to_bytes(history: History, bucket_ms: int) -> bytes:
    """The ``history`` hash field (see README, "Score history"): little-endian signed 64-bit
    integers ``[1, bucket_ms, start_0, score_0, start_1, score_1, ...]``, points oldest first,
    each the start of a bucket in epoch ms and the score in centipoints."""
    return struct.pack(f"<{2 + 2 * len(history)}q", 1, bucket_ms, *chain.from_iterable(history))


def history_from_bytes(raw: bytes | None) -> tuple[int, History]:
    """The bucket length and the points of a ``history`` field (empty: none)."""
    if not raw:
        return 0, ()
    layout, bucket_ms = _HISTORY_POINT.unpack_from(raw)
    if layout != 1:
        raise ValueError(f"unknown history layout {layout}")
    return bucket_ms, tuple(_HISTORY_POINT.iter_unpack(memoryview(raw)[_HISTORY_POINT.size :]))


def markers_to_json(markers: tuple[Marker, ...]) -> bytes:
    """The ``history_markers`` hash field: ``[[at_ms, model_version], ...]``, oldest first."""
    return orjson.dumps([[at, version] for at, version in markers])


def markers_from_json(raw: bytes | None) -> tuple[Marker, ...]:
    """The markers of a ``history_markers`` field (empty: none)."""
    return tuple((int(at), str(v)) for at, v in orjson.loads(raw)) if raw else ()


def _version(fields: Mapping[str, bytes | None]) -> str | None:
    return (fields.get("model_version") or b"").decode() or None


def state_from_fields(fields: Mapping[str, bytes | None]) -> CustomerState:
    """Rebuild a CustomerState from the hash fields written by ``state_fields``."""
    raw = fields.get("state")
    if not raw:
        return CustomerState()
    internal = unpack_state(raw)
    score = fields.get("score") or b"0"
    return CustomerState(
        buckets=internal.buckets,
        score_cp=round(float(score) * 100),
        band=(fields.get("band") or b"").decode() or None,
        gate=internal.gate,
        updated_ms=internal.updated_ms,
        first_seen_ms=internal.first_seen_ms,
        tenure_days=internal.tenure_days,
        prior_active=internal.prior_active,
        history=history_from_bytes(fields.get("history"))[1],
        markers=markers_from_json(fields.get("history_markers")),
        version=internal.version if internal.own_version else _version(fields),
        rule_gates=internal.rule_gates,
    )


def profile_fields(profile: Profile) -> dict[str, str | bytes]:
    """Hash fields of a profile: public ``traits`` (JSON object) and ``account``, internal
    ``profile_at`` (event times, for last-write-wins); an empty value deletes the field."""
    at: dict[str, Any] = {}
    if profile.trait_ms:
        at["t"] = dict(profile.trait_ms)
    if profile.account is not None:
        at["a"] = profile.account_ms
    return {
        "traits": orjson.dumps(dict(profile.traits)) if profile.traits else b"",
        "account": profile.account or "",
        "profile_at": orjson.dumps(at) if at else b"",
    }


def profile_from_fields(fields: Mapping[str, bytes | None]) -> Profile:
    """Rebuild a Profile from the hash fields written by ``profile_fields``."""
    at = orjson.loads(fields.get("profile_at") or b"{}")
    account = fields.get("account")
    return Profile(
        traits=orjson.loads(fields.get("traits") or b"{}"),
        trait_ms=at.get("t", {}),
        account=account.decode() if account else None,
        account_ms=int(at.get("a", 0)),
    )


def encode_outbox(outbox: Sequence[OutboxAlert]) -> bytes:
    """The ``outbox`` field: a JSON array of alert documents; empty means no field."""
    return orjson.dumps(list(outbox)) if outbox else b""


def encode_applied(applied: Applied) -> bytes:
    """The ``dedup`` field: the record as packed (``stream.ports.Applied``); empty when
    nothing is kept."""
    return applied.packed


def decode_applied(raw: bytes | None, legacy: bytes | None = None) -> Applied:
    """The record of a ``dedup`` field, plus the fingerprints of a pre-upgrade ``seen``
    field (4-byte header, then the same 12-byte records), each with its own expiry."""
    applied = Applied(raw or b"")
    if len(applied.marks) % 12:
        raise ValueError("a dedup field's fingerprint records are 12 bytes each")
    if legacy is None:
        return applied
    return Applied.of(applied.watermarks, applied.marks + legacy[4:], legacy=True)


def loaded_from_fields(
    fields: Mapping[str, Any],
    decode: Callable[[Mapping[str, bytes | None]], CustomerState] = state_from_fields,
) -> Loaded:
    """What the worker loads of a customer, from its ``LOADED_FIELDS`` (``decode``: the
    state codec's ``state_from_fields``, see ``state_codec``)."""
    return Loaded(
        state=decode(fields),
        version=int(fields["ver"] or 0),
        outbox=orjson.loads(fields["outbox"]) if fields["outbox"] else [],
        profile=profile_from_fields(fields),
        applied=decode_applied(fields["dedup"], fields["seen"]),
    )


StateValues = Callable[
    [CustomerState, Mapping[str, int], str, int, int],
    tuple[str, str, str, bytes, str, bytes, bytes, bytes],
]


class StateCodec(NamedTuple):
    """``state_values`` and ``state_from_fields`` of one kernel (``stream.core.kernel``):
    the compiled kernel's match the Python ones above exactly."""

    state_values: StateValues
    state_from_fields: Callable[[Mapping[str, bytes | None]], CustomerState]


_PYTHON_CODEC = StateCodec(state_values, state_from_fields)


def state_codec(loaded: kernel.Kernel | None = None) -> StateCodec:
    """The state codec of a kernel (default: the one in force)."""
    native = (loaded or kernel.active()).native
    if native is None:
        return _PYTHON_CODEC
    return StateCodec(native.state_values, native.state_from_fields)
