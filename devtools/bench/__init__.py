"""The benchmark harness: a data set on the real local Kafka, contenders measured on it
(raw aiokafka, Quix Streams, a naive Faust agent, the worker), latency at half load,
Redis memory per customer, the window sweeper's cost, scale-out and a profiler."""

__all__: list[str] = []
