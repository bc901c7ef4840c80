"""Broker configuration as Kafka users write it: a server.properties, OTTLA_ variables and
--set, checked on a real `ottla serve` (settings took effect, bad values stop start-up naming
the key) and, for the parsing rules themselves, without a socket."""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import subprocess
import sys
import threading

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import MessageSizeTooLargeError

from ottla.server.cli import _parser, broker_config
from ottla.server.config import SETTINGS, BrokerConfig, ConfigError, environment_settings, load_properties
from ottla.wire.properties import parse_properties
from ottla.server.security.listeners import configured_listeners
from ottla.server.topic_config import broker_topic_defaults
from ottla.storage import LogConfig
from ottla.storage.config import BROKER_LOG_KEYS, TOPIC_KEYS
from ottla.testing import running_broker



def _serve(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str, list[str]]:
    """Start `ottla serve`; returns the process, its bootstrap address and the stderr lines
    before the ready line. A process that exits first is returned with bootstrap ''."""
    environment = {**os.environ, **(env or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "ottla", "serve", *args], stderr=subprocess.PIPE, text=True, env=environment
    )
    before = []
    for line in process.stderr:
        if line.startswith("ottla ready"):
            # Keep draining: a broker blocked on a full stderr pipe stops answering.
            threading.Thread(target=process.stderr.read, daemon=True).start()
            return process, line.split()[2].split("=", 1)[1], before
        before.append(line.rstrip("\n"))
    process.wait(timeout=10)
    return process, "", before


def _stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0


def test_serve_reads_a_kafka_server_properties(tmp_path):
    data = tmp_path / "kraft-combined-logs"
    properties = tmp_path / "server.properties"
    properties.write_text(
        "\n".join(
            [
                "# Kafka's KRaft quickstart file, as people copy it",
                "process.roles=broker,controller",
                "broker.id=7",
                "controller.quorum.voters=7@127.0.0.1:9093",
                "listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:9093",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                f"log.dirs={data}",
                "num.partitions=3",
                "log.retention.hours=2",
                "message.max.bytes = 2048",
                "num.network.threads=3",
                "no.such.setting=1",
            ]
        )
    )
    process, bootstrap, before = _serve("--config", str(properties))
    try:
        assert bootstrap.startswith("127.0.0.1:")
        # Kafka's keys Ottla does not act on are noted once, unknown keys logged once as
        # ignored; cluster-only keys are expected and stay quiet.
        assert [line for line in before if "no effect" in line] == [line for line in before if "num.network.threads" in line]
        assert [line for line in before if "ignoring" in line] == [line for line in before if "no.such.setting" in line]
        assert len([line for line in before if "num.network.threads" in line]) == len([line for line in before if "no.such" in line]) == 1
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            assert [b["broker_id"] for b in admin.describe_cluster()["brokers"]] == [7]
            admin.create_topics([NewTopic("configured", -1, -1)])
            assert len(admin.describe_topics(["configured"])[0]["partitions"]) == 3
            (configs,) = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "configured")], include_synonyms=True, config_filter="all")[
                "topic"
            ].values()
            assert configs["retention.ms"]["value"] == str(2 * 3600 * 1000)
            # Kafka 4.4 answers the same: only synonyms from log.retention.ms on are listed
            # (ConfigHelper.configSynonyms), so log.retention.hours shows as no synonym at all.
            assert configs["retention.ms"]["config_source"] == "DEFAULT_CONFIG"
            assert configs["retention.ms"]["synonyms"] == []
            assert configs["max.message.bytes"]["config_source"] == "STATIC_BROKER_CONFIG"
            assert configs["max.message.bytes"]["synonyms"] == [
                {"name": "message.max.bytes", "value": "2048", "source": "STATIC_BROKER_CONFIG"},
                {"name": "message.max.bytes", "value": "1048588", "source": "DEFAULT_CONFIG"},
            ]
            (broker,) = admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, "7")], config_filter="all")["broker"].values()
            assert broker["num.partitions"]["config_source"] == "STATIC_BROKER_CONFIG"
            assert broker["auto.create.topics.enable"]["config_source"] == "DEFAULT_CONFIG"
            # Kafka's settings that Ottla only accepts are described as given.
            assert (broker["num.network.threads"]["value"], broker["num.network.threads"]["config_source"]) == ("3", "STATIC_BROKER_CONFIG")
            assert (broker["process.roles"]["value"], broker["process.roles"]["config_source"]) == ("broker,controller", "STATIC_BROKER_CONFIG")
        finally:
            admin.close()
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1)
        try:
            producer.send("configured", b"small", partition=0).get(timeout=10)
            with pytest.raises(MessageSizeTooLargeError):
                producer.send("configured", b"x" * 4096, partition=0).get(timeout=10)
        finally:
            producer.close()
        assert (data / "configured-0").is_dir()
    finally:
        _stop(process)


