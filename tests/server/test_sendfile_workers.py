"""A fetch answer's large file regions go by sendfile from a worker thread (server/sendfile.py,
past server/connection.py's THREAD_SENDFILE_BYTES), the event loop free meanwhile: a consumer still reads every record, in
order, byte for byte, answers pipelined behind one another leave whole and in order, and a client
gone in the middle of a region leaves no descriptor open."""

from __future__ import annotations

import os
import pathlib
import socket
import struct
import threading

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from kafka.protocol.consumer.fetch import FetchRequest
from kafka.protocol.metadata.api_versions import ApiVersionsRequest, ApiVersionsResponse

from compat.harness import wait_for
from kafka_wire import RawClient, make
from ottla.server.connection import THREAD_SENDFILE_BYTES
from ottla.server.sendfile import _send_parts
from ottla.storage.handles import FileHandles
from ottla.storage.segment import DeletedFiles, DiskFile, FileRegion
from ottla.testing import running_broker

PARTITIONS = 3
RECORDS_PER_PARTITION = 600
VALUE_BYTES = 2000  # 1.2 MB a partition: each fetch region well past THREAD_SENDFILE_BYTES
FETCH_VERSION = 11


def _value(partition: int, index: int) -> bytes:
    return f"{partition}:{index}:".encode().ljust(VALUE_BYTES, bytes([65 + index % 26]))


def _fill(bootstrap: str, topic: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1 << 20, "acks": "all"})
    for index in range(RECORDS_PER_PARTITION):
        for partition in range(PARTITIONS):
            producer.produce(topic, _value(partition, index), partition=partition)
    assert producer.flush(30) == 0


def _fetch_everything(topic: str):
    partitions = [
        dict(partition=index, fetch_offset=0, partition_max_bytes=16 << 20, current_leader_epoch=-1, log_start_offset=-1, last_fetched_epoch=-1)
        for index in range(PARTITIONS)
    ]
    return make(FetchRequest, dict(replica_id=-1, max_wait_ms=0, min_bytes=1, max_bytes=64 << 20, isolation_level=0, session_id=0,
                                   session_epoch=-1, topics=[dict(topic=topic, partitions=partitions)], forgotten_topics_data=[], rack_id=""))


def consume_everything(config: dict[str, object]) -> None:
    """A confluent-kafka consumer of `config` reads every record `_fill` wrote to "large", whole
    and in order, and the broker's sendfile workers have run (nothing else here starts them)."""
    consumer = Consumer({**config, "enable.auto.commit": False, "check.crcs": True, "fetch.max.bytes": 8 << 20,
                         "max.partition.fetch.bytes": 2 << 20})
    consumer.assign([TopicPartition("large", partition, 0) for partition in range(PARTITIONS)])
    received: dict[int, list[tuple[int, bytes]]] = {partition: [] for partition in range(PARTITIONS)}
    try:
        def all_read() -> bool:
            for message in consumer.consume(1000, 0.2):
                assert message.error() is None, message.error()
                received[message.partition()].append((message.offset(), message.value()))
            return all(len(values) == RECORDS_PER_PARTITION for values in received.values())

        assert wait_for(all_read, timeout=60), {partition: len(values) for partition, values in received.items()}
    finally:
        consumer.close()
    for partition, values in received.items():
        assert values == [(index, _value(partition, index)) for index in range(RECORDS_PER_PARTITION)]
    assert any(thread.name.startswith("ottla-sendfile") for thread in threading.enumerate())


def test_a_consumer_reads_regions_sent_by_worker_threads_whole_and_in_order(tmp_path) -> None:
    assert RECORDS_PER_PARTITION * VALUE_BYTES > 4 * THREAD_SENDFILE_BYTES
    with running_broker(data_dir=tmp_path / "data") as broker:
        broker.create_topic("large", partitions=PARTITIONS)
        _fill(broker.bootstrap_servers, "large")
        consume_everything({"bootstrap.servers": broker.bootstrap_servers, "group.id": "sendfile-workers"})


