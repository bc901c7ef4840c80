"""Broker settings, under Kafka's names and with Kafka's defaults.

`BrokerConfig` is the registry: each field is one setting, defined once (type, default,
validator, documentation, dynamic or not, sensitive or not), and read typed
(`config.fetch_max_bytes`). The settings that supply topic config defaults (`log.retention.hours`
and the like) are defined with their topic keys in `ottla.storage.config` and only named here.
The CLI, the embedding API, DescribeConfigs on the broker resource and the README's
configuration table are all drawn from it. Kafka's other broker settings, which Ottla accepts
without acting on them, are defined in `ottla.server.kafka_settings`. Settings come, lowest
precedence first, from the defaults, a Kafka `server.properties` file,
`OTTLA_<KEY_WITH_UNDERSCORES>` environment variables, and `--set key=value` (or the flags of
`ottla serve`); dynamic broker configs (`ottla.server.broker_configs`) override them at run time.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from ottla.server.kafka_settings import ACTED_ON as KAFKA_SETTINGS_ACTED_ON, inert_key, inert_keys
from ottla.server.security.listeners import (
    LISTENER_KEYS,
    LISTENER_PREFIX,
    NONROUTABLE,
    TLS_KEYS,
    ListenerError,
    first_listener_address,
    parse_endpoints,
)
from ottla.storage.config import (
    BROKER_LOG_KEYS,
    INT_MAX,
    ConfigKey,
    ConfigType,
    InvalidConfigValue,
    Validator,
    at_least,
    between,
)
from ottla.wire.properties import decode_properties

log = logging.getLogger("ottla.config")

BOOLEAN, STRING, INT, LONG = ConfigType.BOOLEAN, ConfigType.STRING, ConfigType.INT, ConfigType.LONG


def _setting(
    config_type: ConfigType, default: Any, doc: str, validator: Validator | None = None, *, nullable: bool = False, dynamic: bool = False,
    sensitive: bool = False,
) -> Any:
    """A broker setting of the server's own; its name is the field's, dots for underscores.
    `dynamic` where Kafka changes it without a restart and Ottla applies the change at once;
    `sensitive` where its value may hold a secret, never described."""
    key = ConfigKey("", config_type, default, doc, validator, dynamic=dynamic, sensitive=sensitive, nullable=nullable or default is None)
    return field(default=default, metadata={"key": key})


def _log_setting(name: str) -> Any:
    """A broker setting that supplies a topic config's default, as storage defines it."""
    key = BROKER_LOG_KEYS[name]
    return field(default=key.default, metadata={"key": key})


def _routable(name: str, value: str | None) -> None:
    if value == "0.0.0.0":
        raise InvalidConfigValue(NONROUTABLE)


def _http_url(name: str, value: str | None) -> None:
    if value is not None and not value.startswith(("http://", "https://")):
        raise InvalidConfigValue(f"Invalid value {value} for configuration {name}: an http:// or https:// URL is expected")


