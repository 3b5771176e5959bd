"""Peer implementations of the job, each run as its own process by the harness: a raw
aiokafka decode loop, Quix Streams with a RocksDB window, and a naive Faust agent."""

__all__: list[str] = []
