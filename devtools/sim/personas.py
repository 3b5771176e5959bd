"""Customer personas and the events they generate, as pure functions of time and chance.

Time is measured in model "days" (the model's bucket), so the same personas drive a
30-day production model or the one-minute demo model.

Every customer also has a profile, sent as Segment calls on its first day: an ``identify``
with the traits ``plan`` (free/pro/enterprise), ``country`` and ``channel``, and a ``group``
call putting it in a B2B account of one to six users (Segment ``track`` calls carry the
account as ``context.groupId`` too). Users of an account share its plan and country;
accounts are formed within a persona, and the plan leans with the persona (power users are
mostly on paid plans, churning ones mostly free), so segments and accounts differ.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = [
    "CHANNELS",
    "COUNTRIES",
    "PERSONAS",
    "PLANS",
    "Customer",
    "Emitted",
    "day_events",
    "make_customers",
    "profile_calls",
]

PERSONAS = ("power", "loyal", "declining", "silent", "churning")
PLANS = ("free", "pro", "enterprise")
COUNTRIES = ("US", "DE", "GB", "FR", "BR", "IN", "JP")
CHANNELS = ("organic", "paid_search", "referral", "partner", "email")
_PLAN_WEIGHTS = {  # free, pro, enterprise
    "power": (1, 4, 5),
    "loyal": (3, 5, 2),
    "declining": (5, 4, 1),
    "silent": (7, 3, 0),
    "churning": (8, 2, 0),
}
_ACCOUNT_SIZE = (1, 6)


@dataclass(frozen=True, slots=True)
class Customer:
    """A simulated customer: id, persona and the day its story turns."""

    customer_id: str
    persona: str
    turn_day: int
    account: str | None = None
    traits: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Emitted:
    """One event to produce: topic role, customer, and the native event document."""

    role: str
    customer_id: str
    document: dict[str, Any]


_TURN_SHARE = {
    "power": (0.9, 1.0),
    "loyal": (0.9, 1.0),
    "declining": (0.15, 0.3),
    "silent": (0.1, 0.25),
    "churning": (0.1, 0.3),
}


def make_customers(count: int, rng: random.Random, days: int) -> list[Customer]:
    """``count`` customers spread over the personas (at least one of each when count >= 5)."""
    customers = []
    for index in range(count):
        persona = PERSONAS[index % len(PERSONAS)]
        low, high = _TURN_SHARE[persona]
        turn = max(2, int(days * rng.uniform(low, high)))
        customers.append(Customer(f"cust-{persona}-{index:05d}", persona, turn))
    return _with_profiles(customers)


def _with_profiles(customers: list[Customer]) -> list[Customer]:
    """Accounts of 1-6 users of one persona, with a plan and country each; a channel per
    user. Drawn from their own generator, so the events stay those of the same seed."""
    rng = random.Random(len(customers))
    profiled: dict[str, Customer] = {}
    number = 0
    for persona in PERSONAS:
        members = [c for c in customers if c.persona == persona]
        while members:
            size = rng.randint(*_ACCOUNT_SIZE)
            group, members = members[:size], members[size:]
            number += 1
            plan = rng.choices(PLANS, weights=_PLAN_WEIGHTS[persona])[0]
            country = rng.choice(COUNTRIES)
            for member in group:
                traits = {"plan": plan, "country": country, "channel": rng.choice(CHANNELS)}
                profiled[member.customer_id] = replace(
                    member, account=f"acct-{number:04d}", traits=traits
                )
    return [profiled[c.customer_id] for c in customers]


def profile_calls(customer: Customer, day: int, timestamp_ms: int) -> list[Emitted]:
    """The Segment ``identify`` and ``group`` calls of a customer on ``day`` (its first day
    only), on the clickstream topic; their message ids are fixed, so a re-send is a
    duplicate."""
    if day != 0 or (not customer.traits and customer.account is None):
        return []
    base = {"userId": customer.customer_id, "timestamp": timestamp_ms,
            "context": {"library": {"name": "engagement-simulator"}}}  # fmt: skip
    calls = []
    if customer.traits:
        calls.append({**base, "type": "identify", "messageId": f"identify-{customer.customer_id}",
                      "traits": dict(customer.traits)})  # fmt: skip
    if customer.account is not None:
        calls.append({**base, "type": "group", "messageId": f"group-{customer.customer_id}",
                      "groupId": customer.account})  # fmt: skip
    return [Emitted("clickstream", customer.customer_id, doc) for doc in calls]


def day_events(customer: Customer, day: int, rng: random.Random) -> list[tuple[str, float]]:
    """The (event type, property seed) pairs a customer produces on ``day``."""
    persona, turn = customer.persona, customer.turn_day
    events: list[tuple[str, float]] = [("app_install", 0.0)] if day == 0 else []
    if persona == "power":
        return events + _active_day(rng, sessions=2, views=8, extra=3)
    if persona == "loyal":
        return events + (_active_day(rng, 1, 3, 1) if rng.random() < 0.15 else [])
    if persona == "declining":
        chance = max(0.0, 0.7 * (1.0 - day / (turn * 2)))
        return events + (_active_day(rng, 1, 3, 0) if rng.random() < chance else [])
    if persona == "silent":
        return events + (_active_day(rng, 1, 2, 0) if day < turn and rng.random() < 0.5 else [])
    if day < turn:
        return events + (_active_day(rng, 1, 2, 0) if rng.random() < 0.3 else [])
    if day == turn:
        return [("session_end", 0.0), ("survey_response", 2.0), ("app_uninstall", 0.0)]
    return []


def _active_day(
    rng: random.Random, sessions: int, views: int, extra: int
) -> list[tuple[str, float]]:
    events: list[tuple[str, float]] = []
    for _ in range(sessions):
        events.append(("session_start", 0.0))
        events += [("page_view", 0.0)] * rng.randint(max(1, views // 2), views)
        events += [("click", 0.0)] * rng.randint(0, views // 2)
        events.append(("session_end", rng.uniform(60, 900)))
    for _ in range(extra):
        events.append((rng.choice(["feature_used", "like", "comment", "share", "app_open"]), 0.0))
    if extra and rng.random() < 0.1:
        events.append(("conversion", 0.0))
    if extra and rng.random() < 0.05:
        events.append(("survey_response", 10.0))
    return events


_ROLES = {
    "session_start": "sessions",
    "session_end": "sessions",
    "app_install": "app_installs",
    "app_open": "app_installs",
    "app_uninstall": "app_installs",
}
_SEGMENT_NAMES = {
    "page_view": "Page Viewed",
    "click": "Button Clicked",
    "feature_used": "Feature Used",
    "session_start": "Session Started",
    "app_open": "Application Opened",
}


def render(
    customer: Customer, event_type: str, seed: float, timestamp_ms: int, rng: random.Random
) -> Emitted:
    """Build the message document, in the native shape or, sometimes, as a Segment track."""
    properties: dict[str, Any] = {}
    if event_type == "session_end":
        bounced = seed == 0.0
        properties = {
            "duration_seconds": 4 if bounced else round(seed, 1),
            "page_count": 1 if bounced else rng.randint(2, 12),
        }
    elif event_type == "survey_response":
        properties = {"nps": int(seed)}
    role = _ROLES.get(event_type, "clickstream")
    event_id = str(uuid.UUID(int=rng.getrandbits(128)))
    if event_type in _SEGMENT_NAMES and rng.random() < 0.3:
        document: dict[str, Any] = {
            "type": "track",
            "event": _SEGMENT_NAMES[event_type],
            "userId": customer.customer_id,
            "messageId": event_id,
            "timestamp": timestamp_ms,
            "properties": properties,
            "context": {"library": {"name": "engagement-simulator"}},
        }
        if customer.account is not None:
            document["context"]["groupId"] = customer.account
    else:
        document = {
            "event_id": event_id,
            "customer_id": customer.customer_id,
            "type": event_type,
            "timestamp": timestamp_ms,
            "properties": properties,
        }
    return Emitted(role, customer.customer_id, document)