@dataclass(slots=True, frozen=True)
class BrokerConfig:
    """Every broker setting Ottla reads, typed, and the values given to Kafka's settings it only
    accepts. A dynamic key (as Kafka marks them) may be changed at run time through
    IncrementalAlterConfigs; the broker then builds a new BrokerConfig and hands it on."""

    host: str = _setting(STRING, "127.0.0.1", "Address the listener binds to (or `listeners=PLAINTEXT://HOST:PORT`).")
    port: int = _setting(INT, 9092, "Listener port; 0 picks a free one.", between(0, 65535))
    data_dir: str | None = _setting(
        STRING,
        "./ottla-data",
        "Log directory, or Kafka's `log.dirs`: several, comma-separated, the first holding the broker's own state; empty means in memory.",
        nullable=True,
    )
    node_id: int = _setting(INT, 1, "This broker's node id (or Kafka's `broker.id`).", at_least(0))
    advertised_host: str | None = _setting(STRING, None, "Host name given to clients in Metadata (default: the bind host).", _routable)
    cluster_id: str = _setting(STRING, "ottla-cluster-0000000001", "Cluster id reported in Metadata and DescribeCluster.")
    num_partitions: int = _setting(INT, 1, "Partitions of an auto-created topic or a CreateTopics request with -1.", at_least(1))
    auto_create_topics_enable: bool = _setting(BOOLEAN, True, "Create unknown topics named in Metadata requests.")
    socket_request_max_bytes: int = _setting(
        INT, 104857600, "Largest request frame accepted; a larger one closes the connection.", at_least(1)
    )
    socket_send_buffer_bytes: int = _setting(INT, 102400, "SO_SNDBUF of each client connection; -1 leaves it to the OS.", at_least(-1))
    socket_receive_buffer_bytes: int = _setting(INT, 102400, "SO_RCVBUF of each client connection; -1 leaves it to the OS.", at_least(-1))
    socket_listen_backlog_size: int = _setting(
        INT, 50, "Connections each listener's socket queues before the broker accepts them (listen's backlog; Linux caps it at somaxconn).", at_least(1)
    )
    max_connections: int = _setting(
        INT, INT_MAX, "Connections the broker serves at once; more wait, unread, until one closes.", at_least(0), dynamic=True
    )
    max_connections_per_ip: int = _setting(INT, INT_MAX, "Connections accepted at once from one client address.", at_least(0), dynamic=True)
    connections_max_idle_ms: int = _setting(LONG, 600000, "A connection with no request for this long is closed.", at_least(-1))
    fetch_max_bytes: int = _setting(INT, 57671680, "Most bytes one Fetch response carries, whatever the request asks for.", at_least(1024))
    max_incremental_fetch_session_cache_slots: int = _setting(
        INT, 1000, "Most fetch sessions (KIP-227) kept at once; a full cache may evict an idle or smaller one.", at_least(0)
    )
    message_max_bytes: int = _log_setting("message.max.bytes")
    log_retention_hours: int = _log_setting("log.retention.hours")
    log_retention_minutes: int | None = _log_setting("log.retention.minutes")
    log_retention_ms: int | None = _log_setting("log.retention.ms")
    log_retention_bytes: int = _log_setting("log.retention.bytes")
    log_segment_bytes: int = _log_setting("log.segment.bytes")
    log_roll_hours: int = _log_setting("log.roll.hours")
    log_roll_ms: int | None = _log_setting("log.roll.ms")
    log_cleanup_policy: tuple[str, ...] = _log_setting("log.cleanup.policy")
    log_index_interval_bytes: int = _log_setting("log.index.interval.bytes")
    log_message_timestamp_type: str = _log_setting("log.message.timestamp.type")
    compression_type: str = _log_setting("compression.type")
    log_roll_jitter_hours: int = _log_setting("log.roll.jitter.hours")
    log_roll_jitter_ms: int | None = _log_setting("log.roll.jitter.ms")
    log_index_size_max_bytes: int = _log_setting("log.index.size.max.bytes")
    log_segment_delete_delay_ms: int = _log_setting("log.segment.delete.delay.ms")
    log_flush_interval_messages: int = _log_setting("log.flush.interval.messages")
    log_flush_interval_ms: int | None = _log_setting("log.flush.interval.ms")
    log_preallocate: bool = _log_setting("log.preallocate")
    log_message_timestamp_after_max_ms: int = _log_setting("log.message.timestamp.after.max.ms")
    log_message_timestamp_before_max_ms: int = _log_setting("log.message.timestamp.before.max.ms")
    compression_gzip_level: int = _log_setting("compression.gzip.level")
    compression_lz4_level: int = _log_setting("compression.lz4.level")
    compression_zstd_level: int = _log_setting("compression.zstd.level")
    max_decompressed_message_bytes: int = _log_setting("max.decompressed.message.bytes")
    min_insync_replicas: int = _log_setting("min.insync.replicas")
    unclean_leader_election_enable: bool = _log_setting("unclean.leader.election.enable")
    log_local_retention_ms: int = _log_setting("log.local.retention.ms")
    log_local_retention_bytes: int = _log_setting("log.local.retention.bytes")
    log_remote_copy_lag_ms: int = _log_setting("log.remote.copy.lag.ms")
    log_remote_copy_lag_bytes: int = _log_setting("log.remote.copy.lag.bytes")
    log_cleaner_max_compaction_lag_ms: int = _log_setting("log.cleaner.max.compaction.lag.ms")
    log_cleaner_delete_retention_ms: int = _log_setting("log.cleaner.delete.retention.ms")
    log_cleaner_min_compaction_lag_ms: int = _log_setting("log.cleaner.min.compaction.lag.ms")
    log_cleaner_min_cleanable_ratio: float = _log_setting("log.cleaner.min.cleanable.ratio")
    log_retention_check_interval_ms: int = _setting(LONG, 300000, "How often segments past retention are deleted.", at_least(1))
    log_cleaner_enable: bool = _setting(BOOLEAN, True, "Compact topics whose cleanup.policy includes compact.")
    log_cleaner_backoff_ms: int = _setting(LONG, 15000, "How often compacted topics are checked for cleaning.", at_least(0), dynamic=True)
    log_flush_scheduler_interval_ms: int = _log_setting("log.flush.scheduler.interval.ms")
    log_flush_offset_checkpoint_interval_ms: int = _setting(
        INT, 60000, "How often each partition's recovery point is checkpointed; 0 only when a topic is deleted and at shutdown.", at_least(0)
    )
    offsets_retention_minutes: int = _setting(INT, 10080, "How long the committed offsets of an empty group are kept.", at_least(1))
    group_initial_rebalance_delay_ms: int = _setting(
        INT, 3000, "How long the first rebalance of a new group waits for more members to join; tests set 0.", at_least(0)
    )
    group_min_session_timeout_ms: int = _setting(INT, 6000, "Shortest session timeout a JoinGroup may ask for.", at_least(0))
    group_max_session_timeout_ms: int = _setting(INT, 1800000, "Longest session timeout a JoinGroup may ask for.", at_least(0))
    group_max_size: int = _setting(INT, INT_MAX, "Most members a classic group admits.", at_least(1))
    offsets_retention_check_interval_ms: int = _setting(LONG, 600000, "How often committed offsets are checked for expiry.", at_least(1))
    offset_metadata_max_bytes: int = _setting(INT, 4096, "Largest metadata string an offset commit may carry.", at_least(0))
    offsets_topic_num_partitions: int = _setting(
        INT,
        1,
        "Partitions of `__consumer_offsets` when first created (Kafka: 50, to spread coordinators over brokers; one node needs one).",
        at_least(1),
    )
    transaction_max_timeout_ms: int = _setting(
        INT, 900000, "Longest transaction.timeout.ms a transactional producer may ask for.", at_least(1)
    )
    transactional_id_expiration_ms: int = _setting(
        INT, 604800000, "A transactional id with no open transaction and no request for this long is removed.", at_least(1)
    )
    transaction_abort_timed_out_transaction_cleanup_interval_ms: int = _setting(
        INT, 10000, "How often transactions past their transaction.timeout.ms are looked for and aborted.", at_least(1)
    )
    transaction_remove_expired_transaction_cleanup_interval_ms: int = _setting(
        INT, 3600000, "How often expired transactional ids are removed.", at_least(1)
    )
    transaction_state_log_num_partitions: int = _setting(
        INT, 1, "Partitions of `__transaction_state` when first created (Kafka: 50; one node needs one).", at_least(1)
    )
    producer_id_expiration_ms: int = _setting(
        INT, 86400000, "A partition forgets an idempotent producer silent for this long.", at_least(1), dynamic=True
    )
    producer_id_expiration_check_interval_ms: int = _setting(
        INT, 600000, "How often partitions look for producers past producer.id.expiration.ms.", at_least(1)
    )
    http_host: str = _setting(STRING, "127.0.0.1", "Address the HTTP listener (console, `/metrics`, `/api/`) binds to; loopback unless opened on purpose.")
    http_port: int = _setting(
        INT,
        -1,
        "Port of the HTTP listener; 0 picks a free one, -1 runs none. `ottla serve` on a fixed Kafka port defaults it to 8092.",
        between(-1, 65535),
    )
    console_schema_registry_url: str | None = _setting(
        STRING,
        None,
        "A schema registry's Confluent-compatible API (`http://HOST:PORT`; Apicurio's ends in `/apis/ccompat/v7`): the console "
        "and `/api/` decode Avro, JSON Schema and Protobuf values in its wire format with the schemas it holds. Sensitive: "
        "the URL may carry a user and password.",
        _http_url,
        sensitive=True,
    )
    # Settings given explicitly (file, environment, --set, flags): DescribeConfigs reports
    # them as STATIC_BROKER_CONFIG, the rest as DEFAULT_CONFIG. Not a setting itself.
    explicit: frozenset[str] = field(default=frozenset(), repr=False)
    # Typed values given to Kafka's settings that Ottla only accepts (kafka_settings.inert_keys),
    # as (name, value) pairs: a tuple keeps the config hashable. Not a setting itself.
    kafka_settings: tuple[tuple[str, Any], ...] = field(default=(), repr=False)
    # Kafka's listener settings as given (`listeners`, `advertised.listeners` and the
    # per-listener `listener.name.<name>.<key>`), as (name, text) pairs; `ottla.server.security.
    # listeners` reads them. Not a setting itself.
    listener_settings: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    @classmethod
    def from_settings(cls, overrides: Mapping[str, Any] | None = None) -> BrokerConfig:
        return cls().updated(overrides or {})

    def updated(self, overrides: Mapping[str, Any]) -> BrokerConfig:
        """A copy with settings applied by name (or Kafka alias): text is parsed and checked,
        a typed value (from the embedding API) is taken as given; an unknown name is an error.
        The names become explicit: DescribeConfigs reports them as STATIC_BROKER_CONFIG."""
        names = {ALIASES.get(name, name) for name in overrides}
        if "listeners" in names:
            names |= {"host", "port"}  # the first listener's address, which `listeners` sets
        return self.with_values(overrides, explicit=self.explicit | names)

    def with_values(self, overrides: Mapping[str, Any], explicit: frozenset[str] | None = None) -> BrokerConfig:
        """A copy with settings applied by name, as `updated` does, without marking them
        explicit: how dynamic broker configs are laid over the static ones."""
        changes: dict[str, Any] = {}
        accepted = dict(self.kafka_settings)
        listener_settings = dict(self.listener_settings)
        for name, value in overrides.items():
            name = ALIASES.get(name, name)
            if is_listener_setting(name):
                listener_settings[name] = _checked_listener_setting(name, str(value))
                continue
            key = setting_key(name)
            if key is None:
                raise ConfigError(f"unknown setting {name!r}")
            if isinstance(value, str):
                try:
                    value = key.parse(value)
                except InvalidConfigValue as exc:
                    raise ConfigError(str(exc)) from None
            if name in SETTINGS:
                changes[_attribute(name)] = value
            else:
                accepted[name] = value
        if "listeners" in listener_settings and any(ALIASES.get(name, name) == "listeners" for name in overrides):
            # The first listener is the one `host` and `port` describe; given alongside, they win.
            host, port = first_listener_address(listener_settings["listeners"], accepted.get("controller.listener.names"))
            changes.setdefault("host", host)
            changes.setdefault("port", port)
        return dataclasses.replace(
            self,
            **changes,
            explicit=self.explicit if explicit is None else explicit,
            kafka_settings=tuple(sorted(accepted.items())),
            listener_settings=tuple(sorted(listener_settings.items())),
        )

    def listener_value(self, listener: str, name: str) -> Any:
        """Setting `name` as the named listener sees it: `listener.name.<listener>.<name>` when
        given (parsed as `name` is, if Ottla or Kafka defines it), else `name` itself (None for a
        name neither defines, such as SASL's `<mechanism>.sasl.jaas.config`)."""
        text = dict(self.listener_settings).get(f"{LISTENER_PREFIX}{listener.lower()}.{name}")
        key = setting_key(name)
        if text is None:
            return None if key is None else self.value(name)
        return text if key is None else key.parse(text)

    @property
    def log_dirs(self) -> list[Path]:
        """The log directories `data.dir` names (Kafka's `log.dirs`, comma-separated); none in memory."""
        if self.data_dir is None:
            return []
        return [Path(part.strip()) for part in self.data_dir.split(",") if part.strip()]

    def value(self, name: str) -> Any:
        """A setting's value by its Kafka name (for code that walks the registry), Kafka's
        default for one of its settings Ottla only accepts and nobody set."""
        if name in SETTINGS:
            return getattr(self, _attribute(name))
        key = setting_key(name)
        if key is None:
            raise KeyError(name)
        return dict(self.kafka_settings).get(name, key.default)


