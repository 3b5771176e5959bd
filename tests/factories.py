"""Small builders shared by the tests."""

from __future__ import annotations

import itertools
from typing import Any

import orjson

from stream.config.model_file import load_model
from stream.core.events import Event
from stream.core.model import ScoringModel

DAY_MS = 86_400_000
NOW_MS = 1_795_000_000_000 - (1_795_000_000_000 % DAY_MS) + DAY_MS // 2  # noon, 2026-11-18
_ids = itertools.count()


def default_model() -> ScoringModel:
    """The shipped default model."""
    return load_model("default")


def event(kind: str, at_ms: int = NOW_MS, customer: str = "c1", **properties: Any) -> Event:
    """A native event with a fresh id."""
    return Event(f"e{next(_ids)}", customer, kind, at_ms, properties)


def native(kind: str, customer: str, at_ms: int, event_id: str | None = None,
           **properties: Any) -> bytes:  # fmt: skip
    """Bytes of a native-shape message."""
    doc: dict[str, Any] = {"customer_id": customer, "type": kind, "timestamp": at_ms,
                           "properties": properties}  # fmt: skip
    if event_id:
        doc["event_id"] = event_id
    return orjson.dumps(doc)


def segment(name: str, user: str, at: int | str, message_id: str, **properties: Any) -> bytes:
    """Bytes of a Segment/RudderStack track call."""
    return orjson.dumps({"type": "track", "event": name, "userId": user, "messageId": message_id,
                         "timestamp": at, "properties": properties,
                         "context": {"groupId": "acct-1"}})  # fmt: skip
