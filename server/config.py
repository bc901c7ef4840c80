"""Broker settings, under Kafka's names and with Kafka's defaults.

One registry describes every setting (name, type, default, meaning); the CLI, the
embedding API, DescribeConfigs on the broker resource and the README's configuration
table are all drawn from it. Settings come, lowest precedence first, from the defaults,
a Kafka `server.properties` file, `OTTLA_<KEY_WITH_UNDERSCORES>` environment variables,
and `--set key=value` (or the flags of `ottla serve`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

log = logging.getLogger("ottla.config")

# Kafka's ConfigDef.Type ids, as DescribeConfigs v3+ reports them (DescribeConfigsResponse.json).
BOOLEAN, STRING, INT, SHORT, LONG, DOUBLE, LIST = 1, 2, 3, 4, 5, 6, 7


@dataclass(slots=True, frozen=True)
class Setting:
    name: str
    parse: Callable[[str], Any]
    default: Any
    doc: str
    config_type: int = STRING


def _bool(text: str) -> bool:
    # Kafka's ConfigDef accepts only true/false (case-insensitive) for BOOLEAN.
    lowered = text.strip().lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _number(kind: type, low: float | None = None, high: float | None = None) -> Callable[[str], Any]:
    """A parser for an int or float with Kafka's Range validator bounds."""

    def parse(text: str) -> Any:
        try:
            value = kind(text.strip())
        except ValueError:
            raise ValueError(f"not a number: {text!r}") from None
        if low is not None and value < low:
            raise ValueError(f"must be at least {low}, got {value}")
        if high is not None and value > high:
            raise ValueError(f"must be at most {high}, got {value}")
        return value

    return parse


