"""Adapters between the pure core and the outside world: Redis, Kafka and Prometheus."""
