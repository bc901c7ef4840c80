"""The rest of a large request frame is received by a worker thread (server/connection.py,
THREAD_RECEIVE_BYTES), the event loop's reading stopped meanwhile: over real sockets, requests
that arrive in pieces, with pauses, from clients that stop, close or reset in the middle, or
that a quota throttles, are answered whole and in order, and leave no descriptor open."""

from __future__ import annotations

import itertools
import os
import socket
import struct
import threading
import time

import pytest
from kafka.protocol.consumer.fetch import FetchRequest, FetchResponse
from kafka.protocol.metadata.api_versions import ApiVersionsRequest
from kafka.protocol.producer import ProduceRequest, ProduceResponse

from compat.harness import wait_for
from compat.sockets import read_frame
from kafka_wire import build_records, make, read_records
from ottla.server.connection import THREAD_RECEIVE_BYTES, _ReceiveJob, _receive_into
from ottla.testing import running_broker

VALUE_BYTES = 100_000
LARGE_RECORDS = 8  # a ~800 KB request, three times THREAD_RECEIVE_BYTES
PRODUCE_VERSION = 9


def _value(tag: str, index: int, size: int = VALUE_BYTES) -> bytes:
    return f"{tag}:{index}:".encode().ljust(size, bytes([65 + index % 26]))


def _encode(request, version: int, correlation_id: int) -> bytes:
    request.with_header(correlation_id=correlation_id, client_id="receive-workers")
    return bytes(request.encode(version=version, header=True, framed=True))


def _produce(topic: str, partition: int, values: list[bytes], correlation_id: int) -> bytes:
    records = build_records(2, [(None, value) for value in values])
    body = dict(transactional_id=None, acks=1, timeout_ms=10_000,
                topic_data=[dict(name=topic, partition_data=[dict(index=partition, records=records)])])
    return _encode(make(ProduceRequest, body), PRODUCE_VERSION, correlation_id)


def _large(topic: str, partition: int, tag: str, correlation_id: int) -> tuple[bytes, list[bytes]]:
    values = [_value(tag, index) for index in range(LARGE_RECORDS)]
    return _produce(topic, partition, values, correlation_id), values


def _small(topic: str, partition: int, tag: str, correlation_id: int) -> tuple[bytes, list[bytes]]:
    values = [_value(tag, 0, 100)]
    return _produce(topic, partition, values, correlation_id), values


def _connect(bootstrap: str) -> socket.socket:
    host, port = bootstrap.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=30)


def _send_in_pieces(sock: socket.socket, data: bytes, sizes: list[int], pauses: list[float]) -> None:
    """`data` in segments of the sizes given (cycled), each flushed on its own, with pauses between."""
    if sock.family != socket.AF_UNIX:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    view = memoryview(data)
    for size, pause in zip(itertools.cycle(sizes), itertools.cycle(pauses)):
        if not view:
            return
        sock.sendall(view[:size])
        view = view[size:]
        if pause:
            time.sleep(pause)


def _answers(sock: socket.socket, count: int) -> list[bytes]:
    answers = []
    for _ in range(count):
        frame = read_frame(sock)
        assert frame is not None, f"the broker closed after {len(answers)} of {count} answers"
        answers.append(frame)
    return answers


def _correlation_id(answer: bytes) -> int:
    return struct.unpack_from(">i", answer)[0]


def _produced_ok(answer: bytes) -> int:
    """The base offset of a one-partition Produce answer, which must be without error."""
    partition = ProduceResponse.decode(answer, version=PRODUCE_VERSION, header=True).responses[0].partition_responses[0]
    assert partition.error_code == 0, partition
    return partition.base_offset


def _fetch_values(bootstrap: str, topic: str, partition: int) -> list[bytes]:
    values: list[bytes] = []
    with _connect(bootstrap) as sock:
        for correlation_id in itertools.count(1):
            wanted = dict(partition=partition, fetch_offset=len(values), partition_max_bytes=16 << 20, current_leader_epoch=-1,
                          log_start_offset=-1, last_fetched_epoch=-1)
            request = make(FetchRequest, dict(replica_id=-1, max_wait_ms=0, min_bytes=1, max_bytes=64 << 20, isolation_level=0, session_id=0,
                                              session_epoch=-1, topics=[dict(topic=topic, partitions=[wanted])], forgotten_topics_data=[], rack_id=""))
            sock.sendall(_encode(request, 11, correlation_id))
            answer = FetchResponse.decode(_answers(sock, 1)[0], version=11, header=True).responses[0].partitions[0]
            assert answer.error_code == 0, answer
            records = read_records(bytes(answer.records or b""))
            if not records:
                return values
            assert [offset for offset, _, _ in records] == list(range(len(values), len(values) + len(records)))
            values.extend(value for _, _, value in records)
    return values


