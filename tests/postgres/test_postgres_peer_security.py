"""Brokers over one PostgreSQL log in to each other as Kafka's brokers do: three `ottla serve
--storage postgresql://...` processes with only SASL_PLAINTEXT (SCRAM) listeners and
StandardAuthorizer, `security.inter.broker.protocol=SASL_PLAINTEXT`, the inter-broker mechanism's
JAAS config naming the broker's user, who is a super user. A transactional producer whose
coordinator is not the partition's leader commits and aborts: the leader verifies the partition
with the coordinator over an authenticated connection, which the coordinator's authorizer lets
do CLUSTER_ACTION. Plain TCP to that listener would never be answered, and the producer's
writes would be refused as retriable until its timeout. No broker logs the broker's password,
at DEBUG."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka import TopicPartition as ConfluentPartition
from confluent_kafka.admin import AdminClient, NewTopic

from compat.harness import OttlaBroker
from ottla.server.admin.client import KafkaClient
from ottla.server.admin.sasl import SaslLogin
from ottla.wire.api import ApiKey

pytestmark = [pytest.mark.external, pytest.mark.slow]

_DEADLINE = 60.0
_MECHANISM = "SCRAM-SHA-256"
_BROKER_SECRET = "inter-broker-secret"
_ADMIN = SaslLogin(_MECHANISM, "admin", "admin-secret")
_SETTINGS = {
    "listeners": "SASL_PLAINTEXT://127.0.0.1:0",
    "security.inter.broker.protocol": "SASL_PLAINTEXT",
    "sasl.enabled.mechanisms": _MECHANISM,
    "sasl.mechanism.inter.broker.protocol": _MECHANISM,
    "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config":
        f'org.apache.kafka.common.security.scram.ScramLoginModule required username="broker" password="{_BROKER_SECRET}";',
    "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "super.users": "User:broker;User:admin",
    "allow.everyone.if.no.acl.found": "false",
}
_CLIENT = {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": _MECHANISM, "sasl.username": _ADMIN.username, "sasl.password": _ADMIN.password}
_TXN = 1  # FindCoordinator key type


def _until(check: Any, what: str) -> Any:
    """`check()` once it is truthy (an exception counts as not yet), polled until the deadline."""
    deadline = time.monotonic() + _DEADLINE
    last: object = None
    while True:
        try:
            value = check()
            if value:
                return value
            last = value
        except Exception as exc:  # noqa: BLE001 - a login refused, a connection reset: not yet
            last = exc
        assert time.monotonic() < deadline, f"never: {what} (last: {last!r})"
        time.sleep(0.2)


@contextmanager
def _cluster(url: str, work_dir: Path) -> Iterator[list[OttlaBroker]]:
    """Three brokers over `url`, the users `broker` and `admin` created by the first, returned
    once each lists all three."""
    scram = [f"--add-scram={_MECHANISM}=[name={user},password={password}]" for user, password in (("broker", _BROKER_SECRET), (_ADMIN.username, _ADMIN.password))]
    with ExitStack() as stack:
        brokers = []
        for node_id in (1, 2, 3):
            broker = OttlaBroker(work_dir / f"node-{node_id}", storage=url, node_id=node_id, settings=_SETTINGS, log_level="debug",
                                 serve_args=["--http-port", "-1", *(scram if node_id == 1 else [])])
            stack.enter_context(broker)
            brokers.append(broker)

        def listed_by_all() -> bool:
            for broker in brokers:
                with KafkaClient(broker.bootstrap, timeout=10, sasl=_ADMIN) as client:
                    if len(client.metadata([])["brokers"]) != 3:
                        return False
            return True

        _until(listed_by_all, "every broker lists all three")
        yield brokers


def test_a_transaction_across_sasl_brokers_commits_with_an_authorizer(postgres_url: str, tmp_path: Path) -> None:
    with _cluster(postgres_url, tmp_path) as brokers:
        bootstrap = ",".join(broker.bootstrap for broker in brokers)
        topic = f"peer-sasl-{uuid.uuid4().hex[:8]}"
        admin = AdminClient({"bootstrap.servers": bootstrap, **_CLIENT})
        admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
        with KafkaClient(bootstrap, timeout=10, sasl=_ADMIN) as client:
            leader = _until(lambda: max(client.metadata([topic])["topics"][0]["partitions"][0]["leader_id"], 0), f"a leader of {topic}")

            def coordinator(key: str) -> int:
                entry = client.call(ApiKey.FIND_COORDINATOR, {"key_type": _TXN, "coordinator_keys": [key]}, highest=4)[1]["coordinators"][0]
                return -1 if entry["error_code"] else int(entry["node_id"])

            for attempt in itertools.count():
                transactional_id = f"txn-{topic}-{attempt}"
                txn_node = _until(lambda: max(coordinator(transactional_id), 0), f"a coordinator of {transactional_id}")
                if txn_node != leader:
                    break
                assert attempt < 200, f"broker {leader} coordinates every transactional id"

        producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id, **_CLIENT})
        producer.init_transactions(30)
        committed: list[bytes] = []
        for round_, commit in enumerate((True, False, True)):
            producer.begin_transaction()
            values = [f"{round_}-{n}".encode() for n in range(3)]
            for value in values:
                producer.produce(topic, value, partition=0)
            producer.flush(30)
            if commit:
                producer.commit_transaction(30)
                committed.extend(values)
            else:
                producer.abort_transaction(30)

        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{topic}", "enable.auto.commit": False,
                             "isolation.level": "read_committed", **_CLIENT})
        try:
            consumer.assign([ConfluentPartition(topic, 0, 0)])
            read: list[bytes] = []
            end = 12  # 9 records and 3 markers
            deadline = time.monotonic() + _DEADLINE
            while consumer.position([ConfluentPartition(topic, 0)])[0].offset < end:
                assert time.monotonic() < deadline, f"read {read}, position short of {end}"
                message = consumer.poll(0.5)
                if message is not None and message.error() is None:
                    read.append(message.value())
        finally:
            consumer.close()
        assert read == committed
    # The leader asked the coordinator (AddPartitionsToTxn v5 is a broker's; clients send v4 at most).
    assert 5 in brokers[txn_node - 1].requests_seen().get("ADD_PARTITIONS_TO_TXN", [])
    # The harness's own notes show the command line; the brokers' lines must not show the secrets.
    logged = "\n".join(line for broker in brokers for line in broker.log_lines() if not line.startswith("[compat harness]"))
    assert "ottla.request:" in logged
    assert _BROKER_SECRET not in logged and _ADMIN.password not in logged
