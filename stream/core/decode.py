"""Turn raw message bytes into a validated Event, or a Rejection with a clear reason.

Two shapes are accepted on every topic: the native shape and Segment/RudderStack calls.
``track`` calls with a mapped name (and ``page``/``screen``, as ``page_view``) are scored;
``identify`` (traits) and ``group`` (account) calls become profile-only events; unmapped
track names and calls the model does not score (``alias``, ``page`` without ``page_view``)
come back as :class:`Ignored` unless the model says ``unmapped: dead_letter``. Decoding is
pure: the caller passes the clock.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import orjson

from stream.core.events import PROFILE_TYPES, Event
from stream.core.model import ScoringModel
from stream.core.vocabulary import DEAD_LETTER_REASONS, DeadLetterReason, IgnoredReason

__all__ = [
    "ALLOWED_FORMAT_CHARACTERS",
    "REASONS",
    "SEGMENT_CALLS",
    "DecodeLimits",
    "Ignored",
    "Rejection",
    "decode_event",
    "id_rule",
    "id_text",
    "valid_customer_id",
]

REASONS = DEAD_LETTER_REASONS

# Any Unicode text without control characters (C0, DEL, C1), lone surrogates, line or
# paragraph separators (U+2028/9) and invisible format characters (Unicode category Cf as of
# Unicode 14: bidi embeddings, overrides and isolates U+202A-E/U+2066-9, marks U+200E/F,
# zero-width space U+200B, word joiner, BOM, soft hyphen, tag characters, ...), which let
# an id look like another one (spoofing). Allowed Cf characters: ZWNJ U+200C and ZWJ
# U+200D, which Persian and Indic names and emoji sequences need and which reorder nothing.
# Braces, ``%`` and spaces are allowed: the Redis store escapes the id in its hash tag
# (``stream.adapters.redis_store.key_tag``).
_CONTROL = "\x00-\x1f\x7f-\x9f\ud800-\udfff"
_FORMAT = (
    "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b\u200e\u200f"
    "\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U00013438\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001"
    "\U000e0020-\U000e007f"
)
_FORBIDDEN = re.compile(f"[{_CONTROL}{_FORMAT}]")
_ASCII_FORBIDDEN = re.compile("[\x00-\x1f\x7f]")  # the same set within ASCII (fast path)
ALLOWED_FORMAT_CHARACTERS = frozenset("\u200c\u200d")
_MAX_ID_LENGTH = 128
_BYTES_PER_CHARACTER = 4  # the UTF-8 bound: an id's bytes (and its key tag) <= 4 x its limit
_MAX_SESSION_SECONDS = 7 * 86_400
_MAX_PAGE_COUNT = 1_000_000
# Numbers in this range are 2001-09-09 to 5138 as epoch seconds, but January to April 1970
# as epoch milliseconds: almost certainly seconds.
_EPOCH_SECONDS = (1_000_000_000, 100_000_000_000)


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Input limits: payload size, identifier length and JSON nesting depth."""

    max_bytes: int = 65_536
    max_id_length: int = _MAX_ID_LENGTH
    max_json_depth: int = 32
    max_id_bytes: int | None = None  # UTF-8 bytes; None: 4 x max_id_length


def valid_customer_id(
    value: str, max_length: int = _MAX_ID_LENGTH, max_bytes: int | None = None
) -> bool:
    """Whether ``value`` is an acceptable customer (or account) id: 1..max_length
    characters, at most ``max_bytes`` (default 4 x max_length) in UTF-8, no control
    characters (C0, DEL, C1), no lone surrogates, no line/paragraph separators and no
    invisible format characters except ZWNJ/ZWJ (see ``_FORBIDDEN``)."""
    limit = _BYTES_PER_CHARACTER * max_length if max_bytes is None else max_bytes
    if value.isascii():
        return 0 < len(value) <= min(max_length, limit) and not _ASCII_FORBIDDEN.search(value)
    return (
        0 < len(value) <= max_length
        and _FORBIDDEN.search(value) is None
        and len(value.encode(errors="surrogatepass")) <= limit
    )


