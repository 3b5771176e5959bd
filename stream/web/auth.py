"""Who may read the page: the bearer token, or a session cookie obtained with it.

The cookie holds no secret: ``<issued epoch s>.<HMAC-SHA256(token, issued)>``. Every replica
holding the same token accepts it, it lapses after ``SESSION_SECONDS``, and changing the
token invalidates every session. Without a token configured, everything is open (as for
``GET /customers/{id}`` on the worker).
"""

from __future__ import annotations

import hashlib
import hmac

from stream.config.secret import Secret
from stream.worker.http_auth import bearer_allows

__all__ = ["COOKIE", "SESSION_SECONDS", "allowed", "issue_session", "session_valid"]

COOKIE = "engagement_session"
SESSION_SECONDS = 12 * 3600


def _sign(token: Secret, issued: int) -> str:
    message = f"engagement-web-session|{issued}".encode()
    return hmac.new(token.reveal().encode(), message, hashlib.sha256).hexdigest()


def issue_session(token: Secret, now_s: int) -> str:
    """A cookie value for a session starting now."""
    return f"{now_s}.{_sign(token, now_s)}"


def session_valid(token: Secret, value: str | None, now_s: int) -> bool:
    """Whether a cookie value was issued with this token and has not lapsed."""
    issued_text, _, signature = (value or "").partition(".")
    if not issued_text.isdigit():
        return False
    issued = int(issued_text)
    fresh = 0 <= now_s - issued <= SESSION_SECONDS
    return hmac.compare_digest(_sign(token, issued), signature) and fresh


def allowed(
    token: Secret | None, authorization: str | None, cookie: str | None, now_s: int
) -> bool:
    """Whether a request may read: no token configured, the bearer header, or a session."""
    if token is None:
        return True
    if authorization and bearer_allows(authorization, token):
        return True
    return session_valid(token, cookie, now_s)
