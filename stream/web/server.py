"""The aiohttp application of ``engagement web``: the page, its assets and its JSON API.

Read-only: ``GET``/``HEAD`` only, except ``POST /login`` and ``POST /logout``; any other
method is 405. With ``ENGAGEMENT_API_TOKEN`` set, the page and ``/api/*`` need either
``Authorization: Bearer <token>`` or the session cookie that the login form sets
(HttpOnly, SameSite=Strict); ``/static/*`` and ``/healthz`` stay open (they hold no data).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from typing import Any, Literal

import redis
from aiohttp import web

from stream.config.settings import Settings
from stream.core.decode import id_rule, valid_customer_id
from stream.web.auth import COOKIE, SESSION_SECONDS, allowed, issue_session
from stream.web.readmodel import ReadModel

__all__ = ["build_app"]

log = logging.getLogger("engagement.web")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_STATIC = resources.files("stream.web") / "static"
_ASSETS = {
    "app.js": "text/javascript",
    "accounts.js": "text/javascript",
    "segments.js": "text/javascript",
    "app.css": "text/css",
    "favicon.svg": "image/svg+xml",
}
_WRITE_PATHS = {"/login", "/logout"}
_OPEN_PATHS = {"/login", "/logout", "/healthz"}
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


_ASSETS["timeline.js"] = "text/javascript"  # the customer page's score timeline


def _asset(name: str) -> bytes:
    return (_STATIC / name).read_bytes()


def build_app(
    settings: Settings, read_model: ReadModel, snapshot_every_s: float = 0
) -> web.Application:
    """The web application; ``snapshot_every_s`` > 0 also writes band snapshots."""
    app = web.Application(middlewares=[_guard(settings)])
    app["read_model"] = read_model
    app["settings"] = settings
    app.router.add_get("/", _page)
    app.router.add_get("/login", _login_page)
    app.router.add_post("/login", _login)
    app.router.add_post("/logout", _logout)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/static/{name}", _static)
    app.router.add_get("/api/overview", _api(lambda rm, q: rm.overview()))
    app.router.add_get("/api/alerts", _api(lambda rm, q: rm.recent_alerts(
        _number(q, "hours", 24, 1, 24 * 7), int(_number(q, "limit", 200, 1, 2000)))))  # fmt: skip
    app.router.add_get("/api/at-risk", _api(lambda rm, q: rm.at_risk(
        int(_number(q, "limit", 100, 1, 1000)), _text(q, "trait", "segment"),
        _text(q, "account"))))  # fmt: skip
    app.router.add_get("/api/upsell", _api(lambda rm, q: rm.upsell(
        int(_number(q, "limit", 50, 1, 1000)))))  # fmt: skip
    app.router.add_get("/api/segments", _api(lambda rm, q: rm.segments()))
    app.router.add_get("/api/id-rule", _id_rule)
    app.router.add_get("/api/customers/{customer_id:.+}", _one("customer", ReadModel.customer))
    app.router.add_get("/api/accounts", _api(lambda rm, q: rm.accounts(
        q.get("band"), int(_number(q, "limit", 100, 1, 1000)))))  # fmt: skip
    app.router.add_get("/api/accounts/{account_id:.+}", _one("account", ReadModel.account))
    if snapshot_every_s > 0:
        app.cleanup_ctx.append(_snapshots(read_model, snapshot_every_s))
    return app


def _guard(settings: Settings) -> Any:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        writes = request.method == "POST" and request.path in _WRITE_PATHS
        if request.method not in ("GET", "HEAD") and not writes:
            response: web.StreamResponse = web.json_response(
                {"error": "read-only"}, status=405, headers={"Allow": "GET, HEAD"}
            )
        elif _needs_login(request) and not allowed(
            settings.api_token,
            request.headers.get("Authorization"),
            request.cookies.get(COOKIE),
            int(time.time()),
        ):
            response = _refuse(request)
        else:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                response = exc
        for name, value in _HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    return guard


def _needs_login(request: web.Request) -> bool:
    return request.path not in _OPEN_PATHS and not request.path.startswith("/static/")


def _refuse(request: web.Request) -> web.StreamResponse:
    if request.path.startswith("/api/"):
        return web.json_response(
            {"error": "unauthorized"}, status=401,
            headers={"WWW-Authenticate": 'Bearer realm="engagement-stream"'},
        )  # fmt: skip
    raise web.HTTPSeeOther("/login")


async def _page(request: web.Request) -> web.StreamResponse:
    return web.Response(body=_asset("index.html"), content_type="text/html", charset="utf-8")


async def _login_page(request: web.Request) -> web.StreamResponse:
    body = _asset("login.html")
    if request.query.get("failed"):
        body = body.replace(b'class="error" hidden', b'class="error"')
    return web.Response(body=body, content_type="text/html", charset="utf-8")


async def _login(request: web.Request) -> web.StreamResponse:
    token = request.app["settings"].api_token
    form = await request.post()
    presented = str(form.get("token", ""))
    if token is not None and not token.matches(presented):
        log.warning("web: refused a login from %s", request.remote)
        raise web.HTTPSeeOther("/login?failed=1")
    response = web.HTTPSeeOther("/")
    if token is not None:
        response.set_cookie(
            COOKIE, issue_session(token, int(time.time())), max_age=SESSION_SECONDS,
            httponly=True, samesite="Strict", secure=_https(request), path="/",
        )  # fmt: skip
    raise response


async def _logout(request: web.Request) -> web.StreamResponse:
    response = web.HTTPSeeOther("/login")
    response.del_cookie(COOKIE, path="/")
    raise response


def _https(request: web.Request) -> bool:
    return request.secure or request.headers.get("X-Forwarded-Proto", "") == "https"


async def _healthz(request: web.Request) -> web.StreamResponse:
    return web.json_response({"status": "ok"})


async def _static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in _ASSETS:
        raise web.HTTPNotFound()
    return web.Response(body=_asset(name), content_type=_ASSETS[name])


def _number(query: Any, name: str, default: float, low: float, high: float) -> float:
    try:
        value = float(query.get(name, default))
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be a number") from None
    return min(high, max(low, value))


def _text(query: Any, *names: str, limit: int = 512) -> str | None:
    """The first of ``names`` present in the query (empty: None); over-long is a 400."""
    for name in names:
        value = query.get(name)
        if value:
            if len(value) > limit:
                raise web.HTTPBadRequest(text=f"{name} is longer than {limit} characters")
            return str(value)
    return None


def _api(read: Callable[[ReadModel, Any], Awaitable[Any]]) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            return web.json_response(await read(request.app["read_model"], request.query))
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            log.warning("web: Redis unavailable: %s", exc)
            return web.json_response({"error": "redis unavailable"}, status=503)

    return handler


async def _id_rule(request: web.Request) -> web.StreamResponse:
    """The customer and account id rule the 400s below apply, for the page to apply first."""
    settings: Settings = request.app["settings"]
    return web.json_response(id_rule(settings.max_id_length))


def _one(
    kind: Literal["customer", "account"],
    read: Callable[[ReadModel, str], Awaitable[dict[str, Any] | None]],
) -> Handler:
    """``GET /api/{kind}s/{id}``: 400 for an id that could never be valid, 404 unknown."""

    async def handler(request: web.Request) -> web.StreamResponse:
        ident = request.match_info[f"{kind}_id"]
        settings: Settings = request.app["settings"]
        if not valid_customer_id(ident, settings.max_id_length):
            return web.json_response({"error": f"invalid {kind} id"}, status=400)
        view = await _api(lambda rm, q: read(rm, ident))(request)
        if isinstance(view, web.Response) and view.text == "null":
            return web.json_response({"error": f"unknown {kind}", f"{kind}_id": ident},
                                     status=404)  # fmt: skip
        return view

    return handler


def _snapshots(
    read_model: ReadModel, every_s: float
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def loop() -> None:
        while True:
            try:
                await read_model.snapshot()
            except (redis.RedisError, OSError) as exc:
                log.warning("web: band snapshot failed: %s", exc)
            await asyncio.sleep(every_s)

    async def context(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(loop())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return context
