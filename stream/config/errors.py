"""Configuration errors: ``ConfigError`` names where, which key, and what is wrong.

It lives under the project's one error root in ``stream.errors``; this module keeps the
import path that configuration code uses.
"""

from __future__ import annotations

from stream.errors import ConfigError

__all__ = ["ConfigError"]