def _attribute(name: str) -> str:
    return name.replace(".", "_")


def is_listener_setting(name: str) -> bool:
    """Whether `name` is one of Kafka's listener settings BrokerConfig keeps as text."""
    return name in LISTENER_KEYS or name.startswith(LISTENER_PREFIX)


def _checked_listener_setting(name: str, text: str) -> str:
    """`text`, once it parses as `name` requires (an override as the key it overrides does)."""
    try:
        if name in LISTENER_KEYS:
            endpoints = parse_endpoints(name, text)
            if name == "advertised.listeners" and any(endpoint.host == "0.0.0.0" for endpoint in endpoints):
                raise ConfigError(NONROUTABLE)
            return text
        overridden = name[len(LISTENER_PREFIX):].partition(".")[2]
        key = setting_key(overridden)
        if key is not None:
            key.parse(text)
    except (InvalidConfigValue, ListenerError) as exc:
        raise ConfigError(str(exc)) from None
    return text


def _registry() -> dict[str, ConfigKey]:
    """Every setting's definition by Kafka name, in field order, checked against storage's list
    of the broker settings topic keys draw their defaults from."""
    settings = {}
    for item in dataclasses.fields(BrokerConfig):
        key = item.metadata.get("key")
        if key is None:
            continue
        name = item.name.replace("_", ".")
        if key.name == "":
            key = dataclasses.replace(key, name=name)
        elif key.name != name:
            raise TypeError(f"BrokerConfig.{item.name} reads {key.name}, not {name}")
        settings[name] = key
    missing = BROKER_LOG_KEYS.keys() - settings.keys()
    if missing:
        raise TypeError(f"BrokerConfig has no field for {', '.join(sorted(missing))}")
    return settings