@pytest.mark.parametrize(
    "args, env, key",
    [
        (["--set", "num.partitions=three"], {}, "num.partitions"),
        (["--set", "log.retention.ms=-7"], {}, "log.retention.ms"),
        (["--set", "auto.create.topics.enable=maybe"], {}, "auto.create.topics.enable"),
        ([], {"OTTLA_MESSAGE_MAX_BYTES": "big"}, "message.max.bytes"),
        # A near miss of one of Ottla's settings is a typo, wherever it is given.
        (["--set", "log.retension.ms=5"], {}, "did you mean log.retention.ms?"),
        ([], {"OTTLA_NUM_PARTITION": "2"}, "did you mean OTTLA_NUM_PARTITIONS?"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_key(args, env, key):
    process, bootstrap, before = _serve("--port", "0", "--memory", *args, env=env)
    assert bootstrap == ""
    assert process.returncode == 2
    assert len(before) == 1 and before[0].startswith("ottla: ") and key in before[0]


def test_a_bad_value_in_the_file_names_the_key(tmp_path):
    properties = tmp_path / "server.properties"
    properties.write_text("listeners=PLAINTEXT://127.0.0.1:0\nlog.segment.bytes=10\n")
    process, bootstrap, before = _serve("--config", str(properties), "--memory")
    assert (bootstrap, process.returncode) == ("", 2)
    # Kafka's own ConfigException wording, as a Kafka broker stops with on the same file.
    assert before == ["ottla: Invalid value 10 for configuration log.segment.bytes: Value must be at least 1048576"]


def test_precedence_file_then_environment_then_set_then_flags(tmp_path, monkeypatch):
    properties = tmp_path / "server.properties"
    properties.write_text("num.partitions=2\nlog.retention.hours=5\nmessage.max.bytes=1000\nlisteners=PLAINTEXT://0.0.0.0:19092\n")
    monkeypatch.setenv("OTTLA_LOG_RETENTION_HOURS", "6")
    monkeypatch.setenv("OTTLA_MESSAGE_MAX_BYTES", "2000")
    args = _parser().parse_args(["serve", "--config", str(properties), "--set", "message.max.bytes=3000", "--port", "0"])
    config = broker_config(args)
    assert config.num_partitions == 2
    assert config.log_retention_hours == 6
    assert config.message_max_bytes == 3000
    assert (config.host, config.port) == ("0.0.0.0", 0)
    assert {"num.partitions", "log.retention.hours", "message.max.bytes", "host", "port"} <= config.explicit
    assert "log.segment.bytes" not in config.explicit


def test_properties_syntax_is_java_properties():
    # Values come back trimmed, as Kafka's ConfigDef.parseType trims every value it parses.
    text = "# comment\n! also a comment\n  spaced.key = padded value  \ncolon.key: v\nlong.key=first,\\\n    second\nempty.key=\n"
    assert parse_properties(text) == {"spaced.key": "padded value", "colon.key": "v", "long.key": "first,second", "empty.key": ""}


def test_kafka_spellings_and_listeners_are_translated(tmp_path, caplog):
    properties = tmp_path / "server.properties"
    properties.write_text(
        "broker.id=4\nlog.dirs=/var/lib/kafka\nlisteners=PLAINTEXT://:9095\nadvertised.listeners=PLAINTEXT://kafka.example:9095\n"
        "process.roles=broker\nnum.network.threads=3\n"
    )
    with caplog.at_level(logging.WARNING, logger="ottla.config"):
        settings = load_properties(properties)
    assert settings == {
        "node.id": "4", "data.dir": "/var/lib/kafka", "listeners": "PLAINTEXT://:9095", "advertised.listeners": "PLAINTEXT://kafka.example:9095",
        "process.roles": "broker", "num.network.threads": "3",
    }
    config = BrokerConfig.from_settings(settings)
    assert (config.host, config.port) == ("0.0.0.0", 9095)
    [listener] = configured_listeners(config)
    assert (listener.name, listener.advertised_host, listener.advertised_port) == ("PLAINTEXT", "kafka.example", 9095)
    assert [r.getMessage() for r in caplog.records if r.name == "ottla.config"] == [
        f"setting num.network.threads from {properties} is accepted but has no effect on a single Ottla node"
    ]


@pytest.mark.parametrize(
    "line, key",
    [
        ("listeners=PLAINTEXT://:9092,plaintext://:9093", "listeners"),
        ("listeners=127.0.0.1:9092", "listeners"),
        ("advertised.listeners=PLAINTEXT://host:port", "advertised.listeners"),
        ("listener.name.external.connections.max.idle.ms=soon", "connections.max.idle.ms"),
    ],
)
def test_properties_ottla_cannot_honour_are_refused(tmp_path, line, key):
    properties = tmp_path / "server.properties"
    properties.write_text(line + "\n")
    with pytest.raises(ConfigError, match=f"(invalid value for|configuration) {key}"):
        BrokerConfig.from_settings(load_properties(properties))


def test_environment_names_and_unknown_variables(caplog):
    assert environment_settings({"OTTLA_LOG_RETENTION_MS": "1000", "OTTLA_BROKER_ID": "3", "PATH": "/bin"}) == {
        "log.retention.ms": "1000",
        "node.id": "3",
    }
    with caplog.at_level(logging.WARNING, logger="ottla.config"):
        assert environment_settings({"OTTLA_RETENTION": "1"}) == {}
    assert [r.getMessage() for r in caplog.records if r.name == "ottla.config"] == [
        "ignoring setting OTTLA_RETENTION in the environment: neither Ottla nor Kafka 4.4 knows it"
    ]
    with pytest.raises(ConfigError, match="unknown setting OTTLA_LOG_RETENTION_HOUR in the environment: did you mean OTTLA_LOG_RETENTION_HOURS"):
        environment_settings({"OTTLA_LOG_RETENTION_HOUR": "1"})


def test_values_are_checked_against_kafkas_ranges():
    with pytest.raises(ConfigError, match="Invalid value 0 for configuration num.partitions: Value must be at least 1"):
        BrokerConfig.from_settings({"num.partitions": "0"})
    with pytest.raises(ConfigError, match="Invalid value shred for configuration log.cleanup.policy"):
        BrokerConfig.from_settings({"log.cleanup.policy": "compact,shred"})
    config = BrokerConfig.from_settings({"log.retention.minutes": "", "auto.create.topics.enable": "FALSE"})
    assert config.log_retention_minutes is None and config.auto_create_topics_enable is False


def test_topic_defaults_agree_everywhere():
    """A topic config's default as DescribeConfigs gives it over a socket, as LogConfig reads it
    and as the broker's settings derive it are one value, for every key."""
    derived = broker_topic_defaults(BrokerConfig())
    log_config = LogConfig.from_overrides({})
    with running_broker(data_dir=None) as broker:
        broker.create_topic("defaults")
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        try:
            (described,) = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "defaults")], config_filter="all")["topic"].values()
        finally:
            admin.close()
    assert sorted(described) == sorted(TOPIC_KEYS)
    for name, key in TOPIC_KEYS.items():
        assert described[name]["value"] == derived[name] == key.render(key.default), name
        # A new cluster keeps min.insync.replicas as a cluster default while ELR is on (KIP-966).
        expected = "DYNAMIC_DEFAULT_BROKER_CONFIG" if name == "min.insync.replicas" else "DEFAULT_CONFIG"
        assert described[name]["config_source"] == expected, name
    for item in dataclasses.fields(LogConfig):
        key = TOPIC_KEYS[item.metadata["topic_key"]]
        assert getattr(log_config, item.name) == key.default, item.name


