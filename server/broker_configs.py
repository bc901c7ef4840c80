"""Broker configs as Kafka exposes them: every key DescribeConfigs lists for the broker, with
its value, source and synonyms, and the dynamic broker configs that IncrementalAlterConfigs and
AlterConfigs set, per broker (resource name = node id) or as the cluster default (empty name).

Kafka keeps dynamic broker configs as records in its metadata log; Ottla keeps them in one file
in the data directory, replaced durably on every change, and reads it at start-up; over
PostgreSQL, in the database instead (`record_change` queues each change for it, and `reset`
puts the database's in place, as another broker's change of the cluster default arrives). Precedence,
highest first, is Kafka's: the node's dynamic config, the cluster default, the static setting
(server.properties, environment, --set), the key's default. A dynamic config of a key Ottla
reads takes effect at once (the broker is handed the new effective `BrokerConfig`); a key Kafka
reads only at start-up is refused as Kafka refuses it. Kafka also stores names it does not know
(a plugin's, say), describing them with no value; so does Ottla.

Synonyms and sources follow Kafka's ConfigHelper.createBrokerConfigEntry and configSynonyms:
for each source in precedence order, each synonym of the key (log.retention.ms, .minutes,
.hours for any of the three) set there, then everything before the first entry of the key's own
name dropped; the source is the first synonym's, DEFAULT_CONFIG when none is left.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ottla.server.config import AUTHORIZER_KEYS, SETTINGS, BrokerConfig, ConfigError, setting_key
from ottla.server.kafka_settings import inert_keys
from ottla.server.security.listeners import LISTENER_PREFIX, ListenerError, configured_listeners
from ottla.server.topic_config import Layers, broker_topic_defaults, resolve
from ottla.storage.config import BROKER_LOG_KEYS, TOPIC_KEYS, ConfigKey, ConfigType, InvalidConfigValue, LogConfig, one_of
from ottla.storage.files import replace_file
from ottla.wire.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from ottla.server.config_entries import BrokerEntry, Listening, Resolved

log = logging.getLogger("ottla.broker_configs")

# DescribeConfigsResponse config_source values (ConfigSource in DescribeConfigsResponse.json).
DYNAMIC_BROKER_CONFIG = 2
DYNAMIC_DEFAULT_BROKER_CONFIG = 3
STATIC_BROKER_CONFIG = 4
DEFAULT_CONFIG = 5
# DescribeConfigsResponse config_type for a name without a definition.
UNKNOWN_TYPE = 0

# metadata.version 4.3-IV0 (MetadataVersion.isCordonedLogDirsSupported): from this level the
# controller learns a node's cordoned log directories and places no new replica on a node whose
# every directory is cordoned (ReplicationControlManager), and DescribeLogDirs reports them.
CORDONED_LOG_DIRS_LEVEL = 30

FILE_NAME = "dynamic-broker-configs.json"

# KIP-966: while eligible.leader.replicas.version is on, Kafka 4.4's controller keeps
# min.insync.replicas as a cluster default and lets no node override it, so one value decides
# every ELR (ConfigurationControlManager.isDisallowedBrokerMinIsrTransition and
# isDisallowedClusterMinIsrTransition, checked on each config record a change writes).
MIN_INSYNC_REPLICAS = "min.insync.replicas"

# Kafka's broker settings that Ottla derives from its own, described under Kafka's names.
_LIST, _INT = ConfigType.LIST, ConfigType.INT
DERIVED_KEYS: dict[str, ConfigKey] = {
    key.name: key
    for key in (
        ConfigKey("listeners", _LIST, None, "The listener Ottla binds: `PLAINTEXT://` and the `host` and `port` settings."),
        ConfigKey("advertised.listeners", _LIST, None, "The listener clients are told to use: the advertised host and the bound port."),
        ConfigKey("log.dirs", _LIST, None, "The log directories, comma-separated: the `data.dir` setting; empty for a broker in memory."),
        ConfigKey("log.dir", _LIST, None, "The log directories, comma-separated: the `data.dir` setting; empty for a broker in memory."),
        ConfigKey("broker.id", _INT, -1, "This broker's node id: the `node.id` setting."),
    )
}
# Where a derived key's value comes from: the settings that, given explicitly, make it static.
_DERIVED_FROM = {
    "listeners": ("host", "port"),
    "advertised.listeners": ("advertised.host", "host", "port"),
    "log.dirs": ("data.dir",),
    "log.dir": ("data.dir",),
    "broker.id": ("node.id",),
}

# What each node of a cluster says for itself rather than what the process's settings say.
_NODE_IDENTITY = frozenset({"node.id", "broker.id", "broker.rack"})


@functools.cache
def described_keys() -> dict[str, ConfigKey]:
    """Every key the broker resource describes, by name; built when first described."""
    return {**inert_keys(), **SETTINGS, **DERIVED_KEYS}


@functools.cache
def _synonym_chains() -> dict[str, tuple[str, ...]]:
    """Kafka's DynamicBrokerConfig.brokerConfigSynonyms: the broker forms of one topic config
    (the time settings in ms, minutes and hours; log.flush.interval.ms and its scheduler interval)."""
    return {
        synonym.key.name: tuple(s.key.name for s in key.synonyms)
        for key in TOPIC_KEYS.values()
        if len(key.synonyms) > 1
        for synonym in key.synonyms
    }


# SslConfigs.RECONFIGURABLE_CONFIGS (DynamicBrokerConfig.DYNAMIC_SECURITY_CONFIGS): Kafka takes
# these only under a listener prefix (listener.name.<name>.ssl.keystore.location), never bare.
_LISTENER_ONLY = frozenset(
    {
        "ssl.keystore.type", "ssl.keystore.location", "ssl.keystore.password", "ssl.key.password", "ssl.keystore.key",
        "ssl.keystore.certificate.chain", "ssl.truststore.type", "ssl.truststore.location", "ssl.truststore.password",
        "ssl.truststore.certificates",
    }
)
# SslConfigs.NON_RECONFIGURABLE_CONFIGS: per broker, bare or under a listener prefix.
_SSL_PER_BROKER = frozenset(
    {
        "ssl.protocol", "ssl.provider", "ssl.cipher.suites", "ssl.enabled.protocols", "ssl.keymanager.algorithm",
        "ssl.trustmanager.algorithm", "ssl.endpoint.identification.algorithm", "ssl.secure.random.implementation",
        "ssl.client.auth", "ssl.engine.factory.class",
    }
)


# DynamicBrokerConfig.PER_BROKER_CONFIGS (Kafka 4.4): SslConfigs.RECONFIGURABLE_CONFIGS,
# DynamicListenerConfig.RECONFIGURABLE_CONFIGS and cordoned.log.dirs, less the three listener
# configs Kafka takes cluster-wide. A node's own: the cluster default may not set them.
_CLUSTER_LEVEL_LISTENER = frozenset({"max.connections", "max.connection.creation.rate", "num.network.threads"})
_PER_BROKER = _LISTENER_ONLY | _SSL_PER_BROKER | frozenset(
    {
        "listeners", "listener.security.protocol.map", "principal.builder.class", "cordoned.log.dirs",
        "sasl.mechanism.inter.broker.protocol", "sasl.jaas.config", "sasl.enabled.mechanisms", "sasl.kerberos.service.name",
        "sasl.kerberos.kinit.cmd", "sasl.kerberos.ticket.renew.window.factor", "sasl.kerberos.ticket.renew.jitter",
        "sasl.kerberos.min.time.before.relogin", "sasl.kerberos.principal.to.local.rules", "sasl.login.refresh.window.factor",
        "sasl.login.refresh.window.jitter", "sasl.login.refresh.min.period.seconds", "sasl.login.refresh.buffer.seconds",
    }
)
# DynamicBrokerConfig.LISTENER_CONFIG_REGEX: a listener-prefixed name is per broker unless the
# key it prefixes is one of the cluster-level listener configs.
_LISTENER_CONFIG = re.compile(r"listener\.name\.[^.]*\.(.*)")


# Checked in this order when changed (ListenerConnectionQuota.validateReconfiguration).
_CONNECTION_LIMITS = ("max.connections", "max.connection.creation.rate")

# Thread pools Kafka resizes at run time by at most a factor of two each way
# (DynamicThreadPool.validateReconfiguration, DynamicRemoteLogConfig, SocketServer).
_THREAD_COUNTS = (
    "num.io.threads", "num.replica.fetchers", "num.recovery.threads.per.data.dir", "background.threads", "num.network.threads",
    "remote.log.reader.threads", "remote.log.manager.copier.thread.pool.size", "remote.log.manager.expiration.thread.pool.size",
    "remote.log.manager.follower.thread.pool.size",
)


# Per-listener dynamic configs Ottla applies at once (ConnectionQuotas.ListenerConnectionQuota's
# reconfigure); the others prefixed are stored, read at the next start.
_APPLIED_PER_LISTENER = frozenset({"max.connections"})


def _applied_per_listener(name: str) -> bool:
    prefixed = _LISTENER_CONFIG.fullmatch(name)
    return prefixed is not None and prefixed.group(1) in _APPLIED_PER_LISTENER


def _per_broker_only(name: str) -> bool:
    if name in _PER_BROKER:
        return True
    prefixed = _LISTENER_CONFIG.fullmatch(name)
    return prefixed is not None and prefixed.group(1) not in _CLUSTER_LEVEL_LISTENER


def is_dynamic(name: str) -> bool:
    """Whether the broker resource may change `name` at run time. Kafka also changes `listeners`
    at run time; Ottla cannot rebind its one listener, so it stays read-only here."""
    key = described_keys().get(name)
    return key is not None and key.dynamic


class BrokerConfigs:
    """The static settings, the dynamic broker configs laid over them, and the effective
    `BrokerConfig` both make. `on_change` is called with each new effective config."""

    def __init__(self, static: BrokerConfig, data_dir: Path | None) -> None:
        self.static = static
        self.data_dir = data_dir
        self.per_broker: dict[str, str] = {}
        self.cluster_default: dict[str, str] = {}
        self.on_change: Callable[[BrokerConfig], None] = lambda config: None
        # Set over PostgreSQL: called with (per broker, the configs set, the names deleted) for
        # each change, instead of the file being replaced.
        self.record_change: Callable[[bool, dict[str, str], list[str]], None] | None = None
        if data_dir is not None and (data_dir / FILE_NAME).exists():
            stored = json.loads((data_dir / FILE_NAME).read_bytes())
            self.per_broker = dict(stored["per_broker"])
            self.cluster_default = dict(stored["cluster_default"])
        self.config = self._effective(self.per_broker, self.cluster_default)

    def _effective(self, per_broker: Mapping[str, str], cluster_default: Mapping[str, str]) -> BrokerConfig:
        known = {name: value for name, value in {**cluster_default, **per_broker}.items() if setting_key(name) is not None or _applied_per_listener(name)}
        try:
            return self.static.with_values(known)
        except ConfigError as exc:
            # Stored values were checked when set; a later release may check more strictly.
            log.warning("dynamic broker configs in %s not applied: %s", self.data_dir, exc)
            return self.static

    def dynamic(self, per_broker: bool) -> dict[str, str]:
        return self.per_broker if per_broker else self.cluster_default

    @staticmethod
    def _check_connection_limits(old: Mapping[str, str], configs: Mapping[str, str], config: BrokerConfig) -> None:
        """A change of the broker-wide max.connections or max.connection.creation.rate leaving
        it at 0 is refused, as Kafka 4.4's ConnectionQuotas.ListenerConnectionQuota
        .validateReconfiguration refuses it (each key's own validator takes 0); a listener's
        prefixed value is not checked so (listener.name.<name>.max.connections=0 is taken)."""
        for name in _CONNECTION_LIMITS:
            value = config.value(name) if old.get(name) != configs.get(name) else None
            if value is not None and value <= 0:
                raise KafkaError(
                    ErrorCode.INVALID_REQUEST,
                    f"Invalid value org.apache.kafka.common.config.ConfigException: Invalid {name} {value} for configuration Invalid dynamic configuration",
                )

    @staticmethod
    def _check_thread_counts(current: BrokerConfig, new: BrokerConfig) -> None:
        """A thread count may change to no less than half (rounded down) and no more than double
        its current value, and log.cleaner.threads to no more than double, as Kafka 4.4 resizes
        its pools (the failure is Kafka's ConfigException, wrapped as its dynamic configs are)."""
        problem = None
        for name in _THREAD_COUNTS:
            old, value = int(current.value(name)), int(new.value(name))
            if value == old:
                continue
            if value < old // 2:
                problem = f"Dynamic thread count update validation failed for {name}={value}, value should be at least half the current value {old}"
            elif value > old * 2:
                problem = f"Dynamic thread count update validation failed for {name}={value}, value should not be greater than double the current value {old}"
            if problem is not None:
                break
        cleaner_threads = int(current.value("log.cleaner.threads"))
        if problem is None and int(new.value("log.cleaner.threads")) > cleaner_threads * 2:
            problem = f"Log cleaner threads cannot be increased to more than double the current value {cleaner_threads}"
        if problem is not None:
            raise KafkaError(
                ErrorCode.INVALID_REQUEST,
                f"Invalid value org.apache.kafka.common.config.ConfigException: {problem} for configuration Invalid dynamic configuration",
            )

    def replace(self, per_broker: bool, configs: Mapping[str, str], validate_only: bool, controller_check: Callable[[], None] | None = None) -> None:
        """Make `configs` the whole set of one scope's dynamic configs (each already checked
        by `check`), store them durably and apply them, unless validating only.
        `controller_check` runs after the broker's own checks, as Kafka's controller judges a
        change only once the broker has passed it on (ConfigAdminManager, then the controller)."""
        new_per_broker = dict(configs) if per_broker else self.per_broker
        new_default = self.cluster_default if per_broker else dict(configs)
        topic_defaults = broker_topic_defaults(self.static, self._layers(new_per_broker, new_default))
        _check_log_times(topic_defaults)
        new_config = self._effective(new_per_broker, new_default)
        _check_cleaner_buffer(new_config)
        if per_broker:
            self._check_cordoned(new_per_broker.get("cordoned.log.dirs"))
        # Each value passed its key's check; the topic defaults they make must also pass as a whole.
        LogConfig.from_overrides(topic_defaults)
        old = self.dynamic(per_broker)
        if new_config.value("max.connections.per.ip") == 0 and not new_config.value("max.connections.per.ip.overrides"):
            # KafkaConfig.validateValues: 0 would refuse every client, this one included.
            raise KafkaError(
                ErrorCode.INVALID_REQUEST,
                "requirement failed: max.connections.per.ip can be set to zero only if max.connections.per.ip.overrides property is set.",
            )
        self._check_connection_limits(old, configs, new_config)
        self._check_thread_counts(self.config, new_config)
        if any(name in BROKER_LOG_KEYS for name in old.keys() | configs.keys() if old.get(name) != configs.get(name)):
            _check_remote_retention(topic_defaults)
        if controller_check is not None:
            controller_check()
        if validate_only:
            return
        changed = sorted(name for name in old.keys() | configs.keys() if old.get(name) != configs.get(name))
        if self.record_change is not None:
            self.record_change(per_broker, {name: configs[name] for name in changed if name in configs}, [name for name in changed if name not in configs])
        elif self.data_dir is not None:
            stored = {"per_broker": new_per_broker, "cluster_default": new_default}
            replace_file(self.data_dir / FILE_NAME, json.dumps(stored, indent=1, sort_keys=True).encode())
        # Names only: a value may be secret.
        log.info("dynamic broker configs %s: %s", "of this node" if per_broker else "cluster default", ", ".join(changed) or "none changed")
        self.per_broker, self.cluster_default = new_per_broker, new_default
        self.config = self._effective(new_per_broker, new_default)
        self.on_change(self.config)

    def keep_min_insync_replicas(self) -> None:
        """What Kafka 4.4's controller writes as eligible.leader.replicas.version turns on (at
        format, ActivationRecordsGenerator.recordsForEmptyLog; by UpdateFeatures,
        ConfigurationControlManager.maybeGenerateElrSafetyRecords): the cluster default of
        min.insync.replicas, when it has none, at its static value (server.properties, else the
        default), and no node's own value of it."""
        if MIN_INSYNC_REPLICAS not in self.cluster_default:
            static = setting_key(MIN_INSYNC_REPLICAS)
            assert static is not None
            self.replace(False, {**self.cluster_default, MIN_INSYNC_REPLICAS: static.render(self.static.value(MIN_INSYNC_REPLICAS)) or ""}, False)
        if MIN_INSYNC_REPLICAS in self.per_broker:
            self.replace(True, {name: value for name, value in self.per_broker.items() if name != MIN_INSYNC_REPLICAS}, False)

    def _check_cordoned(self, value: str | None) -> None:
        """KafkaConfig.validateCordonedLogDirs, which a node's new config must pass: `*` alone,
        or entries each one of log.dirs as configured."""
        entries = [entry.strip() for entry in (value or "").split(",") if entry.strip()]
        if "*" in entries:
            if len(entries) != 1:
                raise KafkaError(ErrorCode.INVALID_REQUEST, "requirement failed: When cordoned.log.dirs is set to *, it must not contain other values")
            return
        log_dirs = [part.strip() for part in (self.static.data_dir or "").split(",")]
        missing = [entry for entry in entries if entry not in log_dirs]
        if missing:
            raise KafkaError(
                ErrorCode.INVALID_REQUEST,
                "requirement failed: All entries in cordoned.log.dirs must be present in log.dirs or log.dir. "
                f"Missing entries : {','.join(missing)}",
            )

    def reset(self, per_broker: Mapping[str, str], cluster_default: Mapping[str, str]) -> None:
        """Both scopes as stored elsewhere (the database), applied when they changed."""
        if per_broker == self.per_broker and cluster_default == self.cluster_default:
            return
        changed = sorted(
            name
            for old, new in ((self.per_broker, per_broker), (self.cluster_default, cluster_default))
            for name in old.keys() | new.keys()
            if old.get(name) != new.get(name)
        )
        log.info("dynamic broker configs read again: %s", ", ".join(changed))  # names only: a value may be secret
        self.per_broker, self.cluster_default = dict(per_broker), dict(cluster_default)
        self.config = self._effective(self.per_broker, self.cluster_default)
        self.on_change(self.config)

    def _layers(self, per_broker: Mapping[str, str], cluster_default: Mapping[str, str]) -> Layers:
        return [(per_broker, DYNAMIC_BROKER_CONFIG), (cluster_default, DYNAMIC_DEFAULT_BROKER_CONFIG)]

    def topic_defaults(self) -> dict[str, str]:
        """Every topic config's broker-level value, dynamic configs included."""
        return broker_topic_defaults(self.static, self._layers(self.per_broker, self.cluster_default))

    def resolve_topic(self, overrides: Mapping[str, str]) -> list[Resolved]:
        """Every config of a topic with these overrides, as DescribeConfigs reports them."""
        return resolve(overrides, self.static, self._layers(self.per_broker, self.cluster_default))

    def describe(self, per_broker: bool, node: Listening) -> list[BrokerEntry]:
        """The node's every config (per broker), or the cluster defaults that are set."""
        if not per_broker:
            return [self._entry(name, False, node) for name in sorted(self.cluster_default)]
        unknown = (self.per_broker.keys() | self.cluster_default.keys()) - described_keys().keys()
        # Per-listener keys (listener.name.<l>.<key>) and the authorizer's own settings are listed,
        # as Kafka lists the originals it was given; a name KafkaConfig does not define (nor
        # its listener-less key) is of no type and sensitive: shown with a null value.
        unknown |= {name for name, _ in self.static.listener_settings if name.startswith(LISTENER_PREFIX)}
        unknown |= AUTHORIZER_KEYS.keys() & self.static.explicit
        return [self._entry(name, True, node) for name in sorted(described_keys().keys() | unknown)]

    def current_value(self, name: str, node: Listening) -> str | None:
        """What the node runs with for `name`, as DescribeConfigs shows it."""
        if node.node_id is not None and name in _NODE_IDENTITY:
            return str(node.node_id) if name != "broker.rack" else node.rack
        if name in _DERIVED_FROM:
            return _derived(name, self.config, node)
        key = setting_key(name)
        return None if key is None else key.render(self.config.value(name))

    def _entry(self, name: str, per_broker: bool, node: Listening) -> BrokerEntry:
        from ottla.server.config_entries import BrokerEntry, Synonym  # loaded by the first describe, not at start

        key = described_keys().get(name)
        chain = _synonym_chains().get(name, (name,))
        prefixed = _LISTENER_CONFIG.fullmatch(name) if key is None else None
        if prefixed is not None and prefixed.group(1) in described_keys():
            # A listener's override of a key Kafka defines has that key's type, and the key
            # itself as its synonym (DynamicBrokerConfig.brokerConfigSynonyms).
            key, chain = described_keys()[prefixed.group(1)], (name, prefixed.group(1))
        else:
            prefixed = None
        # ConfigHelper: a name of unknown type may be a secret, so it is treated as one.
        sensitive = key is None or key.sensitive or key.type == ConfigType.PASSWORD
        synonyms: list[Synonym] = []
        levels = [(self.per_broker, DYNAMIC_BROKER_CONFIG)] if per_broker else []
        levels.append((self.cluster_default, DYNAMIC_DEFAULT_BROKER_CONFIG))
        for dynamic, source in levels:
            synonyms += [Synonym(n, dynamic[n], source) for n in chain if n in dynamic]
        synonyms += [Synonym(n, v, STATIC_BROKER_CONFIG) for n in chain if (v := self._static_value(n)) is not _UNSET]
        synonyms += [Synonym(n, v, DEFAULT_CONFIG) for n in chain if (v := _default_value(n)) is not _UNSET]
        while synonyms and synonyms[0].name != name:
            synonyms.pop(0)
        if not per_broker:
            # ConfigHelper.createBrokerConfigEntry: the cluster default lists its own synonyms only.
            synonyms = [synonym for synonym in synonyms if synonym.source == DYNAMIC_DEFAULT_BROKER_CONFIG]
        value: str | None
        if not per_broker:
            value = self.cluster_default[name]
        elif prefixed is not None:
            value = synonyms[0].value if synonyms else None
        else:
            value = self.current_value(name, node)
        if sensitive:
            value = None
            synonyms = [Synonym(s.name, None, s.source) for s in synonyms]
        return BrokerEntry(
            name=name,
            value=value,
            source=synonyms[0].source if synonyms else DEFAULT_CONFIG,
            read_only=not is_dynamic(name),
            sensitive=sensitive,
            config_type=UNKNOWN_TYPE if key is None else int(key.type),
            documentation=None if key is None or prefixed is not None else key.doc,
            synonyms=tuple(synonyms),
        )

    def _static_value(self, name: str) -> Any:
        if name in _DERIVED_FROM:
            return _derived(name, self.static, None) if self.static.explicit & set(_DERIVED_FROM[name]) else _UNSET
        key = setting_key(name)
        if key is None and name.startswith(LISTENER_PREFIX):
            return dict(self.static.listener_settings).get(name, _UNSET)
        if key is None or name not in self.static.explicit:
            return _UNSET
        return key.render(self.static.value(name))


def cordoned_log_dirs(config: BrokerConfig) -> list[Path]:
    """AbstractKafkaConfig.cordonedLogDirs: the directories cordoned.log.dirs names, every
    log directory for `*`."""
    entries = config.value("cordoned.log.dirs") or ()
    return config.log_dirs if "*" in entries else [Path(entry) for entry in entries]


def _default_value(name: str) -> Any:
    if name == "advertised.listeners":
        return _UNSET  # Kafka's default is none: the listeners are advertised
    if name == "broker.id":
        return "-1"  # Kafka's default: none given, node.id is used
    if name in _DERIVED_FROM:
        return _derived(name, BrokerConfig(), None)
    key = described_keys().get(name)
    if key is None or key.default is None:
        return _UNSET
    return key.render(key.default)


def _derived(name: str, config: BrokerConfig, node: Listening | None) -> str | None:
    """A Kafka key Ottla derives from its own settings; `node` for what it runs with, None
    for what the settings say."""
    if name in ("listeners", "advertised.listeners"):
        return _listeners(name == "advertised.listeners", config, node)
    if name in ("log.dirs", "log.dir"):
        return config.data_dir
    return str(config.node_id)


def _listeners(advertised: bool, config: BrokerConfig, node: Listening | None) -> str:
    """Every broker listener as Kafka writes them, NAME://HOST:PORT, the first one first: where
    each is bound, or where it is advertised. A port 0 is the one bound, once `node` knows it."""
    try:
        listeners = configured_listeners(config)
    except ListenerError:
        return f"PLAINTEXT://{config.host}:{config.port}"  # refused at start-up: the broker never runs with it
    shown = {} if node is None else {name: (host, port) for name, host, port in node.advertised}
    rendered = []
    for index, listener in enumerate(listeners):
        # The advertised port is the bound one unless advertised.listeners names another;
        # then the configured 0 stays, as Kafka shows its configured value.
        bound_port = listener.port or (0 if listener.advertised_port else shown.get(listener.name, ("", 0))[1])
        if index == 0 and listener.name not in shown:
            host = (config.advertised_host or config.host if node is None else node.advertised_host) if advertised else config.host
            port = config.port if node is None else node.port
        elif index == 0:
            host = shown[listener.name][0] if advertised else config.host
            port = shown[listener.name][1]
        elif advertised:
            host, port = shown.get(listener.name, (listener.advertised_host, listener.advertised_port or bound_port))
        else:
            host, port = listener.host, bound_port
        rendered.append(f"{listener.name}://{host}:{port}")
    return ",".join(rendered)


_UNSET: Any = object()


def check_read_only(names: Iterable[str]) -> None:
    """Kafka's refusal of keys it reads only at start-up, whether set or deleted."""
    read_only = sorted(name for name in names if name in described_keys() and not is_dynamic(name))
    if read_only:
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"Cannot update these configs dynamically: [{', '.join(read_only)}]")


def check_elr_min_insync_replicas(per_broker: bool, recorded: Collection[str], removed: Collection[str]) -> None:
    """While ELR is on, Kafka 4.4's controller refuses a change that writes a record of a
    node's min.insync.replicas (any operation on it, set or deleted, present or not) or
    removes the cluster default's (ConfigurationControlManager.validateAlterConfig); `recorded`
    are the names a change writes, `removed` those it deletes."""
    if per_broker and MIN_INSYNC_REPLICAS in recorded:
        raise KafkaError(ErrorCode.INVALID_CONFIG, "Broker-level min.insync.replicas cannot be altered while ELR is enabled.")
    if not per_broker and MIN_INSYNC_REPLICAS in removed:
        raise KafkaError(ErrorCode.INVALID_CONFIG, "Cluster-level min.insync.replicas cannot be removed while ELR is enabled.")


# KafkaConfig.validateValues' requirements on the log times, in its order: (broker key, the
# topic key its effective value defaults, the requirement on that value in ms, Kafka's words).
# Kafka's ConfigDef gives these broker keys no validator of their own; a value the requirement
# refuses is left to it (`check`), so that its words answer, Ottla's validator any other.
_REQUIREMENTS: tuple[tuple[str, str, Callable[[int], bool], str], ...] = (
    ("log.roll.ms", "segment.ms", lambda ms: ms >= 1, "log.roll.ms must be greater than or equal to 1"),
    ("log.roll.jitter.ms", "segment.jitter.ms", lambda ms: ms >= 0, "log.roll.jitter.ms must be greater than or equal to 0"),
    # Kafka reads any negative retention as -1, unlimited.
    ("log.retention.ms", "retention.ms", lambda ms: ms >= 1 or ms < 0, "log.retention.ms must be unlimited (-1) or, greater than or equal to 1"),
)
_CLEANER_BYTES_PER_THREAD = 1024 * 1024

# Kafka's ConfigDef validators Ottla applies to dynamic configs only: at start-up its TLS
# listeners refuse such a value themselves, as a listener error naming the key.
_DYNAMIC_VALIDATORS = {"ssl.client.auth": one_of("required", "requested", "none")}


def _whole(topic_defaults: Mapping[str, str], name: str) -> int | None:
    """A topic default as a number; None where an empty dynamic value left it unset."""
    return int(topic_defaults[name]) if topic_defaults[name] else None


def _check_log_times(topic_defaults: Mapping[str, str]) -> None:
    """KafkaConfig.validateValues' first requirements, on the new effective config, before any
    reconfigurable's check (and before the effective config is built: a time they refuse does
    not parse as Ottla's setting)."""
    for _, topic_key, required, words in _REQUIREMENTS:
        ms = _whole(topic_defaults, topic_key)
        if ms is not None and not required(ms):
            raise KafkaError(ErrorCode.INVALID_REQUEST, f"requirement failed: {words}")


def _check_cleaner_buffer(config: BrokerConfig) -> None:
    """KafkaConfig.validateValues' next: the cleaner's dedupe buffer, more than 1 MiB per thread
    in whole bytes (Kafka's long division; with no cleaner thread Kafka divides by zero and
    fails, which is not copied)."""
    threads = int(config.value("log.cleaner.threads"))
    if threads > 0 and int(config.value("log.cleaner.dedupe.buffer.size")) < (_CLEANER_BYTES_PER_THREAD + 1) * threads:
        raise KafkaError(ErrorCode.INVALID_REQUEST, "requirement failed: log.cleaner.dedupe.buffer.size must be at least 1MB per cleaner thread.")


def _check_remote_retention(topic_defaults: Mapping[str, str]) -> None:
    """DynamicLogConfig.validateReconfiguration, run by Kafka 4.4 when a log config changes:
    the local retention (-2 follows the total) within the total retention, unless either is
    unlimited; the remote copy lag within the effective local retention. Each refusal is
    Kafka's ConfigException, wrapped as its dynamic configs are."""
    problem = None
    for unit in ("ms", "bytes"):
        total, local = _whole(topic_defaults, f"retention.{unit}"), _whole(topic_defaults, f"local.retention.{unit}")
        if total is None or local is None:
            continue
        if problem is None and total >= 0 and local != -2:
            if local == -1:
                problem = f"Invalid value -1 for configuration log.local.retention.{unit}: Value must not be -1 as log.retention.{unit} value is set as {total}."
            elif local > total:
                problem = f"Invalid value {local} for configuration log.local.retention.{unit}: Value must not be more than log.retention.{unit} property value: {total}"
    for unit in ("ms", "bytes"):
        total, local, lag = (_whole(topic_defaults, name) for name in (f"retention.{unit}", f"local.retention.{unit}", f"remote.copy.lag.{unit}"))
        effective = total if local == -2 else local
        if problem is None and lag is not None and effective is not None and lag > 0 and effective >= 0 and lag > effective:
            problem = f"Invalid value {lag} for configuration log.remote.copy.lag.{unit}: Value must not exceed log.local.retention.{unit} (effective value: {effective})"
    if problem is not None:
        raise KafkaError(
            ErrorCode.INVALID_REQUEST, f"Invalid value org.apache.kafka.common.config.ConfigException: {problem} for configuration Invalid dynamic configuration"
        )


def check(changes: Mapping[str, str | None], per_broker: bool) -> dict[str, str]:
    """The dynamic configs `changes` sets, each checked and normalised as Kafka shows it, or
    KafkaError with Kafka's error (INVALID_REQUEST for a broker config, unlike a topic's).
    A None value is refused. A name Kafka does not define is kept as given, as Kafka keeps it.
    The cluster default (`per_broker` False) may not set a node's own configs; that is checked
    last, after the values, as DynamicBrokerConfig.validateConfigs checks it."""
    check_read_only(changes.keys())
    listener_only = sorted(name for name in changes if name in _LISTENER_ONLY)
    if listener_only:
        raise KafkaError(
            ErrorCode.INVALID_REQUEST,
            f"These security configs can be dynamically updated only per-listener using the listener prefix: [{', '.join(listener_only)}]",
        )
    checked: dict[str, str] = {}
    for name, value in changes.items():
        if value is None:
            raise KafkaError(ErrorCode.INVALID_REQUEST, f"Null value not supported for broker configs: {name}")
        prefixed = _LISTENER_CONFIG.fullmatch(name)
        # A listener's override is parsed and validated as the key it overrides
        # (AbstractConfig.valuesWithPrefixOverride), and kept as given unless Ottla applies it.
        overridden = name if prefixed is None else prefixed.group(1)
        key = setting_key(overridden)
        if key is None:
            checked[name] = value
            continue
        try:
            parsed = key.parse_type(value)
            if parsed is None or not any(overridden == broker_key and not required(parsed) for broker_key, _, required, _ in _REQUIREMENTS):
                key.check(parsed)
            if overridden in _DYNAMIC_VALIDATORS:
                _DYNAMIC_VALIDATORS[overridden](overridden, parsed)
            checked[name] = value if prefixed is not None and not _applied_per_listener(name) else key.render(parsed) or ""
        except InvalidConfigValue as exc:
            raise KafkaError(ErrorCode.INVALID_REQUEST, str(exc)) from None
    per_broker_only = [] if per_broker else sorted(name for name in changes if _per_broker_only(name))
    if per_broker_only:
        raise KafkaError(
            ErrorCode.INVALID_REQUEST,
            f"Cannot update these configs at default cluster level, broker id must be specified: [{', '.join(per_broker_only)}]",
        )
    return checked
