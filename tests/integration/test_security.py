"""Security on real processes: Kafka SASL_SSL and mutual TLS, Redis TLS with passwords and
ACL users, refused credentials, secrets kept out of every output, read-only token-guarded
HTTP endpoints."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from devtools.localstack import LocalStack
from devtools.localstack.worker import WorkerProcess
from stream.adapters.kafka_publisher import KafkaPublisher
from stream.ports import OutMessage
from tests.integration.conftest import Deployment, wait_until

pytestmark = pytest.mark.integration

TOKEN = "Tok-4f1c9e2b7a6d8053-query"


def _page_view(customer: str, n: int) -> dict[str, Any]:
    return {"event_id": f"{customer}-pv-{n}", "customer_id": customer, "type": "page_view",
            "timestamp": int(time.time() * 1000)}  # fmt: skip


def _publish(d: Deployment, role: str, events: list[dict[str, Any]]) -> None:
    """Send through the project's aiokafka publisher, with the deployment's security."""
    topic = {r: name for name, r in d.settings.topics.inputs.items()}[role]
    messages = [OutMessage(topic, str(e["customer_id"]).encode(), orjson.dumps(e)) for e in events]

    async def run() -> None:
        publisher = KafkaPublisher(d.settings.kafka_bootstrap, d.settings.kafka_security)
        await publisher.start()
        try:
            await publisher.publish(messages)
        finally:
            await publisher.stop()

    asyncio.run(run())


def _request(
    worker: WorkerProcess, method: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", worker.web_port, timeout=10)
    try:
        conn.request(method, path, body=b"{}" if method != "GET" else None, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def _cli(
    env: dict[str, str], *args: str, timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stream.cli.main", *args],
                          env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=timeout_s, check=False)  # fmt: skip


def _secrets(stack: LocalStack) -> dict[str, str]:
    assert stack.security is not None
    security = stack.security
    return {
        "kafka": next(iter(security.kafka_users.values())),
        "redis": security.redis_password,
        "redis_acl": next(iter(security.redis_users.values())),
    }


def _variant(stack: LocalStack, name: str) -> dict[str, str]:
    """Environment overrides: which Kafka login and which Redis credentials to use."""
    assert stack.security is not None
    certs, secret = stack.security.certs, _secrets(stack)
    acl_url = f"rediss://scorer:{secret['redis_acl']}@127.0.0.1:{stack.redis_port}/0"
    no_password_file = {"ENGAGEMENT_REDIS_PASSWORD_FILE": ""}
    return {
        "plain+acl-url": {"ENGAGEMENT_KAFKA_SASL_MECHANISM": "PLAIN",
                          "ENGAGEMENT_REDIS_URL": acl_url, **no_password_file},
        "scram512+password-file": {},  # the stack's own env: SCRAM-SHA-512, *_FILE secrets
        "scram256+acl-env": {"ENGAGEMENT_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
                             "ENGAGEMENT_REDIS_USERNAME": "scorer", **no_password_file,
                             "ENGAGEMENT_REDIS_PASSWORD": secret["redis_acl"]},
        "mtls": {"ENGAGEMENT_KAFKA_BOOTSTRAP": stack.ssl_bootstrap,
                 "ENGAGEMENT_KAFKA_SECURITY_PROTOCOL": "SSL",
                 "ENGAGEMENT_KAFKA_SASL_MECHANISM": "", "ENGAGEMENT_KAFKA_SASL_USERNAME": "",
                 "ENGAGEMENT_KAFKA_SASL_PASSWORD_FILE": "",
                 "ENGAGEMENT_KAFKA_SSL_CERTFILE": str(certs.client_cert),
                 "ENGAGEMENT_KAFKA_SSL_KEYFILE": str(certs.client_key)},
    }[name]  # fmt: skip


@pytest.mark.parametrize(
    "variant", ["plain+acl-url", "scram512+password-file", "scram256+acl-env", "mtls"]
)
def test_worker_scores_through_secure_kafka_and_redis(secure_deploy, secure_stack, variant) -> None:
    """A worker reaching Kafka only via SASL_SSL (or mutual TLS) and Redis only via TLS with
    a password or ACL user scores events exactly; the CLI reads the score the same way."""
    d = secure_deploy(**_variant(secure_stack, variant))
    d.start_worker()
    customer = f"secure-{variant.split('+')[0]}"
    _publish(d, "clickstream", [_page_view(customer, n) for n in range(3)])
    scored = wait_until(lambda: (c := d.customer(customer)).get("score") == "5" and c)
    assert orjson.loads(scored["breakdown"]) == {"page_views": 3.0, "regularity": 2.0}
    cli = _cli(d.env, "score", customer, "--json")
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["score"] == 5.0


@pytest.mark.parametrize(
    ("case", "key", "phrase"),
    [
        ("kafka-plain", "ENGAGEMENT_KAFKA_SASL_PASSWORD", "refused PLAIN login as 'scorer'"),
        ("kafka-scram", "ENGAGEMENT_KAFKA_SASL_PASSWORD", "refused SCRAM-SHA-512 login"),
        ("kafka-no-ca", "ENGAGEMENT_KAFKA_SSL_CAFILE", "certificate"),
        ("redis-password", "ENGAGEMENT_REDIS_PASSWORD", "refused the credentials"),
        ("redis-acl-url", "ENGAGEMENT_REDIS_URL", "refused the credentials"),
        ("redis-none", "ENGAGEMENT_REDIS_PASSWORD", "needs a password"),
    ],
)
def test_refused_credentials_stop_the_worker_with_a_clear_error(
    secure_stack, tmp_path: Path, case: str, key: str, phrase: str
) -> None:
    """A wrong password or an unknown CA stops the worker at start (exit 2) with a message
    naming the setting, and neither the wrong nor the right secret appears in it."""
    wrong = "WrongPw-9d2e61c0b7"
    redis_port = secure_stack.redis_port
    overrides = {
        "kafka-plain": {"ENGAGEMENT_KAFKA_SASL_MECHANISM": "PLAIN",
                        "ENGAGEMENT_KAFKA_SASL_PASSWORD_FILE": "",
                        "ENGAGEMENT_KAFKA_SASL_PASSWORD": wrong},
        "kafka-scram": {"ENGAGEMENT_KAFKA_SASL_PASSWORD_FILE": "",
                        "ENGAGEMENT_KAFKA_SASL_PASSWORD": wrong},
        "kafka-no-ca": {"ENGAGEMENT_KAFKA_SSL_CAFILE": ""},
        "redis-password": {"ENGAGEMENT_REDIS_PASSWORD_FILE": "",
                           "ENGAGEMENT_REDIS_PASSWORD": wrong},
        "redis-acl-url": {"ENGAGEMENT_REDIS_PASSWORD_FILE": "",
                          "ENGAGEMENT_REDIS_URL": f"rediss://scorer:{wrong}@127.0.0.1:{redis_port}/0"},
        "redis-none": {"ENGAGEMENT_REDIS_PASSWORD_FILE": ""},
    }[case]  # fmt: skip
    env = {**secure_stack.env(), "ENGAGEMENT_DATA_DIR": str(tmp_path / "data"), **overrides}
    result = _cli(env, "worker", timeout_s=90)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert f"{key}: " in result.stderr and phrase in result.stderr, result.stderr
    for secret in (wrong, *_secrets(secure_stack).values()):
        assert secret not in output


@pytest.mark.parametrize(
    ("mechanism", "redis_login"), [("PLAIN", "acl-url"), ("SCRAM-SHA-512", "password")]
)
def test_secrets_never_appear_in_logs_errors_or_endpoints(
    secure_deploy, secure_stack, mechanism: str, redis_login: str
) -> None:
    """With distinctive Kafka, Redis and API secrets and debug logging, none of them shows in
    the worker log, any endpoint's response, or a configuration error."""
    secret = _secrets(secure_stack)
    acl_url = f"rediss://scorer:{secret['redis_acl']}@127.0.0.1:{secure_stack.redis_port}/0"
    redis_env = (
        {"ENGAGEMENT_REDIS_URL": acl_url}
        if redis_login == "acl-url"
        else {"ENGAGEMENT_REDIS_PASSWORD": secret["redis"]}
    )
    d = secure_deploy(
        ENGAGEMENT_LOG_LEVEL="debug",
        ENGAGEMENT_KAFKA_SASL_MECHANISM=mechanism,
        ENGAGEMENT_KAFKA_SASL_PASSWORD_FILE="",
        ENGAGEMENT_KAFKA_SASL_PASSWORD=secret["kafka"],
        ENGAGEMENT_REDIS_PASSWORD_FILE="",
        ENGAGEMENT_API_TOKEN=TOKEN,
        **redis_env,
    )
    worker = d.start_worker()
    _publish(d, "clickstream", [_page_view("leaky", n) for n in range(2)])
    d.send("clickstream", "leaky", b"{not json")
    d.flush()
    wait_until(lambda: d.customer("leaky").get("score") == "4")
    wait_until(lambda: worker.counters("engagement_dead_letters", "reason").get("invalid_json"))

    responses = []
    for path, headers in [
        ("/customers/leaky", {"Authorization": f"Bearer {TOKEN}"}),
        ("/customers/leaky", {"Authorization": "Bearer wrong-token-value-123"}),
        ("/customers/leaky", {}), ("/customers/nobody", {"Authorization": f"Bearer {TOKEN}"}),
        ("/metrics", {}), ("/ready", {}), ("/health", {}), ("/", {}), ("/missing", {}),
    ]:  # fmt: skip
        status, got_headers, body = _request(worker, "GET", path, headers)
        responses.append(f"{status} {got_headers} {body.decode(errors='replace')}")
    assert responses[0].startswith("200") and '"score":4.0' in responses[0].replace(" ", "")
    errors = [
        _cli({**d.env, "ENGAGEMENT_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"}, "topics"),
        _cli({**d.env, "ENGAGEMENT_REDIS_URL": "redis://127.0.0.1:1/0"}, "bands"),
        _cli({**d.env, "ENGAGEMENT_API_TOKEN": "Sh0rtTkn"}, "topics"),
        _cli(
            {
                **d.env,
                "ENGAGEMENT_REDIS_URL": acl_url,
                "ENGAGEMENT_REDIS_PASSWORD": secret["redis"],
            },
            "topics",
        ),
    ]
    assert all(e.returncode == 2 and "error: " in e.stderr for e in errors), errors
    worker.stop()
    log = worker.log_path.read_text(errors="replace")
    assert "DEBUG" in log and "engagement worker: settings" in log  # really at debug level

    texts = {"log": log, "responses": "\n".join(responses),
             "errors": "\n".join(e.stdout + e.stderr for e in errors)}  # fmt: skip
    for where, text in texts.items():
        for name, value in {**secret, "token": TOKEN, "short token": "Sh0rtTkn"}.items():
            assert value not in text, f"{name} secret found in {where}"


