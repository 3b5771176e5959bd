"""The optional bearer token of the query endpoints, compared in constant time."""

from __future__ import annotations

from stream.config.secret import Secret

__all__ = ["CHALLENGE", "bearer_allows"]

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="engagement-stream"'}


def bearer_allows(authorization: str | None, token: Secret | None) -> bool:
    """Whether an ``Authorization`` header carries the token (always true without one)."""
    if token is None:
        return True
    scheme, _, presented = (authorization or "").strip().partition(" ")
    # Compare even when the scheme is wrong, so the timing says nothing about the token.
    matches = token.matches(presented.strip())
    return scheme.lower() == "bearer" and matches
