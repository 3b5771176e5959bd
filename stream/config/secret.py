"""A secret setting (password, token) that never shows its value when printed or logged."""

from __future__ import annotations

import hmac

__all__ = ["MASK", "Secret"]

MASK = "***"


class Secret:
    """Holds a secret; ``str``/``repr`` show ``***``, only ``reveal()`` gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself, for handing to a client library."""
        return self._value

    def matches(self, candidate: str) -> bool:
        """Compare with ``candidate`` in time independent of where they differ."""
        return hmac.compare_digest(self._value.encode(), candidate.encode())

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    def __str__(self) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and self.matches(other._value)

    def __hash__(self) -> int:
        return hash(Secret)