def test_large_answers_ready_together_leave_whole_and_in_request_order(tmp_path) -> None:
    """Two large fetches and an ApiVersions read in one turn: the first answer is not alone, so
    the connection's sender task sends them, each large one through the workers after what was
    written before it has left, in request order and none cut into another."""
    with running_broker(data_dir=tmp_path / "data") as broker:
        broker.create_topic("large", partitions=PARTITIONS)
        _fill(broker.bootstrap_servers, "large")
        requests = [(_fetch_everything("large"), FETCH_VERSION), (_fetch_everything("large"), FETCH_VERSION), (ApiVersionsRequest(), 0)]
        pipelined = b""
        for correlation_id, (request, version) in enumerate(requests, start=1):
            request.with_header(correlation_id=correlation_id, client_id="pipelining")
            pipelined += bytes(request.encode(version=version, header=True, framed=True))
        with RawClient(broker.bootstrap_servers) as client:
            client.sock.sendall(pipelined)
            frames = [client.receive_frame() for _ in requests]
    assert [struct.unpack_from(">i", frame)[0] for frame in frames] == [1, 2, 3]
    assert frames[0][4:] == frames[1][4:]
    assert len(frames[0]) > PARTITIONS * RECORDS_PER_PARTITION * VALUE_BYTES
    for partition in range(PARTITIONS):
        positions = [frames[0].find(_value(partition, index)) for index in range(RECORDS_PER_PARTITION)]
        assert -1 not in positions and positions == sorted(positions), partition
    assert ApiVersionsResponse.decode(frames[2], version=0, header=True).error_code == 0


def _open_sockets() -> int:
    """Socket descriptors open in this process, where the broker runs (a thread of it)."""
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{name}").startswith("socket:")
        except FileNotFoundError:
            pass  # closed meanwhile
    return count


def _fetch_whole(bootstrap: str) -> None:
    with RawClient(bootstrap) as client:
        client.send(_fetch_everything("large"), FETCH_VERSION)
        (size,) = struct.unpack(">i", client.sock.recv(4, socket.MSG_WAITALL))
        remaining = size
        while remaining:
            chunk = client.sock.recv(min(remaining, 1 << 20))
            assert chunk, f"the broker closed with {remaining} of {size} bytes unsent"
            remaining -= len(chunk)


def test_a_client_gone_in_the_middle_of_a_region_leaves_no_descriptor_open(tmp_path) -> None:
    with running_broker(data_dir=tmp_path / "data", socket_send_buffer_bytes=64 * 1024) as broker:
        broker.create_topic("large", partitions=PARTITIONS)
        # No client has connected yet: every socket past these is a client's, or the broker's side of one.
        before = _open_sockets()
        _fill(broker.bootstrap_servers, "large")
        with RawClient(broker.bootstrap_servers) as client:
            # A small window, and only the size prefix read: the answer stalls inside a region,
            # and closing with unread bytes resets the connection.
            client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            client.send(_fetch_everything("large"), FETCH_VERSION)
            (size,) = struct.unpack(">i", client.sock.recv(4, socket.MSG_WAITALL))
            assert size > PARTITIONS * RECORDS_PER_PARTITION * VALUE_BYTES
        # The broker answers the next client whole.
        _fetch_whole(broker.bootstrap_servers)
        # Every client gone, the broker holds no socket of theirs: no worker's duplicate is left.
        assert wait_for(lambda: _open_sockets() <= before, timeout=30), (before, _open_sockets())


def _region(path: pathlib.Path, position: int, length: int) -> FileRegion:
    return FileRegion(DiskFile(path, FileHandles()), position, length)


class _Running:
    """What `_send_parts` reads of the send it works for: never stopped."""

    stopped = False


def _descriptors_on(path: pathlib.Path) -> int:
    """Descriptors this process holds on `path`: counting every descriptor would see other tests'
    threads (a deletion finishing) close theirs meanwhile."""
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{name}") == str(path)
        except FileNotFoundError:
            continue
    return count