def _open_sockets() -> int:
    """Socket descriptors open in this process, where the broker runs (a thread of it)."""
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{name}").startswith("socket:")
        except FileNotFoundError:
            pass  # closed meanwhile
    return count


def test_large_frames_in_pieces_with_pauses_are_answered_whole_and_in_order(tmp_path) -> None:
    """Large and small requests interleaved in one stream, cut anywhere (inside size prefixes
    too) and paused for longer than a worker waits: every answer comes, in request order."""
    with running_broker(data_dir=tmp_path / "data") as broker:
        broker.create_topic("pieces")
        kinds = [_large, _small, _large, None, _large, _large, _small]
        frames, expected = [], []
        for correlation_id, kind in enumerate(kinds, 1):
            if kind is None:
                frames.append(_encode(ApiVersionsRequest(), 0, correlation_id))
                continue
            frame, values = kind("pieces", 0, f"request{correlation_id}", correlation_id)
            frames.append(frame)
            expected.extend(values)
        assert len(frames[0]) > 3 * THREAD_RECEIVE_BYTES
        with _connect(broker.bootstrap_servers) as sock:
            _send_in_pieces(sock, b"".join(frames), [150_000, 70_000, 300_000, 40_000, 3, 123_457], [0, 0.001, 0.03, 0, 0.01])
            answers = _answers(sock, len(frames))
        assert [_correlation_id(answer) for answer in answers] == list(range(1, len(frames) + 1))
        offsets = [_produced_ok(answer) for answer, kind in zip(answers, kinds) if kind is not None]
        assert offsets == sorted(offsets) and offsets[0] == 0
        assert _fetch_values(broker.bootstrap_servers, "pieces", 0) == expected


def test_clients_that_stop_in_the_middle_of_a_frame_hold_no_worker_and_finish_later(tmp_path) -> None:
    """More clients than there are workers stop inside large frames: another client's large
    request is still received and answered; then they send the rest and are answered too."""
    with running_broker(data_dir=tmp_path / "data") as broker:
        broker.create_topic("stalls", partitions=5)
        stalled = []
        for partition in range(4):
            frame, values = _large("stalls", partition, f"stalled{partition}", 1)
            sock = _connect(broker.bootstrap_servers)
            sock.sendall(frame[: 2 * THREAD_RECEIVE_BYTES])
            stalled.append((sock, frame, values))
        try:
            time.sleep(0.1)  # every stalled frame's reader waits for more, past any worker's wait
            frame, values = _large("stalls", 4, "meanwhile", 1)
            with _connect(broker.bootstrap_servers) as sock:
                _send_in_pieces(sock, frame, [200_000], [0.002])
                assert _produced_ok(_answers(sock, 1)[0]) == 0
            for sock, frame, _ in stalled:
                _send_in_pieces(sock, frame[2 * THREAD_RECEIVE_BYTES :], [64_000], [0])
            for sock, _, _ in stalled:
                assert _produced_ok(_answers(sock, 1)[0]) == 0
        finally:
            for sock, _, _ in stalled:
                sock.close()
        assert _fetch_values(broker.bootstrap_servers, "stalls", 4) == values
        for partition, (_, _, expected) in enumerate(stalled):
            assert _fetch_values(broker.bootstrap_servers, "stalls", partition) == expected


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_a_client_gone_in_the_middle_of_a_frame_leaves_no_descriptor_open(tmp_path, reset: bool) -> None:
    with running_broker(data_dir=tmp_path / "data") as broker:
        broker.create_topic("gone")
        # No client has connected yet: every socket past these is a client's, or the broker's side of one.
        before = _open_sockets()
        for attempt in range(3):
            frame, _ = _large("gone", 0, f"gone{attempt}", 1)
            sock = _connect(broker.bootstrap_servers)
            _send_in_pieces(sock, frame[: len(frame) - 1000], [150_000], [0.002])
            if reset:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        # The broker still serves, and nothing of the clients gone was appended.
        frame, values = _large("gone", 0, "after", 1)
        with _connect(broker.bootstrap_servers) as sock:
            _send_in_pieces(sock, frame, [150_000], [0])
            assert _produced_ok(_answers(sock, 1)[0]) == 0
        assert _fetch_values(broker.bootstrap_servers, "gone", 0) == values
        assert wait_for(lambda: _open_sockets() <= before, timeout=30), (before, _open_sockets())


