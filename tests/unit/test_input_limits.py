"""Configurable input limits (id length, JSON depth) and why no accepted customer id can
break or collide with the Redis key layout."""

from __future__ import annotations

import re

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.crc import key_slot

from stream.adapters.redis_alerts import customer_alerts_key
from stream.adapters.redis_keys import customer_key, key_tag, tag_id
from stream.core.decode import DecodeLimits, Rejection, decode_event, valid_customer_id
from stream.core.events import Event
from tests.factories import NOW_MS, default_model
from tests.profiles import examples

MODEL = default_model()
PREFIX = "es"


def _decode(doc: object, key: bytes = b"c1", limits: DecodeLimits | None = None) -> object:
    return decode_event(orjson.dumps(doc), key=key, topic_role="clickstream", model=MODEL,
                        now_ms=NOW_MS, fallback_id="f", limits=limits)  # fmt: skip


def _event(customer: str = "c1", **extra: object) -> dict[str, object]:
    return {"event_id": "e", "customer_id": customer, "type": "page_view", "timestamp": NOW_MS,
            **extra}  # fmt: skip


def _nested(depth: int) -> object:
    """An object whose objects and arrays nest ``depth`` levels (itself included)."""
    value: object = 1
    for level in range(depth):
        value = {"k": value} if (depth - level) % 2 else [value]
    return value


def test_json_depth_limit_is_configurable_and_exact() -> None:
    """A document nesting exactly the limit passes; one level more is rejected as too_deep."""
    limits = DecodeLimits(max_json_depth=5)
    assert isinstance(_decode(_event(properties=_nested(3)), limits=limits), Event)  # 4 levels
    assert isinstance(_decode(_event(properties=_nested(4)), limits=limits), Event)  # 5 levels
    deep = _decode(_event(properties=_nested(5)), limits=limits)  # 6 levels
    assert isinstance(deep, Rejection) and deep.reason == "too_deep"
    assert "limit of 5 levels" in deep.detail
    assert isinstance(_decode(_event(properties=_nested(31))), Event)  # the default is 32
    too_deep = _decode(_event(properties=_nested(32)))
    assert isinstance(too_deep, Rejection) and too_deep.reason == "too_deep"


def test_depth_beyond_the_parsers_own_ceiling_is_too_deep() -> None:
    """Nesting deeper than orjson can parse is reported as too_deep, not invalid_json."""
    raw = b'{"customer_id": "c1", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    got = decode_event(raw, key=b"c1", topic_role="clickstream", model=MODEL, now_ms=NOW_MS,
                       fallback_id="f")  # fmt: skip
    assert isinstance(got, Rejection) and got.reason == "too_deep"


def test_id_length_limit_is_configurable() -> None:
    """Ids up to max_id_length pass; longer customer and event ids are rejected."""
    limits = DecodeLimits(max_id_length=8)
    assert isinstance(_decode(_event("c" * 8), key=b"c" * 8, limits=limits), Event)
    long_id = _decode(_event("c" * 9), key=b"c" * 9, limits=limits)
    assert isinstance(long_id, Rejection) and long_id.reason == "invalid_customer_id"
    assert "1-8 characters" in long_id.detail
    long_event = _decode({**_event(), "event_id": "e" * 9}, limits=limits)
    assert isinstance(long_event, Rejection) and long_event.reason == "invalid_field"


def test_ids_with_control_characters_or_too_many_bytes_are_rejected() -> None:
    """Control characters (C0, DEL, C1) and empty ids are refused; so is an id within the
    character limit whose UTF-8 form exceeds the byte limit."""
    for bad in ["a\tb", "a\nb", "a\x00b", "a\x7fb", "a\x85b", ""]:
        assert not valid_customer_id(bad)
        got = _decode(_event(bad), key=bad.encode() or b"x")
        assert isinstance(got, Rejection)
        assert got.reason in ("invalid_customer_id", "missing_customer_id")
    limits = DecodeLimits(max_id_length=10, max_id_bytes=12)
    assert isinstance(_decode(_event("é" * 6), key=("é" * 6).encode(), limits=limits), Event)
    wide = _decode(_event("é" * 7), key=("é" * 7).encode(), limits=limits)  # 7 chars, 14 bytes
    assert isinstance(wide, Rejection) and wide.reason == "invalid_customer_id"


