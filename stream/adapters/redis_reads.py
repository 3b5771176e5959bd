"""Reads of the score table's customers, for the worker, the CLI and the web page alike:
what the worker loads before evaluating a customer, the stored customers for ``rescore``,
one customer's public view (``engagement score``, ``/customers/{id}``, the page's customer
view) and the public rows of several customers in one round trip (the page's lists).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from stream.adapters.codec import iso_ms, points
from stream.adapters.redis_fields import (
    LOADED_FIELDS,
    history_from_bytes,
    loaded_from_fields,
    markers_from_json,
    profile_from_fields,
    state_codec,
    state_from_fields,
)
from stream.adapters.redis_keys import customer_key
from stream.adapters.redis_state import unpack_state
from stream.core.customer import CustomerState
from stream.core.profile import Profile
from stream.core.score_history import factor_changes, trend
from stream.ports import Loaded

__all__ = ["CustomerReads", "Stored", "history_view"]

_SPARK_POINTS = 30  # the last 30 history points (days, with the shipped model) per sparkline
_ROW_FIELDS = ("score", "band", "updated_at", "model_version", "breakdown", "history", "traits",
               "account")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Stored:
    """A customer as stored, with the input partition it belongs to and its traits and
    account (for ``rescore``)."""

    state: CustomerState
    partition: int | None
    profile: Profile = field(default_factory=Profile)


class CustomerReads:
    """Reads of one prefix's customers; every call is one pipelined round trip."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    async def load(self, customers: Iterable[str]) -> dict[str, Loaded]:
        """State, version, pending outbox, profile and applied record of each customer."""
        decode = state_codec().state_from_fields
        return {
            c: loaded_from_fields(raw, decode) for c, raw in await self._loaded_fields(customers)
        }

    async def stored(self, customer_ids: Sequence[str]) -> dict[str, Stored]:
        """State and partition of those of ``customer_ids`` that are stored."""
        found = {}
        for customer_id, raw in await self._loaded_fields(customer_ids):
            if raw["state"] is None:  # not stored
                continue
            partition = unpack_state(raw["state"]).partition
            found[customer_id] = Stored(state_from_fields(raw), partition, profile_from_fields(raw))
        return found

    async def customer(self, customer_id: str, now_ms: int | None = None) -> dict[str, Any] | None:
        """The public view of one customer, or None when unknown; its trend is taken at
        ``now_ms`` (default: the wall clock)."""
        raw = await self.client.hgetall(customer_key(self.prefix, customer_id))
        if not raw:
            return None
        fields = {k.decode(): v for k, v in raw.items()}
        return {
            "customer_id": customer_id,
            "score": float(fields.get("score", b"0")),
            "band": fields.get("band", b"").decode(),
            "updated_at": fields.get("updated_at", b"").decode(),
            "breakdown": orjson.loads(fields.get("breakdown", b"{}")),
            "model_version": fields.get("model_version", b"").decode(),
            **history_view(fields, now_ms if now_ms is not None else int(time.time() * 1000)),
            "traits": orjson.loads(fields.get("traits", b"{}")),
            "account": fields["account"].decode() if "account" in fields else None,
        }

    async def rows(self, customer_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The public row of several customers (score, band, top factors, a sparkline of
        the last history points, traits, account); unknown ones left out."""
        if not customer_ids:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for customer_id in customer_ids:
            pipe.hmget(customer_key(self.prefix, customer_id), _ROW_FIELDS)
        found = {}
        for customer_id, values in zip(customer_ids, await pipe.execute(), strict=True):
            if values[0] is None:
                continue
            score, band, updated, version, breakdown, history, traits, account = (
                v or b"" for v in values
            )
            found[customer_id] = {
                "customer_id": customer_id,
                "score": float(score),
                "band": band.decode(),
                "updated_at": updated.decode(),
                "model_version": version.decode(),
                "top_factors": _top_factors(orjson.loads(breakdown or b"{}")),
                "trend": [cp / 100 for _, cp in history_from_bytes(history)[1][-_SPARK_POINTS:]],
                "traits": orjson.loads(traits or b"{}"),
                "account": account.decode() or None,
            }
        return found

    async def _loaded_fields(self, customers: Iterable[str]) -> list[tuple[str, dict[str, Any]]]:
        names = list(customers)
        pipe = self.client.pipeline(transaction=False)
        for customer_id in names:
            pipe.hmget(customer_key(self.prefix, customer_id), LOADED_FIELDS)
        replies = await pipe.execute()
        return [(c, dict(zip(LOADED_FIELDS, values, strict=True)))
                for c, values in zip(names, replies, strict=True)]  # fmt: skip


def history_view(fields: Mapping[str, bytes], now_ms: int) -> dict[str, Any]:
    """The ``history`` and ``trend`` members of a customer's public view, at ``now_ms``.

    ``trend.change_7d``/``change_30d`` are the score now minus the score 7/30 days earlier
    (None without a point that old); ``top_factor`` is the factor whose raw points over the
    last 7 days changed most against the 7 days before, from the window's buckets;
    ``factor_changes_7d`` is that change for every factor with points in either week.
    """
    bucket_ms, kept = history_from_bytes(fields.get("history"))
    if not bucket_ms:
        return {"history": None, "trend": None}
    markers = markers_from_json(fields.get("history_markers"))
    raw = fields.get("state")
    buckets = unpack_state(raw).buckets if raw else {}
    found = trend(kept, buckets, bucket_ms, now_ms, 86_400_000)

    def change(cp: int | None) -> float | None:
        return None if cp is None else points(cp)

    return {
        "history": {
            "bucket_ms": bucket_ms,
            "points": [[start, points(score)] for start, score in kept],
            "markers": [
                {"at": iso_ms(at), "at_ms": at, "model_version": version} for at, version in markers
            ],
        },
        "trend": {
            "change_7d": change(found.change_7d_cp),
            "change_30d": change(found.change_30d_cp),
            "top_factor": found.top_factor,
            "top_factor_change": points(found.top_factor_change_cp),
            "factor_changes_7d": {
                factor: points(cp)
                for factor, cp in sorted(
                    factor_changes(buckets, bucket_ms, now_ms, 86_400_000).items()
                )
            },
        },
    }


def _top_factors(breakdown: Mapping[str, float], count: int = 3) -> list[dict[str, float | str]]:
    ranked = sorted(breakdown.items(), key=lambda kv: -abs(kv[1]))[:count]
    return [{"factor": f, "points": p} for f, p in ranked if p]