def test_http_endpoints_are_read_only_and_queries_need_the_token(deploy) -> None:
    """Every write method is refused; /customers needs the bearer token while probes and
    /metrics stay open, and /metrics names no customer."""
    d = deploy(ENGAGEMENT_API_TOKEN=TOKEN)
    worker = d.start_worker()
    customers = ["Zq-cust-8812", "Yx-cust-4471"]
    for customer in customers:
        for n in range(2):
            d.send("clickstream", customer, _page_view(customer, n))
    d.flush()
    for customer in customers:
        wait_until(lambda c=customer: d.customer(c).get("score") == "4")

    auth = {"Authorization": f"Bearer {TOKEN}"}
    path = f"/customers/{customers[0]}"
    for target in (path, "/metrics", "/health", "/ready"):
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            status, _, _ = _request(worker, method, target, auth)
            assert status == 405, (method, target, status)
    status, headers, _ = _request(worker, "GET", path)
    assert status == 401 and headers.get("WWW-Authenticate", "").startswith("Bearer")
    for wrong in (f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", TOKEN):
        assert _request(worker, "GET", path, {"Authorization": wrong})[0] == 401
    status, _, body = _request(worker, "GET", path, auth)
    assert status == 200 and json.loads(body)["score"] == 4.0
    # too long, control and bidi characters (spaces and braces are valid in ids now)
    for invalid in ("x" * 129, "tab%09id", "nul%00id", "esc%1Bx", "rlo%E2%80%AEx", "lri%E2%81%A6x"):
        assert _request(worker, "GET", f"/customers/{invalid}", auth)[0] == 400
    for probe in ("/health", "/ready", "/metrics"):
        assert _request(worker, "GET", probe)[0] == 200
    for faust_default in ("/router/", "/table/"):
        assert _request(worker, "GET", faust_default)[0] == 404
    metrics = _request(worker, "GET", "/metrics")[2].decode()
    assert "engagement_events_total" in metrics
    assert not [c for c in customers if c in metrics or c.lower() in metrics.lower()]
    assert d.customer(customers[0])["score"] == "4"  # nothing was written by the requests
