"""JSON forms shared by the adapters and the worker: alert documents, times and points.

The customer state's stored form belongs to the Redis store (``redis_store.state_fields``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from stream.core.alerts import Alert

__all__ = [
    "alert_to_json",
    "iso_ms",
    "points",
]


def iso_ms(millis: int) -> str:
    """ISO 8601 UTC text for epoch milliseconds."""
    return datetime.fromtimestamp(millis / 1000, tz=UTC).isoformat(timespec="milliseconds")


def points(centipoints: int) -> float:
    """Centipoints as points, for display and JSON."""
    return centipoints / 100


def alert_to_json(alert: Alert) -> dict[str, Any]:
    """The published alert document (docs/reference/alerts.md)."""
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
