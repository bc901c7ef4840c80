"""Topic configs, each defined once, and `LogConfig`: what a partition log reads of them.

A `ConfigKey` is one setting's whole definition: name, type, default, validator, documentation,
whether it may change at run time and whether its value is secret. Topic keys also name the
broker settings that supply their default, highest precedence first, each in its own unit (Kafka's
LogConfig synonym table: retention.ms <- log.retention.ms <- log.retention.minutes <-
log.retention.hours). A topic key's default is derived from those broker defaults, so the two
cannot disagree. The definitions live in storage, as Kafka's LogConfig lives in its storage
module, because what a topic config means is the log's business; the server derives from them its
broker settings, DescribeConfigs and the validation of CreateTopics and AlterConfigs.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from enum import IntEnum
from typing import Any, NamedTuple

from ottla.wire.errors import ErrorCode, KafkaError

NO_RECORD_SIZE_LIMIT = 2**31 - 9
INT_MAX = 2**31 - 1
LONG_MAX = 2**63 - 1
_INT_RANGE = (-(2**31), INT_MAX)
_LONG_RANGE = (-(2**63), LONG_MAX)
_HOUR_MS = 3600 * 1000
_MINUTE_MS = 60 * 1000
_INTEGER = re.compile(r"[+-]?[0-9]+")


class ConfigType(IntEnum):
    """Kafka's ConfigDef.Type, numbered as DescribeConfigs v3+ reports it (DescribeConfigsResponse.json)."""

    BOOLEAN = 1
    STRING = 2
    INT = 3
    SHORT = 4
    LONG = 5
    DOUBLE = 6
    LIST = 7
    CLASS = 8
    PASSWORD = 9


class InvalidConfigValue(ValueError):
    """A value a key refuses; the message is Kafka's ConfigException wording, naming the key."""


def refused(name: str, shown: object, reason: str) -> InvalidConfigValue:
    return InvalidConfigValue(f"Invalid value {shown} for configuration {name}: {reason}")


# (key name, typed value) -> None, or raises InvalidConfigValue: Kafka's ConfigDef.Validator.
Validator = Callable[[str, Any], None]


@dataclass(slots=True, frozen=True)
class BrokerSynonym:
    """A broker setting that supplies a topic key's default, in its own unit."""

    key: ConfigKey
    unit_ms: int = 1  # 3600000 for a setting in hours, 60000 in minutes

    def to_topic(self, value: Any) -> Any:
        # LogConfig converts only non-negative times: -1 (no limit) stays -1 in any unit.
        return value * self.unit_ms if self.unit_ms != 1 and value >= 0 else value


@dataclass(slots=True, frozen=True)
class ConfigKey:
    """One setting, defined once. `default` is a typed value (a tuple for LIST), None for none;
    a `nullable` key reads empty text as no value."""

    name: str
    type: ConfigType
    default: Any
    doc: str
    validator: Validator | None = None
    dynamic: bool = False
    sensitive: bool = False
    nullable: bool = False
    synonyms: tuple[BrokerSynonym, ...] = ()

    def parse(self, text: str) -> Any:
        """The typed value of `text`, checked by the validator."""
        value = self.parse_type(text)
        self.check(value)
        return value

    def check(self, value: Any) -> None:
        if value is not None and self.validator is not None:
            self.validator(self.name, value)

    def parse_type(self, text: str) -> Any:
        """The typed value of `text`, as Kafka's ConfigDef.parseType reads it (trimmed), unchecked."""
        stripped = text.strip()
        if self.nullable and not stripped:
            return None
        if self.type == ConfigType.BOOLEAN:
            if stripped.lower() not in ("true", "false"):
                raise refused(self.name, text, "Expected value to be either true or false")
            return stripped.lower() == "true"
        if self.type in (ConfigType.INT, ConfigType.SHORT, ConfigType.LONG):
            low, high = _LONG_RANGE if self.type == ConfigType.LONG else _INT_RANGE
            if not _INTEGER.fullmatch(stripped) or not low <= int(stripped) <= high:
                raise refused(self.name, text, f"Not a number of type {self.type.name}")
            return int(stripped)
        if self.type == ConfigType.DOUBLE:
            try:
                return float(stripped)
            except ValueError:
                raise refused(self.name, text, "Not a number of type DOUBLE") from None
        if self.type == ConfigType.LIST:
            return tuple(item.strip() for item in stripped.split(",") if item.strip())
        return stripped

    def render(self, value: Any) -> str | None:
        """`value` as Kafka shows it: lower-case booleans, comma-joined lists."""
        if value is None:
            return None
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, tuple):
            return ",".join(value)
        if isinstance(value, float):
            return java_double(value)
        return str(value)


