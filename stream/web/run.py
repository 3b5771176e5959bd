"""Start ``engagement web``: the read model on the configured Redis, served by aiohttp."""

from __future__ import annotations

import logging
import sys

from aiohttp import web

from stream.adapters.redis_client import async_redis, check_redis_credentials
from stream.adapters.redis_store import RedisScoreStore
from stream.config.model_file import load_model
from stream.config.settings import Settings
from stream.web.band_history import BandHistory
from stream.web.readmodel import ReadModel
from stream.web.server import build_app

__all__ = ["run_web"]


def run_web(settings: Settings, host: str, port: int, snapshot_every_s: float) -> int:
    """Serve the page until interrupted; returns the exit code."""
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(message)s")
    check_redis_credentials(settings.redis)
    model = load_model(settings.model)
    client = async_redis(settings.redis)
    store = RedisScoreStore(client, settings.redis_prefix)
    interval_ms = int((snapshot_every_s or 60) * 1000)
    history = BandHistory(client, settings.redis_prefix, interval_ms)
    read_model = ReadModel(model, store, history)
    app = build_app(settings, read_model, snapshot_every_s)
    if settings.api_token is None:
        print("engagement web: warning: ENGAGEMENT_API_TOKEN is not set; the page is open "
              "to whoever reaches the port", file=sys.stderr, flush=True)  # fmt: skip
    print(f"engagement web: serving http://{host}:{port}/ (Redis prefix "
          f"{settings.redis_prefix!r}, model {model.version})", flush=True)  # fmt: skip
    web.run_app(app, host=host, port=port, print=None, access_log=None,
                handle_signals=True)  # fmt: skip
    return 0