def id_rule(max_length: int = _MAX_ID_LENGTH) -> dict[str, Any]:
    """``valid_customer_id`` as data, for a client that must apply the same rule (the web
    page): the length limits and the forbidden characters as a JavaScript regular
    expression character class for the ``u`` flag (``\\u{...}`` escapes, ranges kept)."""
    characters = _CONTROL + _FORMAT
    escaped = "".join("-" if c == "-" else f"\\u{{{ord(c):x}}}" for c in characters)
    return {
        "max_length": max_length,
        "max_bytes": _BYTES_PER_CHARACTER * max_length,
        "forbidden": f"[{escaped}]",
    }


def id_text(value: Any) -> str | None:
    """An id as text: a string as is, an integer as its decimal string (database ids);
    None for anything else (floats, booleans, objects)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message could not be scored."""

    reason: DeadLetterReason
    detail: str


@dataclass(frozen=True, slots=True)
class Ignored:
    """A message the model does not score, skipped without a dead letter; ``call`` is its
    Segment call type (a bounded metric label, unlike the track name)."""

    reason: IgnoredReason
    detail: str
    call: str


class _IgnoredError(Exception):
    def __init__(self, ignored: Ignored) -> None:
        super().__init__(ignored.detail)
        self.ignored = ignored


class _InvalidError(Exception):
    def __init__(self, reason: DeadLetterReason, detail: str) -> None:
        super().__init__(detail)
        self.rejection = Rejection(reason, detail)


def decode_event(
    raw: bytes,
    *,
    key: bytes | None,
    topic_role: str,
    model: ScoringModel,
    now_ms: int,
    fallback_id: str,
    limits: DecodeLimits | None = None,
    replay: bool = False,
    fast: bool = True,
) -> Event | Rejection | Ignored:
    """Decode and validate one message from the input topic playing ``topic_role``.

    ``replay`` (a backfill or calibration replaying history in event time) skips the
    ``too_old`` check: the replay's clock follows the events, not ``now_ms``. ``fast``
    first tries the fast path for valid native events (same result; see ``_fast``).
    """
    limits = limits or _DEFAULT_LIMITS
    if fast:
        event = _fast(raw, key, topic_role, model, now_ms, fallback_id, limits, replay)
        if event is not None:
            return event
    try:
        return _decode(raw, key, topic_role, model, now_ms, fallback_id, limits, replay)
    except _InvalidError as invalid:
        return invalid.rejection
    except _IgnoredError as skipped:
        return skipped.ignored


_DEFAULT_LIMITS = DecodeLimits()
_NATIVE_FIELDS = frozenset({"event_id", "customer_id", "type", "timestamp", "properties"})
#: Segment call types that name no event type of their own (``track`` names one in ``event``)
SEGMENT_CALLS = frozenset({"page", "screen", "alias", *PROFILE_TYPES})
_NOT_NATIVE = frozenset({"track", *SEGMENT_CALLS})
_SCALARS = (str, int, float, bool, type(None))
_CHECKED = frozenset({"session_end", "survey_response"})  # types whose properties are read


