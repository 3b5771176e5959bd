"""The score table's keys (the read contract's key rule), and how a customer id becomes the
hash tag of its keys.

- ``{prefix}:{<tag>}``             hash: one customer (``stream.adapters.redis_fields``)
- ``{prefix}:rank``                sorted set: customer -> score (ranking and band counts)
- ``{prefix}:due:<partition>``     sorted set: customer -> next moment its window changes
- ``{prefix}:acct:{<tag>}``, ``...:users``, ``...:alerts``: an account
                                    (``stream.adapters.redis_accounts``)

A customer's keys are ``<prefix>:{<tag>}`` and ``<prefix>:alerts:{<tag>}``, where ``<tag>``
is the id (UTF-8) with exactly three characters percent-encoded: ``%`` -> ``%25``,
``{`` -> ``%7B``, ``}`` -> ``%7D``. The tag never contains a brace, so Redis Cluster hashes
exactly the tag (one slot per customer), and the encoding is injective (``tag_id`` inverts
it). Every other character, spaces and non-ASCII included, is kept as is, so an id that was
valid before Unicode ids were accepted (printable ASCII without spaces or braces) keeps its
key unless it contains ``%`` (docs/reference/redis-keys.md gives the migration for those).
"""

from __future__ import annotations

import re

__all__ = ["account_alerts_key", "account_key", "account_users_key", "customer_key", "due_key",
           "key_tag", "own_key_pattern", "rank_key", "scan_match", "tag_id"]  # fmt: skip

_ESCAPE = {"%": "%25", "{": "%7B", "}": "%7D"}
_UNESCAPE = {v: k for k, v in _ESCAPE.items()}
_SPECIAL = re.compile(r"[%{}]")
_ESCAPED = re.compile(r"%25|%7B|%7D")
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


def key_tag(customer_id: str) -> str:
    """The hash tag of a customer's keys: the id with ``%``, ``{`` and ``}`` escaped."""
    if _SPECIAL.search(customer_id) is None:
        return customer_id
    return _SPECIAL.sub(lambda m: _ESCAPE[m.group()], customer_id)


def tag_id(tag: str) -> str:
    """The customer id of a hash tag (the inverse of ``key_tag``)."""
    if "%" not in tag:
        return tag
    return _ESCAPED.sub(lambda m: _UNESCAPE[m.group()], tag)


def customer_key(prefix: str, customer_id: str) -> str:
    """The customer's hash; ``{key_tag(customer_id)}`` is its Redis Cluster hash tag."""
    return f"{prefix}:{{{key_tag(customer_id)}}}"


def rank_key(prefix: str) -> str:
    """The ranking: every stored customer by score."""
    return f"{prefix}:rank"


def due_key(prefix: str, partition: int) -> str:
    """The customers of an input partition by the next moment their window changes."""
    return f"{prefix}:due:{partition}"


def own_key_pattern(prefix: str) -> re.Pattern[bytes]:
    """Exactly the keys of this prefix: braces are not allowed in a prefix and are escaped
    in a customer's tag, so no key of another prefix (even one that starts with this one)
    matches."""
    return re.compile(
        rf"{re.escape(prefix)}:(rank|due:[0-9]+|\{{[^{{}}]+\}}|alerts|alerts:data"
        rf"|alerts:\{{[^{{}}]+\}}|bands:history"
        rf"|acct:rank|acct:\{{[^{{}}]+\}}(?::users|:alerts)?"
        rf"|seg:\{{p[0-9]+\}}:(?:members|counts)|seg:values|seg:partitions)".encode()
    )


def scan_match(prefix: str) -> str:
    """A SCAN pattern that matches every key of this prefix (and possibly others)."""
    return _GLOB_SPECIAL.sub(r"\\\1", prefix) + ":*"


def account_key(prefix: str, account_id: str) -> str:
    """The account's hash (hash tag: the escaped account id)."""
    return f"{prefix}:acct:{{{key_tag(account_id)}}}"


def account_alerts_key(prefix: str, account_id: str) -> str:
    """The account's latest alerts, newest first (same slot as the account's hash)."""
    return f"{account_key(prefix, account_id)}:alerts"


def account_users_key(prefix: str, account_id: str) -> str:
    """The account's users and their scores (same slot as the account's hash)."""
    return f"{account_key(prefix, account_id)}:users"