SETTINGS: dict[str, ConfigKey] = _registry()
# StandardAuthorizer's own settings (server.security.authorizer reads them with `value`):
# Kafka reads them from the broker's properties but KafkaConfig does not define them, so
# DescribeConfigs lists them only when given, typeless and sensitive, as any unknown original.
AUTHORIZER_KEYS: dict[str, ConfigKey] = {
    key.name: key
    for key in (
        ConfigKey("super.users", STRING, "", "Principals allowed every operation, `;`-separated: `User:admin;User:bob`."),
        ConfigKey("allow.everyone.if.no.acl.found", BOOLEAN, False, "With an authorizer, allow what no ACL of the resource speaks to."),
    )
}
# Kafka's internal settings (KafkaConfig's defineInternal) that Ottla reads with `value`:
# DescribeConfigs does not list them.
INTERNAL_KEYS: dict[str, ConfigKey] = {
    key.name: key
    for key in (
        ConfigKey("log.initial.task.delay.ms", LONG, 30000, "How long after start the first retention pass waits; for tests.", at_least(0)),
        ConfigKey("share.coordinator.cold.partition.snapshot.interval.ms", INT, 300000,
                  "How often the share coordinator snapshots again the share-partitions whose state was last written that long ago.",
                  at_least(1)),
    )
}