def _optional(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    return lambda text: parse(text) if text.strip() else None


def _optional_str(text: str) -> str | None:
    return text or None


def _one_of(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {text!r}")
        return text

    return parse


def _cleanup_policy(text: str) -> str:
    policies = [p.strip() for p in text.split(",") if p.strip()]
    if not set(policies) <= {"compact", "delete"}:
        raise ValueError(f"must be a list of compact, delete; got {text!r}")
    return ",".join(policies)


def _gzip_level(text: str) -> int:
    # GzipCompression.LEVEL_VALIDATOR: 1..9, or -1 for zlib's default.
    level = _number(int)(text)
    if level != -1 and not 1 <= level <= 9:
        raise ValueError(f"must be between 1 and 9, or -1 for the default; got {level}")
    return level


_INT_MAX = 2**31 - 1
_LONG_MAX = 2**63 - 1

SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting("host", str, "127.0.0.1", "Address the listener binds to (or `listeners=PLAINTEXT://HOST:PORT`)."),
        Setting("port", _number(int, 0, 65535), 9092, "Listener port; 0 picks a free one.", INT),
        Setting("data.dir", _optional_str, "./ottla-data", "Directory for the log (or Kafka's `log.dirs`, one directory); empty means in memory."),
        Setting("node.id", _number(int, 0, _INT_MAX), 1, "This broker's node id (or Kafka's `broker.id`).", INT),
        Setting("advertised.host", _optional_str, None, "Host name given to clients in Metadata (default: the bind host)."),
        Setting("cluster.id", str, "ottla-cluster-0000000001", "Cluster id reported in Metadata and DescribeCluster."),
        Setting("num.partitions", _number(int, 1, _INT_MAX), 1, "Partitions of an auto-created topic or a CreateTopics request with -1.", INT),
        Setting("auto.create.topics.enable", _bool, True, "Create unknown topics named in Metadata requests.", BOOLEAN),
        Setting("socket.request.max.bytes", _number(int, 1, _INT_MAX), 104857600, "Largest request frame accepted; a larger one closes the connection.", INT),
        Setting("socket.send.buffer.bytes", _number(int, -1, _INT_MAX), 102400, "SO_SNDBUF of each client connection; -1 leaves it to the OS.", INT),
        Setting("socket.receive.buffer.bytes", _number(int, -1, _INT_MAX), 102400, "SO_RCVBUF of each client connection; -1 leaves it to the OS.", INT),
        Setting("max.connections", _number(int, 0, _INT_MAX), 2147483647, "Connections the broker accepts at once; more are closed on arrival.", INT),
        Setting("max.connections.per.ip", _number(int, 0, _INT_MAX), 2147483647, "Connections accepted at once from one client address.", INT),
        Setting("connections.max.idle.ms", _number(int, -1, _LONG_MAX), 600000, "A connection with no request for this long is closed.", LONG),
        Setting("fetch.max.bytes", _number(int, 1024, _INT_MAX), 57671680, "Most bytes one Fetch response carries, whatever the request asks for.", INT),
        Setting("message.max.bytes", _number(int, 0, _INT_MAX), 1048588, "Largest record batch accepted; default of the topic config `max.message.bytes`.", INT),
        Setting("log.retention.hours", _number(int, -1, _INT_MAX), 168, "Default of the topic config `retention.ms`, in hours.", INT),
        Setting("log.retention.minutes", _optional(_number(int, -1, _INT_MAX)), None, "Default of `retention.ms` in minutes; overrides `log.retention.hours`.", INT),
        Setting("log.retention.ms", _optional(_number(int, -1, _LONG_MAX)), None, "Default of `retention.ms`; overrides the minutes and hours forms.", LONG),
        Setting("log.retention.bytes", _number(int, -(2**63), _LONG_MAX), -1, "Default of the topic config `retention.bytes`; -1 is no limit.", LONG),
        Setting("log.segment.bytes", _number(int, 1048576, _INT_MAX), 1073741824, "Default of the topic config `segment.bytes` (Kafka 4's floor: 1 MiB).", INT),
        Setting("log.roll.hours", _number(int, 1, _INT_MAX), 168, "Default of the topic config `segment.ms`, in hours.", INT),
        Setting("log.roll.ms", _optional(_number(int, 1, _LONG_MAX)), None, "Default of `segment.ms`; overrides `log.roll.hours`.", LONG),
        Setting("log.cleanup.policy", _cleanup_policy, "delete", "Default of the topic config `cleanup.policy`.", LIST),
        Setting("log.index.interval.bytes", _number(int, 0, _INT_MAX), 4096, "Default of the topic config `index.interval.bytes`.", INT),
        Setting(
            "log.message.timestamp.type",
            _one_of("CreateTime", "LogAppendTime"),
            "CreateTime",
            "Default of the topic config `message.timestamp.type`.",
        ),
        Setting(
            "compression.type",
            _one_of("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"),
            "producer",
            "Default of the topic config `compression.type`.",
        ),
        Setting("log.roll.jitter.hours", _number(int, 0, _INT_MAX), 0, "Default of the topic config `segment.jitter.ms`, in hours.", INT),
        Setting("log.roll.jitter.ms", _optional(_number(int, 0, _LONG_MAX)), None, "Default of `segment.jitter.ms`; overrides `log.roll.jitter.hours`.", LONG),
        Setting("log.index.size.max.bytes", _number(int, 4, _INT_MAX), 10485760, "Default of the topic config `segment.index.bytes`.", INT),
        Setting("log.segment.delete.delay.ms", _number(int, 0, _LONG_MAX), 60000, "Default of the topic config `file.delete.delay.ms`.", LONG),
        Setting("log.flush.interval.messages", _number(int, 1, _LONG_MAX), _LONG_MAX, "Default of the topic config `flush.messages`.", LONG),
        Setting(
            "log.flush.interval.ms",
            _optional(_number(int, 0, _LONG_MAX)),
            None,
            "Default of the topic config `flush.ms`; unset, `log.flush.scheduler.interval.ms` stands in, as in Kafka.",
            LONG,
        ),
        Setting("log.preallocate", _bool, False, "Default of the topic config `preallocate`.", BOOLEAN),
        Setting(
            "log.message.timestamp.after.max.ms",
            _number(int, 0, _LONG_MAX),
            3600000,
            "Default of the topic config `message.timestamp.after.max.ms`.",
            LONG,
        ),
        Setting(
            "log.message.timestamp.before.max.ms",
            _number(int, 0, _LONG_MAX),
            _LONG_MAX,
            "Default of the topic config `message.timestamp.before.max.ms`.",
            LONG,
        ),
        Setting("compression.gzip.level", _gzip_level, -1, "Default of the topic config `compression.gzip.level`.", INT),
        Setting("compression.lz4.level", _number(int, 1, 17), 9, "Default of the topic config `compression.lz4.level`.", INT),
        Setting("compression.zstd.level", _number(int, -131072, 22), 3, "Default of the topic config `compression.zstd.level`.", INT),
        Setting(
            "max.decompressed.message.bytes",
            _number(int, 1, _INT_MAX),
            _INT_MAX - 8,
            "Default of the topic config `max.decompressed.message.bytes`.",
            INT,
        ),
        Setting("min.insync.replicas", _number(int, 1, _INT_MAX), 1, "Default of the topic config `min.insync.replicas`.", INT),
        Setting("unclean.leader.election.enable", _bool, False, "Default of the topic config `unclean.leader.election.enable`.", BOOLEAN),
        Setting("log.local.retention.ms", _number(int, -2, _LONG_MAX), -2, "Default of the topic config `local.retention.ms` (tiered storage: not in Ottla).", LONG),
        Setting("log.local.retention.bytes", _number(int, -2, _LONG_MAX), -2, "Default of the topic config `local.retention.bytes` (tiered storage: not in Ottla).", LONG),
        Setting("log.remote.copy.lag.ms", _number(int, -1, _LONG_MAX), 0, "Default of the topic config `remote.copy.lag.ms` (tiered storage: not in Ottla).", LONG),
        Setting("log.remote.copy.lag.bytes", _number(int, -1, _LONG_MAX), -1, "Default of the topic config `remote.copy.lag.bytes` (tiered storage: not in Ottla).", LONG),
        Setting(
            "log.cleaner.max.compaction.lag.ms",
            _number(int, 1, _LONG_MAX),
            _LONG_MAX,
            "Default of the topic config `max.compaction.lag.ms`.",
            LONG,
        ),
        Setting("log.cleaner.delete.retention.ms", _number(int, 0, _LONG_MAX), 86400000, "Default of the topic config `delete.retention.ms`.", LONG),
        Setting("log.cleaner.min.compaction.lag.ms", _number(int, 0, _LONG_MAX), 0, "Default of the topic config `min.compaction.lag.ms`.", LONG),
        Setting("log.cleaner.min.cleanable.ratio", _number(float, 0, 1), 0.5, "Default of the topic config `min.cleanable.dirty.ratio`.", DOUBLE),
        Setting("log.retention.check.interval.ms", _number(int, 1, _LONG_MAX), 300000, "How often segments past retention are deleted.", LONG),
        Setting("log.cleaner.enable", _bool, True, "Compact topics whose cleanup.policy includes compact.", BOOLEAN),
        Setting("log.cleaner.backoff.ms", _number(int, 0, _LONG_MAX), 15000, "How often compacted topics are checked for cleaning.", LONG),
        Setting(
            "log.flush.scheduler.interval.ms",
            _number(int, 1, _LONG_MAX),
            _LONG_MAX,
            "How often topics' flush.ms is checked; Kafka's default never checks (the OS flushes).",
            LONG,
        ),
        Setting("offsets.retention.minutes", _number(int, 1, _INT_MAX), 10080, "How long the committed offsets of an empty group are kept.", INT),
        Setting(
            "group.initial.rebalance.delay.ms",
            _number(int, 0, _INT_MAX),
            3000,
            "How long the first rebalance of a new group waits for more members to join; tests set 0.",
            INT,
        ),
        Setting("group.min.session.timeout.ms", _number(int, 0, _INT_MAX), 6000, "Shortest session timeout a JoinGroup may ask for.", INT),
        Setting("group.max.session.timeout.ms", _number(int, 0, _INT_MAX), 1800000, "Longest session timeout a JoinGroup may ask for.", INT),
        Setting("group.max.size", _number(int, 1, _INT_MAX), _INT_MAX, "Most members a classic group admits.", INT),
        Setting(
            "offsets.retention.check.interval.ms",
            _number(int, 1, _LONG_MAX),
            600000,
            "How often committed offsets are checked for expiry.",
            LONG,
        ),
        Setting("offset.metadata.max.bytes", _number(int, 0, _INT_MAX), 4096, "Largest metadata string an offset commit may carry.", INT),
        Setting(
            "offsets.topic.num.partitions",
            _number(int, 1, _INT_MAX),
            1,
            "Partitions of `__consumer_offsets` when first created (Kafka: 50, to spread coordinators over brokers; one node needs one).",
            INT,
        ),
        Setting("transaction.max.timeout.ms", _number(int, 1, _INT_MAX), 900000, "Longest transaction.timeout.ms a transactional producer may ask for.", INT),
        Setting(
            "transactional.id.expiration.ms",
            _number(int, 1, _INT_MAX),
            604800000,
            "A transactional id with no open transaction and no request for this long is removed.",
            INT,
        ),
        Setting(
            "transaction.abort.timed.out.transaction.cleanup.interval.ms",
            _number(int, 1, _INT_MAX),
            10000,
            "How often transactions past their transaction.timeout.ms are looked for and aborted.",
            INT,
        ),
        Setting(
            "transaction.remove.expired.transaction.cleanup.interval.ms",
            _number(int, 1, _INT_MAX),
            3600000,
            "How often expired transactional ids are removed.",
            INT,
        ),
        Setting(
            "transaction.state.log.num.partitions",
            _number(int, 1, _INT_MAX),
            1,
            "Partitions of `__transaction_state` when first created (Kafka: 50; one node needs one).",
            INT,
        ),
        Setting("producer.id.expiration.ms", _number(int, 1, _INT_MAX), 86400000, "A partition forgets an idempotent producer silent for this long.", INT),
        Setting(
            "producer.id.expiration.check.interval.ms",
            _number(int, 1, _INT_MAX),
            600000,
            "How often partitions look for producers past producer.id.expiration.ms.",
            INT,
        ),
        Setting(
            "test.produce.drop.response.every",
            _number(int, 0, _INT_MAX),
            0,
            "Tests only: every Nth Produce request with a producer id is written, then its connection closed unanswered, so the client retries (0: never).",
            INT,
        ),
    )
}

