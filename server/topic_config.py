"""Topic configs at the broker: validation of CreateTopics and AlterConfigs values, and each
config's effective value, source and synonyms as DescribeConfigs reports them.

The keys themselves (type, default, validator, broker synonyms) are defined once in
`ottla.storage.config.TOPIC_KEYS`; a broker setting reaches them through `BrokerConfig`.
Validation answers as Kafka's ControllerConfigurationValidator / LogConfig.validate do:
INVALID_CONFIG with Kafka's message for an unknown name, a null value or a value its
validator refuses.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Mapping

from ottla.server.config import BrokerConfig
from ottla.server.java_hashing import default_capacity, java_order, string_hash
from ottla.storage.config import INTERNAL_TOPIC_KEYS, TOPIC_KEYS, BrokerSynonym, ConfigKey, InvalidConfigValue
from ottla.wire.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from ottla.server.config_entries import Resolved

# DescribeConfigsResponse config_source values (ConfigSource in DescribeConfigsResponse.json).
DYNAMIC_TOPIC_CONFIG = 1
DYNAMIC_BROKER_CONFIG = 2
DYNAMIC_DEFAULT_BROKER_CONFIG = 3
STATIC_BROKER_CONFIG = 4
DEFAULT_CONFIG = 5


# LogConfig's ConfigDef, in definition order (its LinkedHashMap of keys, read from the 4.4 jar):
# LogConfigDef.parse parses the values in this order, so the first refused here is reported.
_DEFINITION_ORDER = (
    "segment.bytes", "segment.ms", "segment.jitter.ms", "segment.index.bytes", "flush.messages", "flush.ms", "retention.bytes",
    "retention.ms", "max.message.bytes", "max.decompressed.message.bytes", "index.interval.bytes", "delete.retention.ms",
    "min.compaction.lag.ms", "max.compaction.lag.ms", "file.delete.delay.ms", "min.cleanable.dirty.ratio", "cleanup.policy",
    "unclean.leader.election.enable", "min.insync.replicas", "compression.type", "compression.gzip.level", "compression.lz4.level",
    "compression.zstd.level", "preallocate", "message.timestamp.type", "message.timestamp.before.max.ms",
    "message.timestamp.after.max.ms", "leader.replication.throttled.replicas", "follower.replication.throttled.replicas",
    "remote.storage.enable", "local.retention.ms", "local.retention.bytes", "remote.log.copy.disable", "remote.copy.lag.ms",
    "remote.copy.lag.bytes", "remote.log.delete.on.disable", "errors.deadletterqueue.group.enable", "internal.segment.bytes",
)
_RANK = {name: rank for rank, name in enumerate(_DEFINITION_ORDER)}


def _parse_value(name: str, value: str) -> str:
    """A known config's value, normalised as Kafka shows it; KafkaError(INVALID_CONFIG) with
    ConfigDef's words when it is refused."""
    key = TOPIC_KEYS.get(name) or INTERNAL_TOPIC_KEYS[name]
    try:
        parsed = key.parse(value)
    except InvalidConfigValue as exc:
        raise KafkaError(ErrorCode.INVALID_CONFIG, str(exc)) from None
    # Kafka lists an internal config as it was given.
    return value if name in INTERNAL_TOPIC_KEYS else key.render(parsed) or ""


def validate_configs(configs: Mapping[str, str | None], held: int = 0) -> dict[str, str]:
    """A whole set of topic overrides, validated and normalised (in the order given), refused as
    Kafka's controller refuses them: every null value named at once
    (ControllerConfigurationValidator.filterAndValidateNullConfigs), then an unknown name
    (LogConfig.validateNames), then the first value refused in LogConfig's definition order
    (LogConfigDef.parse), whatever order the request lists them in. Null names are listed in
    the request's order; of several unknown names the one reported is the first in the order
    the controller's HashMap of the whole set iterates (`java_order`), which also holds the
    `held` overrides an alteration leaves as they are."""
    values = {name: value for name, value in configs.items() if value is not None}
    if len(values) < len(configs):
        nulls = ",".join(name for name in configs if name not in values)
        raise KafkaError(ErrorCode.INVALID_CONFIG, f"Null value not supported for topic configs: {nulls}")
    hash_ordered = java_order(list(values), string_hash, default_capacity(len(values) + held))
    unknown = next((name for name in hash_ordered if name not in TOPIC_KEYS and name not in INTERNAL_TOPIC_KEYS), None)
    if unknown is not None:
        raise KafkaError(ErrorCode.INVALID_CONFIG, f"Unknown topic config name: {unknown}")
    parsed = {name: _parse_value(name, values[name]) for name in sorted(values, key=lambda name: _RANK.get(name, len(_RANK)))}
    return {name: parsed[name] for name in values}


