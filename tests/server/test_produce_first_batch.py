"""KafkaApis.handleProduceRequest's first question, asked of the whole request: whether it
carries transactional records (RequestUtils.hasTransactionalRecords, reading each partition's
first batch only). A first batch whose size or magic no batch can have makes that read throw,
and every partition of the request fails CORRUPT_MESSAGE with the exception's words; a
transactional id is authorized only when there are transactional records. Answers as the
reference Kafka 4.4 gave them to the same requests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from ottla.server.admin.client import Connection
from ottla.server.security.authorizer import STANDARD_AUTHORIZER
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.records.record import Record, build_batch


def _connect(broker: ThreadedBroker) -> Connection:
    host, port = broker.bootstrap_servers.split(",")[0].rsplit(":", 1)
    return Connection(host, int(port), 30.0, "first-batch")


@pytest.fixture(scope="module")
def connection() -> Iterator[Connection]:
    with running_broker(data_dir=None) as broker:
        broker.create_topic("t", partitions=2)
        broker.create_topic("u", partitions=1)
        client = _connect(broker)
        try:
            yield client
        finally:
            client.close()


def _batch(**fields: Any) -> bytes:
    return build_batch([Record(0, int(time.time() * 1000), b"k", b"v")], **fields)


def _corrupted(at: int, value: bytes) -> bytes:
    batch = bytearray(_batch())
    batch[at : at + len(value)] = value
    return bytes(batch)


def _produce(connection: Connection, version: int, partitions: dict[tuple[str, int], bytes], transactional_id: str | None = None) -> list[tuple[str, int, int, str | None]]:
    topics: dict[str, list[dict[str, Any]]] = {}
    for (topic, index), records in partitions.items():
        topics.setdefault(topic, []).append({"index": index, "records": records})
    answer = connection.request(ApiKey.PRODUCE, version, {
        "transactional_id": transactional_id, "acks": -1, "timeout_ms": 5000,
        "topic_data": [{"name": name, "partition_data": data} for name, data in topics.items()],
    })
    return sorted((topic["name"], p["index"], p["error_code"], p.get("error_message")) for topic in answer["responses"] for p in topic["partition_responses"])


@pytest.mark.parametrize(("corrupt", "words"), [
    (_corrupted(16, b"\x07"), "Invalid magic found in record: 7"),
    (_corrupted(16, b"\xff"), "Invalid magic found in record: -1"),
    (_corrupted(8, (5).to_bytes(4, "big")), "Record size 5 is less than the minimum record overhead (14)"),
], ids=["magic 7", "magic 255", "size 5"])
def test_a_corrupt_first_batch_fails_every_partition_with_kafkas_words(connection: Connection, corrupt: bytes, words: str) -> None:
    """The good partitions beside it are refused too, and nothing is appended."""
    request = {("t", 0): _batch(), ("t", 1): corrupt, ("u", 0): _batch()}
    corrupt_message = ErrorCode.CORRUPT_MESSAGE
    assert _produce(connection, 9, request) == [("t", 0, corrupt_message, words), ("t", 1, corrupt_message, words), ("u", 0, corrupt_message, words)]
    assert _produce(connection, 7, request) == [("t", 0, corrupt_message, None), ("t", 1, corrupt_message, None), ("u", 0, corrupt_message, None)]


def test_bytes_after_the_batch_with_a_magic_no_batch_has_are_corrupt(connection: Connection) -> None:
    """ProduceRequest.validateRecords reads on past the batch: 17 bytes or more after it show a
    magic, and one outside 0-2 is CORRUPT_MESSAGE for that partition alone; fewer are trimmed."""
    trailing = _corrupted(16, b"\x07")
    answer = _produce(connection, 9, {("t", 0): _batch(), ("t", 1): _batch() + trailing[:20]})
    assert answer == [("t", 0, ErrorCode.NONE, None), ("t", 1, ErrorCode.CORRUPT_MESSAGE, None)]
    assert _produce(connection, 9, {("t", 1): _batch() + trailing[:16]}) == [("t", 1, ErrorCode.NONE, None)]


def test_a_transactional_id_is_authorized_only_for_transactional_records() -> None:
    """With WRITE on the id denied, a transactional batch is refused and an idempotent batch
    sent with the same id is appended: the id is not checked without transactional records."""
    with running_broker(data_dir=None, authorizer_class_name=STANDARD_AUTHORIZER, allow_everyone_if_no_acl_found=True) as broker:
        broker.create_topic("t", partitions=1)
        client = _connect(broker)
        try:
            denied = client.request(ApiKey.CREATE_ACLS, 3, {"creations": [{
                "resource_type": 5, "resource_name": "denied", "resource_pattern_type": 3, "principal": "User:ANONYMOUS",
                "host": "*", "operation": 4, "permission_type": 2}]})
            assert [result["error_code"] for result in denied["results"]] == [ErrorCode.NONE]
            initialized = client.request(ApiKey.INIT_PRODUCER_ID, 4, {"transactional_id": None, "transaction_timeout_ms": 60_000, "producer_id": -1, "producer_epoch": -1})
            producer = {"producer_id": initialized["producer_id"], "producer_epoch": initialized["producer_epoch"]}
            transactional = _batch(base_sequence=0, transactional=True, **producer)
            assert _produce(client, 9, {("t", 0): transactional}, "denied") == [("t", 0, ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, None)]
            assert _produce(client, 9, {("t", 0): _batch(base_sequence=0, **producer)}, "denied") == [("t", 0, ErrorCode.NONE, None)]
        finally:
            client.close()
