"""The fixed vocabularies of the product: dead-letter reasons, event outcomes, alert triggers.

They appear in Kafka headers, metrics labels and alert payloads, so they are part of the
contract (README); code names them through these ``Literal`` types, never as free strings.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "DEAD_LETTER_REASONS",
    "OUTCOMES",
    "DeadLetterReason",
    "Outcome",
    "Trigger",
]

DeadLetterReason = Literal[
    "too_large",
    "invalid_json",
    "too_deep",
    "not_an_object",
    "missing_customer_id",
    "invalid_customer_id",
    "key_mismatch",
    "unknown_type",
    "wrong_topic",
    "invalid_field",
    "invalid_timestamp",
    "future_timestamp",
    "too_old",
]
"""Why a message went to the dead-letter topic (header ``dlq.reason``)."""

Outcome = Literal["scored", "duplicate", "expired", "dead_lettered"]
"""What became of one input message (metric label ``outcome``)."""

Trigger = Literal["event", "window", "tenure", "onboarding"]
"""What moved a customer into an alert: its own events, its window ageing, a new tenure day,
or the end of its onboarding period."""

DEAD_LETTER_REASONS: tuple[DeadLetterReason, ...] = get_args(DeadLetterReason)
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
