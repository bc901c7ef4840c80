"""Topic-level configs as Kafka 4.4 defines them (TopicConfig, LogConfig.CONFIG): which names
exist, how each value is validated, which broker setting supplies its default, and how
DescribeConfigs reports it.

Validation answers as Kafka's ControllerConfigurationValidator / LogConfig.validate do:
INVALID_CONFIG with Kafka's message for an unknown name, a null value or a value its
validator refuses. Every config here is stored and described; the README lists the ones
that change what the log does.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Mapping

from ottla.server.config import BOOLEAN, DOUBLE, INT, LIST, LONG, SETTINGS, STRING
from ottla.wire.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from ottla.server.config import BrokerConfig

# DescribeConfigsResponse config_source values (ConfigSource in DescribeConfigsResponse.json).
DYNAMIC_TOPIC_CONFIG = 1
STATIC_BROKER_CONFIG = 4
DEFAULT_CONFIG = 5

_INT_MAX = 2**31 - 1
_LONG_MAX = 2**63 - 1
_LONG_MIN = -(2**63)
_TYPE_NAMES = {BOOLEAN: "BOOLEAN", STRING: "STRING", INT: "INT", LONG: "LONG", DOUBLE: "DOUBLE", LIST: "LIST"}

# A validator: (config name, normalised value) -> Kafka's refusal message, or None if valid.
Check = Callable[[str, str], "str | None"]


@dataclass(slots=True, frozen=True)
class TopicConfigKey:
    name: str
    config_type: int
    default: str
    doc: str
    # Kafka's broker synonyms, highest precedence first, each with a converter from the
    # broker setting's unit to the topic config's (LogConfig's synonym table).
    synonyms: tuple[tuple[str, Callable[[object], str]], ...] = ()
    check: Check | None = None  # Kafka's validator: Kafka's message when the value is refused


def _same(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _hours(value: object) -> str:
    return str(int(value) * 3600 * 1000) if int(value) >= 0 else str(value)  # type: ignore[call-overload]


def _minutes(value: object) -> str:
    return str(int(value) * 60 * 1000) if int(value) >= 0 else str(value)  # type: ignore[call-overload]


def _invalid(name: str, shown: str, reason: str) -> str:
    """Kafka's ConfigException wording for a value its validator refuses."""
    return f"Invalid value {shown} for configuration {name}: {reason}"


def _at_least(low: float) -> Check:
    return lambda name, text: _invalid(name, text, f"Value must be at least {_number_text(low)}") if float(text) < low else None


def _between(low: float, high: float) -> Check:
    def check(name: str, text: str) -> str | None:
        value = float(text)
        if value < low:
            return _invalid(name, text, f"Value must be at least {_number_text(low)}")
        if value > high:
            return _invalid(name, text, f"Value must be no more than {_number_text(high)}")
        return None

    return check


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _in(*choices: str) -> Check:
    return lambda name, text: None if text in choices else _invalid(name, text, f"String must be one of: {', '.join(choices)}")


def _list_in(*choices: str) -> Check:
    def check(name: str, text: str) -> str | None:
        for item in (part.strip() for part in text.split(",") if part.strip()):
            if item not in choices:
                # Kafka's ValidList names the one bad item, not the whole list.
                return _invalid(name, item, f"String must be one of: {', '.join(choices)}")
        return None

    return check


def _gzip_level(name: str, text: str) -> str | None:
    # GzipCompression.LEVEL_VALIDATOR: 1..9, or -1 for zlib's default.
    value = int(text)
    return None if value == -1 or 1 <= value <= 9 else _invalid(name, text, "Value must be between 1 and 9, or -1 for the default")


def _throttled_replicas(name: str, text: str) -> str | None:
    # ThrottledReplicaListValidator: "*" or partition:broker pairs.
    items = [item.strip() for item in text.split(",") if item.strip()]
    if items == ["*"] or all(_is_pair(item) for item in items):
        return None
    return _invalid(name, text, "must be the wildcard (*) or a list of replicas in the form [PartitionId]:[BrokerId],[PartitionId]:[BrokerId],...")


