"""The profile fold: last write by event time wins per trait and for the account, whatever
the order the calls are applied in, and the bounds hold."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from stream.core.events import Event
from stream.core.profile import MAX_TRAITS, Profile, apply_profile
from tests.profiles import examples

calls = st.lists(
    st.tuples(
        st.integers(1, 50),  # event time (distinct below, so the winner is unique)
        st.dictionaries(st.sampled_from("abcde"), st.integers(-(2**63), 2**63 - 1), max_size=3),
        st.none() | st.sampled_from(["acme", "globex", "42"]),
    ),
    max_size=12,
    unique_by=lambda c: c[0],
)


def _events(rows: list[tuple[int, dict[str, Any], str | None]]) -> list[Event]:
    return [Event(f"e{at}", "c", "identify", at, traits=traits, account=account)
            for at, traits, account in rows]  # fmt: skip


def _reference(
    rows: list[tuple[int, dict[str, Any], str | None]],
) -> tuple[dict[str, Any], str | None]:
    """From scratch: for each trait and for the account, the value of the latest call."""
    traits: dict[str, Any] = {}
    account = None
    for _, values, acct in sorted(rows):
        traits.update(values)
        account = acct if acct is not None else account
    return traits, account


@given(calls, st.randoms())
@settings(max_examples=examples(300))
def test_any_order_gives_the_latest_values(rows: list[Any], rnd: Any) -> None:
    """Applied in any order, one by one or together, the profile equals the reference."""
    shuffled = list(rows)
    rnd.shuffle(shuffled)
    profile = Profile()
    for event in _events(shuffled):
        profile = apply_profile(profile, [event])
    traits, account = _reference(rows)
    assert dict(profile.traits) == traits and profile.account == account
    assert apply_profile(Profile(), _events(rows)) == profile


def test_bounds_drop_extra_traits_and_large_values() -> None:
    """At most MAX_TRAITS names are kept; oversized values and names are dropped."""
    many = {f"t{i}": i for i in range(MAX_TRAITS + 5)}
    big = {"blob": "x" * 2000, "k" * 200: 1, "ok": True}
    profile = apply_profile(Profile(), [Event("a", "c", "identify", 1, traits=big),
                                        Event("b", "c", "identify", 2, traits=many)])  # fmt: skip
    assert len(profile.traits) == MAX_TRAITS and profile.traits["ok"] is True
    assert "blob" not in profile.traits and "k" * 200 not in profile.traits