def test_unicode_braces_spaces_and_numbers_are_accepted() -> None:
    """Ids that used to be refused now decode, keyed by their UTF-8 text; an integer id is
    its decimal string (the Kafka key then is that string)."""
    for good in ["josé", "用户42", "a b", "{a}", "50%", "a\u200db"]:  # ZWJ stays valid
        got = _decode(_event(good), key=good.encode())
        assert isinstance(got, Event) and got.customer_id == good
    got = _decode(_event(42), key=b"42")  # type: ignore[arg-type]
    assert isinstance(got, Event) and got.customer_id == "42"
    for bad in [4.2, True, {"a": 1}]:
        refused = _decode(_event(bad), key=b"x")  # type: ignore[arg-type]
        assert isinstance(refused, Rejection) and refused.reason == "invalid_customer_id"


def _hash_tag(key: str) -> str:
    """The part of a key Redis Cluster hashes: between the first '{' and the next '}'."""
    start = key.find("{")
    end = key.find("}", start + 1)
    return key if start < 0 or end <= start + 1 else key[start + 1 : end]


def _customer_of(key: str) -> str | None:
    """Invert the layout: the customer a key belongs to (None for a non-customer key)."""
    head, brace, rest = key.partition(":{")
    if head != PREFIX or not brace:
        return None
    tag, _, tail = rest.partition("}")
    return tag_id(tag) if tail == "" else None


ids = st.text(alphabet=st.characters(blacklist_categories=("Cs",))
              | st.sampled_from("%{}7BDd25é用 "), min_size=1, max_size=140).filter(
    valid_customer_id)  # fmt: skip
old_ids = st.from_regex(re.compile(r"[!-z|~]{1,128}"), fullmatch=True)


@given(ids, ids)
@settings(max_examples=examples(1000))
def test_key_layout_is_injective_and_one_slot_per_customer(a: str, b: str) -> None:
    """For accepted ids the key decodes back to its customer, so two customers never share
    a key, a customer key never equals an index key, and the customer's hash and alert keys
    hash to one slot (redis-py's CRC16 ``key_slot``, which applies the hash-tag rule)."""
    for customer in (a, b):
        key = customer_key(PREFIX, customer)
        assert _customer_of(key) == customer
        assert _hash_tag(key) == key_tag(customer)
        assert "{" not in key_tag(customer) and "}" not in key_tag(customer)
        assert key_slot(key.encode()) == key_slot(customer_alerts_key(PREFIX, customer).encode())
        assert key_slot(key.encode()) == key_slot(key_tag(customer).encode())
    assert (customer_key(PREFIX, a) == customer_key(PREFIX, b)) == (a == b)
    assert _customer_of(f"{PREFIX}:rank") is None and _customer_of(f"{PREFIX}:due:3") is None


@given(old_ids)
@settings(max_examples=examples(500))
def test_ids_valid_before_keep_their_key_unless_they_contain_percent(customer: str) -> None:
    """Printable-ASCII ids without spaces or braces (the old rule) keep the old key
    ``<prefix>:{<id>}`` exactly, except those containing '%' (docs/reference/redis-keys.md:
    migration)."""
    old_key = f"{PREFIX}:{{{customer}}}"
    assert (customer_key(PREFIX, customer) == old_key) == ("%" not in customer)
    assert customer_alerts_key(PREFIX, customer) == (
        f"{PREFIX}:alerts:{{{customer}}}"
        if "%" not in customer
        else f"{PREFIX}:alerts:{{{key_tag(customer)}}}"
    )


def test_key_tag_examples() -> None:
    """The documented examples of the key rule."""
    assert customer_key("es", "josé") == "es:{josé}"
    assert customer_key("es", "{a}") == "es:{%7Ba%7D}"
    assert customer_key("es", "50%") == "es:{50%25}"
    assert customer_key("es", "%7B") == "es:{%257B}"
    assert tag_id("%257B") == "%7B"