def _is_pair(item: str) -> bool:
    partition, _, node = item.partition(":")
    return partition.strip().isdigit() and node.strip().isdigit()


def _tiered_storage_off(name: str, text: str) -> str | None:
    # Kafka refuses remote.storage.enable=true unless remote.log.storage.system.enable is on;
    # Ottla has no tiered storage.
    if text.lower() == "true":
        return "Tiered Storage functionality is disabled in the broker. Topic cannot be configured with remote log storage."
    return None


def _key(
    name: str,
    config_type: int,
    default: object,
    doc: str,
    synonyms: tuple[tuple[str, Callable[[object], str]], ...] = (),
    check: Check | None = None,
) -> TopicConfigKey:
    return TopicConfigKey(name, config_type, _same(default), doc, synonyms, check)


_WEEK_MS = 7 * 24 * 3600 * 1000

TOPIC_CONFIGS: dict[str, TopicConfigKey] = {
    key.name: key
    for key in (
        _key("cleanup.policy", LIST, "delete", "Retention policy of old segments: delete, compact, both, or empty for none.",
             (("log.cleanup.policy", _same),), _list_in("compact", "delete")),
        _key("compression.gzip.level", INT, -1, "Level used when compression.type is gzip.",
             (("compression.gzip.level", _same),), _gzip_level),
        _key("compression.lz4.level", INT, 9, "Level used when compression.type is lz4.",
             (("compression.lz4.level", _same),), _between(1, 17)),
        _key("compression.type", STRING, "producer", "Final compression of the topic's batches; producer keeps the producer's codec.",
             (("compression.type", _same),), _in("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")),
        _key("compression.zstd.level", INT, 3, "Level used when compression.type is zstd.",
             (("compression.zstd.level", _same),), _between(-131072, 22)),
        _key("delete.retention.ms", LONG, 86400000, "How long delete tombstones are kept in a compacted topic.",
             (("log.cleaner.delete.retention.ms", _same),), _at_least(0)),
        _key("errors.deadletterqueue.group.enable", BOOLEAN, False, "Whether share groups may use this topic as a dead-letter queue (Ottla has no share groups)."),
        _key("file.delete.delay.ms", LONG, 60000, "How long a deleted segment file lingers before removal.",
             (("log.segment.delete.delay.ms", _same),), _at_least(0)),
        _key("flush.messages", LONG, _LONG_MAX, "Force an fsync after this many messages.",
             (("log.flush.interval.messages", _same),), _at_least(1)),
        _key("flush.ms", LONG, _LONG_MAX, "Force an fsync after this many milliseconds.",
             (("log.flush.interval.ms", _same), ("log.flush.scheduler.interval.ms", _same)), _at_least(0)),
        _key("follower.replication.throttled.replicas", LIST, "", "Replicas throttled on the follower side (no followers on one node).",
             check=_throttled_replicas),
        _key("index.interval.bytes", INT, 4096, "Bytes of log between two offset index entries.",
             (("log.index.interval.bytes", _same),), _at_least(0)),
        _key("leader.replication.throttled.replicas", LIST, "", "Replicas throttled on the leader side (no followers on one node).",
             check=_throttled_replicas),
        _key("local.retention.bytes", LONG, -2, "Local retention size with tiered storage; -2 means retention.bytes.",
             (("log.local.retention.bytes", _same),), _at_least(-2)),
        _key("local.retention.ms", LONG, -2, "Local retention time with tiered storage; -2 means retention.ms.",
             (("log.local.retention.ms", _same),), _at_least(-2)),
        _key("max.compaction.lag.ms", LONG, _LONG_MAX, "Longest a message stays ineligible for compaction.",
             (("log.cleaner.max.compaction.lag.ms", _same),), _at_least(1)),
        _key("max.decompressed.message.bytes", INT, _INT_MAX - 8, "Largest decompressed size of one record the broker accepts.",
             (("max.decompressed.message.bytes", _same),), _between(1, _INT_MAX - 8)),
        _key("max.message.bytes", INT, 1048588, "Largest record batch the topic accepts, after compression.",
             (("message.max.bytes", _same),), _at_least(0)),
        _key("message.timestamp.after.max.ms", LONG, 3600000, "How far a CreateTime timestamp may lie in the future.",
             (("log.message.timestamp.after.max.ms", _same),), _at_least(0)),
        _key("message.timestamp.before.max.ms", LONG, _LONG_MAX, "How far a CreateTime timestamp may lie in the past.",
             (("log.message.timestamp.before.max.ms", _same),), _at_least(0)),
        _key("message.timestamp.type", STRING, "CreateTime", "Whether record timestamps are the producer's (CreateTime) or the broker's (LogAppendTime).",
             (("log.message.timestamp.type", _same),), _in("CreateTime", "LogAppendTime")),
        _key("min.cleanable.dirty.ratio", DOUBLE, 0.5, "Share of uncompacted log that makes a compacted topic eligible for cleaning.",
             (("log.cleaner.min.cleanable.ratio", _same),), _between(0, 1)),
        _key("min.compaction.lag.ms", LONG, 0, "Shortest time a message stays uncompacted.",
             (("log.cleaner.min.compaction.lag.ms", _same),), _at_least(0)),
        _key("min.insync.replicas", INT, 1, "Replicas that must acknowledge an acks=all write; one node is the whole ISR.",
             (("min.insync.replicas", _same),), _at_least(1)),
        _key("preallocate", BOOLEAN, False, "Preallocate segment files on disk.", (("log.preallocate", _same),)),
        _key("remote.copy.lag.bytes", LONG, -1, "Tiered storage: bytes of newer log before a segment is uploaded (not in Ottla).",
             (("log.remote.copy.lag.bytes", _same),), _at_least(-1)),
        _key("remote.copy.lag.ms", LONG, 0, "Tiered storage: age before a segment is uploaded (not in Ottla).",
             (("log.remote.copy.lag.ms", _same),), _at_least(-1)),
        _key("remote.log.copy.disable", BOOLEAN, False, "Stop uploading to tiered storage."),
        _key("remote.log.delete.on.disable", BOOLEAN, False, "Delete tiered data when tiered storage is disabled."),
        _key("remote.storage.enable", BOOLEAN, False, "Tiered storage; not available in Ottla.", check=_tiered_storage_off),
        _key("retention.bytes", LONG, -1, "Largest size of a partition before old segments are discarded; -1 is no limit.",
             (("log.retention.bytes", _same),)),
        _key("retention.ms", LONG, _WEEK_MS, "Longest time a segment is kept before it is discarded; -1 is no limit.",
             (("log.retention.ms", _same), ("log.retention.minutes", _minutes), ("log.retention.hours", _hours)), _at_least(-1)),
        _key("segment.bytes", INT, 1073741824, "Size at which the active segment is rolled.",
             (("log.segment.bytes", _same),), _at_least(1048576)),
        _key("segment.index.bytes", INT, 10485760, "Size of a segment's offset index.",
             (("log.index.size.max.bytes", _same),), _at_least(4)),
        _key("segment.jitter.ms", LONG, 0, "Random jitter subtracted from segment.ms.",
             (("log.roll.jitter.ms", _same), ("log.roll.jitter.hours", _hours)), _at_least(0)),
        _key("segment.ms", LONG, _WEEK_MS, "Age at which the active segment is rolled.",
             (("log.roll.ms", _same), ("log.roll.hours", _hours)), _at_least(1)),
        _key("unclean.leader.election.enable", BOOLEAN, False, "Elect an out-of-sync replica as leader as a last resort.",
             (("unclean.leader.election.enable", _same),)),
    )
}


