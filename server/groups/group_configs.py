"""Per-group configs: the GROUP config resource (type 32) of DescribeConfigs and
IncrementalAlterConfigs, as Kafka 4.4's GroupConfig and GroupConfigManager keep them.

A group config overrides, for one group id, a broker setting (`consumer.session.timeout.ms`
over `group.consumer.session.timeout.ms`) or has a default of its own; a group need not exist
to be configured. An override must parse as its type, pass the key's own floor, and lie within
the broker's `group.<protocol>.min/max.*` bounds, each refused with the words Kafka 4.4 uses
(asked of the reference broker). What a group is not given follows the broker setting, so a
changed broker default reaches every group without an override.

The overrides live in `<data dir>/group-configs.json`, replaced whole and durably on each
change (Kafka keeps them as ConfigRecords in its metadata log); without a data directory they
last as long as the broker; over PostgreSQL they are the database's, shared by every broker on
it (server/security/database.py: `record_change` takes each change instead of the file, `reset`
puts the overrides as another broker left them in place). Readers: the consumer group
coordinator takes the session timeout and heartbeat interval of each group from `value` on
every heartbeat.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ottla.storage.config import ConfigKey, ConfigType, InvalidConfigValue, at_least, one_of
from ottla.storage.files import replace_file
from ottla.wire.errors import ErrorCode, KafkaError

FILE_NAME = "group-configs.json"

# DescribeConfigsResponse config_source values.
GROUP_CONFIG_SOURCE = 8  # ConfigSource.GROUP_CONFIG: an override of this group
STATIC_BROKER_CONFIG = 4
DEFAULT_CONFIG = 5


class GroupConfigKey:
    """One group config: its definition, the broker setting it defaults to (None: its own
    default), and the broker settings bounding it: (min, max), or (None, max) for a ceiling.
    This and DescribedGroupConfig are plain classes: a dataclass costs every broker's start
    most of a millisecond to create."""

    __slots__ = ("key", "broker_key", "bounds")

    def __init__(self, key: ConfigKey, broker_key: str | None = None, bounds: tuple[str | None, str] | None = None) -> None:
        self.key = key
        self.broker_key = broker_key
        self.bounds = bounds


def _auto_offset_reset(name: str, value: Any) -> None:
    """share.auto.offset.reset: earliest, latest or by_duration:<ISO-8601 duration>."""
    if value in ("earliest", "latest") or (value.startswith("by_duration:") and value[len("by_duration:"):].startswith("P")):
        return
    raise InvalidConfigValue(
        f"Invalid value {value} for configuration {name}: Invalid value `{value}` for configuration {name}. The value must be "
        "either 'earliest', 'latest' or of the format 'by_duration:<PnDTnHnMn.nS>'."
    )


def _key(name: str, kind: ConfigType, default: Any, doc: str, floor: int | None = 1, **extra: Any) -> ConfigKey:
    validator = extra.pop("validator", None) or (at_least(floor) if kind == ConfigType.INT and floor is not None else None)
    return ConfigKey(name, kind, default, doc, validator=validator, dynamic=True, **extra)


_INT, _STRING, _BOOLEAN, _LIST = ConfigType.INT, ConfigType.STRING, ConfigType.BOOLEAN, ConfigType.LIST

# In the order Kafka 4.4 lists them (its GroupConfig's definitions, as DescribeConfigs answers).
KEYS: dict[str, GroupConfigKey] = {
    entry.key.name: entry
    for entry in (
        GroupConfigKey(_key("consumer.session.timeout.ms", _INT, None, "The timeout to detect client failures when using the consumer group protocol."),
                       "group.consumer.session.timeout.ms", ("group.consumer.min.session.timeout.ms", "group.consumer.max.session.timeout.ms")),
        GroupConfigKey(_key("streams.assignor.name", _STRING, None, "The task assignor to use for this streams group."), "group.streams.assignors"),
        GroupConfigKey(_key("consumer.assignment.interval.ms", _INT, None, "The interval between assignment updates for a consumer group.", floor=0),
                       "group.consumer.assignment.interval.ms", ("group.consumer.min.assignment.interval.ms", "group.consumer.max.assignment.interval.ms")),
        GroupConfigKey(_key("errors.deadletterqueue.copy.record.enable", _BOOLEAN, False,
                            "When writing onto the dead-letter queue topic, whether to copy the original record onto the DLQ topic.")),
        GroupConfigKey(_key("share.auto.offset.reset", _STRING, "latest", "The strategy to initialize the share-partition start offset.",
                            validator=_auto_offset_reset)),
        GroupConfigKey(_key("streams.rack.aware.assignment.tags", _LIST, None, "List of client tag keys used to distribute standby replicas across clients."),
                       "group.streams.rack.aware.assignment.tags"),
        GroupConfigKey(_key("share.renew.acknowledge.enable", _BOOLEAN, True, "Whether the renew acknowledge type is enabled for the share group.")),
        GroupConfigKey(_key("streams.initial.rebalance.delay.ms", _INT, None, "The time a new streams group waits for more members before its first assignment.", floor=0),
                       "group.streams.initial.rebalance.delay.ms"),
        GroupConfigKey(_key("share.session.timeout.ms", _INT, None, "The timeout to detect client failures when using the share group protocol."),
                       "group.share.session.timeout.ms", ("group.share.min.session.timeout.ms", "group.share.max.session.timeout.ms")),
        GroupConfigKey(_key("streams.assignment.interval.ms", _INT, None, "The interval between assignment updates for a streams group.", floor=0),
                       "group.streams.assignment.interval.ms", ("group.streams.min.assignment.interval.ms", "group.streams.max.assignment.interval.ms")),
        GroupConfigKey(_key("share.heartbeat.interval.ms", _INT, None, "The heartbeat interval given to the members of a share group."),
                       "group.share.heartbeat.interval.ms", ("group.share.min.heartbeat.interval.ms", "group.share.max.heartbeat.interval.ms")),
        GroupConfigKey(_key("streams.heartbeat.interval.ms", _INT, None, "The heartbeat interval given to the members of a streams group."),
                       "group.streams.heartbeat.interval.ms", ("group.streams.min.heartbeat.interval.ms", "group.streams.max.heartbeat.interval.ms")),
        GroupConfigKey(_key("share.delivery.count.limit", _INT, None, "The maximum number of delivery attempts for a record delivered to a share group.",
                            floor=2),
                       "group.share.delivery.count.limit", ("group.share.min.delivery.count.limit", "group.share.max.delivery.count.limit")),
        GroupConfigKey(_key("errors.deadletterqueue.topic.name", _STRING, "", "The name of the topic to be used as the dead-letter queue (DLQ) topic for this share group.")),
        GroupConfigKey(_key("consumer.heartbeat.interval.ms", _INT, None, "The heartbeat interval given to the members of a consumer group."),
                       "group.consumer.heartbeat.interval.ms", ("group.consumer.min.heartbeat.interval.ms", "group.consumer.max.heartbeat.interval.ms")),
        GroupConfigKey(_key("share.record.lock.duration.ms", _INT, None, "The record acquisition lock duration in milliseconds for share groups.", floor=1000),
                       "group.share.record.lock.duration.ms", ("group.share.min.record.lock.duration.ms", "group.share.max.record.lock.duration.ms")),
        GroupConfigKey(_key("share.assignment.interval.ms", _INT, None, "The interval between assignment updates for a share group.", floor=0),
                       "group.share.assignment.interval.ms", ("group.share.min.assignment.interval.ms", "group.share.max.assignment.interval.ms")),
        GroupConfigKey(_key("share.isolation.level", _STRING, "read_uncommitted", "Controls how to read records written transactionally.",
                            validator=one_of("read_committed", "read_uncommitted"))),
        GroupConfigKey(_key("streams.session.timeout.ms", _INT, None, "The timeout to detect client failures when using the streams group protocol."),
                       "group.streams.session.timeout.ms", ("group.streams.min.session.timeout.ms", "group.streams.max.session.timeout.ms")),
        GroupConfigKey(_key("share.partition.max.record.locks", _INT, None, "Share-group record lock limit per share-partition.", floor=100),
                       "group.share.partition.max.record.locks", ("group.share.min.partition.max.record.locks", "group.share.max.partition.max.record.locks")),
        GroupConfigKey(_key("streams.num.standby.replicas", _INT, None, "The number of standby replicas for each task.", floor=0),
                       "group.streams.num.standby.replicas", (None, "group.streams.max.standby.replicas")),
    )
}


class DescribedGroupConfig:
    """One group config as DescribeConfigs gives it; synonyms are (name, value, source)."""

    __slots__ = ("key", "value", "source", "synonyms")

    def __init__(self, key: ConfigKey, value: str | None, source: int, synonyms: tuple[tuple[str, str | None, int], ...]) -> None:
        self.key = key
        self.value = value
        self.source = source
        self.synonyms = synonyms


class GroupConfigs:
    """Every group's overrides. `broker_value(name)` reads a broker setting as the broker runs
    now (defaults and bounds); `broker_source(name)` says where it came from (a DescribeConfigs
    source), for the synonym a described default names."""

    def __init__(self, data_dir: Path | None, broker_value: Callable[[str], Any], broker_source: Callable[[str], int] | None = None) -> None:
        self._path = None if data_dir is None else data_dir / FILE_NAME
        self.broker_value = broker_value
        self.broker_source = broker_source or (lambda name: DEFAULT_CONFIG)
        self.overrides: dict[str, dict[str, str]] = {}
        # Over PostgreSQL: what records each change (a group and its overrides now) instead of the file.
        self.record_change: Callable[[str, dict[str, str]], None] | None = None
        if self._path is not None and self._path.exists():
            self.overrides = {group: dict(configs) for group, configs in json.loads(self._path.read_bytes()).items()}

    def value(self, group_id: str, name: str) -> Any:
        """The typed value `group_id` runs with: its override, else the default."""
        entry = KEYS[name]
        text = self.overrides.get(group_id, {}).get(name)
        return entry.key.parse_type(text) if text is not None else self._default(entry)

    def _default(self, entry: GroupConfigKey) -> Any:
        if entry.broker_key is None:
            return entry.key.default
        value = self.broker_value(entry.broker_key)
        if entry.key.type == ConfigType.STRING and isinstance(value, tuple):
            return value[0] if value else ""  # an assignor list's first: the group's default
        return value

    def describe(self, group_id: str, names: Iterable[str] | None = None) -> list[DescribedGroupConfig]:
        """Every group config (or those of `names` Kafka knows; others are left out, as Kafka does)."""
        wanted = None if names is None else set(names)
        overrides = self.overrides.get(group_id, {})
        described = []
        for name, entry in KEYS.items():
            if wanted is not None and name not in wanted:
                continue
            key = entry.key
            default = key.render(self._default(entry))
            default_synonym = (entry.broker_key or name, default, self.broker_source(entry.broker_key) if entry.broker_key else DEFAULT_CONFIG)
            if name in overrides:
                override = key.render(key.parse_type(overrides[name]))
                described.append(DescribedGroupConfig(key, override, GROUP_CONFIG_SOURCE, ((name, override, GROUP_CONFIG_SOURCE), default_synonym)))
            else:
                described.append(DescribedGroupConfig(key, default, default_synonym[2], (default_synonym,)))
        return described

    def replace(self, group_id: str, configs: Mapping[str, str | None], validate_only: bool) -> None:
        """Make `configs` (name -> text; None drops the override) the group's overrides after
        checking them all; raises KafkaError(INVALID_CONFIG) with Kafka's words on the first refusal."""
        if not group_id:
            raise KafkaError(ErrorCode.INVALID_REQUEST, "Default group resources are not allowed.")
        kept = {name: text for name, text in configs.items() if text is not None}
        self._check(kept)
        if validate_only:
            return
        if kept:
            self.overrides[group_id] = kept
        else:
            self.overrides.pop(group_id, None)
        if self.record_change is not None:
            self.record_change(group_id, kept)
        elif self._path is not None:
            replace_file(self._path, json.dumps(self.overrides, indent=1, sort_keys=True).encode())

    def reset(self, overrides: dict[str, dict[str, str]]) -> None:
        """Every group's overrides replaced by `overrides`, as the database now has them."""
        self.overrides = overrides

    def _check(self, configs: Mapping[str, str]) -> None:
        """Kafka 4.4's GroupConfig.validate on a group's whole overrides, in its order: every name
        known; no tag key twice in streams.rack.aware.assignment.tags; every value parsed, in
        the order GroupConfig defines them; each within the broker's bounds, in the order
        GroupConfig.validateValues judges them; the assignor registered; the DLQ topic's name."""
        for name in configs:
            if name not in KEYS:
                raise KafkaError(ErrorCode.INVALID_CONFIG, f"Unknown group config name: {name}")
        tags = configs.get("streams.rack.aware.assignment.tags", "").strip()
        keys = re.split(r"\s*,\s*", tags) if tags else []
        if len(set(keys)) != len(keys):
            raise KafkaError(ErrorCode.INVALID_CONFIG, "streams.rack.aware.assignment.tags must not contain duplicate tag keys.")
        values = {}
        for name in _DEFINITION_ORDER:
            if name in configs:
                try:
                    values[name] = KEYS[name].key.parse(configs[name])
                except InvalidConfigValue as exc:
                    raise KafkaError(ErrorCode.INVALID_CONFIG, str(exc)) from None
        for name in _BOUNDS_ORDER:
            bounds = KEYS[name].bounds
            if name not in values or bounds is None:
                continue
            value, (low_key, high_key) = values[name], bounds
            high = self.broker_value(high_key)
            if low_key is None:
                if value > high:
                    raise KafkaError(ErrorCode.INVALID_CONFIG, f"{name} must be less than or equal to {high}")
                continue
            low = self.broker_value(low_key)
            if not low <= value <= high:
                raise KafkaError(ErrorCode.INVALID_CONFIG, f"{name} must be in the range {low} to {high} inclusive.")
        assignor = values.get("streams.assignor.name")
        registered = tuple(self.broker_value("group.streams.assignors"))
        if assignor is not None and assignor not in registered:
            raise KafkaError(
                ErrorCode.INVALID_CONFIG,
                f"streams.assignor.name '{assignor}' is not a registered task assignor. Registered assignors are: [{', '.join(registered)}].",
            )
        if values.get("errors.deadletterqueue.topic.name", "").startswith("__"):
            raise KafkaError(ErrorCode.INVALID_CONFIG, "errors.deadletterqueue.topic.name: DLQ topic name must not start with '__'")


