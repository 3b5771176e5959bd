"""The read model behind the web page: every figure the JSON API serves comes from here.

It reads the Redis read contract only (customer hashes, the ranking, the recent-alert record,
the band-count snapshots, the segment rollups), never internal fields. What the contract
cannot offer (segments when the model has no dimensions, accounts) is reported as absent in
``features`` so the page hides it; a
new part of the contract plugs in as one more method here and one more flag.

The engagement index (band groups) is the pure core's: ``stream.core.segments``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from stream.adapters.redis_alerts import RecentAlerts
from stream.adapters.redis_store import RedisScoreStore
from stream.core.model import ScoringModel
from stream.core.segments import GROUPS, Group, engagement_index, index_group
from stream.web.band_history import BandHistory

__all__ = [
    "AT_RISK_ALERT_TYPES",
    "DAY_MS",
    "GROUPS",
    "Filter",
    "Group",
    "ReadModel",
    "engagement_index",
    "index_group",
    "trait_text",
]

DAY_MS = 24 * 3600 * 1000
# Alert types that put a customer on the at-risk list (score_drop joins when it exists).
AT_RISK_ALERT_TYPES = frozenset({"churn_risk_entered", "score_drop"})
_ALERT_SCAN = 2000
_FACET_VALUES = 50  # trait values per trait name offered as at-risk filters
_FACET_NAMES = 30  # trait names offered (the first seen, newest alerts first)
_FACET_ACCOUNTS = 200


class ReadModel:
    """Everything the page shows, read from one Redis prefix."""

    def __init__(
        self,
        model: ScoringModel,
        store: RedisScoreStore,
        history: BandHistory | None = None,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.model = model
        self.bands = model.bands
        self.store = store
        self.alerts: RecentAlerts = store.recent_alerts
        self.history = history
        self.clock_ms = clock_ms

    def features(self) -> dict[str, bool]:
        """Which optional parts of the read contract exist (the page shows only those)."""
        return {
            "band_history": self.history is not None,
            "score_history": True,
            "segments": self.model.segments is not None,
            "accounts": self.model.accounts is not None,
        }

    def band_scale(self) -> list[dict[str, Any]]:
        """The bands, lowest first, with their score ranges and index groups."""
        rows = []
        for name in self.bands.names:
            lower, upper = self.bands.score_range(name)
            rows.append({"name": name, "lower": lower, "upper": upper,
                         "group": index_group(self.bands, name)})  # fmt: skip
        return rows

    async def band_counts(self) -> dict[str, int]:
        return dict(await self.store.band_counts(self.bands))

    async def snapshot(self) -> bool:
        """Write the current band counts to the history (one point per slot)."""
        if self.history is None:
            return False
        return await self.history.write(await self.band_counts(), self.clock_ms())

    async def overview(self) -> dict[str, Any]:
        now = self.clock_ms()
        counts = await self.band_counts()
        history = []
        if self.history is not None:
            for point in await self.history.read(now - DAY_MS):
                history.append({**point, "index": engagement_index(self.bands, point["counts"])})
        return {
            "generated_at_ms": now,
            "model_version": self.model.version,
            "features": self.features(),
            "bands": [{**row, "count": counts.get(row["name"], 0)} for row in self.band_scale()],
            "total": sum(counts.values()),
            "index": engagement_index(self.bands, counts),
            "history": history,
            "alerts_24h": await self.alerts.count_since(now - DAY_MS),
            "latest_alerts": await self.alerts.since(now - DAY_MS, 8),
        }

    async def segments(self) -> dict[str, Any]:
        """Per segment dimension, one row per value (customers, mean score, band counts,
        engagement index), most customers first; no dimensions when the model has none."""
        settings = self.model.segments
        doc: dict[str, Any] = {"generated_at_ms": self.clock_ms(), "dimensions": {},
                               "max_values": settings.max_values if settings else 0}  # fmt: skip
        if settings is not None:
            rows = await self.store.segments.rows(settings, self.bands)
            doc["dimensions"] = {d: [r.as_json() for r in rows[d]] for d in settings.dimensions}
        return doc

    async def recent_alerts(self, hours: float = 24, limit: int = 200) -> dict[str, Any]:
        now = self.clock_ms()
        since = now - int(hours * 3600 * 1000)
        return {
            "generated_at_ms": now,
            "since_ms": since,
            "count": await self.alerts.count_since(since),
            "alerts": await self.alerts.since(since, limit),
        }

    async def at_risk(
        self, limit: int = 100, trait: str | None = None, account: str | None = None
    ) -> dict[str, Any]:
        """Customers newly at risk (by their latest at-risk alert, newest first), then the
        rest of the lowest band, lowest score first.

        ``trait`` (``name:value``, e.g. ``plan:pro``) and ``account`` keep only customers
        whose stored traits and account match. The work is bounded: the newest
        ``_ALERT_SCAN`` recent alerts and the ``limit`` lowest scores are read and filtered,
        never the whole population. ``facets`` lists the trait values and accounts among
        those candidates (before filtering), for the page's filter controls."""
        now = self.clock_ms()
        lowest = self.bands.names[0]
        wanted = Filter.parse(trait, account)
        latest: dict[str, dict[str, Any]] = {}
        for alert in await self.alerts.since(now - self.alerts.retention_ms, _ALERT_SCAN):
            if alert.get("type") in AT_RISK_ALERT_TYPES:
                latest.setdefault(str(alert["customer_id"]), alert)
        current = await self.store.rows(list(latest))
        candidates = []
        for customer_id, alert in latest.items():
            view = current.get(customer_id)
            if view is None or (alert["type"] == "churn_risk_entered" and view["band"] != lowest):
                continue
            candidates.append({**view, "alert": alert, "reasons": alert.get("reasons", [])})
        others = await self.store.top(self.bands, lowest, limit, lowest=True)
        more = [c for c, _ in others if c not in latest]
        found = await self.store.rows(more)
        candidates += [{**found[c], "alert": None, "reasons": []} for c in more if c in found]
        rows = [row for row in candidates if wanted.matches(row)]
        return {
            "generated_at_ms": now,
            "band": lowest,
            "in_band": (await self.band_counts()).get(lowest, 0),
            "features": self.features(),
            "filters": {"trait": trait or None, "account": account or None},
            "facets": _facets(candidates),
            "customers": rows[:limit],
        }

    async def upsell(self, limit: int = 50, next_in_line: int = 10) -> dict[str, Any]:
        """Power users (the highest band), highest score first; and the customers closest
        to it (the top of the band below)."""
        top_band, below = self.bands.names[-1], self.bands.names[-2:-1]
        ranked = await self.store.top(self.bands, top_band, limit)
        close = await self.store.top(self.bands, below[0], next_in_line) if below else []
        found = await self.store.rows([c for c, _ in ranked + close])
        return {
            "generated_at_ms": self.clock_ms(),
            "band": top_band,
            "in_band": (await self.band_counts()).get(top_band, 0),
            "customers": [found[c] for c, _ in ranked if c in found],
            "next_band": below[0] if below else None,
            "next_in_line": [found[c] for c, _ in close if c in found],
        }

    async def customer(self, customer_id: str) -> dict[str, Any] | None:
        view = await self.store.customer(customer_id)
        if view is None:
            return None
        return {
            **view,
            "group": index_group(self.bands, view["band"])
            if view["band"] in self.bands.names
            else None,
            "bands": self.band_scale(),
            "alerts": await self.alerts.of_customer(customer_id),
            "history": view.get("history"),  # with "trend" (from the store's view)
        }

    async def account(self, account_id: str) -> dict[str, Any] | None:
        """An account's view (``stream.adapters.redis_accounts``), None when unknown or
        when the model has no accounts."""
        settings = self.model.accounts
        if settings is None:
            return None
        view = await self.store.accounts.reads.view(account_id, settings.bands, self.clock_ms())
        if view is None:
            return None
        bands = [{"name": n, "lower": lo, "upper": up} for n in settings.bands.names
                 for lo, up in [settings.bands.score_range(n)]]  # fmt: skip
        return {**view, "bands": bands}

    async def accounts(self, band: str | None = None, limit: int = 100) -> dict[str, Any]:
        """Accounts in a band (default: the lowest, at risk), lowest score first."""
        settings = self.model.accounts
        if settings is None:
            return {"enabled": False, "band": band, "accounts": [], "counts": {}}
        chosen = band if band in settings.bands.names else settings.bands.names[0]
        return {
            "enabled": True,
            "generated_at_ms": self.clock_ms(),
            "band": chosen,
            "counts": await self.store.accounts.reads.band_counts(settings.bands),
            "accounts": await self.store.accounts.reads.listing(settings.bands, chosen, limit),
        }