def validate_value(name: str, value: str | None) -> str:
    """The value, normalised as Kafka stores it; KafkaError(INVALID_CONFIG) when it is refused."""
    key = TOPIC_CONFIGS.get(name)
    if key is None:
        raise KafkaError(ErrorCode.INVALID_CONFIG, f"Unknown topic config name: {name}")
    if value is None:
        raise KafkaError(ErrorCode.INVALID_CONFIG, f"Null value not supported for topic configs: {name}")
    text = value.strip()
    try:
        if key.config_type in (INT, LONG):
            number = int(text)
            low, high = (-(2**31), _INT_MAX) if key.config_type == INT else (_LONG_MIN, _LONG_MAX)
            if not low <= number <= high:
                raise ValueError
        elif key.config_type == DOUBLE:
            text = str(float(text))
        elif key.config_type == BOOLEAN:
            if text.lower() not in ("true", "false"):
                raise ValueError
            text = text.lower()
    except ValueError:
        raise KafkaError(
            ErrorCode.INVALID_CONFIG,
            f"Invalid value {value} for configuration {name}: Not a number of type {_TYPE_NAMES[key.config_type]}"
            if key.config_type != BOOLEAN
            else f"Invalid value {value} for configuration {name}: Expected value to be either true or false",
        ) from None
    if key.config_type == LIST:
        text = ",".join(part.strip() for part in text.split(",") if part.strip())
    problem = key.check(name, text) if key.check is not None else None
    if problem is not None:
        raise KafkaError(ErrorCode.INVALID_CONFIG, problem)
    return text


