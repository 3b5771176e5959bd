"""Serialise customer state, alerts and score views to and from their stored JSON forms."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from stream.core.alerts import Alert, AlertGate
from stream.core.customer import CustomerState

__all__ = [
    "alert_to_json",
    "iso_ms",
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
    state: CustomerState, breakdown: dict[str, int], model_version: str, partition: int
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
    return {
        "score": f"{points(state.score_cp):g}",
        "band": state.band or "",
        "updated_at": iso_ms(state.updated_ms),
        "breakdown": orjson.dumps({k: points(v) for k, v in sorted(breakdown.items())}),
        "model_version": model_version,
        "state": orjson.dumps(internal),
    }


def state_from_fields(fields: dict[str, bytes | None]) -> CustomerState:
    """Rebuild a CustomerState from the hash fields written by ``state_fields``."""
    raw = fields.get("state")
    if not raw:
        return CustomerState()
    internal = orjson.loads(raw)
    score = fields.get("score") or b"0"
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
    }