def check_together(overrides: Mapping[str, str], defaults: Mapping[str, str]) -> None:
    """LogConfig.validateValues: the checks of settings against one another, on a topic's
    overrides over the broker's defaults; KafkaError(INVALID_CONFIG) with Kafka's message."""
    merged = {**defaults, **overrides}
    low, high = merged.get("min.compaction.lag.ms"), merged.get("max.compaction.lag.ms")
    if low is not None and high is not None and int(low) > int(high):
        raise KafkaError(ErrorCode.INVALID_CONFIG, f"conflict topic config setting min.compaction.lag.ms ({low}) > max.compaction.lag.ms ({high})")


# Dynamic broker configs as (values by name, as text; their ConfigSource), highest precedence first.
Layers = Sequence[tuple[Mapping[str, str], int]]


def broker_default(key: ConfigKey, broker: BrokerConfig, dynamic: Layers = ()) -> tuple[str, int, list[tuple[str, str, int]]]:
    """(value, source, synonyms) of `key` when the topic does not override it; `broker` is the
    static settings, `dynamic` the dynamic broker configs over them.

    The value is the first broker synonym set dynamically, else set explicitly, else the
    first with a default, else the key's own default. The synonyms are listed as Kafka's
    ConfigHelper.configSynonyms lists them: every dynamic and explicit setting, then every
    default, each source in synonym order, and then everything before the first entry of the
    primary name (log.retention.ms for retention.ms) dropped. So a broker that sets only
    log.retention.hours describes retention.ms with no synonyms and DEFAULT_CONFIG as its
    source, as Kafka does; the value is still the hours'.
    """
    explicit: list[tuple[BrokerSynonym, Any, int]] = []
    defaults: list[tuple[BrokerSynonym, Any]] = []
    for values, source in dynamic:
        explicit += [(synonym, synonym.key.parse_type(values[synonym.key.name]), source) for synonym in key.synonyms if synonym.key.name in values]
    for synonym in key.synonyms:
        value = broker.value(synonym.key.name)
        if synonym.key.name in broker.explicit and value is not None:
            explicit.append((synonym, value, STATIC_BROKER_CONFIG))
        if synonym.key.default is not None:
            defaults.append((synonym, synonym.key.default))
    effective = explicit[0][:2] if explicit else defaults[0] if defaults else None
    listed = [(synonym.key.name, synonym.key.render(value) or "", source) for synonym, value, source in explicit]
    listed += [(synonym.key.name, synonym.key.render(value) or "", DEFAULT_CONFIG) for synonym, value in defaults]
    if key.synonyms:
        primary = key.synonyms[0].key.name
        listed = list(itertools.dropwhile(lambda entry: entry[0] != primary, listed))
    value = key.default if effective is None else effective[0].to_topic(effective[1])
    return key.render(value) or "", listed[0][2] if listed else DEFAULT_CONFIG, listed


def broker_topic_defaults(broker: BrokerConfig, dynamic: Layers = ()) -> dict[str, str]:
    """Every topic config's broker-level value, for storage to merge under topic overrides."""
    return {name: broker_default(key, broker, dynamic)[0] for name, key in TOPIC_KEYS.items()}


def resolve(overrides: Mapping[str, str], broker: BrokerConfig, dynamic: Layers = ()) -> list[Resolved]:
    """Every topic config, in name order, with its effective value, source and synonyms; an
    internal one only where the topic sets it."""
    from ottla.server.config_entries import Resolved  # loaded by the first describe, not at start

    resolved = []
    internal = {name: key for name, key in INTERNAL_TOPIC_KEYS.items() if name in overrides}
    for name, key in sorted({**TOPIC_KEYS, **internal}.items()):
        value, source, synonyms = broker_default(key, broker, dynamic)
        if name in overrides:
            value, source = overrides[name], DYNAMIC_TOPIC_CONFIG
            synonyms = [(name, value, DYNAMIC_TOPIC_CONFIG), *synonyms]
        resolved.append(Resolved(key, value, source, synonyms))
    return resolved