# Kafka spellings of our settings, accepted in server.properties, --set and the environment.
ALIASES = {"broker.id": "node.id", "log.dirs": "data.dir", "log.dir": "data.dir"}


class ConfigError(ValueError):
    """A setting with a value that does not parse; the message names the key."""


@dataclass(slots=True)
class BrokerConfig:
    values: dict[str, Any]
    # Settings given explicitly (file, environment, --set, flags): DescribeConfigs reports
    # them as STATIC_BROKER_CONFIG, the rest as DEFAULT_CONFIG.
    explicit: set[str] = field(default_factory=set)

    @classmethod
    def from_settings(cls, overrides: Mapping[str, Any] | None = None) -> "BrokerConfig":
        config = cls({name: setting.default for name, setting in SETTINGS.items()})
        config.update(overrides or {})
        return config

    def update(self, overrides: Mapping[str, Any]) -> None:
        """Apply settings by name; a string is parsed and checked, an unknown name is an error."""
        for name, value in overrides.items():
            name = ALIASES.get(name, name)
            setting = SETTINGS.get(name)
            if setting is None:
                raise ConfigError(f"unknown setting {name!r}")
            if isinstance(value, str) and setting.parse is not str:
                try:
                    value = setting.parse(value)
                except ValueError as exc:
                    raise ConfigError(f"invalid value for {name}: {exc}") from None
            self.values[name] = value
            self.explicit.add(name)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]