def _fast(
    raw: bytes,
    key: bytes | None,
    topic_role: str,
    model: ScoringModel,
    now_ms: int,
    fallback_id: str,
    limits: DecodeLimits,
    replay: bool,
) -> Event | None:
    """The event of a valid native message with flat properties, or None for anything
    else (the full path then decides, and gives the same answer as for a valid one)."""
    if len(raw) > limits.max_bytes or limits.max_json_depth < 2:
        return None
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if type(doc) is not dict or not doc.keys() <= _NATIVE_FIELDS:
        return None
    kind, customer_id = doc.get("type"), doc.get("customer_id")
    if type(kind) is not str or kind in _NOT_NATIVE or kind not in model.events:
        return None
    allowed = model.topic_types.get(topic_role)
    if allowed is not None and kind not in allowed:
        return None
    if type(customer_id) is not str or key is None:
        return None
    if not valid_customer_id(customer_id, limits.max_id_length, limits.max_id_bytes):
        return None
    if key != customer_id.encode():
        return None
    properties = doc.get("properties", {})
    if properties is None:
        properties = {}
    if type(properties) is not dict:
        return None
    for value in properties.values():
        if not isinstance(value, _SCALARS):
            return None
    timestamp_ms = _fast_timestamp(doc.get("timestamp"))
    if timestamp_ms is None or timestamp_ms > now_ms + model.max_future_skew_ms:
        return None
    if not replay and timestamp_ms < model.live_from(now_ms):  # not is_live
        return None
    event_id = doc.get("event_id")
    if event_id is None or event_id == "":
        event_id = fallback_id
    elif type(event_id) is not str or len(event_id) > limits.max_id_length:
        return None
    if kind in _CHECKED:
        try:
            _check_properties(kind, properties)
        except _InvalidError:
            return None
    return Event(event_id, customer_id, kind, timestamp_ms, properties, None, None)


def _fast_timestamp(value: Any) -> int | None:
    """``_timestamp`` for epoch milliseconds (an integer) and ISO text with a zone; None
    for anything else, and where ``_timestamp`` would refuse."""
    if type(value) is int:
        return value if value > 0 else None
    if type(value) is not str:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    millis = round(parsed.timestamp() * 1000)
    return millis if millis > 0 else None


def _decode(
    raw: bytes,
    key: bytes | None,
    topic_role: str,
    model: ScoringModel,
    now_ms: int,
    fallback_id: str,
    limits: DecodeLimits,
    replay: bool = False,
) -> Event:
    if len(raw) > limits.max_bytes:
        raise _InvalidError(
            "too_large", f"payload is {len(raw)} bytes; the limit is {limits.max_bytes}"
        )
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):  # orjson's own ceiling (1024 levels)
            raise _InvalidError("too_deep", _too_deep(limits)) from None
        raise _InvalidError("invalid_json", f"not valid JSON: {exc}") from None
    if _deeper_than(doc, limits.max_json_depth):
        raise _InvalidError("too_deep", _too_deep(limits))
    if not isinstance(doc, dict):
        raise _InvalidError("not_an_object", f"expected a JSON object, got {type(doc).__name__}")
    event_type, customer_field, id_field = _shape(doc, model)
    customer_id = _customer_id(doc, customer_field, limits)
    _check_key(key, customer_id)
    allowed = model.topic_types.get(topic_role)
    profile_only = event_type in PROFILE_TYPES
    if allowed is not None and not profile_only and event_type not in allowed:
        raise _InvalidError("wrong_topic", f"type {event_type!r} does not belong on {topic_role}")
    timestamp_ms = _timestamp(doc.get("timestamp"))
    if timestamp_ms > now_ms + model.max_future_skew_ms:
        raise _InvalidError(
            "future_timestamp", f"timestamp {timestamp_ms} is ahead of now {now_ms}"
        )
    if not replay and not model.is_live(timestamp_ms, now_ms):
        raise _InvalidError("too_old", _too_old(doc.get("timestamp"), timestamp_ms))
    properties = {} if profile_only else doc.get("properties", {})
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        raise _InvalidError("invalid_field", "properties must be a JSON object")
    _check_properties(event_type, properties)
    return Event(
        event_id=_event_id(doc.get(id_field), fallback_id, limits),
        customer_id=customer_id,
        type=event_type,
        timestamp_ms=timestamp_ms,
        properties=properties,
        traits=_traits(doc) if event_type == "identify" else None,
        account=_account(doc, event_type, limits),
    )


def _traits(doc: Mapping[str, Any]) -> dict[str, Any]:
    traits = doc.get("traits")
    if traits is None:
        return {}
    if not isinstance(traits, dict):
        raise _InvalidError("invalid_field", "identify traits must be a JSON object")
    return traits