def validate_configs(configs: Mapping[str, str | None]) -> dict[str, str]:
    """A whole set of topic overrides, validated and normalised."""
    return {name: validate_value(name, value) for name, value in configs.items()}


@dataclass(slots=True, frozen=True)
class Resolved:
    """One topic config as DescribeConfigs reports it."""

    key: TopicConfigKey
    value: str
    source: int
    synonyms: list[tuple[str, str, int]]


def broker_default(key: TopicConfigKey, broker: "BrokerConfig") -> tuple[str, int, list[tuple[str, str, int]]]:
    """(value, source, synonyms) of `key` when the topic does not override it.

    The value is the first broker synonym set explicitly, else the first with a default,
    else Kafka's default. The synonyms are listed as Kafka's ConfigHelper.configSynonyms
    lists them: every explicit setting, then every default, each in synonym order, and then
    everything before the first entry of the primary name (log.retention.ms for retention.ms)
    dropped. So a broker that sets only log.retention.hours describes retention.ms with no
    synonyms and DEFAULT_CONFIG as its source, as Kafka does; the value is still the hours'.
    """
    explicit, defaults = [], []
    for setting, convert in key.synonyms:
        value = broker.values.get(setting)
        if setting in broker.explicit and value is not None:
            explicit.append((setting, value, convert))
        default = SETTINGS[setting].default
        if default is not None:
            defaults.append((setting, default, convert))
    effective = explicit[0] if explicit else defaults[0] if defaults else None
    listed = [(name, _same(value), STATIC_BROKER_CONFIG) for name, value, _ in explicit]
    listed += [(name, _same(value), DEFAULT_CONFIG) for name, value, _ in defaults]
    if key.synonyms:
        primary = key.synonyms[0][0]
        listed = list(itertools.dropwhile(lambda synonym: synonym[0] != primary, listed))
    value = key.default if effective is None else effective[2](effective[1])
    return value, listed[0][2] if listed else DEFAULT_CONFIG, listed


def broker_topic_defaults(broker: "BrokerConfig") -> dict[str, str]:
    """Every topic config's broker-level value, for storage to merge under topic overrides."""
    return {name: broker_default(key, broker)[0] for name, key in TOPIC_CONFIGS.items()}


def resolve(overrides: Mapping[str, str], broker: "BrokerConfig") -> list[Resolved]:
    """Every topic config, in name order, with its effective value, source and synonyms."""
    resolved = []
    for name, key in sorted(TOPIC_CONFIGS.items()):
        value, source, synonyms = broker_default(key, broker)
        if name in overrides:
            value, source = overrides[name], DYNAMIC_TOPIC_CONFIG
            synonyms = [(name, value, DYNAMIC_TOPIC_CONFIG), *synonyms]
        resolved.append(Resolved(key, value, source, synonyms))
    return resolved
