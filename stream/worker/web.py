"""The worker's read-only HTTP endpoints: /metrics, /customers/{id}, /health, /ready."""

from __future__ import annotations

from typing import Any

import faust

from stream.adapters.metrics import Metrics
from stream.adapters.redis_store import RedisScoreStore
from stream.config.settings import Settings
from stream.core.decode import valid_customer_id
from stream.worker.health import Health
from stream.worker.http_auth import CHALLENGE, bearer_allows

__all__ = ["install_pages"]

# aiohttp refuses a charset inside content_type; the exposition format is UTF-8 anyway.
_METRICS_CONTENT_TYPE = "text/plain; version=0.0.4"


def install_pages(
    app: faust.App, settings: Settings, store: RedisScoreStore, metrics: Metrics, health: Health
) -> None:
    """Register the endpoints on the app's web server; only /customers needs the token."""

    @app.page("/metrics")
    async def metrics_page(self: Any, request: Any) -> Any:
        return self.bytes(metrics.render(), content_type=_METRICS_CONTENT_TYPE)

    # Any text after /customers/ reaches the handler, so an id that could never be valid (for
    # example with braces, which the default route pattern refuses) is a 400, not a 404.
    @app.page("/customers/{customer_id:.+}")
    async def customer_page(self: Any, request: Any, customer_id: str) -> Any:
        if not bearer_allows(request.headers.get("Authorization"), settings.api_token):
            return self.json({"error": "unauthorized"}, status=401, headers=dict(CHALLENGE))
        if not valid_customer_id(customer_id, settings.max_id_length):
            return self.json({"error": "invalid customer id"}, status=400)
        view = await store.customer(customer_id)
        if view is None:
            return self.json({"error": "unknown customer", "customer_id": customer_id}, status=404)
        return self.json(view)

    @app.page("/health")
    async def health_page(self: Any, request: Any) -> Any:
        alive, body = health.liveness()
        return self.json(body, status=200 if alive else 503)

    @app.page("/ready")
    async def ready_page(self: Any, request: Any) -> Any:
        ready, body = health.readiness()
        return self.json(body, status=200 if ready else 503)

    del metrics_page, customer_page, health_page, ready_page
