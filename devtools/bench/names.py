"""Names of the benchmark's contenders and extra phases (a light module for the CLI)."""

__all__ = ["ALL_CONTENDERS", "ALL_PHASES"]

ALL_CONTENDERS = ("raw-aiokafka", "quixstreams", "faust-naive", "worker")
ALL_PHASES = ("memory", "floor", "latency", "scale", "sweeper")
