"""Account rollups after a batch: set the batch's customers' scores in their accounts,
evaluate each touched account, commit each change once, and publish its alerts (each fires
once per crossing and is published at least once).

Runs after the customers' commits and index writes (``BatchProcessor._advance``), so a crash
anywhere replays the batch and this again: ``roll_accounts`` is idempotent (setting a user's
score to what it already is changes nothing), an account whose score and user count did not
change since its last evaluation is not evaluated (``stream.core.accounts.evaluate``), and
an account's outbox is returned by every roll-up until it is published and cleared, so an
alert committed before a crash is published on replay with its deterministic id. Accounts
are shared across partitions (and workers): the commit checks the account's version and a
conflict re-reads and re-evaluates the account.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import orjson

from stream.adapters.codec import iso_ms
from stream.adapters.metrics import Metrics
from stream.core.account_settings import AccountSettings
from stream.core.accounts import AccountAlert, evaluate
from stream.core.model import ScoringModel
from stream.errors import ProcessingError
from stream.ports import (
    AccountCommit,
    AccountLoaded,
    IndexEntry,
    OutboxAlert,
    OutMessage,
    Publisher,
    ScoreStore,
)

__all__ = ["account_alert_to_json", "roll_up_accounts", "seed_accounts"]

_MAX_ROUNDS = 10


def account_alert_to_json(alert: AccountAlert) -> dict[str, Any]:
    """The published account alert (docs/reference/alerts.md: ``scope: account``)."""

    def points(cp: int | None) -> float | None:
        return None if cp is None else cp / 100

    return {
        "scope": "account",
        "alert_id": alert.alert_id,
        "type": alert.type,
        "rule": alert.rule,
        "account_id": alert.account_id,
        "previous_band": alert.previous_band,
        "band": alert.band,
        "previous_score": points(alert.previous_score_cp),
        "score": points(alert.score_cp),
        "reference_score": points(alert.reference_score_cp),
        "users": alert.users,
        "occurred_at": iso_ms(alert.occurred_at_ms),
        "occurred_at_ms": alert.occurred_at_ms,
        "trigger": "account",
        "model_version": alert.model_version,
    }


async def roll_up_accounts(
    model: ScoringModel,
    store: ScoreStore,
    publisher: Publisher,
    alerts_topic: str,
    entries: Sequence[IndexEntry],
    now_ms: int,
    metrics: Metrics | None = None,
    members: dict[str, str] | None = None,
) -> list[OutboxAlert]:
    """Roll the entries' scores into their accounts; returns the account alerts published.

    ``members`` is the caller's cache of which account the store holds each customer in
    (exact while the caller owns the customers' partitions: drop it on a rebalance)."""
    settings = model.accounts
    if settings is None or not any(e.account is not None for e in entries):
        return []
    loaded = await store.roll_accounts(entries, settings.top_needed, members=members)
    outboxes: dict[str, list[OutboxAlert]] = {}
    for _ in range(_MAX_ROUNDS):
        commits = []
        for account_id, item in loaded.items():
            commit, outbox = _evaluate(model, settings, account_id, item, now_ms)
            outboxes[account_id] = outbox
            if commit is not None:
                commits.append(commit)
        conflicts = await store.commit_accounts(commits)
        if not conflicts:
            break
        if metrics is not None:
            metrics.conflicts.inc(len(conflicts))
        loaded = await store.roll_accounts((), settings.top_needed, also=conflicts)
    else:
        raise ProcessingError("accounts kept conflicting; the batch will be retried")
    return await _publish(store, publisher, alerts_topic, outboxes, metrics)


def _evaluate(
    model: ScoringModel, settings: AccountSettings, account_id: str, item: AccountLoaded,
    now_ms: int,
) -> tuple[AccountCommit | None, list[OutboxAlert]]:  # fmt: skip
    result = evaluate(settings, account_id, item.state, item.rollup, now_ms, model.bucket_ms,
                      model.version)  # fmt: skip
    if not result.changed:
        return None, item.outbox
    fresh = [account_alert_to_json(a) for a in result.alerts]
    outbox = item.outbox + fresh
    commit = AccountCommit(account_id, item.version, result.state, settings.aggregate,
                           model.version, model.bucket_ms, outbox, fresh)  # fmt: skip
    return commit, outbox


async def _publish(
    store: ScoreStore,
    publisher: Publisher,
    topic: str,
    outboxes: dict[str, list[OutboxAlert]],
    metrics: Metrics | None,
) -> list[OutboxAlert]:
    waiting = {a: box for a, box in outboxes.items() if box}
    if not waiting:
        return []
    messages = [OutMessage(topic, account_id.encode(), orjson.dumps(alert))
                for account_id, box in waiting.items() for alert in box]  # fmt: skip
    await publisher.publish(messages)
    await store.clear_account_outbox(waiting)
    published = [alert for box in waiting.values() for alert in box]
    if metrics is not None:
        for alert in published:
            metrics.alerts.labels(alert["type"], alert["trigger"]).inc()
            metrics.alerts_by_scope.labels("account").inc()
    return published


class _Silent:
    """A publisher for roll-ups that cannot alert: anything to publish is a bug."""

    async def publish(self, messages: Sequence[OutMessage]) -> None:
        raise ProcessingError("a seeding roll-up tried to publish alerts (they are off there)")


async def seed_accounts(
    model: ScoringModel, store: ScoreStore, entries: Sequence[IndexEntry], now_ms: int
) -> None:
    """Roll customers written by ``engagement rescore`` or ``backfill`` into their accounts,
    with the account alert rules off (history is replayed, not live: nothing is published;
    the accounts' bands are then known, so the worker's next changes alert as usual)."""
    settings = model.accounts
    if settings is None:
        return
    quiet = replace(settings, churn_risk=None, score_drop=None)
    await roll_up_accounts(replace(model, accounts=quiet), store, _Silent(), "", entries, now_ms)