def parse_properties(text: str) -> dict[str, str]:
    """Key/value pairs of a Java properties file, as Kafka's server.properties uses them:
    `#` and `!` comments, `=` or `:` separators, backslash line continuations."""
    pairs: dict[str, str] = {}
    logical = ""
    for raw in text.splitlines():
        line = raw.strip() if not logical else raw.lstrip()
        if not logical and (not line or line[0] in "#!"):
            continue
        if line.endswith("\\") and not line.endswith("\\\\"):
            logical += line[:-1]
            continue
        logical += line
        key, value = _split_property(logical)
        pairs[key] = value
        logical = ""
    if logical:
        key, value = _split_property(logical)
        pairs[key] = value
    return pairs


def _split_property(line: str) -> tuple[str, str]:
    for index, char in enumerate(line):
        if char in "=:" or char.isspace():
            key, rest = line[:index], line[index:].lstrip()
            if rest[:1] in ("=", ":"):
                rest = rest[1:].lstrip()
            return key, rest
    return line, ""


def _listener_settings(pairs: dict[str, str], source: str) -> dict[str, str]:
    """host and port from Kafka's `listeners` (and host from `advertised.listeners`): the
    first listener that is not a controller listener, which must speak PLAINTEXT."""
    out: dict[str, str] = {}
    controllers = {name.strip() for name in pairs.get("controller.listener.names", "").split(",") if name.strip()}
    protocols = {"PLAINTEXT": "PLAINTEXT"}
    for entry in pairs.get("listener.security.protocol.map", "").split(","):
        if ":" in entry:
            name, protocol = entry.split(":", 1)
            protocols[name.strip()] = protocol.strip()
    for key, settings in (("listeners", ("host", "port")), ("advertised.listeners", ("advertised.host",))):
        if key not in pairs:
            continue
        for listener in pairs[key].split(","):
            name, separator, address = listener.strip().partition("://")
            if not separator:
                raise ConfigError(f"invalid value for {key} in {source}: {listener.strip()!r} is not NAME://HOST:PORT")
            if name in controllers:
                continue
            if protocols.get(name, name) != "PLAINTEXT":
                raise ConfigError(f"invalid value for {key} in {source}: Ottla serves PLAINTEXT only, not {protocols.get(name, name)}")
            host, _, port = address.rpartition(":")
            host = host.strip("[]")
            if "host" in settings:
                # Kafka binds every interface when a listener names no host.
                out["host"] = host or "0.0.0.0"
                out["port"] = port
            elif host:
                out["advertised.host"] = host
            break
    return out


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


