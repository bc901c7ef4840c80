"""A small blocking Kafka client built on `wire/` (the same codec the broker serves with,
used here from the client side), so it works against any broker, Ottla or Apache Kafka:
`AdminClient` (operations.py) for Python, and the `ottla` subcommands (commands.py) on top
of it for a person at a terminal. The broker never imports this package."""

from ottla.server.admin.client import ClientError, KafkaClient, RetriableError
from ottla.server.admin.operations import (
    AdminClient,
    ConfigEntry,
    ConsumedRecord,
    CreatedTopic,
    GroupDescription,
    GroupListing,
    GroupMember,
    GroupOffset,
    OffsetSpan,
    PartitionInfo,
    PartitionOffsets,
    ProduceResult,
    ScramUser,
    TopicDescription,
    TopicListing,
    TopicReader,
)
from ottla.server.admin.sasl import SaslLogin

__all__ = [
    "AdminClient",
    "ClientError",
    "ConfigEntry",
    "ConsumedRecord",
    "CreatedTopic",
    "GroupDescription",
    "GroupListing",
    "GroupMember",
    "GroupOffset",
    "KafkaClient",
    "OffsetSpan",
    "PartitionInfo",
    "PartitionOffsets",
    "ProduceResult",
    "RetriableError",
    "SaslLogin",
    "ScramUser",
    "TopicDescription",
    "TopicListing",
    "TopicReader",
]
