"""``engagement account ID`` and ``engagement accounts``: an account's score, band, users,
history and alerts, and the accounts in a band (the accounts at risk by default)."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from stream.cli.store import query_store, require_valid_id
from stream.config.errors import ConfigError
from stream.config.model_file import load_model
from stream.config.settings import Settings
from stream.core.account_settings import AccountSettings

__all__ = ["add_account_commands"]


def add_account_commands(sub: Any) -> None:
    """Register ``account`` and ``accounts`` on the CLI's subparsers."""
    account = sub.add_parser("account", help="show one account's score, band, users and alerts")
    account.add_argument("account_id")
    account.add_argument("--json", action="store_true", help="print JSON")
    account.add_argument("--users", type=int, default=10, help="how many top users (default 10)")
    account.set_defaults(handler=_account)
    listing = sub.add_parser("accounts", help="accounts in a band, lowest score first")
    listing.add_argument("--band", help="the band (default: the lowest, e.g. churn_risk)")
    listing.add_argument("-n", type=int, default=20, help="how many (default 20)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=_accounts)


def _settings(settings: Settings) -> AccountSettings:
    accounts = load_model(settings.model).accounts
    if accounts is None:
        raise ConfigError(settings.model, "accounts", "the model has no accounts section")
    return accounts


def _account(args: argparse.Namespace, settings: Settings) -> int:

    accounts = _settings(settings)
    account_id = require_valid_id("account", args.account_id, settings)
    now = int(time.time() * 1000)
    view = query_store(settings, lambda store: store.accounts.reads.view(account_id, accounts.bands,
                                                              now, max(1, args.users)))  # fmt: skip
    if view is None:
        print(f"unknown account {args.account_id!r}")
        return 1
    if args.json:
        print(json.dumps(view, indent=2, ensure_ascii=False))
        return 0
    score = "none" if view["score"] is None else f"{view['score']:g}"
    print(f"{view['account_id']}: score {score} ({view['band'] or 'no users'}), "
          f"{view['users']} users, aggregate {view['aggregate']}")  # fmt: skip
    print(f"  updated {view['updated_at']}, model {view['model_version']}")
    trend = view["trend"]
    parts = [f"{name} {trend[key]:+g}" if trend[key] is not None else f"{name} n/a"
             for name, key in (("7d", "change_7d"), ("30d", "change_30d"))]  # fmt: skip
    print(f"  trend: {', '.join(parts)}")
    print("  top users:")
    for user in view["top_users"]:
        print(f"    {user['customer_id']:<40} {user['score']:>9.2f}  {user['band']}")
    points = view["history"]["points"]
    if points:
        from stream.adapters.codec import iso_ms  # noqa: PLC0415

        print("  history:")
        for start, value in points[-10:]:
            print(f"    {iso_ms(int(start))[:19]}  {value:>9.2f}")
    print("  recent alerts:" if view["alerts"] else "  no recent alerts")
    for alert in view["alerts"]:
        print(f"    {alert['occurred_at']}  {alert['type']}  {alert['previous_band']} -> "
              f"{alert['band']}  {alert['score']:g}")  # fmt: skip
    return 0


def _accounts(args: argparse.Namespace, settings: Settings) -> int:

    accounts = _settings(settings)
    band = args.band or accounts.bands.names[0]
    if band not in accounts.bands.names:
        raise ConfigError("arguments", "--band", f"must be one of {list(accounts.bands.names)}")
    rows = query_store(
        settings, lambda store: store.accounts.reads.listing(accounts.bands, band, args.n)
    )
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    for row in rows:
        print(f"{row['account_id']:<40} {row['score']:>9.2f}  {row['band']:<18} "
              f"{row['users']:>6} users")  # fmt: skip
    if not rows:
        print(f"no accounts in {band}")
    return 0
