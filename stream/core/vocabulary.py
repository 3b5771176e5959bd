"""The fixed vocabularies of the product: dead-letter reasons, event outcomes, alert triggers.

They appear in Kafka headers, metrics labels and alert payloads, so they are part of the
contract (docs/reference/); code names them through these ``Literal`` types, never as free strings.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "DEAD_LETTER_REASONS",
    "IGNORED_REASONS",
    "OUTCOMES",
    "DeadLetterReason",
    "IgnoredReason",
    "Outcome",
    "Trigger",
    "UnmappedPolicy",
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

IgnoredReason = Literal["unmapped_track", "unscored_call"]
"""Why a message was skipped without a dead letter (metric ``engagement_ignored_total``):
a ``track`` name the model does not map, or a Segment call type it does not score
(``page``/``screen`` without ``page_view`` in the model, ``alias``)."""

UnmappedPolicy = Literal["ignore", "dead_letter"]
"""What the model's ``unmapped`` key does with those messages (``ignore`` by default)."""

Outcome = Literal["scored", "duplicate", "expired", "dead_lettered", "ignored", "profiled"]
"""What became of one input message (metric label ``outcome``): ``profiled`` is an applied
``identify`` or ``group`` call (traits or account stored, no score change)."""

Trigger = Literal["event", "window", "tenure", "onboarding"]
"""What moved a customer into an alert: its own events, its window ageing, a new tenure day,
or the end of its onboarding period."""

DEAD_LETTER_REASONS: tuple[DeadLetterReason, ...] = get_args(DeadLetterReason)
IGNORED_REASONS: tuple[IgnoredReason, ...] = get_args(IgnoredReason)
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
