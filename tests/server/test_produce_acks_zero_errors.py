"""An acks=0 Produce has no answer to carry an error, so KafkaApis closes the connection when
any partition failed (the reference Kafka 4.4 closed it for an unknown topic, an unknown
partition and a corrupt batch, and kept it for a good one): the client's only sign that it
should refresh its metadata. Requests taken before it are answered first."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from compat.sockets import read_frame
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.protocol import decode_response, encode_request
from ottla.wire.records.record import Record, build_batch


@pytest.fixture(scope="module")
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=None) as running:
        running.create_topic("t", partitions=1)
        yield running


def _connect(broker: ThreadedBroker) -> socket.socket:
    host, port = broker.bootstrap_servers.split(",")[0].rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=10)


def _produce(topic: str, index: int, records: bytes) -> bytes:
    body = {"transactional_id": None, "acks": 0, "timeout_ms": 5000,
            "topic_data": [{"name": topic, "partition_data": [{"index": index, "records": records}]}]}
    return encode_request(ApiKey.PRODUCE, 9, 2, body, client_id="acks-zero")


def _batch() -> bytes:
    return build_batch([Record(0, int(time.time() * 1000), b"k", b"v")])


def _corrupt() -> bytes:
    batch = bytearray(_batch())
    batch[16] = 7
    return bytes(batch)


@pytest.mark.parametrize(("topic", "index", "records"), [
    ("absent", 0, _batch()), ("t", 9, _batch()), ("t", 0, _corrupt()),
], ids=["unknown topic", "unknown partition", "corrupt batch"])
def test_a_failed_acks_zero_produce_closes_after_the_requests_before_it(broker: ThreadedBroker, topic: str, index: int, records: bytes) -> None:
    with _connect(broker) as sock:
        metadata = encode_request(ApiKey.METADATA, 12, 1, {"topics": None, "allow_auto_topic_creation": False, "include_topic_authorized_operations": False}, client_id="acks-zero")
        sock.sendall(metadata + _produce(topic, index, records))
        frame = read_frame(sock)
        assert frame is not None and decode_response(ApiKey.METADATA, 12, frame)[0] == 1
        assert read_frame(sock) is None


def test_a_good_acks_zero_produce_keeps_the_connection(broker: ThreadedBroker) -> None:
    with _connect(broker) as sock:
        versions = encode_request(ApiKey.API_VERSIONS, 0, 3, {}, client_id="acks-zero")
        sock.sendall(_produce("t", 0, _batch()) + versions)
        frame = read_frame(sock)
        assert frame is not None and decode_response(ApiKey.API_VERSIONS, 0, frame)[0] == 3
