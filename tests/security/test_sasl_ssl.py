"""SCRAM over SASL_SSL, the production setup: confluent-kafka and kafka-python log in with
SCRAM-SHA-512 over TLS (the broker's certificate from `ottla certs`), produce and consume;
a wrong password is an authentication error, over TLS as over plaintext."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from kafka import KafkaConsumer, KafkaProducer

from ottla.server.security.certs import DevelopmentCertificates, write
from ottla.testing import ThreadedBroker, running_broker

USER, PASSWORD = "carol", "carol-over-tls"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> DevelopmentCertificates:
    return write(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def broker(certs: DevelopmentCertificates) -> Iterator[ThreadedBroker]:
    settings = {
        "listeners": "SASL_SSL://127.0.0.1:0",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(certs.broker_keystore),
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
    }
    with running_broker(data_dir=None, add_scram=[f"SCRAM-SHA-512=[name={USER},password={PASSWORD}]"], **settings) as handle:
        yield handle


def _confluent(broker: ThreadedBroker, certs: DevelopmentCertificates, password: str, **more: object) -> dict[str, object]:
    return {
        "bootstrap.servers": broker.bootstrap_servers,
        "security.protocol": "SASL_SSL",
        "ssl.ca.location": str(certs.ca),
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": USER,
        "sasl.password": password,
        **more,
    }


def test_confluent_kafka_scram_over_sasl_ssl(broker: ThreadedBroker, certs: DevelopmentCertificates) -> None:
    from confluent_kafka import Consumer, Producer

    producer = Producer(_confluent(broker, certs, PASSWORD))
    delivered = []
    producer.produce("sasl-ssl-confluent", b"over tls", on_delivery=lambda err, msg: delivered.append(err))
    assert producer.flush(15) == 0 and delivered == [None]
    consumer = Consumer(_confluent(broker, certs, PASSWORD, **{"group.id": "sasl-ssl", "auto.offset.reset": "earliest"}))
    try:
        consumer.subscribe(["sasl-ssl-confluent"])
        deadline = time.monotonic() + 20
        message = None
        while message is None and time.monotonic() < deadline:
            message = consumer.poll(0.5)
        assert message is not None and message.error() is None and message.value() == b"over tls"
    finally:
        consumer.close()


def test_confluent_kafka_wrong_password_over_sasl_ssl(broker: ThreadedBroker, certs: DevelopmentCertificates) -> None:
    from confluent_kafka import KafkaError, Producer

    errors = []
    producer = Producer(_confluent(broker, certs, "not-carols", error_cb=errors.append))
    deadline = time.monotonic() + 15
    while not errors and time.monotonic() < deadline:
        producer.poll(0.2)
    assert errors and errors[0].code() == KafkaError._AUTHENTICATION


def test_kafka_python_scram_over_sasl_ssl(broker: ThreadedBroker, certs: DevelopmentCertificates) -> None:
    secured = {
        "bootstrap_servers": broker.bootstrap_servers,
        "security_protocol": "SASL_SSL",
        "ssl_cafile": str(certs.ca),
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": USER,
        "sasl_plain_password": PASSWORD,
    }
    producer = KafkaProducer(**secured)
    try:
        assert producer.send("sasl-ssl-kafka-python", b"over tls").get(timeout=10).offset == 0
    finally:
        producer.close()
    consumer = KafkaConsumer("sasl-ssl-kafka-python", auto_offset_reset="earliest", consumer_timeout_ms=10_000, **secured)
    try:
        assert next(consumer).value == b"over tls"
    finally:
        consumer.close()
