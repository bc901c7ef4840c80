"""Broker settings, under Kafka's names and with Kafka's defaults.

One registry describes every setting (name, type, default, meaning); the CLI, the
embedding API and the README's configuration table are all drawn from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass(slots=True, frozen=True)
class Setting:
    name: str
    parse: Callable[[str], Any]
    default: Any
    doc: str


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _optional_str(text: str) -> str | None:
    return text or None


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting("host", str, "127.0.0.1", "Address the listener binds to."),
        Setting("port", int, 9092, "Listener port; 0 picks a free one."),
        Setting("data.dir", _optional_str, "./ottla-data", "Directory for the log; empty means in memory."),
        Setting("node.id", int, 1, "This broker's node id."),
        Setting("advertised.host", _optional_str, None, "Host name given to clients in Metadata (default: the bind host)."),
        Setting("num.partitions", int, 1, "Partitions of an auto-created topic or a CreateTopics request with -1."),
        Setting("auto.create.topics.enable", _bool, True, "Create unknown topics named in Metadata requests."),
        Setting("socket.request.max.bytes", int, 104857600, "Largest request frame accepted; a larger one closes the connection."),
        Setting("max.connections", int, 2147483647, "Connections the broker accepts at once; more are closed on arrival."),
        Setting("max.connections.per.ip", int, 2147483647, "Connections accepted at once from one client address."),
        Setting("connections.max.idle.ms", int, 600000, "A connection with no request for this long is closed."),
        Setting("message.max.bytes", int, 1048588, "Largest record batch accepted (topic override: max.message.bytes)."),
        Setting(
            "group.initial.rebalance.delay.ms",
            int,
            3000,
            "How long the first rebalance of a new group waits for more members to join; tests set 0.",
        ),
        Setting("group.min.session.timeout.ms", int, 6000, "Shortest session timeout a JoinGroup may ask for."),
        Setting("group.max.session.timeout.ms", int, 1800000, "Longest session timeout a JoinGroup may ask for."),
        Setting("group.max.size", int, 2147483647, "Most members a classic group admits."),
        Setting("offsets.retention.minutes", int, 10080, "How long the committed offsets of an empty group are kept."),
        Setting("offsets.retention.check.interval.ms", int, 600000, "How often committed offsets are checked for expiry."),
        Setting("offset.metadata.max.bytes", int, 4096, "Largest metadata string an offset commit may carry."),
        Setting("offsets.topic.num.partitions", int, 1, "Partitions of `__consumer_offsets` when first created (Kafka: 50, to spread coordinators over brokers; one node needs one)."),
        Setting("cluster.id", str, "ottla-cluster-0000000001", "Cluster id reported in Metadata."),
    )
}


class ConfigError(ValueError):
    """A setting with a value that does not parse; the message names the key."""


@dataclass(slots=True)
class BrokerConfig:
    values: dict[str, Any]

    @classmethod
    def from_settings(cls, overrides: dict[str, Any] | None = None) -> "BrokerConfig":
        values = {name: setting.default for name, setting in SETTINGS.items()}
        for name, value in (overrides or {}).items():
            setting = SETTINGS.get(name)
            if setting is None:
                raise ConfigError(f"unknown setting {name!r}")
            if isinstance(value, str) and setting.parse is not str:
                try:
                    value = setting.parse(value)
                except ValueError as exc:
                    raise ConfigError(f"{name}: {exc}") from exc
            values[name] = value
        return cls(values)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]


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
