"""A local Kafka (KRaft, jars from Maven Central) and Redis stack on loopback, no Docker."""

from devtools.localstack.stack import LocalStack
from devtools.localstack.tools import StackError

__all__ = ["LocalStack", "StackError"]