# GroupConfig's definitions in Kafka 4.4's order, in which ConfigDef.parse judges the values.
_DEFINITION_ORDER = (
    "consumer.session.timeout.ms", "consumer.heartbeat.interval.ms", "consumer.assignment.interval.ms", "share.session.timeout.ms",
    "share.heartbeat.interval.ms", "share.record.lock.duration.ms", "share.delivery.count.limit", "share.partition.max.record.locks",
    "share.auto.offset.reset", "share.isolation.level", "share.renew.acknowledge.enable", "share.assignment.interval.ms",
    "streams.session.timeout.ms", "streams.heartbeat.interval.ms", "streams.num.standby.replicas", "streams.initial.rebalance.delay.ms",
    "streams.assignment.interval.ms", "streams.rack.aware.assignment.tags", "streams.assignor.name", "errors.deadletterqueue.topic.name",
    "errors.deadletterqueue.copy.record.enable",
)
# The order of GroupConfig.validateValues' checks against the broker's bounds.
_BOUNDS_ORDER = (
    "consumer.heartbeat.interval.ms", "consumer.session.timeout.ms", "consumer.assignment.interval.ms", "share.heartbeat.interval.ms",
    "share.session.timeout.ms", "share.record.lock.duration.ms", "share.delivery.count.limit", "share.partition.max.record.locks",
    "share.assignment.interval.ms", "streams.heartbeat.interval.ms", "streams.session.timeout.ms", "streams.num.standby.replicas",
    "streams.assignment.interval.ms",
)
