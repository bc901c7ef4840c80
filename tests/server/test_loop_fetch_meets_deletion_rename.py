"""A fetch answer sent by the event loop (one under THREAD_SENDFILE_BYTES) whose region's file
is mid-rename when the loop opens it: DeleteTopics renames a deleted partition's directory on a
thread, and points its files at the new name a moment later. The loop reads the name again
(server/sendfile.py open_region), as the sendfile workers do, and sends the answer whole rather
than closing the connection: the answer was cut before the deletion, its bytes all there."""

from __future__ import annotations

import os
import socket
import struct

from confluent_kafka.admin import AdminClient
from kafka import KafkaProducer
from kafka.protocol.consumer.fetch import FetchRequest, FetchResponse
from kafka.protocol.metadata.api_versions import ApiVersionsRequest, ApiVersionsResponse

from kafka_wire import RawClient, make, read_records
from ottla.server.connection import THREAD_SENDFILE_BYTES
from ottla.storage.segment import FileRegion
from ottla.testing import running_broker
from tests.thread_gate import Gate

TOPIC = "gated-fetched"
VALUE_BYTES = 1000
# Records by partition: one answer of both is under THREAD_SENDFILE_BYTES, so the loop sends it,
# and partition 0's region is far more than the sockets buffer.
VALUES = {0: 200, 1: 20}
SOCKET_BUFFER_BYTES = 8 * 1024
FETCH_VERSION = 11

_real_rename = os.rename
_real_open = FileRegion.open


def _fetch() -> object:
    partitions = [dict(partition=index, fetch_offset=0, partition_max_bytes=1 << 20, current_leader_epoch=-1, log_start_offset=-1,
                       last_fetched_epoch=-1) for index in VALUES]
    return make(FetchRequest, dict(replica_id=-1, max_wait_ms=0, min_bytes=1, max_bytes=1 << 20, isolation_level=0, session_id=0,
                                   session_epoch=-1, topics=[dict(topic=TOPIC, partitions=partitions)], forgotten_topics_data=[], rack_id=""))


def _receive_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError(f"broker closed the connection after {len(data)} of {size} bytes")
        data += chunk
    return bytes(data)


def test_a_loop_sent_fetch_answer_meeting_its_directory_mid_rename_is_sent_whole(tmp_path, monkeypatch) -> None:
    gate = Gate()
    missed: list[str] = []

    def rename(source, destination, *args, **kwargs):
        # Partition 1's directory held just after its rename, before its files follow it.
        _real_rename(source, destination, *args, **kwargs)
        if gate.armed.is_set() and os.path.basename(source) == TOPIC + "-1" and str(destination).endswith("-delete"):
            gate.hold()

    def region_open(region):
        try:
            return _real_open(region)
        except FileNotFoundError as error:
            # The loop met the old name gone: the rename may now finish.
            missed.append(str(error))
            gate.released.set()
            raise

    monkeypatch.setattr(os, "rename", rename)
    monkeypatch.setattr(FileRegion, "open", region_open)
    values = {partition: [bytes([partition, n % 256]) * (VALUE_BYTES // 2) for n in range(count)] for partition, count in VALUES.items()}
    with running_broker(data_dir=tmp_path / "data", socket_send_buffer_bytes=SOCKET_BUFFER_BYTES) as broker:
        broker.create_topic(TOPIC, partitions=len(VALUES))
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks="all")
        for partition, partition_values in values.items():
            for value in partition_values:
                producer.send(TOPIC, value, partition=partition)
        producer.close()
        with RawClient(broker.bootstrap_servers) as client:
            # A small receive window, and nothing read past the size prefix: the loop's sendfile
            # of partition 0 waits on the socket, partition 1's file not yet opened.
            client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER_BYTES)
            client.send(_fetch(), FETCH_VERSION)
            (size,) = struct.unpack(">i", _receive_exactly(client.sock, 4))
            assert VALUE_BYTES * sum(VALUES.values()) < size < THREAD_SENDFILE_BYTES
            gate.armed.set()
            admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
            (deleted,) = admin.delete_topics([TOPIC], operation_timeout=30).values()
            assert gate.entered.wait(10)
            response = FetchResponse.decode(_receive_exactly(client.sock, size), version=FETCH_VERSION, header=True)
            assert missed, "the answer never met the directory mid-rename"
            assert deleted.result(timeout=10) is None
            [topic] = response.responses
            assert {p.partition_index: [value for _, _, value in read_records(bytes(p.records))] for p in topic.partitions} == values
            # The connection carries on.
            versions = client.call(make(ApiVersionsRequest, dict(client_software_name="t", client_software_version="1")), 3, ApiVersionsResponse)
            assert versions.error_code == 0
