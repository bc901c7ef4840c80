"""Produce refused as a whole, and a partition named twice with null records. Every expected
answer is the reference Kafka 4.4's to the same request.

A whole-request refusal (transactional records with no transactional id, a corrupt first
batch) is ProduceRequest.getErrorResponse: each partition once, in the order of a
java.util.HashMap keyed by TopicIdPartition as the request names it (v12 and before: the name,
the zero id), so the order is fixed by names and indexes alone. An acks=0 request so refused
closes the connection (RequestHandlerHelper: no answer to send). Null records pass
ProduceRequest.validateRecords, so a null copy named before a batch is replaced by it."""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from compat.sockets import read_frame
from kafka_wire import WireClient
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.protocol import encode_request
from ottla.wire.records import iter_records, scan_batches
from ottla.wire.records.record import Record, build_batch

ERROR_TXN_ID = 53  # TRANSACTIONAL_ID_AUTHORIZATION_FAILED
ERROR_CORRUPT = 2  # CORRUPT_MESSAGE
TOO_SHORT = "Record size 5 is less than the minimum record overhead (14)"


@pytest.fixture(scope="module")
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=None) as running:
        running.create_topic("m", partitions=6)
        running.create_topic("t", partitions=3)
        running.create_topic("big", partitions=20)
        for name in ("d0", "d1", "d2"):
            running.create_topic(name, partitions=1)
        yield running


@pytest.fixture
def client(broker: ThreadedBroker) -> Iterator[WireClient]:
    wire = WireClient(broker.bootstrap_servers, client_id="produce-edges")
    yield wire
    wire.close()


def _batch(value: bytes = b"v", transactional: bool = False) -> bytes:
    producer = (1000, 0, 0) if transactional else (-1, -1, -1)
    return build_batch([Record(0, int(time.time() * 1000), b"k", value)], producer_id=producer[0], producer_epoch=producer[1],
                       base_sequence=producer[2], transactional=transactional)


def _too_short() -> bytes:
    return bytes(8) + (5).to_bytes(4, "big") + bytes(20)


def _produce(client: WireClient, topics: list[tuple[str, list[tuple[int, bytes | None]]]], acks: int = -1) -> list[tuple[str, list[tuple[int, int, str | None]]]]:
    answer = client.call(ApiKey.PRODUCE, 9, {"transactional_id": None, "acks": acks, "timeout_ms": 5000, "topic_data": [
        {"name": name, "partition_data": [{"index": index, "records": records} for index, records in partitions]} for name, partitions in topics]})
    return [(topic["name"], [(p["index"], p["error_code"], p.get("error_message")) for p in topic["partition_responses"]]) for topic in answer["responses"]]


def _indexes(answer: list[tuple[str, list[tuple[int, int, str | None]]]]) -> list[tuple[str, list[int]]]:
    return [(name, [index for index, _, _ in partitions]) for name, partitions in answer]


def test_transactional_records_with_no_transactional_id_are_refused_in_kafkas_hash_order(client: WireClient) -> None:
    transactional = _batch(transactional=True)
    answer = _produce(client, [("m", [(i, transactional) for i in range(6)]), ("t", [(i, transactional) for i in range(3)])])
    assert answer == [("t", [(i, ERROR_TXN_ID, None) for i in (2, 1, 0)]), ("m", [(i, ERROR_TXN_ID, None) for i in (5, 4, 3, 2, 1, 0)])]
    # A partition named twice is answered once; an unknown partition and topic are answered too.
    assert _indexes(_produce(client, [("t", [(i, transactional) for i in (2, 0, 2, 1)])])) == [("t", [2, 1, 0])]
    assert _indexes(_produce(client, [("t", [(7, transactional), (0, transactional)]), ("nope", [(0, transactional)])])) == [("t", [0, 7]), ("nope", [0])]


def test_a_refused_request_of_many_partitions_is_ordered_as_a_grown_hash_map(client: WireClient) -> None:
    """Kafka's HashMap.compute links a new key at its bucket's head and grows 16 buckets to 32
    only before the 14th key: the orders of 13, 14 and 20 partitions, whatever the request's."""
    transactional = _batch(transactional=True)
    shuffled = list(range(20))
    random.Random(5).shuffle(shuffled)
    assert _indexes(_produce(client, [("big", [(i, transactional) for i in range(13)])])) == [("big", [1, 2, 0, 11, 12, 9, 10, 7, 8, 5, 6, 3, 4])]
    assert _indexes(_produce(client, [("big", [(i, transactional) for i in range(14)])])) == [("big", [1, 2, 0, 13, 11, 12, 9, 10, 7, 8, 5, 6, 3, 4])]
    assert _indexes(_produce(client, [("big", [(i, transactional) for i in shuffled])])) == [
        ("big", [1, 2, 0, 19, 17, 18, 15, 16, 13, 14, 11, 12, 9, 10, 7, 8, 5, 6, 3, 4])]


def test_a_corrupt_first_batch_refuses_the_request_in_kafkas_hash_order(client: WireClient) -> None:
    answer = _produce(client, [("m", [(i, _too_short() if i == 3 else _batch()) for i in range(6)]), ("t", [(i, _batch()) for i in range(3)])])
    assert answer == [("t", [(i, ERROR_CORRUPT, TOO_SHORT) for i in (2, 1, 0)]), ("m", [(i, ERROR_CORRUPT, TOO_SHORT) for i in (5, 4, 3, 2, 1, 0)])]


@pytest.mark.parametrize("records", [_batch(transactional=True), _too_short()], ids=["no transactional id", "corrupt first batch"])
def test_an_acks_zero_request_refused_as_a_whole_closes_the_connection(broker: ThreadedBroker, records: bytes) -> None:
    host, port = broker.bootstrap_servers.split(",")[0].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        produce = {"transactional_id": None, "acks": 0, "timeout_ms": 5000, "topic_data": [{"name": "t", "partition_data": [{"index": 0, "records": records}]}]}
        sock.sendall(encode_request(ApiKey.PRODUCE, 9, 1, produce) + encode_request(ApiKey.API_VERSIONS, 0, 2, {}))
        assert read_frame(sock) is None


def _values(client: WireClient, topic: str) -> list[bytes]:
    answer: dict[str, Any] = client.call(ApiKey.FETCH, 4, {"replica_id": -1, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 1 << 20, "isolation_level": 0,
                                                          "topics": [{"topic": topic, "partitions": [{"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20}]}]})
    data = bytes(answer["responses"][0]["partitions"][0]["records"] or b"")
    return [bytes(record.value) for _, batch in scan_batches(data) for record in iter_records(batch)]


def test_null_records_named_before_a_batch_are_replaced_by_it(client: WireClient) -> None:
    """In one topic entry or in two, the batch is appended and answered; null records named
    after a batch make Kafka fail (not copied)."""
    assert _produce(client, [("d0", [(0, None), (0, _batch(b"same entry"))])]) == [("d0", [(0, 0, None)])]
    assert _values(client, "d0") == [b"same entry"]
    assert _produce(client, [("d1", [(0, None)]), ("d1", [(0, _batch(b"two entries"))])]) == [("d1", [(0, 0, None)])]
    assert _values(client, "d1") == [b"two entries"]