def _account(doc: Mapping[str, Any], event_type: str, limits: DecodeLimits) -> str | None:
    """A ``group`` call's ``groupId`` (required), else any call's ``context.groupId``."""
    if event_type == "group":
        value, name = doc.get("groupId"), "groupId"
        if value is None or value == "":
            raise _InvalidError("invalid_field", "group call without a groupId")
    else:
        context = doc.get("context")
        value = context.get("groupId") if isinstance(context, dict) else None
        name = "context.groupId"
        if value is None or value == "":
            return None
    text = id_text(value)
    if text is None or not valid_customer_id(text, limits.max_id_length, limits.max_id_bytes):
        raise _InvalidError("invalid_field", _id_rule(name, limits, text))
    return text


def _id_rule(field: str, limits: DecodeLimits, text: str | None = None) -> str:
    max_bytes = limits.max_id_bytes or _BYTES_PER_CHARACTER * limits.max_id_length
    rule = (
        f"field {field!r} must be a string (or an integer) of 1-{limits.max_id_length} "
        f"characters, at most {max_bytes} UTF-8 bytes, without control or invisible "
        "format characters"
    )
    found = _FORBIDDEN.search(text) if text is not None else None
    if found is None:
        return rule
    char = found.group()
    name = unicodedata.name(char, "") if not "\ud800" <= char <= "\udfff" else "lone surrogate"
    kind = (
        "a control character"
        if re.fullmatch(f"[{_CONTROL}]", char)
        else "an invisible format character (bidi control, zero-width, separator or similar)"
    )
    named = f"U+{ord(char):04X} {name}".rstrip()
    return f"{rule}; it contains {named}, {kind}, at index {found.start()}"


def _too_deep(limits: DecodeLimits) -> str:
    return f"JSON nesting is deeper than the limit of {limits.max_json_depth} levels"