def test_every_topic_synonym_is_a_broker_setting_that_moves_the_default():
    """Each broker setting a topic key names is one of the broker's settings, typed as the key
    expects, and setting it changes the topic default storage is given."""
    assert BROKER_LOG_KEYS.keys() <= SETTINGS.keys()
    config = BrokerConfig.from_settings({"log.roll.hours": "2", "log.cleanup.policy": "compact", "message.max.bytes": "2048"})
    defaults = broker_topic_defaults(config)
    assert (defaults["segment.ms"], defaults["cleanup.policy"], defaults["max.message.bytes"]) == (str(2 * 3600 * 1000), "compact", "2048")
    assert LogConfig.from_overrides(defaults).segment_ms == 2 * 3600 * 1000


def test_the_streams_group_settings_read_by_the_coordinator_are_not_called_inert(tmp_path, caplog):
    """The group.streams.* settings the streams group coordinator reads (each the default of a
    group config) start the broker without the 'has no effect' warning an inert one gets."""
    properties = tmp_path / "server.properties"
    properties.write_text("group.streams.initial.rebalance.delay.ms=0\ngroup.streams.num.standby.replicas=1\ngroup.streams.max.size=5\n")
    with caplog.at_level(logging.WARNING, logger="ottla.config"):
        load_properties(properties)
    assert [r.getMessage() for r in caplog.records if r.name == "ottla.config"] == []