def test_several_connections_at_once_each_get_their_answers_in_order(tmp_path) -> None:
    connections = 4
    with running_broker(data_dir=tmp_path / "data") as broker:
        broker.create_topic("several", partitions=connections)
        failures: list[BaseException] = []

        def client(partition: int) -> None:
            try:
                frames, expected = [], []
                for correlation_id, kind in enumerate([_large, _small, _large, _small, _large], 1):
                    frame, values = kind("several", partition, f"c{partition}r{correlation_id}", correlation_id)
                    frames.append(frame)
                    expected.extend(values)
                with _connect(broker.bootstrap_servers) as sock:
                    _send_in_pieces(sock, b"".join(frames), [100_000 + 7_000 * partition, 33_000], [0, 0.001 * partition])
                    answers = _answers(sock, len(frames))
                assert [_correlation_id(answer) for answer in answers] == list(range(1, len(frames) + 1))
                offsets = [_produced_ok(answer) for answer in answers]
                assert offsets == sorted(offsets) and offsets[0] == 0
                assert _fetch_values(broker.bootstrap_servers, "several", partition) == expected
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=client, args=(partition,)) for partition in range(connections)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not failures, failures


def test_a_throttled_client_is_answered_in_order(tmp_path) -> None:
    """A throttle on the first of several large requests sent together mutes the connection
    (no worker reads for it meanwhile); the rest are then received and answered in order."""
    with running_broker(data_dir=tmp_path / "data") as broker:
        broker.create_topic("throttled")
        fault = broker.faults.add(api="produce", topic="throttled", throttle_ms=300, count=1)
        frames, expected = [], []
        for correlation_id in range(1, 4):
            frame, values = _large("throttled", 0, f"throttled{correlation_id}", correlation_id)
            frames.append(frame)
            expected.extend(values)
        with _connect(broker.bootstrap_servers) as sock:
            sender = threading.Thread(target=sock.sendall, args=(b"".join(frames),))
            sender.start()
            answers = _answers(sock, len(frames))
            sender.join(30)
        assert fault.fired == 1
        assert [_correlation_id(answer) for answer in answers] == [1, 2, 3]
        for answer in answers:
            _produced_ok(answer)
        assert _fetch_values(broker.bootstrap_servers, "throttled", 0) == expected


def test_a_frame_past_the_limit_closes_the_connection_before_its_bytes_are_read() -> None:
    with running_broker(data_dir=None, socket_request_max_bytes=2 * THREAD_RECEIVE_BYTES) as broker:
        with _connect(broker.bootstrap_servers) as sock:
            sock.sendall(struct.pack(">i", 4 * THREAD_RECEIVE_BYTES) + b"\x00" * 100_000)
            assert read_frame(sock) is None


def test_a_worker_fills_the_room_it_is_lent_across_writes() -> None:
    """`_receive_into` against a socket written in pieces by another thread: called again after
    each return (as the loop does after the next read), it fills the room, every byte in place,
    and never reads past it."""
    data = bytes(range(256)) * 2048  # 512 KiB
    reader, writer = socket.socketpair()
    try:
        reader.setblocking(False)
        room = bytearray(len(data))
        job = _ReceiveJob(None, None, reader.fileno(), memoryview(room))  # type: ignore[arg-type]
        sender = threading.Thread(target=_send_in_pieces, args=(writer, data + b"next", [70_000, 1, 200_000], [0.001]))
        sender.start()
        received = 0
        while received < len(data):
            count, ended = _receive_into(job)
            assert not ended
            received += count
            job.room = memoryview(room)[received:]
        sender.join(30)
        assert room == data
        assert reader.recv(10) == b"next"
    finally:
        reader.close()
        writer.close()


def test_a_worker_hands_back_an_idle_socket_a_stopped_job_and_an_end_of_file() -> None:
    reader, writer = socket.socketpair()
    try:
        reader.setblocking(False)
        room = bytearray(1000)
        job = _ReceiveJob(None, None, reader.fileno(), memoryview(room))  # type: ignore[arg-type]
        writer.sendall(b"abc")
        assert _receive_into(job) == (3, False)  # then nothing came for a while
        job.stopped = True
        writer.sendall(b"def")
        assert _receive_into(job) == (0, False)
        writer.close()
        job.stopped = False
        job.room = memoryview(room)[3:]
        assert _receive_into(job) == (3, True)
        assert room[:6] == b"abcdef"
    finally:
        reader.close()
        writer.close()
