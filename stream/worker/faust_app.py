"""The worker's Faust app for Faust's own command line, built from the environment's
settings without connecting to anything: ``faust -A stream.worker.faust_app agents`` lists
the scoring agent and the input topics it consumes. Run the worker with
``engagement worker`` (which creates and checks the topics and credentials first)."""

from __future__ import annotations

from stream.config.model_file import load_model
from stream.config.settings import Settings
from stream.worker.app import assemble_app

__all__ = ["app"]

_settings = Settings.from_env()
app = assemble_app(_settings, load_model(_settings.model))
