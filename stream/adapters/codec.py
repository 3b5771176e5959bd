"""Serialise customer state, alerts and score views to and from their stored JSON forms."""

from __future__ import annotations

import sys
from array import array
from datetime import UTC, datetime
from itertools import chain
from typing import Any

import orjson

from stream.core.alerts import Alert, AlertGate, RuleGate
from stream.core.customer import CustomerState
from stream.core.history import History, Marker, trend

__all__ = [
    "alert_to_json",
    "history_from_bytes",
    "history_to_bytes",
    "history_view",
    "iso_ms",
    "markers_from_json",
    "markers_to_json",
    "points",
    "state_fields",
    "state_from_fields",
]


def iso_ms(millis: int) -> str:
    """ISO 8601 UTC text for epoch milliseconds."""
    return datetime.fromtimestamp(millis / 1000, tz=UTC).isoformat(timespec="milliseconds")


def points(centipoints: int) -> float:
    """Centipoints as points, for display and JSON."""
    return centipoints / 100


def state_fields(
    state: CustomerState,
    breakdown: dict[str, int],
    model_version: str,
    partition: int,
    bucket_ms: int = 86_400_000,
) -> dict[str, str | bytes]:
    """Hash fields for a customer: the public read contract plus one internal ``state``."""
    internal: dict[str, Any] = {
        "w": {str(b): slot for b, slot in state.buckets.items()},
        "a": 1 if state.gate.armed else 0,
        "l": state.gate.last_alert_ms,
        "u": state.updated_ms,
        "p": partition,
    }
    # Newer fields are written only when set, and read with defaults, so state written
    # before they existed still loads (and state stays small).
    if state.first_seen_ms is not None:
        internal["f"] = state.first_seen_ms
    if state.tenure_days:
        internal["t"] = state.tenure_days
    if state.prior_active is not None:
        internal["r"] = state.prior_active
    if state.gate.onboarded:
        internal["o"] = 1
    if state.rule_gates:
        internal["g"] = {
            name: [1 if gate.armed else 0, gate.last_alert_ms]
            for name, gate in state.rule_gates.items()
        }
    return {
        "score": f"{points(state.score_cp):g}",
        "band": state.band or "",
        "updated_at": iso_ms(state.updated_ms),
        "breakdown": orjson.dumps({k: points(v) for k, v in sorted(breakdown.items())}),
        "model_version": model_version,
        "state": orjson.dumps(internal),
        "history": history_to_bytes(state.history, bucket_ms),
        "history_markers": markers_to_json(state.markers) if state.markers else b"",
    }


def history_to_bytes(history: History, bucket_ms: int) -> bytes:
    """The ``history`` hash field (see README, "Score history"): little-endian signed 64-bit
    integers ``[1, bucket_ms, start_0, score_0, start_1, score_1, ...]``, points oldest first,
    each the start of a bucket in epoch ms and the score in centipoints."""
    packed = array("q", (1, bucket_ms))
    packed.extend(chain.from_iterable(history))
    if sys.byteorder != "little":
        packed.byteswap()
    return packed.tobytes()


def history_from_bytes(raw: bytes | None) -> tuple[int, History]:
    """The bucket length and the points of a ``history`` field (empty: none)."""
    if not raw:
        return 0, ()
    packed = array("q")
    packed.frombytes(raw)
    if sys.byteorder != "little":
        packed.byteswap()
    if packed[0] != 1:
        raise ValueError(f"unknown history layout {packed[0]}")
    return packed[1], tuple(zip(packed[2::2], packed[3::2], strict=True))


def markers_to_json(markers: tuple[Marker, ...]) -> bytes:
    """The ``history_markers`` hash field: ``[[at_ms, model_version], ...]``, oldest first."""
    return orjson.dumps([[at, version] for at, version in markers])


def markers_from_json(raw: bytes | None) -> tuple[Marker, ...]:
    return tuple((int(at), str(v)) for at, v in orjson.loads(raw)) if raw else ()


def state_from_fields(fields: dict[str, bytes | None]) -> CustomerState:
    """Rebuild a CustomerState from the hash fields written by ``state_fields``."""
    raw = fields.get("state")
    if not raw:
        return CustomerState()
    internal = orjson.loads(raw)
    score = fields.get("score") or b"0"
    _, points = history_from_bytes(fields.get("history"))
    markers = markers_from_json(fields.get("history_markers"))
    version = (fields.get("model_version") or b"").decode() or None
    return CustomerState(
        buckets={int(b): dict(slot) for b, slot in internal["w"].items()},
        score_cp=round(float(score) * 100),
        band=(fields.get("band") or b"").decode() or None,
        gate=AlertGate(
            armed=bool(internal["a"]),
            last_alert_ms=internal["l"],
            onboarded=bool(internal.get("o", 0)),
        ),
        updated_ms=int(internal["u"]),
        first_seen_ms=internal.get("f"),
        tenure_days=int(internal.get("t", 0)),
        prior_active=internal.get("r"),
        history=points,
        markers=markers,
        version=version,
        rule_gates={
            name: RuleGate(bool(armed), last)
            for name, (armed, last) in internal.get("g", {}).items()
        },
    )


def alert_to_json(alert: Alert) -> dict[str, Any]:
    """The published alert document (see README, "Alert contract")."""
    return {
        "alert_id": alert.alert_id,
        "type": alert.type,
        "customer_id": alert.customer_id,
        "previous_band": alert.previous_band,
        "band": alert.band,
        "previous_score": alert.previous_score,
        "score": alert.score,
        "occurred_at": iso_ms(alert.occurred_at_ms),
        "occurred_at_ms": alert.occurred_at_ms,
        "trigger": alert.trigger,
        "reasons": [
            {"factor": r.factor, "change": r.change, "before": r.before, "after": r.after}
            for r in alert.reasons
        ],
        "model_version": alert.model_version,
        "rule": alert.rule,
    }


def history_view(fields: dict[str, bytes], now_ms: int) -> dict[str, Any]:
    """The ``history`` and ``trend`` members of a customer's public view, at ``now_ms``.

    ``trend.change_7d``/``change_30d`` are the score now minus the score 7/30 days earlier
    (None without a point that old); ``top_factor`` is the factor whose raw points over the
    last 7 days changed most against the 7 days before, from the window's buckets.
    """
    bucket_ms, kept = history_from_bytes(fields.get("history"))
    if not bucket_ms:
        return {"history": None, "trend": None}
    markers = markers_from_json(fields.get("history_markers"))
    internal = orjson.loads(fields.get("state") or b"{}")
    buckets = {int(b): dict(slot) for b, slot in internal.get("w", {}).items()}
    found = trend(kept, buckets, bucket_ms, now_ms, 86_400_000)

    def change(cp: int | None) -> float | None:
        return None if cp is None else points(cp)

    return {
        "history": {
            "bucket_ms": bucket_ms,
            "points": [[start, points(score)] for start, score in kept],
            "markers": [
                {"at": iso_ms(at), "at_ms": at, "model_version": version} for at, version in markers
            ],
        },
        "trend": {
            "change_7d": change(found.change_7d_cp),
            "change_30d": change(found.change_30d_cp),
            "top_factor": found.top_factor,
            "top_factor_change": points(found.top_factor_change_cp),
        },
    }