def _deeper_than(doc: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` levels (the top level is 1)."""
    if not isinstance(doc, dict | list):
        return False
    pending: list[tuple[Any, int]] = [(doc, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > limit:
            return True
        children = value.values() if isinstance(value, dict) else value
        pending.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def _shape(doc: Mapping[str, Any], model: ScoringModel) -> tuple[str, str, str]:
    """Return (event type, customer id field, event id field) for either shape."""
    kind = doc.get("type")
    if not isinstance(kind, str):
        raise _InvalidError("unknown_type", "field 'type' must be a string")
    if kind == "track":
        name = doc.get("event")
        if not isinstance(name, str) or name == "":
            raise _InvalidError("unknown_type", "track call without an event name")
        if name not in model.segment_events:
            _skip(model, "unmapped_track", "track",
                  f"track event {name[:64]!r} is not mapped in the model")  # fmt: skip
        kind = model.segment_events[name]
    elif kind in ("page", "screen"):
        if "page_view" not in model.events:
            _skip(model, "unscored_call", kind,
                  f"{kind} calls count as page_view, not in the model")  # fmt: skip
        kind = "page_view"
    elif kind in model.events:
        return kind, "customer_id", "event_id"
    elif kind == "alias":
        _skip(model, "unscored_call", kind, "alias calls are not scored")
    elif kind not in PROFILE_TYPES:
        raise _InvalidError("unknown_type", f"event type {kind[:64]!r} is not in the model")
    field = "userId" if doc.get("userId") not in (None, "") else "anonymousId"
    return kind, field, "messageId"


def _skip(model: ScoringModel, reason: IgnoredReason, call: str, detail: str) -> None:
    """Ignore the message, or dead-letter it as ``unknown_type`` under ``unmapped:
    dead_letter``."""
    if model.unmapped == "dead_letter":
        raise _InvalidError("unknown_type", detail)
    raise _IgnoredError(Ignored(reason, detail, call))


def _customer_id(doc: Mapping[str, Any], field: str, limits: DecodeLimits) -> str:
    value = doc.get(field)
    if value is None or value == "":
        raise _InvalidError("missing_customer_id", f"field {field!r} is missing or empty")
    text = id_text(value)
    if text is None or not valid_customer_id(text, limits.max_id_length, limits.max_id_bytes):
        raise _InvalidError("invalid_customer_id", _id_rule(field, limits, text))
    return text


def _check_key(key: bytes | None, customer_id: str) -> None:
    if not key:
        raise _InvalidError(
            "key_mismatch", "message has no key; input topics are keyed by customer id"
        )
    try:
        decoded = key.decode()
    except UnicodeDecodeError:
        raise _InvalidError("key_mismatch", "message key is not UTF-8 text") from None
    if decoded != customer_id:
        raise _InvalidError("key_mismatch", "message key differs from the event's customer id")


def _event_id(value: Any, fallback: str, limits: DecodeLimits) -> str:
    if value is None or value == "":
        return fallback
    text = id_text(value)
    if text is None or len(text) > limits.max_id_length:
        raise _InvalidError(
            "invalid_field",
            f"event id must be a string (or an integer) of at most {limits.max_id_length}",
        )
    return text


def _too_old(value: Any, timestamp_ms: int) -> str:
    detail = f"timestamp {timestamp_ms} is already outside the window"
    if isinstance(value, int | float) and _EPOCH_SECONDS[0] <= value < _EPOCH_SECONDS[1]:
        detail += (
            f"; {value!r} looks like epoch seconds: send epoch milliseconds "
            f"({int(value * 1000)}) or ISO 8601 text"
        )
    return detail


def _timestamp(value: Any) -> int:
    if value is None:
        raise _InvalidError("invalid_timestamp", "field 'timestamp' is missing")
    if isinstance(value, bool):
        raise _InvalidError(
            "invalid_timestamp",
            f"timestamp is {str(value).lower()}: it must be ISO 8601 text or epoch milliseconds",
        )
    if isinstance(value, int | float):
        if not math.isfinite(value) or value <= 0:
            raise _InvalidError("invalid_timestamp", f"epoch milliseconds {value!r} are not valid")
        return int(value)
    if not isinstance(value, str):
        raise _InvalidError(
            "invalid_timestamp", "timestamp must be ISO 8601 text or epoch milliseconds"
        )
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _InvalidError(
            "invalid_timestamp", f"timestamp {value[:64]!r} is not ISO 8601"
        ) from None
    if parsed.tzinfo is None:
        raise _InvalidError("invalid_timestamp", "timestamp needs a time zone (for example Z)")
    millis = round(parsed.timestamp() * 1000)
    if millis <= 0:
        raise _InvalidError("invalid_timestamp", "timestamp is before 1970")
    return millis


def _check_properties(event_type: str, properties: Mapping[str, Any]) -> None:
    if event_type == "session_end":
        _number(properties, "duration_seconds", 0, _MAX_SESSION_SECONDS, integral=False)
        _number(properties, "page_count", 0, _MAX_PAGE_COUNT, integral=True)
    elif event_type == "survey_response":
        if "nps" not in properties and "csat" not in properties:
            raise _InvalidError("invalid_field", "survey_response needs properties.nps or .csat")
        if "nps" in properties:
            _number(properties, "nps", 0, 10, integral=True)
        if "csat" in properties:
            _number(properties, "csat", 1, 5, integral=True)


def _number(
    properties: Mapping[str, Any], name: str, low: float, high: float, *, integral: bool
) -> None:
    value: Any = properties.get(name)
    kinds: tuple[type, ...] = (int,) if integral else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        kind = "an integer" if integral else "a number"
        raise _InvalidError("invalid_field", f"properties.{name} must be {kind}")
    number = float(cast(float, value))
    if not math.isfinite(number) or not low <= number <= high:
        raise _InvalidError("invalid_field", f"properties.{name} must be between {low} and {high}")
