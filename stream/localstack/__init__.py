"""A local Kafka (KRaft, jars from Maven Central) and Redis stack on loopback, no Docker."""

from stream.localstack.stack import LocalStack
from stream.localstack.tools import StackError

__all__ = ["LocalStack", "StackError"]
