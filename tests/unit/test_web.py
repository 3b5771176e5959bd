"""The web page's pure parts: the engagement index and the session cookie."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.config.secret import Secret
from stream.core.bands import DEFAULT_BANDS, Band, BandScale
from stream.web.auth import SESSION_SECONDS, allowed, issue_session, session_valid
from stream.web.readmodel import Filter, engagement_index, index_group

TOKEN = Secret("unit-test-token-0123456789")
NOW_S = 1_800_000_000


def reference_index(counts: dict[str, int]) -> dict[str, float]:
    """From scratch, with the documented mapping of the shipped bands."""
    engaged = counts["power_user"] + counts["highly_engaged"]
    responsive = counts["somewhat_engaged"]
    disengaged = counts["very_disengaged"] + counts["churn_risk"]
    total = engaged + responsive + disengaged
    if total == 0:
        return {"engaged": 0.0, "responsive": 0.0, "disengaged": 0.0}
    return {"engaged": 100 * engaged / total, "responsive": 100 * responsive / total,
            "disengaged": 100 * disengaged / total}  # fmt: skip


@given(st.fixed_dictionaries({name: st.integers(0, 10**7) for name in DEFAULT_BANDS.names}))
def test_index_matches_reference(counts: dict[str, int]) -> None:
    index = engagement_index(DEFAULT_BANDS, counts)
    expected = reference_index(counts)
    assert index == pytest.approx(expected)
    if sum(counts.values()):
        assert sum(index.values()) == pytest.approx(100.0)


def test_other_bands_are_grouped_by_position() -> None:
    spec = [("low", 0), ("lowish", 10), ("mid", 20), ("high", 30), ("top", None)]
    bands = BandScale(tuple(Band(name, upper) for name, upper in spec))
    groups = [index_group(bands, name) for name in bands.names]
    assert groups == ["disengaged", "disengaged", "responsive", "engaged", "engaged"]
    assert engagement_index(bands, {"low": 1, "mid": 1, "top": 2}) == pytest.approx(
        {"disengaged": 25.0, "responsive": 25.0, "engaged": 50.0}
    )


def test_session_cookie() -> None:
    cookie = issue_session(TOKEN, NOW_S)
    assert "unit-test-token" not in cookie
    assert session_valid(TOKEN, cookie, NOW_S + 60)
    assert not session_valid(TOKEN, cookie, NOW_S + SESSION_SECONDS + 1)  # lapsed
    assert not session_valid(TOKEN, cookie, NOW_S - 60)  # issued in the future
    assert not session_valid(Secret("another-token-0123456789"), cookie, NOW_S)
    issued, _, signature = cookie.partition(".")
    assert not session_valid(TOKEN, f"{int(issued) + 1}.{signature}", NOW_S + 60)  # moved
    assert not session_valid(TOKEN, f"{issued}.{signature[:-1]}0", NOW_S + 60)
    for junk in (None, "", ".", "abc.def", cookie + "x"):
        assert not session_valid(TOKEN, junk, NOW_S)


def test_allowed() -> None:
    assert allowed(None, None, None, NOW_S)  # no token configured: open
    assert allowed(TOKEN, f"Bearer {TOKEN.reveal()}", None, NOW_S)
    assert not allowed(TOKEN, "Bearer wrong", None, NOW_S)
    assert allowed(TOKEN, None, issue_session(TOKEN, NOW_S), NOW_S)
    assert not allowed(TOKEN, None, None, NOW_S)


_TRAIT_VALUES = st.one_of(st.text(max_size=4), st.integers(-3, 3), st.booleans())


@given(
    st.dictionaries(st.sampled_from(["plan", "country", "a:b"]), _TRAIT_VALUES, max_size=3),
    st.one_of(st.none(), st.sampled_from(["acme", "globex"])),
    st.one_of(st.none(), st.text(max_size=8)),
    st.one_of(st.none(), st.sampled_from(["acme", "globex", ""])),
)
def test_at_risk_filter_matches_reference(
    traits: dict[str, object], account: str | None, trait: str | None, wanted: str | None
) -> None:
    """``Filter`` against a from-scratch reading of ``trait=name:value&account=...``."""
    row = {"traits": traits, "account": account}
    expected = True
    if wanted:
        expected = account == wanted
    if trait:
        name, sep, value = trait.partition(":")
        if name:
            if name not in traits:
                expected = False
            elif sep:
                shown = traits[name]
                text = shown if isinstance(shown, str) else str(shown).lower()
                expected = expected and text == value
    assert Filter.parse(trait, wanted).matches(row) == expected