def load_properties(path: str | Path) -> dict[str, str]:
    """Settings from a Kafka server.properties: ours by name or Kafka alias, listeners
    translated, anything else logged once and ignored."""
    path = Path(path)
    try:
        pairs = parse_properties(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    settings = _listener_settings(pairs, str(path))
    ignored = []
    for key, value in pairs.items():
        name = ALIASES.get(key, key)
        if name in SETTINGS:
            if key in ("log.dirs", "log.dir") and "," in value:
                raise ConfigError(f"invalid value for {key} in {path}: Ottla keeps one log directory, got {value!r}")
            settings[name] = value
        elif key not in _CLUSTER_ONLY:
            ignored.append(key)
    for key in ignored:
        log.warning("ignoring setting %s from %s: Ottla does not use it", key, path)
    return settings


ENV_PREFIX = "OTTLA_"


def environment_settings(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """`OTTLA_LOG_RETENTION_MS=1000` -> {"log.retention.ms": "1000"}; other OTTLA_ variables are errors."""
    environ = os.environ if environ is None else environ
    known = {name.replace(".", "_").upper(): name for name in (*SETTINGS, *ALIASES)}
    settings = {}
    for variable, value in environ.items():
        if not variable.startswith(ENV_PREFIX):
            continue
        name = known.get(variable[len(ENV_PREFIX):])
        if name is None:
            raise ConfigError(f"unknown setting in environment variable {variable}")
        settings[ALIASES.get(name, name)] = value
    return settings


def parse_assignment(text: str) -> tuple[str, str]:
    """`key=value` as given to --set."""
    key, separator, value = text.partition("=")
    if not separator or not key.strip():
        raise ConfigError(f"--set takes key=value, got {text!r}")
    return key.strip(), value.strip()


def markdown_table() -> str:
    """The README's configuration table, drawn from the registry so the two never drift."""
    rows = ["| setting | default | meaning |", "|---|---|---|"]
    for setting in SETTINGS.values():
        if setting.default is None:
            default = "(none)"
        elif isinstance(setting.default, bool):
            default = f"`{str(setting.default).lower()}`"
        else:
            default = f"`{setting.default}`"
        rows.append(f"| `{setting.name}` | {default} | {setting.doc} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
