"""Ports for test servers: free, never twice, and out of reach of client source ports."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from devtools.localstack import stack
from devtools.localstack.stack import free_port


def test_ports_are_distinct_bindable_and_below_the_ephemeral_range() -> None:
    ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    assert all(port + 10_000 < ephemeral_low for port in ports)  # a cluster bus port too
    for port in ports[:5]:
        with socket.socket() as server:
            server.bind(("127.0.0.1", port))


def test_a_port_something_listens_on_is_never_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    listening = free_port()
    monkeypatch.setattr(stack, "_picked", set())  # as if another process had picked it
    monkeypatch.setattr(stack, "_LISTEN_LOW", listening)
    monkeypatch.setattr(stack, "_LISTEN_HIGH", listening + 3)
    with socket.socket() as server:
        server.bind(("127.0.0.1", listening))
        server.listen()
        handed = {free_port() for _ in range(2)}
    assert listening not in handed and len(handed) == 2
