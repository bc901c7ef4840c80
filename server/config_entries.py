"""What DescribeConfigs reports of the broker and of a topic, as values.

Apart from `ottla.server.broker_configs` and `ottla.server.topic_config`, which build them,
because only DescribeConfigs, IncrementalAlterConfigs and CreateTopics need them: a broker's
start does not pay for their classes.
"""

from __future__ import annotations

from dataclasses import dataclass

from ottla.storage.config import ConfigKey


@dataclass(slots=True, frozen=True)
class Synonym:
    name: str
    value: str | None
    source: int


@dataclass(slots=True, frozen=True)
class BrokerEntry:
    """One broker config as DescribeConfigs gives it."""

    name: str
    value: str | None
    source: int
    read_only: bool
    sensitive: bool
    config_type: int
    documentation: str | None
    synonyms: tuple[Synonym, ...]


@dataclass(slots=True, frozen=True)
class Listening:
    """Where the node listens and is advertised: known only once it listens (port 0)."""

    port: int
    advertised_host: str
    # Every listener's advertised (name, host, port), the first one first; empty when unknown.
    advertised: tuple[tuple[str, str, int], ...] = ()
    # A node of a cluster: its own id and rack, where the process's settings name the first
    # node's id and no rack (`ottla serve --nodes N --racks ...`). None for a single node.
    node_id: int | None = None
    rack: str | None = None


@dataclass(slots=True, frozen=True)
class Resolved:
    """One topic config as DescribeConfigs reports it."""

    key: ConfigKey
    value: str
    source: int
    synonyms: list[tuple[str, str, int]]
