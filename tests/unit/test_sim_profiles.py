"""The simulator's Segment profile: accounts, traits, and calls the worker accepts."""

from __future__ import annotations

import random
from collections import Counter, defaultdict

import orjson

from devtools.sim.personas import (
    CHANNELS,
    COUNTRIES,
    PLANS,
    make_customers,
    profile_calls,
    render,
)
from stream.core.decode import decode_event
from stream.core.events import Event
from tests.factories import NOW_MS, default_model

MODEL = default_model()


def test_accounts_hold_one_to_six_users_of_one_plan_and_country() -> None:
    people = make_customers(200, random.Random(7), 48)
    members: dict[str, list[str]] = defaultdict(list)
    for person in people:
        assert person.account is not None
        assert person.traits["plan"] in PLANS and person.traits["country"] in COUNTRIES
        assert person.traits["channel"] in CHANNELS
        members[person.account].append(person.customer_id)
    assert all(1 <= len(ids) <= 6 for ids in members.values())
    assert 200 / 6 <= len(members) < 200
    by_id = {p.customer_id: p for p in people}
    for ids in members.values():
        assert len({(by_id[c].traits["plan"], by_id[c].traits["country"]) for c in ids}) == 1
        assert len({by_id[c].persona for c in ids}) == 1
    plans = Counter(p.traits["plan"] for p in people if p.persona == "churning")
    assert plans["free"] > plans["enterprise"]


def test_profiles_leave_the_event_stream_of_a_seed_unchanged() -> None:
    """Profiles come from their own generator: ids, personas and turn days are those the
    seed gave before profiles existed (drawn here without them)."""
    people = make_customers(50, random.Random(3), 30)
    rng = random.Random(3)
    for person in people:
        low_high = {"power": (0.9, 1.0), "loyal": (0.9, 1.0), "declining": (0.15, 0.3),
                    "silent": (0.1, 0.25), "churning": (0.1, 0.3)}[person.persona]  # fmt: skip
        assert person.turn_day == max(2, int(30 * rng.uniform(*low_high)))


def test_profile_calls_decode_as_identify_and_group_on_the_clickstream() -> None:
    person = make_customers(5, random.Random(1), 10)[0]
    calls = profile_calls(person, 0, NOW_MS)
    assert profile_calls(person, 1, NOW_MS) == []
    assert [c.document["type"] for c in calls] == ["identify", "group"]
    decoded = [
        decode_event(
            orjson.dumps(c.document),
            key=person.customer_id.encode(),
            topic_role=c.role,
            model=MODEL,
            now_ms=NOW_MS,
            fallback_id="x",
        )
        for c in calls
    ]
    assert all(isinstance(d, Event) for d in decoded)
    identify, group = decoded
    assert isinstance(identify, Event) and identify.traits == dict(person.traits)
    assert isinstance(group, Event) and group.account == person.account
    track = next(
        e for e in (render(person, "page_view", 0.0, NOW_MS, random.Random(s)) for s in range(40))
        if e.document.get("type") == "track"
    )  # fmt: skip
    got = decode_event(
        orjson.dumps(track.document),
        key=person.customer_id.encode(),
        topic_role=track.role,
        model=MODEL,
        now_ms=NOW_MS,
        fallback_id="x",
    )
    assert isinstance(got, Event) and got.account == person.account
