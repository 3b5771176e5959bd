"""Selecting Redis Cluster by configuration, and the local cluster's slot shares."""

from __future__ import annotations

import asyncio

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

from devtools.localstack.certs import Certificates, make_certificates
from devtools.localstack.cluster import SLOTS, slot_ranges
from stream.adapters.redis_client import async_redis
from stream.adapters.redis_cluster import is_cluster
from stream.config.errors import ConfigError
from stream.config.settings import Settings

PASSWORD = "Pw-cluster-5d1e"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, False), ("true", True), ("TRUE", True), ("yes", True), ("1", True),
     ("false", False), ("no", False), ("0", False)],
)  # fmt: skip
def test_redis_cluster_flag(raw: str | None, expected: bool) -> None:
    env = {} if raw is None else {"ENGAGEMENT_REDIS_CLUSTER": raw}
    assert Settings.from_env(env).redis_cluster is expected


def test_redis_cluster_flag_rejects_other_words() -> None:
    with pytest.raises(ConfigError, match="ENGAGEMENT_REDIS_CLUSTER"):
        Settings.from_env({"ENGAGEMENT_REDIS_CLUSTER": "sometimes"})


@pytest.mark.parametrize(
    ("url", "problem"),
    [("unix:///run/redis.sock", "redis:// or rediss://"), ("redis://h:6379/3", "database 0")],
)
def test_a_cluster_needs_tcp_and_database_zero(url: str, problem: str) -> None:
    env = {"ENGAGEMENT_REDIS_CLUSTER": "true", "ENGAGEMENT_REDIS_URL": url}
    with pytest.raises(ConfigError, match=problem) as caught:
        Settings.from_env(env)
    assert "ENGAGEMENT_REDIS_URL" in str(caught.value)
    Settings.from_env({**env, "ENGAGEMENT_REDIS_CLUSTER": "false"})  # fine for one server


def test_the_client_factory_picks_the_cluster_client() -> None:
    """No connection is made: the cluster client connects on its first command."""
    single = async_redis(Settings.from_env({"ENGAGEMENT_REDIS_URL": "redis://127.0.0.1:1/0"}).redis)
    cluster = async_redis(
        Settings.from_env(
            {"ENGAGEMENT_REDIS_URL": "redis://127.0.0.1:1/0", "ENGAGEMENT_REDIS_CLUSTER": "true"}
        ).redis
    )
    assert isinstance(single, AsyncRedis) and not is_cluster(single)
    assert isinstance(cluster, AsyncRedisCluster) and is_cluster(cluster)
    asyncio.run(single.aclose())
    asyncio.run(cluster.aclose())


def test_the_cluster_client_keeps_tls_and_acl_settings(certs: Certificates) -> None:
    """rediss:// with ACL user, password and client certificate reach every node's
    connections (the seed's, and the template for nodes discovered later)."""
    settings = Settings.from_env({
        "ENGAGEMENT_REDIS_URL": "rediss://127.0.0.1:1/0", "ENGAGEMENT_REDIS_CLUSTER": "true",
        "ENGAGEMENT_REDIS_USERNAME": "scorer", "ENGAGEMENT_REDIS_PASSWORD": PASSWORD,
        "ENGAGEMENT_REDIS_SSL_CAFILE": str(certs.ca),
        "ENGAGEMENT_REDIS_SSL_CERTFILE": str(certs.client_cert),
        "ENGAGEMENT_REDIS_SSL_KEYFILE": str(certs.client_key),
    })  # fmt: skip
    client = async_redis(settings.redis)
    assert isinstance(client, AsyncRedisCluster)
    template = client.nodes_manager.connection_kwargs
    (seed,) = client.nodes_manager.startup_nodes.values()
    for kwargs in (template, seed.connection_kwargs):
        assert kwargs["username"] == "scorer" and kwargs["password"] == PASSWORD
        assert kwargs["ssl_ca_certs"] == str(certs.ca)
        assert kwargs["ssl_certfile"] == str(certs.client_cert)
        assert kwargs["ssl_keyfile"] == str(certs.client_key)
        assert kwargs["ssl_cert_reqs"] == "required" and kwargs["ssl_check_hostname"] is True
    for connection_class in (template["connection_class"], seed.connection_class):
        assert issubclass(connection_class, redis.asyncio.connection.SSLConnection)
    asyncio.run(client.aclose())


@given(st.integers(min_value=1, max_value=64))
def test_slot_ranges_cover_every_slot_once_in_near_equal_shares(masters: int) -> None:
    ranges = slot_ranges(masters)
    covered = [slot for low, high in ranges for slot in range(low, high + 1)]
    assert covered == list(range(SLOTS))
    sizes = [high - low + 1 for low, high in ranges]
    assert max(sizes) - min(sizes) <= 1
