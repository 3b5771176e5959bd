"""The aiokafka internal ``stream.upstream.aiokafka`` calls, pinned (``aiokafka==0.14.0``)."""

from __future__ import annotations

import inspect
from importlib.metadata import version

from aiokafka import conn

from stream.adapters.kafka_security import client_options
from stream.config.security import KafkaSecurity


def test_aiokafka_is_the_pinned_version() -> None:
    assert version("aiokafka") == "0.14.0"


def test_create_conn_takes_the_client_options_by_name() -> None:
    parameters = inspect.signature(conn.create_conn).parameters
    assert list(parameters)[:2] == ["host", "port"]
    options = client_options(KafkaSecurity())
    for name in ("request_timeout_ms", *options, "sasl_mechanism", "sasl_plain_username",
                 "sasl_plain_password", "ssl_context"):  # fmt: skip
        assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY, name


def test_create_conn_completes_the_login_before_returning() -> None:
    source = inspect.getsource(conn.create_conn)
    assert "await conn.connect()" in source
    assert "do_sasl_handshake" in inspect.getsource(conn.AIOKafkaConnection.connect)