def test_a_worker_resumes_an_answer_where_a_full_socket_stopped_it(tmp_path) -> None:
    """`_send_parts` against a socket nobody reads: it stops when the socket is full and returns
    where, and the calls that follow, each after the reader has taken some, send the rest in
    order: buffers (an empty one among them), regions, and buffers between and after them. It
    holds no file open between calls."""
    data = bytes(range(256)) * 4096  # 1 MiB
    path = tmp_path / "segment.log"
    path.write_bytes(data)
    sender, receiver = socket.socketpair()
    try:
        sender.setblocking(False)
        sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024)
        parts = [b"head", b"", memoryview(b"-er-"), _region(path, 1000, 300_000), b"|", _region(path, 500_000, 400_000), b"tail"]
        expected = b"head-er-" + data[1000:301_000] + b"|" + data[500_000:900_000] + b"tail"
        received = bytearray()
        index = offset = 0
        calls = 0
        before = _descriptors_on(path)
        while index < len(parts):
            index, offset, file_ended = _send_parts(sender.fileno(), parts, index, offset, _Running())
            assert not file_ended
            assert _descriptors_on(path) == before
            calls += 1
            while True:
                try:
                    chunk = receiver.recv(1 << 20, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    break
                received += chunk
        receiver.setblocking(True)
        while len(received) < len(expected):
            received += receiver.recv(1 << 20)
        assert calls > 1
        assert bytes(received) == expected
    finally:
        sender.close()
        receiver.close()


def test_a_worker_says_when_a_region_outruns_its_file(tmp_path) -> None:
    """A file cut under a region (retention, recovery): the worker sends what there is and says
    where it ran out, for the loop to close the connection rather than send a corrupt frame."""
    path = tmp_path / "segment.log"
    path.write_bytes(b"x" * 1000)
    sender, receiver = socket.socketpair()
    try:
        assert _send_parts(sender.fileno(), [b"head", _region(path, 600, 1000), b"tail"], 0, 0, _Running()) == (1, 400, True)
        assert receiver.recv(404, socket.MSG_WAITALL) == b"head" + b"x" * 400
    finally:
        sender.close()
        receiver.close()


def _send_region_from_a_thread(region: FileRegion) -> tuple[threading.Thread, socket.socket, list]:
    sender, receiver = socket.socketpair()
    outcome: list = []

    def send() -> None:
        try:
            outcome.append(_send_parts(sender.fileno(), [region], 0, 0, _Running()))
        except OSError as error:
            outcome.append(error)
        finally:
            sender.close()

    worker = threading.Thread(target=send)
    worker.start()
    return worker, receiver, outcome


def test_a_worker_sends_the_regions_own_bytes_while_the_loop_swaps_its_file(tmp_path, monkeypatch) -> None:
    """A compaction swap renames the region's file `.deleted` and puts the compacted one under
    its name; a worker can read the old name before the loop records the new one. It must still
    send the bytes the region was cut from, not the new file's under the same length. Here the
    loop's rename ends while the worker waits to try again (its first wait)."""
    import time

    path = tmp_path / "00000000000000000000.log"
    path.write_bytes(b"o" * 100_000)
    region = _region(path, 1000, 50_000)
    deleted = path.with_name(path.name + ".deleted")
    os.rename(path, deleted)
    path.write_bytes(b"n" * 100_000)  # the swap's file, under the old name; the loop has not yet recorded the rename
    waits: list[float] = []

    def rename_ends(seconds: float) -> None:
        waits.append(seconds)
        region.file.location = (deleted, *region.file.location[1:])

    monkeypatch.setattr(time, "sleep", rename_ends)
    sender, receiver = socket.socketpair()
    try:
        assert _send_parts(sender.fileno(), [region], 0, 0, _Running()) == (1, 0, False)
        assert receiver.recv(50_000, socket.MSG_WAITALL) == b"o" * 50_000
    finally:
        sender.close()
        receiver.close()
    assert len(waits) == 1  # it did meet the new file under the old name first


def test_a_worker_follows_a_region_to_its_copy_and_gives_up_on_a_file_gone(tmp_path) -> None:
    """A log dir move switches the log to an exact copy (`copied_to`): a region cut before reads
    the copy. A region whose file was removed (file.delete.delay.ms after its deletion) raises
    rather than send another file's bytes, even one with the removed file's device and inode
    numbers (ext4 hands a freed inode number out again at once)."""
    source, destination = tmp_path / "source", tmp_path / "destination"
    source.mkdir()
    destination.mkdir()
    (source / "segment.log").write_bytes(b"c" * 10_000)
    region = _region(source / "segment.log", 0, 10_000)
    (destination / "segment.log").write_bytes(b"c" * 10_000)
    region.file.copied_to(destination)
    (source / "segment.log").unlink()
    worker, receiver, outcome = _send_region_from_a_thread(region)
    with receiver:
        assert receiver.recv(10_000, socket.MSG_WAITALL) == b"c" * 10_000
        worker.join(5)
    assert outcome == [(1, 0, False)]

    kept = tmp_path / "kept"
    os.link(destination / "segment.log", kept)
    DeletedFiles(region.file, []).remove()
    os.link(kept, destination / "segment.log")
    (destination / "segment.log").write_bytes(b"x" * 10_000)  # other bytes, under the name and inode number
    worker, receiver, outcome = _send_region_from_a_thread(region)
    with receiver:
        worker.join(5)
        assert receiver.recv(10_000) == b""
    assert len(outcome) == 1 and isinstance(outcome[0], FileNotFoundError)
    with pytest.raises(FileNotFoundError):  # nor does the loop, which opens the region's file by name
        region.read()
