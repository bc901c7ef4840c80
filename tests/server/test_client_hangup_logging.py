"""A client that hangs up while a fetch answer is being sent from segment files is a client
leaving, which the broker logs at INFO like any closed connection, never as a WARNING."""

from __future__ import annotations

import logging
import socket
import struct

import pytest
from kafka import KafkaProducer
from kafka.protocol.consumer.fetch import FetchRequest

from compat.harness import wait_for
from kafka_wire import RawClient, make
from ottla.testing import running_broker

PARTITIONS = 4
VALUE_BYTES = 100_000
VALUES_PER_PARTITION = 20  # 8 MB in all, far more than the socket buffers hold
SOCKET_BUFFER_BYTES = 64 * 1024
HANGUPS = 5


def _fetch_everything(topic: str) -> FetchRequest:
    partitions = [
        dict(partition=index, fetch_offset=0, partition_max_bytes=16 << 20, current_leader_epoch=-1, log_start_offset=-1, last_fetched_epoch=-1)
        for index in range(PARTITIONS)
    ]
    return make(FetchRequest, dict(replica_id=-1, max_wait_ms=0, min_bytes=1, max_bytes=64 << 20, isolation_level=0, session_id=0,
                                   session_epoch=-1, topics=[dict(topic=topic, partitions=partitions)], forgotten_topics_data=[], rack_id=""))


def test_a_client_hanging_up_mid_answer_is_not_a_warning(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ottla")
    with running_broker(data_dir=tmp_path / "data", socket_send_buffer_bytes=SOCKET_BUFFER_BYTES) as broker:
        broker.create_topic("big", partitions=PARTITIONS)
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks="all", max_request_size=4 << 20)
        for partition in range(PARTITIONS):
            for _ in range(VALUES_PER_PARTITION):
                producer.send("big", b"v" * VALUE_BYTES, partition=partition)
        producer.close()
        assert broker.broker is not None
        for _ in range(HANGUPS):
            client = RawClient(broker.bootstrap_servers)
            client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER_BYTES)
            client.send(_fetch_everything("big"), 11)
            (size,) = struct.unpack(">i", client.sock.recv(4, socket.MSG_WAITALL))
            assert size > PARTITIONS * VALUES_PER_PARTITION * VALUE_BYTES
            # Hang up with a reset, the answer mostly unsent, as a killed consumer does.
            client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
            assert wait_for(lambda: not broker.broker.connections, timeout=10)
    warnings = [record.getMessage() for record in caplog.records if record.name.startswith("ottla") and record.levelno >= logging.WARNING]
    assert warnings == []
    assert sum("connection closed from" in record.getMessage() for record in caplog.records) >= HANGUPS
