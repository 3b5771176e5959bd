"""A Redis Cluster of N masters on loopback, from Debian's ``redis-server`` (no replicas).

Each master has its own folder (AOF and ``nodes.conf``), so a master restarted on its
folder rejoins the cluster with its slots and data. The cluster is formed once, by
``CLUSTER ADDSLOTSRANGE`` (an equal share of the 16384 slots each) and ``CLUSTER MEET``,
and is ready when every master reports ``cluster_state:ok`` and knows all the others.
"""

from __future__ import annotations

import time
from pathlib import Path

import redis

from devtools.localstack.tools import StackError

__all__ = ["SLOTS", "cluster_ready", "form_cluster", "node_command", "slot_ranges"]

SLOTS = 16384
# Short, so that a killed master is noticed (and the cluster reports itself down) quickly.
NODE_TIMEOUT_MS = 2000


def node_command(bus_port: int, folder: Path) -> list[str]:
    """The cluster options of a master whose cluster bus listens on ``bus_port`` (given,
    not the default port + 10000, which may be taken or beyond 65535); ``folder`` holds
    its nodes.conf."""
    return [
        "--cluster-enabled", "yes", "--cluster-port", str(bus_port),
        "--cluster-config-file", str(folder / "nodes.conf"),
        "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
    ]  # fmt: skip


def slot_ranges(masters: int) -> list[tuple[int, int]]:
    """Inclusive slot ranges, one per master, covering 0..16383 in equal shares."""
    bounds = [SLOTS * i // masters for i in range(masters + 1)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(masters)]


def form_cluster(ports: list[int], bus_ports: list[int], timeout_s: float = 30.0) -> None:
    """Give each master its slots and introduce them to each other (on first start only:
    a node that already has slots keeps them); ``bus_ports`` are their cluster bus ports."""
    clients = [redis.Redis(host="127.0.0.1", port=p, socket_timeout=5) for p in ports]
    try:
        if int(clients[0].cluster("info")["cluster_slots_assigned"]) == 0:
            for client, (low, high) in zip(clients, slot_ranges(len(ports)), strict=True):
                client.cluster("addslotsrange", low, high)
            for port, bus_port in zip(ports[1:], bus_ports[1:], strict=True):
                clients[0].cluster("meet", "127.0.0.1", port, bus_port)
        deadline = time.monotonic() + timeout_s
        while not all(cluster_ready(c, len(ports)) for c in clients):
            if time.monotonic() > deadline:
                raise StackError(f"the Redis cluster on ports {ports} did not form")
            time.sleep(0.2)
    finally:
        for client in clients:
            client.close()


def cluster_ready(client: redis.Redis, masters: int) -> bool:
    """Whether this node sees the cluster up, with ``masters`` masters owning every slot."""
    try:
        info = client.cluster("info")
    except redis.RedisError:
        return False
    return (
        info.get("cluster_state") == "ok"
        and int(info.get("cluster_known_nodes", 0)) == masters
        and int(info.get("cluster_slots_ok", 0)) == SLOTS
    )