@functools.cache
def all_keys() -> dict[str, ConfigKey]:
    """Ottla's settings and Kafka's settings it only accepts: every name a value may be given
    for. Built on first use: looking one name up is `setting_key`'s, which builds only its key."""
    return {**inert_keys(), **AUTHORIZER_KEYS, **INTERNAL_KEYS, **SETTINGS}


def setting_key(name: str) -> ConfigKey | None:
    """The definition of `name` as `all_keys` has it, if it has one."""
    return SETTINGS.get(name) or AUTHORIZER_KEYS.get(name) or INTERNAL_KEYS.get(name) or inert_key(name)


# Kafka settings kept with the ones Ottla only accepts, though Ottla acts on them.
_ACTED_ON = {"authorizer.class.name", *TLS_KEYS, *KAFKA_SETTINGS_ACTED_ON}

# Kafka spellings of our settings, accepted in server.properties, --set and the environment.
ALIASES = {"broker.id": "node.id", "log.dirs": "data.dir", "log.dir": "data.dir"}


class ConfigError(ValueError):
    """A setting with a value that does not parse; the message names the key."""


# Kafka settings that describe a multi-node or secured cluster: meaningless for one
# PLAINTEXT node, so a copied server.properties may carry them without a warning.
_CLUSTER_ONLY = {
    "process.roles",
    "controller.quorum.voters",
    "controller.quorum.bootstrap.servers",
    "controller.listener.names",
    "inter.broker.listener.name",
    "listener.security.protocol.map",
    "listeners",
    "advertised.listeners",
}
# Ottla's own names, which an unknown name is compared with for a typo, and how alike the
# two must be (difflib's ratio): 0.85 catches a dropped or doubled letter or a missing `.ms`,
# and lets through the settings of older Kafka versions (log.message.format.version: 0.62).
_OTTLA_NAMES = [*SETTINGS, *ALIASES]
_NEAR_MISS = 0.85


