"""Decoding both input shapes, and a clear reason for every kind of bad input."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.core.decode import REASONS, DecodeLimits, Ignored, Rejection, decode_event
from stream.core.events import Event
from stream.core.vocabulary import IGNORED_REASONS
from tests.factories import DAY_MS, NOW_MS, default_model, native, segment
from tests.profiles import examples

MODEL = default_model()


def _decode(
    raw: bytes, role: str = "clickstream", key: bytes | None = b"c1", model: object = MODEL
) -> Event | Rejection | Ignored:
    return decode_event(raw, key=key, topic_role=role, model=model,  # type: ignore[arg-type]
                        now_ms=NOW_MS, fallback_id="clickstream/0/7")  # fmt: skip


def test_native_shape_with_epoch_millis() -> None:
    """The native shape decodes to an Event with its own id."""
    got = _decode(native("page_view", "c1", NOW_MS, event_id="e-1", path="/pricing"))
    assert got == Event("e-1", "c1", "page_view", NOW_MS, {"path": "/pricing"})


def test_native_shape_with_iso_timestamp_and_no_id_uses_source_coordinates() -> None:
    """An ISO timestamp is parsed; a missing id falls back to topic/partition/offset."""
    raw = orjson.dumps({"customer_id": "c1", "type": "click", "timestamp": "2026-11-18T12:00:00Z"})
    got = _decode(raw)
    assert isinstance(got, Event)
    assert got.timestamp_ms == NOW_MS
    assert got.event_id == "clickstream/0/7"


def test_segment_track_maps_event_name_and_message_id() -> None:
    """A Segment track call maps 'Application Uninstalled' and uses messageId and userId."""
    got = _decode(segment("Application Uninstalled", "c1", NOW_MS, "m-9"), role="app_installs")
    assert got == Event("m-9", "c1", "app_uninstall", NOW_MS, {}, account="acct-1")


def test_segment_anonymous_id_is_accepted() -> None:
    """Without userId, anonymousId identifies the customer."""
    raw = orjson.dumps({"type": "track", "event": "Page Viewed", "anonymousId": "c1",
                        "messageId": "m", "timestamp": NOW_MS})  # fmt: skip
    got = _decode(raw)
    assert isinstance(got, Event) and got.customer_id == "c1"


@pytest.mark.parametrize(
    ("raw", "role", "key", "reason"),
    [
        (b"{oops", "clickstream", b"c1", "invalid_json"),
        (b"[1, 2]", "clickstream", b"c1", "not_an_object"),
        (b"x" * 70_000, "clickstream", b"c1", "too_large"),
        (orjson.dumps({"type": "click", "timestamp": NOW_MS}), "clickstream", b"c1",
         "missing_customer_id"),
        (native("click", "a\nb", NOW_MS), "clickstream", b"a\nb", "invalid_customer_id"),
        (native("click", "c" * 129, NOW_MS), "clickstream", b"c" * 129, "invalid_customer_id"),
        (native("click", "josé", NOW_MS), "clickstream", "josé".encode("latin-1"),
         "key_mismatch"),
        (native("click", "c1", NOW_MS), "clickstream", b"c2", "key_mismatch"),
        (native("click", "c1", NOW_MS), "clickstream", None, "key_mismatch"),
        (native("teleport", "c1", NOW_MS), "clickstream", b"c1", "unknown_type"),
        (native("app_install", "c1", NOW_MS), "clickstream", b"c1", "wrong_topic"),
        (native("session_end", "c1", NOW_MS, duration_seconds="x", page_count=1), "sessions",
         b"c1", "invalid_field"),
        (native("session_end", "c1", NOW_MS, duration_seconds=3), "sessions", b"c1",
         "invalid_field"),
        (native("survey_response", "c1", NOW_MS, nps=11), "clickstream", b"c1", "invalid_field"),
        (native("survey_response", "c1", NOW_MS, csat=True), "clickstream", b"c1",
         "invalid_field"),
        (native("click", "c1", NOW_MS + DAY_MS), "clickstream", b"c1", "future_timestamp"),
        (native("click", "c1", NOW_MS - 31 * DAY_MS), "clickstream", b"c1", "too_old"),
        (native("click", "c1", -5), "clickstream", b"c1", "invalid_timestamp"),
        (orjson.dumps({"customer_id": "c1", "type": "click", "timestamp": "yesterday"}),
         "clickstream", b"c1", "invalid_timestamp"),
        (orjson.dumps({"customer_id": "c1", "type": "click", "timestamp": "2026-11-18T12:00:00"}),
         "clickstream", b"c1", "invalid_timestamp"),
        (b'{"customer_id": "c1", "type": "click", "timestamp": NaN}', "clickstream", b"c1",
         "invalid_json"),
    ],
)  # fmt: skip
def test_bad_input_gets_a_named_reason(
    raw: bytes, role: str, key: bytes | None, reason: str
) -> None:
    """Each kind of bad input is rejected with its reason and a readable detail."""
    got = _decode(raw, role, key)
    assert isinstance(got, Rejection)
    assert got.reason == reason
    assert got.reason in REASONS
    assert got.detail


def test_size_limit_is_configurable() -> None:
    """A smaller limit rejects what the default accepts."""
    raw = native("click", "c1", NOW_MS)
    small = decode_event(raw, key=b"c1", topic_role="clickstream", model=MODEL, now_ms=NOW_MS,
                         fallback_id="f", limits=DecodeLimits(max_bytes=10))  # fmt: skip
    assert isinstance(small, Rejection) and small.reason == "too_large"


@given(st.binary(max_size=300))
@settings(max_examples=examples(500))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    """Random bytes decode to an Event or a Rejection, never an exception."""
    assert isinstance(_decode(raw), Event | Rejection)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "customer_id",
                "type",
                "timestamp",
                "properties",
                "event_id",
                "userId",
                "event",
                "messageId",
            ]
        ),
        json_values | st.sampled_from(["c1", "page_view", "track", NOW_MS]),
    )
)
@settings(max_examples=examples(500))
def test_arbitrary_json_objects_never_raise(doc: dict) -> None:
    """Any JSON object decodes to an Event, an Ignored or a Rejection with a known reason."""
    got = _decode(orjson.dumps(doc))
    assert isinstance(got, Event) or got.reason in (*REASONS, *IGNORED_REASONS)


def _call(kind: str, user: object = "c1", **fields: object) -> bytes:
    return orjson.dumps({"type": kind, "userId": user, "messageId": "m-1", "timestamp": NOW_MS,
                         **fields})  # fmt: skip


def test_identify_carries_traits_and_never_scores() -> None:
    """An identify call becomes a profile-only event with its traits, on any input topic."""
    for role in ("clickstream", "app_installs", "sessions"):
        got = _decode(_call("identify", traits={"plan": "pro", "seats": 5}), role=role)
        assert isinstance(got, Event) and got.profile_only
        assert got.type == "identify" and got.traits == {"plan": "pro", "seats": 5}
        assert got.account is None and got.event_id == "m-1"
    bad = _decode(_call("identify", traits=["plan"]))
    assert isinstance(bad, Rejection) and bad.reason == "invalid_field"


def test_group_and_context_group_id_set_the_account() -> None:
    """A group call's groupId (string or integer) is the account; so is context.groupId on
    any call; a group call without groupId, or with a float one, is invalid."""
    got = _decode(_call("group", groupId="Acme Ltd"))
    assert isinstance(got, Event) and got.type == "group" and got.account == "Acme Ltd"
    numeric = _decode(_call("group", groupId=1234))
    assert isinstance(numeric, Event) and numeric.account == "1234"
    track = _decode(_call("track", event="Button Clicked", context={"groupId": "用户组"}))
    assert isinstance(track, Event) and track.type == "click" and track.account == "用户组"
    for bad in ({}, {"groupId": 1.5}, {"groupId": True}, {"groupId": "a\x00"}):
        refused = _decode(_call("group", **bad))
        assert isinstance(refused, Rejection) and refused.reason == "invalid_field"


def test_unmapped_calls_are_ignored_not_dead_lettered() -> None:
    """Unmapped track names and alias calls come back as Ignored with a bounded call label;
    a page call without page_view in the model too. Unknown native types stay unknown_type."""
    got = _decode(_call("track", event="Some Internal Event"))
    assert isinstance(got, Ignored) and got.reason == "unmapped_track" and got.call == "track"
    alias = _decode(_call("alias", previousId="x"))
    assert isinstance(alias, Ignored) and alias.reason == "unscored_call" and alias.call == "alias"
    no_pages = replace(MODEL, events={k: v for k, v in MODEL.events.items() if k != "page_view"})
    page = _decode(_call("screen", name="Home"), model=no_pages)
    assert isinstance(page, Ignored) and page.reason == "unscored_call" and page.call == "screen"
    native_unknown = _decode(native("teleport", "c1", NOW_MS))
    assert isinstance(native_unknown, Rejection) and native_unknown.reason == "unknown_type"


def test_unmapped_dead_letter_policy_restores_strictness() -> None:
    """With ``unmapped: dead_letter`` those calls are dead-lettered as unknown_type."""
    strict = replace(MODEL, unmapped="dead_letter")
    for raw in (_call("track", event="Some Internal Event"), _call("alias", previousId="x")):
        got = _decode(raw, model=strict)
        assert isinstance(got, Rejection) and got.reason == "unknown_type"
    assert isinstance(_decode(_call("identify", traits={}), model=strict), Event)


def test_numeric_ids_are_their_decimal_string() -> None:
    """Integer customer and event ids (database ids) are accepted as decimal strings; the
    Kafka key is compared as text. Floats and booleans stay invalid."""
    got = _decode(_call("track", user=98765, event="Button Clicked", messageId=123456789),
                  key=b"98765")  # fmt: skip
    assert isinstance(got, Event) and got.customer_id == "98765" and got.event_id == "123456789"
    native_doc = orjson.dumps({"event_id": 7, "customer_id": 42, "type": "click",
                               "timestamp": NOW_MS})  # fmt: skip
    native_got = _decode(native_doc, key=b"42")
    assert isinstance(native_got, Event) and (native_got.customer_id, native_got.event_id) == (
        "42", "7")  # fmt: skip
    for bad_event_id in (1.5, False):
        doc = orjson.dumps({"event_id": bad_event_id, "customer_id": "c1", "type": "click",
                            "timestamp": NOW_MS})  # fmt: skip
        refused = _decode(doc)
        assert isinstance(refused, Rejection) and refused.reason == "invalid_field"
    for bad_customer in (4.0, True):
        doc = orjson.dumps({"customer_id": bad_customer, "type": "click", "timestamp": NOW_MS})
        refused = _decode(doc)
        assert isinstance(refused, Rejection) and refused.reason == "invalid_customer_id"


def test_unicode_ids_are_compared_with_the_decoded_key() -> None:
    """A Unicode id with spaces or braces is accepted when the key is its UTF-8 text."""
    for customer in ("josé", "用户42", "Ana María {vip}", "50% off"):
        got = _decode(native("click", customer, NOW_MS), key=customer.encode())
        assert isinstance(got, Event) and got.customer_id == customer
    bad_key = _decode(native("click", "c1", NOW_MS), key=b"\xff")
    assert isinstance(bad_key, Rejection) and bad_key.reason == "key_mismatch"


def _all_characters() -> str:
    return "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)


def test_forbidden_id_characters_match_a_from_scratch_reference() -> None:
    """The hard-coded set is exactly: C0, DEL, C1, U+2028/9 and Unicode category Cf except
    ZWNJ/ZWJ (computed here from ``unicodedata``; a new Python's Unicode data that adds Cf
    characters fails this test, so the set is kept up to date)."""
    import unicodedata  # noqa: PLC0415

    from stream.core.decode import ALLOWED_FORMAT_CHARACTERS, valid_customer_id  # noqa: PLC0415

    text = _all_characters()
    reference = {
        c
        for c in text
        if unicodedata.category(c) in ("Cc", "Zl", "Zp")
        or (unicodedata.category(c) == "Cf" and c not in ALLOWED_FORMAT_CHARACTERS)
    }
    refused = {c for c in text if not valid_customer_id(f"a{c}b")}
    assert refused == reference
    assert {"\u202a", "\u202e", "\u2066", "\u2069", "\u200e", "\u200f", "\u200b"} <= refused
    assert valid_customer_id("👨\u200d👩\u200d👧")
    assert valid_customer_id("\u0645\u06cc\u200c\u062e\u0648")  # Persian, with a ZWNJ


@pytest.mark.parametrize(
    ("customer", "named"),
    [("invoice\u202etxt.exe", "U+202E RIGHT-TO-LEFT OVERRIDE"),
     ("user\u2066x\u2069", "U+2066 LEFT-TO-RIGHT ISOLATE"),
     ("c\u200f1", "U+200F RIGHT-TO-LEFT MARK"),
     ("zero\u200bwidth", "U+200B ZERO WIDTH SPACE"),
     ("a\x00b", "U+0000, a control character")],
)  # fmt: skip
def test_spoofing_ids_are_dead_lettered_with_the_character_named(customer: str, named: str) -> None:
    """Bidi overrides, isolates, marks and zero-width characters make an id look like
    another; they are ``invalid_customer_id`` with the character and its position named."""
    got = _decode(native("click", customer, NOW_MS), key=customer.encode())
    assert isinstance(got, Rejection) and got.reason == "invalid_customer_id"
    assert named in got.detail and "at index" in got.detail
    refused = _decode(_call("group", groupId=f"acme{customer}"))
    assert isinstance(refused, Rejection) and refused.reason == "invalid_field"
    assert "'groupId'" in refused.detail and named in refused.detail