@dataclass(frozen=True, slots=True)
class Filter:
    """An at-risk filter: a trait ``name`` equal to ``value`` and/or an ``account``."""

    name: str | None = None
    value: str | None = None
    account: str | None = None

    @staticmethod
    def parse(trait: str | None, account: str | None) -> Filter:
        """``trait`` is ``name:value`` (the value may hold further colons); a bare ``name``
        matches customers that have the trait at all. Empty strings filter nothing."""
        name, value = None, None
        if trait:
            name, sep, rest = trait.partition(":")
            value = rest if sep else None
        return Filter(name or None, value, account or None)

    def matches(self, row: Mapping[str, Any]) -> bool:
        if self.account is not None and row.get("account") != self.account:
            return False
        if self.name is None:
            return True
        traits = row.get("traits") or {}
        if self.name not in traits:
            return False
        return self.value is None or trait_text(traits[self.name]) == self.value


def trait_text(value: Any) -> str:
    """A trait value as the filters compare it: strings as they are, anything else as JSON
    (``true``, ``42``)."""
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _facets(rows: Sequence[Mapping[str, Any]], per_trait: int = _FACET_VALUES) -> dict[str, Any]:
    """Trait values (scalar ones; at most ``_FACET_NAMES`` names and ``per_trait`` values per
    name) and accounts (at most ``_FACET_ACCOUNTS``) in ``rows``."""
    traits: dict[str, set[str]] = {}
    accounts: set[str] = set()
    for row in rows:
        if row.get("account"):
            accounts.add(row["account"])
        for name, value in (row.get("traits") or {}).items():
            if isinstance(value, (dict, list)) or value is None:
                continue
            if name not in traits and len(traits) >= _FACET_NAMES:
                continue
            values = traits.setdefault(name, set())
            if len(values) < per_trait:
                values.add(trait_text(value))
    return {
        "traits": {name: sorted(values) for name, values in sorted(traits.items())},
        "accounts": sorted(accounts)[:_FACET_ACCOUNTS],
    }