def load_properties(path: str | Path) -> dict[str, str]:
    """Settings from a Kafka server.properties, listeners translated, each key judged as
    `accepted_settings` judges it."""
    return accepted_settings(read_properties(path), f"from {path}")


def read_properties(path: str | Path) -> dict[str, str]:
    """A properties file's pairs (`decode_properties`), ConfigError if it cannot be read."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return decode_properties(data)
    except ValueError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None


def _near_miss(name: str) -> str | None:
    """The one of Ottla's names `name` is a typo of, if any."""
    import difflib  # only for a name nobody defines: not worth its import at every start

    meant = difflib.get_close_matches(name, _OTTLA_NAMES, n=1, cutoff=_NEAR_MISS)
    return meant[0] if meant else None


def accepted_settings(pairs: Mapping[str, str], source: str, spelling: Callable[[str], str] = str) -> dict[str, str]:
    """The settings of one source (a file, the environment, --set) by name, judged alike
    whatever the source, so a key means the same wherever it is given:

    * Ottla's settings and their Kafka aliases are kept;
    * Kafka's settings Ottla does not act on are kept for DescribeConfigs and logged once as
      having no effect (but for the cluster-only ones, which a single node expects);
    * a name that is a near miss of one of Ottla's settings is an error naming the setting
      meant: a typo would otherwise leave that setting at its default without a word;
    * any other name is logged once and ignored, as Kafka does with a name it does not know
      (AbstractConfig.logUnused: "supplied but isn't a known config"), so a file written for
      another Kafka version or with a plug-in's keys still starts the broker.

    `source` completes "setting K ... <source>" in messages ("from FILE", "given with --set");
    `spelling` writes a name as that source spells it (OTTLA_LOG_RETENTION_MS)."""
    settings = {}
    for key, value in pairs.items():
        name = ALIASES.get(key, key)
        if setting_key(name) is not None or is_listener_setting(name):
            settings[name] = value
            if inert_key(name) is not None and key not in _CLUSTER_ONLY and name not in _ACTED_ON:
                log.warning("setting %s %s is accepted but has no effect on a single Ottla node", spelling(key), source)
        elif key in _CLUSTER_ONLY:
            continue
        elif meant := _near_miss(key):
            raise ConfigError(f"unknown setting {spelling(key)} {source}: did you mean {spelling(meant)}?")
        else:
            log.warning("ignoring setting %s %s: neither Ottla nor Kafka 4.4 knows it", spelling(key), source)
    return settings


