"""Listeners as Kafka configures them: several at once, each with its name and security
protocol, and each client told the endpoints of the listener it came through."""

from __future__ import annotations

import pytest
from kafka import KafkaAdminClient
from kafka.protocol.metadata.metadata import MetadataRequest, MetadataResponse

from kafka_wire import RawClient, make
from ottla.server.config import BrokerConfig, ConfigError
from ottla.server.security import listeners
from ottla.server.security.listeners import ListenerError, SecurityProtocol, configured_listeners
from ottla.testing import running_broker

TWO_LISTENERS = {
    "listeners": "PLAINTEXT://127.0.0.1:0,INTERNAL://127.0.0.1:0,CONTROLLER://127.0.0.1:9093",
    "advertised.listeners": "INTERNAL://internal.example:0",
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
    "controller.listener.names": "CONTROLLER",
    "inter.broker.listener.name": "INTERNAL",
}


def _listeners(**settings: str) -> list[tuple[str, SecurityProtocol, str, int, str, int]]:
    config = BrokerConfig.from_settings({name.replace("_", "."): value for name, value in settings.items()})
    return [(l.name, l.protocol, l.host, l.port, l.advertised_host, l.advertised_port) for l in configured_listeners(config)]


def test_without_listeners_there_is_one_plaintext_listener_at_host_and_port():
    assert _listeners(host="0.0.0.0", port="9000", advertised_host="kafka") == [("PLAINTEXT", SecurityProtocol.PLAINTEXT, "0.0.0.0", 9000, "kafka", 0)]


def test_listeners_are_read_as_kafka_reads_them():
    assert _listeners(
        listeners="plaintext://:9092, SSL://[::1]:9093,CONTROLLER://:9094,SASL_SSL://h:0",
        controller_listener_names="CONTROLLER",
        advertised_listeners="SSL://broker.example:19093",
    ) == [
        ("PLAINTEXT", SecurityProtocol.PLAINTEXT, "0.0.0.0", 9092, "0.0.0.0", 0),
        ("SSL", SecurityProtocol.SSL, "::1", 9093, "broker.example", 19093),
        ("SASL_SSL", SecurityProtocol.SASL_SSL, "h", 0, "h", 0),
    ]


def test_the_first_listener_is_the_one_host_and_port_describe():
    config = BrokerConfig.from_settings({"listeners": "EXTERNAL://:9092,INTERNAL://:9093", "listener.security.protocol.map": "EXTERNAL:SSL,INTERNAL:PLAINTEXT"})
    assert (config.host, config.port) == ("0.0.0.0", 9092)
    # `ottla serve --port 0` after a server.properties moves the first listener only.
    moved = config.updated({"port": "0"})
    assert [(l.name, l.port) for l in configured_listeners(moved)] == [("EXTERNAL", 0), ("INTERNAL", 9093)]


def test_per_listener_overrides_take_precedence_on_their_listener_only():
    config = BrokerConfig.from_settings(
        {
            "listeners": "EXTERNAL://:9092,INTERNAL://:9093",
            "listener.security.protocol.map": "EXTERNAL:SSL,INTERNAL:SSL",
            "ssl.client.auth": "requested",
            "listener.name.internal.ssl.client.auth": "required",
            "listener.name.internal.plain.sasl.jaas.config": "org.apache.kafka.common.security.plain.PlainLoginModule required;",
        }
    )
    assert config.listener_value("INTERNAL", "ssl.client.auth") == "required"
    assert config.listener_value("EXTERNAL", "ssl.client.auth") == "requested"
    assert config.listener_value("INTERNAL", "plain.sasl.jaas.config").startswith("org.apache.kafka")
    assert config.listener_value("EXTERNAL", "plain.sasl.jaas.config") is None
    assert config.listener_value("INTERNAL", "ssl.enabled.protocols") == ("TLSv1.2", "TLSv1.3")


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"listeners": "FOO://:9092"}, "no security protocol defined for listener FOO"),
        ({"listeners": "PLAINTEXT://:9092", "advertised.listeners": "SSL://h:1"}, "SSL not among the listeners"),
        ({"listeners": "CONTROLLER://:9093", "controller.listener.names": "CONTROLLER"}, "names no broker listener"),
        ({"inter.broker.listener.name": "INTERNAL"}, "INTERNAL is not among the listeners"),
        ({"listener.security.protocol.map": "PLAINTEXT:CLEARTEXT"}, "not NAME:PROTOCOL"),
    ],
)
def test_listeners_kafka_would_refuse_are_refused(settings, message):
    with pytest.raises((ListenerError, ConfigError), match=message):
        configured_listeners(BrokerConfig.from_settings(settings))


def test_a_sasl_listener_is_not_served_without_authentication(monkeypatch):
    monkeypatch.setattr(listeners, "SASL_SERVED", False)  # a build without the SASL code
    with pytest.raises(ListenerError, match="refusing to serve it unauthenticated"):
        with running_broker(data_dir=None, listeners="SASL_PLAINTEXT://127.0.0.1:0"):
            pass


def _metadata_brokers(bootstrap: str, version: int) -> list[tuple[str, int]]:
    with RawClient(bootstrap) as raw:
        response = raw.call(make(MetadataRequest, dict(topics=[], allow_auto_topic_creation=False)), version, MetadataResponse)
    return [(broker.host, broker.port) for broker in response.brokers]


def test_each_listener_answers_metadata_with_its_own_endpoint():
    with running_broker(data_dir=None, **TWO_LISTENERS) as handle:
        broker = handle.broker
        assert broker is not None
        plaintext, internal = broker.bound_ports["PLAINTEXT"], broker.bound_ports["INTERNAL"]
        assert plaintext != internal
        assert handle.bootstrap_servers == f"127.0.0.1:{plaintext}"
        for version in range(0, 13):
            assert _metadata_brokers(f"127.0.0.1:{plaintext}", version) == [("127.0.0.1", plaintext)]
            assert _metadata_brokers(f"127.0.0.1:{internal}", version) == [("internal.example", internal)]
        admin = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{plaintext}")
        try:
            assert [(b["host"], b["port"]) for b in admin.describe_cluster()["brokers"]] == [("127.0.0.1", plaintext)]
        finally:
            admin.close()


def test_a_restart_keeps_every_listeners_port():
    with running_broker(data_dir=None, **TWO_LISTENERS) as handle:
        assert handle.broker is not None
        before = dict(handle.broker.bound_ports)
        handle.restart()
        assert handle.broker.bound_ports == before
        assert _metadata_brokers(f"127.0.0.1:{before['INTERNAL']}", 9) == [("internal.example", before["INTERNAL"])]
