"""How a customer id becomes the hash tag of its Redis keys (the read contract's key rule).

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

__all__ = ["key_tag", "tag_id"]

_ESCAPE = {"%": "%25", "{": "%7B", "}": "%7D"}
_UNESCAPE = {v: k for k, v in _ESCAPE.items()}
_SPECIAL = re.compile(r"[%{}]")
_ESCAPED = re.compile(r"%25|%7B|%7D")


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