ENV_PREFIX = "OTTLA_"


def environment_settings(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """`OTTLA_LOG_RETENTION_MS=1000` -> {"log.retention.ms": "1000"}: the variable's name after
    the prefix, lower case, underscores for dots, judged as `accepted_settings` judges it."""
    environ = os.environ if environ is None else environ
    pairs = {}
    for variable, value in environ.items():
        if variable.startswith(ENV_PREFIX):
            suffix = variable[len(ENV_PREFIX):]
            pairs[_environment_names().get(suffix, suffix.lower().replace("_", "."))] = value
    return accepted_settings(pairs, "in the environment", lambda name: ENV_PREFIX + name.replace(".", "_").upper())


@functools.cache
def _environment_names() -> dict[str, str]:
    """Every name a setting may be given for, by its spelling after OTTLA_ (LOG_RETENTION_MS)."""
    return {name.replace(".", "_").upper(): name for name in (*all_keys(), *ALIASES, *_CLUSTER_ONLY)}


def set_settings(assignments: list[str]) -> dict[str, str]:
    """The `--set key=value` arguments, judged as `accepted_settings` judges them."""
    return accepted_settings(dict(parse_assignment(item) for item in assignments), "given with --set")


def parse_assignment(text: str) -> tuple[str, str]:
    """`key=value` as given to --set."""
    key, separator, value = text.partition("=")
    if not separator or not key.strip():
        raise ConfigError(f"--set takes key=value, got {text!r}")
    return key.strip(), value.strip()


@functools.lru_cache(maxsize=4)
def connections_per_ip_overrides(text: str) -> Mapping[str, int]:
    """max.connections.per.ip.overrides (`host:count,...`, Kafka's getMap: the count after the
    last colon) by address: a host name counts for the address it resolves to, as Kafka's
    InetAddress.getByName resolves it, once per value. Kafka refuses an entry that does not
    parse or resolve; here it is logged and left out, so a bad value never stops an accept."""
    import socket

    overrides = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        host, _, count = entry.rpartition(":")
        try:
            limit = int(count)
            address = socket.getaddrinfo(host.strip().strip("[]"), None)[0][4][0]
        except (ValueError, OSError) as exc:
            log.warning("max.connections.per.ip.overrides: ignoring %r: %s", entry, exc)
            continue
        overrides[str(address)] = limit
    return overrides


def markdown_table() -> str:
    """The README's configuration table, drawn from the registry so the two never drift."""
    rows = ["| setting | default | meaning |", "|---|---|---|"]
    for setting in SETTINGS.values():
        default = "(none)" if setting.default is None else f"`{setting.render(setting.default)}`"
        rows.append(f"| `{setting.name}` | {default} | {setting.doc} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
