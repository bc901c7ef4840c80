"""A production-style Kafka 4.4 server.properties starts Ottla unchanged: `ottla serve --config`
with a KRaft combined-mode file (SASL_SSL for clients, SASL_PLAINTEXT for admins and between
brokers, a CONTROLLER listener), a PKCS12 keystore, per-listener JAAS lines, SCRAM users given
as `kafka-storage format --add-scram` takes them, StandardAuthorizer with super.users and
allow.everyone.if.no.acl.found=false, and the quota and connection limits a real file carries
(Kafka 4 has no static quota defaults: those are set with kafka-configs). Then the ACLs an
operator would add, and stock clients through it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import (
    ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType, KafkaAdminClient, NewTopic, ResourcePattern, ResourceType,
)
from kafka.errors import TopicAuthorizationFailedError

from ottla.server.security.certs import KEYSTORE_PASSWORD, DevelopmentCertificates, write

pytestmark = [pytest.mark.external]

ADMIN, ALICE, BOB = ("admin", "admin-secret"), ("alice", "alice-secret"), ("bob", "bob-secret")
TOPIC, UNGRANTED = "orders", "payments"
READY_WITHIN = 60.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def server_properties(certs: DevelopmentCertificates, data: Path, client_port: int, internal_port: int, controller_port: int) -> str:
    """As an operator writes one for Kafka 4.4 (config/server.properties, secured)."""
    plain_users = " ".join(f'user_{name}="{password}"' for name, password in (ADMIN, BOB))
    return f"""\
############################# Server Basics #############################
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:{controller_port}

############################# Socket Server Settings #############################
listeners=SASL_SSL://127.0.0.1:{client_port},SASL_PLAINTEXT://127.0.0.1:{internal_port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=SASL_SSL://127.0.0.1:{client_port},SASL_PLAINTEXT://127.0.0.1:{internal_port}
listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL,SASL_PLAINTEXT:SASL_PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_PLAINTEXT
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600

############################# TLS #############################
ssl.keystore.type=PKCS12
ssl.keystore.location={certs.broker_p12}
ssl.keystore.password={KEYSTORE_PASSWORD}
ssl.key.password={KEYSTORE_PASSWORD}
ssl.truststore.type=PEM
ssl.truststore.location={certs.ca}
ssl.client.auth=none
ssl.enabled.protocols=TLSv1.2,TLSv1.3
ssl.endpoint.identification.algorithm=https

############################# SASL #############################
sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
sasl.mechanism.inter.broker.protocol=PLAIN
sasl.mechanism.controller.protocol=PLAIN
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \\
    username="{ADMIN[0]}" password="{ADMIN[1]}" {plain_users};
connections.max.reauth.ms=3600000
sasl.server.max.receive.size=524288
connection.failed.authentication.delay.ms=100
principal.builder.class=org.apache.kafka.common.security.authenticator.DefaultKafkaPrincipalBuilder

############################# Authorization #############################
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:{ADMIN[0]}
allow.everyone.if.no.acl.found=false

############################# Quotas and limits #############################
quota.window.num=11
quota.window.size.seconds=1
controller.quota.window.num=11
max.connections.per.ip=1000
max.connection.creation.rate=1000

############################# Log Basics #############################
log.dirs={data}
num.partitions=3
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
log.retention.hours=168
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
delegation.token.secret.key=a-secret-only-the-brokers-know
"""


@dataclass(frozen=True)
class Secured:
    certs: DevelopmentCertificates
    clients: str  # SASL_SSL, SCRAM-SHA-512
    internal: str  # SASL_PLAINTEXT, PLAIN
    log: Path


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    work = tmp_path_factory.mktemp("production")
    certs = write(work / "certs")
    ports = _free_port(), _free_port(), _free_port()
    properties = work / "server.properties"
    properties.write_text(server_properties(certs, work / "data", *ports))
    log_path = work / "broker.log"
    scram = f"SCRAM-SHA-512=[name={ALICE[0]},password={ALICE[1]}]"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "ottla", "serve", "--config", str(properties), "--add-scram", scram],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + READY_WITHIN
        while "ottla ready" not in log_path.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ottla serve --config did not start (exit {proc.poll()}):\n{log_path.read_text(errors='replace')}")
            time.sleep(0.1)
        yield Secured(certs, f"127.0.0.1:{ports[0]}", f"127.0.0.1:{ports[1]}", log_path)
    finally:
        proc.terminate()
        assert proc.wait(15) == 0, log_path.read_text(errors="replace")


def _sasl_ssl(secured: Secured, user: tuple[str, str]) -> dict[str, object]:
    return {"bootstrap_servers": secured.clients, "security_protocol": "SASL_SSL", "ssl_cafile": str(secured.certs.ca),
            "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": user[0], "sasl_plain_password": user[1]}


def _sasl_plaintext(secured: Secured, user: tuple[str, str]) -> dict[str, object]:
    return {"bootstrap_servers": secured.internal, "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "PLAIN", "sasl_plain_username": user[0], "sasl_plain_password": user[1]}


def test_a_production_server_properties_serves_secured_clients(secured: Secured) -> None:
    log = secured.log.read_text(errors="replace")
    assert "neither Ottla nor Kafka 4.4 knows it" not in log, log

    # The operator, a super user over the internal listener, makes the topic and alice's ACLs,
    # as kafka-topics and kafka-acls would.
    admin = KafkaAdminClient(**_sasl_plaintext(secured, ADMIN), request_timeout_ms=15000)
    try:
        admin.create_topics([NewTopic(TOPIC, 3, 1), NewTopic(UNGRANTED, 1, 1)])
        allow = [ACL(f"User:{ALICE[0]}", "*", operation, ACLPermissionType.ALLOW, pattern) for operation, pattern in (
            (ACLOperation.WRITE, ResourcePattern(ResourceType.TOPIC, TOPIC, ACLResourcePatternType.LITERAL)),
            (ACLOperation.READ, ResourcePattern(ResourceType.TOPIC, TOPIC, ACLResourcePatternType.LITERAL)),
            (ACLOperation.READ, ResourcePattern(ResourceType.GROUP, "orders-", ACLResourcePatternType.PREFIXED)),
        )]
        assert not admin.create_acls(allow)["failed"]
    finally:
        admin.close()

    producer = KafkaProducer(**_sasl_ssl(secured, ALICE), acks="all")
    try:
        for i in range(10):
            producer.send(TOPIC, key=f"k{i}".encode(), value=f"v{i}".encode()).get(timeout=15)
    finally:
        producer.close()
    consumer = KafkaConsumer(TOPIC, **_sasl_ssl(secured, ALICE), group_id="orders-audit", auto_offset_reset="earliest",
                             consumer_timeout_ms=10000)
    try:
        assert sorted(record.value for record in consumer) == sorted(f"v{i}".encode() for i in range(10))
    finally:
        consumer.close()

    # bob logs in (a PLAIN user of the JAAS line), but no ACL speaks to the topic and
    # allow.everyone.if.no.acl.found=false makes that no access.
    # Not idempotent: its InitProducerId would be refused first, as CLUSTER_AUTHORIZATION_FAILED.
    refused = KafkaProducer(**_sasl_plaintext(secured, BOB), max_block_ms=10000, enable_idempotence=False)
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            refused.send(UNGRANTED, b"not allowed").get(timeout=15)
    finally:
        refused.close()