def java_double(value: float) -> str:
    """`value` as Java's Double.toString writes it, as Kafka renders a DOUBLE config: plain
    between 10^-3 and 10^7, else scientific with a capital E (1.7976931348623157E308)."""
    if value != value or value in (float("inf"), float("-inf")):
        return {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}[repr(value)]
    if value == 0 or 1e-3 <= abs(value) < 1e7:
        return repr(value)
    from decimal import Decimal  # for the rare double outside Java's plain range: not at every start

    sign, digits, exponent = Decimal(repr(value)).as_tuple()
    assert isinstance(exponent, int)
    significant = "".join(map(str, digits)).rstrip("0") or "0"
    return f"{'-' if sign else ''}{significant[0]}.{significant[1:] or '0'}E{len(digits) + exponent - 1}"


def _bound(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def at_least(low: float) -> Validator:
    def check(name: str, value: Any) -> None:
        if value < low:
            raise refused(name, value, f"Value must be at least {_bound(low)}")

    return check


def between(low: float, high: float) -> Validator:
    def check(name: str, value: Any) -> None:
        if value < low:
            raise refused(name, value, f"Value must be at least {_bound(low)}")
        if value > high:
            raise refused(name, value, f"Value must be no more than {_bound(high)}")

    return check


def one_of(*choices: str) -> Validator:
    def check(name: str, value: Any) -> None:
        if value not in choices:
            raise refused(name, value, f"String must be one of: {', '.join(choices)}")

    return check


def list_of(*choices: str) -> Validator:
    def check(name: str, value: Any) -> None:
        for item in value:
            if item not in choices:
                # Kafka's ValidList names the one bad item, not the whole list.
                raise refused(name, item, f"String must be one of: {', '.join(choices)}")

    return check


def _gzip_level(name: str, value: Any) -> None:
    # GzipCompression.LEVEL_VALIDATOR: 1..9, or -1 for zlib's default.
    if value != -1 and not 1 <= value <= 9:
        raise refused(name, value, "Value must be between 1 and 9 or equal to -1")


def _throttled_replicas(name: str, value: Any) -> None:
    # ThrottledReplicaListValidator: "*" or partition:broker pairs.
    if value != ("*",) and not all(_is_pair(item) for item in value):
        raise refused(
            name,
            ",".join(value),
            "must be the wildcard (*) or a list of replicas in the form [PartitionId]:[BrokerId],[PartitionId]:[BrokerId],...",
        )


def _is_pair(item: str) -> bool:
    partition, _, node = item.partition(":")
    return partition.strip().isdigit() and node.strip().isdigit()


def _tiered_storage_off(name: str, value: Any) -> None:
    # Kafka refuses remote.storage.enable=true unless remote.log.storage.system.enable is on;
    # Ottla has no tiered storage.
    if value:
        raise InvalidConfigValue(
            "Tiered Storage functionality is disabled in the broker. Topic cannot be configured with remote log storage."
        )


_INHERIT: Any = object()


class _Synonym(NamedTuple):
    """How a topic key's broker setting differs from the topic key itself (a NamedTuple: read
    once while the keys are built, it need not cost a dataclass's start-up)."""

    name: str
    default: Any
    unit_ms: int = 1
    doc: str | None = None
    validator: Any = _INHERIT
    # Whether Kafka changes it without a restart (DynamicBrokerConfig): the forms in hours and
    # minutes and log.flush.scheduler.interval.ms are read at start-up only.
    dynamic: bool = True


def _topic(
    name: str,
    config_type: ConfigType,
    doc: str,
    validator: Validator | None = None,
    *,
    synonyms: tuple[_Synonym, ...] = (),
    default: Any = None,
) -> ConfigKey:
    """A topic key and its broker settings. The broker settings take the topic key's type (INT
    for hours and minutes), validator and a documentation line unless given others; the topic
    key's default is the first broker default there is, converted, else `default`."""
    built = []
    for synonym in synonyms:
        unit = "" if synonym.unit_ms == 1 else ", in hours" if synonym.unit_ms == _HOUR_MS else ", in minutes"
        key = ConfigKey(
            synonym.name,
            config_type if synonym.unit_ms == 1 else ConfigType.INT,
            synonym.default,
            synonym.doc or f"Default of the topic config `{name}`{unit}.",
            validator if synonym.validator is _INHERIT else synonym.validator,
            dynamic=synonym.dynamic and synonym.unit_ms == 1,
            nullable=synonym.default is None,
        )
        built.append(BrokerSynonym(key, synonym.unit_ms))
    defaults = [synonym.to_topic(synonym.key.default) for synonym in built if synonym.key.default is not None]
    return ConfigKey(name, config_type, defaults[0] if defaults else default, doc, validator, dynamic=True, synonyms=tuple(built))


BOOLEAN, STRING, INT, LONG, DOUBLE, LIST = ConfigType.BOOLEAN, ConfigType.STRING, ConfigType.INT, ConfigType.LONG, ConfigType.DOUBLE, ConfigType.LIST
_TIERED = "(tiered storage: not in Ottla)"

# Kafka 4.4's topic configs (TopicConfig, LogConfig.CONFIG), in name order.
TOPIC_KEYS: dict[str, ConfigKey] = {
    key.name: key
    for key in (
        _topic("cleanup.policy", LIST, "Retention policy of old segments: delete, compact, both, or empty for none.",
               list_of("compact", "delete"), synonyms=(_Synonym("log.cleanup.policy", ("delete",)),)),
        _topic("compression.gzip.level", INT, "Level used when compression.type is gzip.",
               _gzip_level, synonyms=(_Synonym("compression.gzip.level", -1),)),
        _topic("compression.lz4.level", INT, "Level used when compression.type is lz4.",
               between(1, 17), synonyms=(_Synonym("compression.lz4.level", 9),)),
        # "producer" keeps each batch as the producer compressed it; a codec name (or
        # "uncompressed") makes the broker recompress batches that differ, as Kafka's LogValidator does.
        _topic("compression.type", STRING, "Final compression of the topic's batches; producer keeps the producer's codec.",
               one_of("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"), synonyms=(_Synonym("compression.type", "producer"),)),
        _topic("compression.zstd.level", INT, "Level used when compression.type is zstd.",
               between(-131072, 22), synonyms=(_Synonym("compression.zstd.level", 3),)),
        _topic("delete.retention.ms", LONG, "How long delete tombstones are kept in a compacted topic.",
               at_least(0), synonyms=(_Synonym("log.cleaner.delete.retention.ms", 24 * _HOUR_MS),)),
        _topic("errors.deadletterqueue.group.enable", BOOLEAN,
               "Whether share groups may use this topic as a dead-letter queue (KIP-1191).", default=False),
        _topic("file.delete.delay.ms", LONG, "How long a deleted segment file lingers before removal.",
               at_least(0), synonyms=(_Synonym("log.segment.delete.delay.ms", 60000),)),
        _topic("flush.messages", LONG, "Force an fsync after this many messages.",
               at_least(1), synonyms=(_Synonym("log.flush.interval.messages", LONG_MAX),)),
        _topic("flush.ms", LONG, "Force an fsync after this many milliseconds.", at_least(0), synonyms=(
            _Synonym("log.flush.interval.ms", None,
                     doc="Default of the topic config `flush.ms`; unset, `log.flush.scheduler.interval.ms` stands in, as in Kafka."),
            _Synonym("log.flush.scheduler.interval.ms", LONG_MAX, validator=at_least(1), dynamic=False,
                     doc="How often topics' flush.ms is checked; Kafka's default never checks (the OS flushes)."),
        )),
        _topic("follower.replication.throttled.replicas", LIST, "Replicas throttled on the follower side (no followers on one node).",
               _throttled_replicas, default=()),
        _topic("index.interval.bytes", INT, "Bytes of log between two offset index entries.",
               at_least(0), synonyms=(_Synonym("log.index.interval.bytes", 4096),)),
        _topic("leader.replication.throttled.replicas", LIST, "Replicas throttled on the leader side (no followers on one node).",
               _throttled_replicas, default=()),
        _topic("local.retention.bytes", LONG, "Local retention size with tiered storage; -2 means retention.bytes.", at_least(-2),
               synonyms=(_Synonym("log.local.retention.bytes", -2, doc=f"Default of the topic config `local.retention.bytes` {_TIERED}."),)),
        _topic("local.retention.ms", LONG, "Local retention time with tiered storage; -2 means retention.ms.", at_least(-2),
               synonyms=(_Synonym("log.local.retention.ms", -2, doc=f"Default of the topic config `local.retention.ms` {_TIERED}."),)),
        _topic("max.compaction.lag.ms", LONG, "Longest a message stays ineligible for compaction.",
               at_least(1), synonyms=(_Synonym("log.cleaner.max.compaction.lag.ms", LONG_MAX),)),
        # Kafka 4.4: the default is the largest array the JVM allocates, i.e. no limit of its own.
        _topic("max.decompressed.message.bytes", INT, "Largest decompressed size of one record the broker accepts.",
               between(1, NO_RECORD_SIZE_LIMIT), synonyms=(_Synonym("max.decompressed.message.bytes", NO_RECORD_SIZE_LIMIT),)),
        _topic("max.message.bytes", INT, "Largest record batch the topic accepts, after compression.", at_least(0), synonyms=(
            _Synonym("message.max.bytes", 1048588, doc="Largest record batch accepted; default of the topic config `max.message.bytes`."),
        )),
        # KIP-1030 made Kafka 4.0 reject records stamped more than an hour ahead of the broker.
        _topic("message.timestamp.after.max.ms", LONG, "How far a CreateTime timestamp may lie in the future.",
               at_least(0), synonyms=(_Synonym("log.message.timestamp.after.max.ms", _HOUR_MS),)),
        _topic("message.timestamp.before.max.ms", LONG, "How far a CreateTime timestamp may lie in the past.",
               at_least(0), synonyms=(_Synonym("log.message.timestamp.before.max.ms", LONG_MAX),)),
        _topic("message.timestamp.type", STRING, "Whether record timestamps are the producer's (CreateTime) or the broker's (LogAppendTime).",
               one_of("CreateTime", "LogAppendTime"), synonyms=(_Synonym("log.message.timestamp.type", "CreateTime"),)),
        _topic("min.cleanable.dirty.ratio", DOUBLE, "Share of uncompacted log that makes a compacted topic eligible for cleaning.",
               between(0, 1), synonyms=(_Synonym("log.cleaner.min.cleanable.ratio", 0.5),)),
        _topic("min.compaction.lag.ms", LONG, "Shortest time a message stays uncompacted.",
               at_least(0), synonyms=(_Synonym("log.cleaner.min.compaction.lag.ms", 0),)),
        _topic("min.insync.replicas", INT, "Replicas that must acknowledge an acks=all write; one node is the whole ISR.",
               at_least(1), synonyms=(_Synonym("min.insync.replicas", 1),)),
        _topic("preallocate", BOOLEAN, "Preallocate segment files on disk.", synonyms=(_Synonym("log.preallocate", False),)),
        _topic("remote.copy.lag.bytes", LONG, "Tiered storage: bytes of newer log before a segment is uploaded (not in Ottla).", at_least(-1),
               synonyms=(_Synonym("log.remote.copy.lag.bytes", -1, doc=f"Default of the topic config `remote.copy.lag.bytes` {_TIERED}."),)),
        _topic("remote.copy.lag.ms", LONG, "Tiered storage: age before a segment is uploaded (not in Ottla).", at_least(-1),
               synonyms=(_Synonym("log.remote.copy.lag.ms", 0, doc=f"Default of the topic config `remote.copy.lag.ms` {_TIERED}."),)),
        _topic("remote.log.copy.disable", BOOLEAN, "Stop uploading to tiered storage.", default=False),
        _topic("remote.log.delete.on.disable", BOOLEAN, "Delete tiered data when tiered storage is disabled.", default=False),
        _topic("remote.storage.enable", BOOLEAN, "Tiered storage; not available in Ottla.", _tiered_storage_off, default=False),
        _topic("retention.bytes", LONG, "Largest size of a partition before old segments are discarded; -1 is no limit.",
               synonyms=(_Synonym("log.retention.bytes", -1, doc="Default of the topic config `retention.bytes`; -1 is no limit."),)),
        _topic("retention.ms", LONG, "Longest time a segment is kept before it is discarded; -1 is no limit.", at_least(-1), synonyms=(
            _Synonym("log.retention.ms", None, doc="Default of `retention.ms`; overrides the minutes and hours forms."),
            _Synonym("log.retention.minutes", None, _MINUTE_MS, doc="Default of `retention.ms` in minutes; overrides `log.retention.hours`."),
            _Synonym("log.retention.hours", 168, _HOUR_MS),
        )),
        _topic("segment.bytes", INT, "Size at which the active segment is rolled.", at_least(1048576), synonyms=(
            _Synonym("log.segment.bytes", 1 << 30, doc="Default of the topic config `segment.bytes` (Kafka 4's floor: 1 MiB)."),
        )),
        _topic("segment.index.bytes", INT, "Size of a segment's offset index.",
               at_least(4), synonyms=(_Synonym("log.index.size.max.bytes", 10 * 1024 * 1024),)),
        _topic("segment.jitter.ms", LONG, "Random jitter subtracted from segment.ms.", at_least(0), synonyms=(
            _Synonym("log.roll.jitter.ms", None, doc="Default of `segment.jitter.ms`; overrides `log.roll.jitter.hours`."),
            _Synonym("log.roll.jitter.hours", 0, _HOUR_MS),
        )),
        _topic("segment.ms", LONG, "Age at which the active segment is rolled.", at_least(1), synonyms=(
            _Synonym("log.roll.ms", None, doc="Default of `segment.ms`; overrides `log.roll.hours`."),
            _Synonym("log.roll.hours", 168, _HOUR_MS),
        )),
        _topic("unclean.leader.election.enable", BOOLEAN, "Elect an out-of-sync replica as leader as a last resort.",
               synonyms=(_Synonym("unclean.leader.election.enable", False),)),
    )
}

# Kafka 4.4's internal topic configs (LogConfig's defineInternal): CreateTopics and AlterConfigs
# take them, DescribeConfigs lists one only where a topic sets it, as its value was given. No
# default, no validator (any INT), no broker setting. internal.segment.bytes stands in for
# segment.bytes wherever the log reads it (LogConfig.segmentSize), without segment.bytes' floor.
INTERNAL_TOPIC_KEYS: dict[str, ConfigKey] = {
    key.name: key
    for key in (
        ConfigKey("internal.segment.bytes", INT, None, "Size at which the active segment is rolled, in place of segment.bytes; for tests.",
                  dynamic=True, nullable=True),
    )
}

# Every broker setting that supplies a topic key's default (Kafka's LogConfig.SERVER_CONFIG_DEF).
BROKER_LOG_KEYS: dict[str, ConfigKey] = {synonym.key.name: synonym.key for key in TOPIC_KEYS.values() for synonym in key.synonyms}

# Each topic key's default as text, under any topic's overrides.
DEFAULTS: dict[str, str] = {name: key.render(key.default) or "" for name, key in TOPIC_KEYS.items()}


def _topic_key(name: str) -> Any:
    """A LogConfig field read from topic key `name`."""
    return field(metadata={"topic_key": name})


@dataclass(slots=True, frozen=True)
class LogConfig:
    """The settings a partition log reads, parsed once from the topic's overrides."""

    segment_bytes: int = _topic_key("segment.bytes")
    segment_ms: int = _topic_key("segment.ms")
    segment_jitter_ms: int = _topic_key("segment.jitter.ms")
    segment_index_bytes: int = _topic_key("segment.index.bytes")
    index_interval_bytes: int = _topic_key("index.interval.bytes")
    retention_ms: int = _topic_key("retention.ms")
    retention_bytes: int = _topic_key("retention.bytes")
    max_message_bytes: int = _topic_key("max.message.bytes")
    timestamp_type: str = _topic_key("message.timestamp.type")
    timestamp_before_max_ms: int = _topic_key("message.timestamp.before.max.ms")
    timestamp_after_max_ms: int = _topic_key("message.timestamp.after.max.ms")
    cleanup_policy: tuple[str, ...] = _topic_key("cleanup.policy")
    delete_retention_ms: int = _topic_key("delete.retention.ms")
    min_compaction_lag_ms: int = _topic_key("min.compaction.lag.ms")
    min_cleanable_dirty_ratio: float = _topic_key("min.cleanable.dirty.ratio")
    max_compaction_lag_ms: int = _topic_key("max.compaction.lag.ms")
    file_delete_delay_ms: int = _topic_key("file.delete.delay.ms")
    flush_messages: int = _topic_key("flush.messages")
    flush_ms: int = _topic_key("flush.ms")
    compression_type: str = _topic_key("compression.type")
    max_decompressed_message_bytes: int = _topic_key("max.decompressed.message.bytes")

    def random_segment_jitter(self) -> int:
        """Kafka's LogConfig.randomSegmentJitter, drawn for each segment as it is created or
        opened: how much sooner than segment.ms it rolls, below min(segment.jitter.ms, segment.ms)."""
        if self.segment_jitter_ms == 0:
            return 0
        return random.randrange(1 << 31) % min(self.segment_jitter_ms, self.segment_ms)

    @property
    def log_append_time(self) -> bool:
        return self.timestamp_type == "LogAppendTime"

    @property
    def compact(self) -> bool:
        return "compact" in self.cleanup_policy

    @property
    def delete(self) -> bool:
        # An empty policy means no cleanup at all: infinite retention (KAFKA-19112).
        return "delete" in self.cleanup_policy

    @property
    def limits_record_size(self) -> bool:
        """Whether appends must walk compressed records to hold them to max.decompressed.message.bytes."""
        return self.max_decompressed_message_bytes < NO_RECORD_SIZE_LIMIT

    @classmethod
    def from_overrides(cls, overrides: Mapping[str, str]) -> LogConfig:
        """Parse topic overrides over the topic keys' defaults; a bad value is INVALID_CONFIG.

        Only the type and the choices are checked, not Kafka's floors: the embedding API may
        set a tiny segment.bytes for a test, and CreateTopics and AlterConfigs have applied
        every validator already. internal.segment.bytes, when set, is the segment size."""
        merged = {**DEFAULTS, **overrides}
        values: dict[str, Any] = {}
        try:
            for item in fields(cls):
                key = TOPIC_KEYS[item.metadata["topic_key"]]
                values[item.name] = key.parse_type(merged[key.name])
                if key.type in (ConfigType.STRING, ConfigType.LIST):
                    key.check(values[item.name])
            internal_segment_bytes = INTERNAL_TOPIC_KEYS["internal.segment.bytes"].parse_type(overrides.get("internal.segment.bytes", ""))
        except InvalidConfigValue as error:
            raise KafkaError(ErrorCode.INVALID_CONFIG, f"invalid topic config: {error}") from None
        config = cls(**values)
        # Kafka's LogConfig: segment.bytes has a 14-byte floor (one legacy message header).
        if (
            config.segment_bytes < 14
            or config.segment_ms < 1
            or config.index_interval_bytes < 0
            or config.segment_index_bytes < 12  # room for one entry of either index
        ):
            raise KafkaError(ErrorCode.INVALID_CONFIG, "segment or index setting out of range")
        return config if internal_segment_bytes is None else replace(config, segment_bytes=internal_segment_bytes)
