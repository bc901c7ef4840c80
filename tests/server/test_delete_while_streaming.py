"""A fetch answer being streamed from segment files is sent whole when the topic is deleted
meanwhile: Kafka renames deleted files and removes them file.delete.delay.ms later, and the
answer's file regions follow their files to the new names (storage/segment.py FileRegion).
The broker's log maintenance removes them once the delay has passed."""

from __future__ import annotations

import socket
import struct

from kafka import KafkaAdminClient, KafkaProducer
from kafka.protocol.consumer.fetch import FetchRequest, FetchResponse
from kafka.protocol.metadata.api_versions import ApiVersionsRequest, ApiVersionsResponse

from compat.harness import wait_for
from kafka_wire import RawClient, make, read_records
from ottla.testing import running_broker

PARTITIONS = 4
VALUES_PER_PARTITION = 20
VALUE_BYTES = 100_000  # 2 MB a partition, 8 MB in all: far more than the sockets buffer
SOCKET_BUFFER_BYTES = 64 * 1024
FETCH_VERSION = 11


def _fetch_everything(topic: str):
    partitions = [
        dict(partition=index, fetch_offset=0, partition_max_bytes=16 << 20, current_leader_epoch=-1, log_start_offset=-1, last_fetched_epoch=-1)
        for index in range(PARTITIONS)
    ]
    return make(FetchRequest, dict(replica_id=-1, max_wait_ms=0, min_bytes=1, max_bytes=64 << 20, isolation_level=0, session_id=0,
                                   session_epoch=-1, topics=[dict(topic=topic, partitions=partitions)], forgotten_topics_data=[], rack_id=""))


def _receive_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError(f"broker closed the connection after {len(data)} of {size} bytes")
        data += chunk
    return bytes(data)


def test_deleting_a_topic_does_not_cut_a_fetch_answer_being_sent(tmp_path):
    values = {p: [bytes([p, n]) * (VALUE_BYTES // 2) for n in range(VALUES_PER_PARTITION)] for p in range(PARTITIONS)}
    with running_broker(data_dir=tmp_path / "data", socket_send_buffer_bytes=SOCKET_BUFFER_BYTES) as broker:
        broker.create_topic("doomed", partitions=PARTITIONS)
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks="all", max_request_size=4 << 20)
        for partition, partition_values in values.items():
            for value in partition_values:
                producer.send("doomed", value, partition=partition)
        producer.close()

        with RawClient(broker.bootstrap_servers) as client:
            # A small receive window, and nothing read past the size prefix: the broker's
            # sendfile of partition 0 waits on the socket while the other regions wait their turn.
            client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER_BYTES)
            client.send(_fetch_everything("doomed"), FETCH_VERSION)
            (size,) = struct.unpack(">i", _receive_exactly(client.sock, 4))
            assert size > PARTITIONS * VALUES_PER_PARTITION * VALUE_BYTES

            admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
            admin.delete_topics(["doomed"])
            admin.close()

            frame = _receive_exactly(client.sock, size)
            response = FetchResponse.decode(frame, version=FETCH_VERSION, header=True)
            [topic] = response.responses
            fetched = {p.partition_index: [value for _, _, value in read_records(bytes(p.records))] for p in topic.partitions}
            assert fetched == values

            # The connection carries on.
            versions = client.call(make(ApiVersionsRequest, dict(client_software_name="t", client_software_version="1")), 3, ApiVersionsResponse)
            assert versions.error_code == 0


def test_the_broker_removes_a_deleted_topics_files_once_the_delay_has_passed(tmp_path):
    data = tmp_path / "data"
    with running_broker(data_dir=data, log_segment_delete_delay_ms=0) as broker:
        broker.create_topic("brief", partitions=2)
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks="all")
        producer.send("brief", b"soon gone", partition=1)
        producer.close()
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        admin.delete_topics(["brief"])
        admin.close()
        assert wait_for(lambda: not any(data.glob("brief*"))), sorted(path.name for path in data.iterdir())
