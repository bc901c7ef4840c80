"""Connection behaviour over real sockets: long polling, ordering, limits, restarts, the CLI."""

from __future__ import annotations

import asyncio
import resource
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

from kafka import KafkaConsumer, KafkaProducer
from kafka.protocol.consumer.fetch import FetchRequest, FetchResponse
from kafka.protocol.metadata.api_versions import ApiVersionsRequest, ApiVersionsResponse
from kafka.protocol.producer import ProduceRequest, ProduceResponse

from kafka_wire import RawClient, build_records, make, read_records
from ottla.testing import running_broker


def _fetch_request(topic: str, offset: int, max_wait_ms: int, min_bytes: int = 1):
    partition = dict(partition=0, fetch_offset=offset, partition_max_bytes=1 << 20, current_leader_epoch=-1, log_start_offset=-1, last_fetched_epoch=-1)
    return make(FetchRequest, dict(replica_id=-1, max_wait_ms=max_wait_ms, min_bytes=min_bytes, max_bytes=1 << 20, isolation_level=0, session_id=0, session_epoch=-1, topics=[dict(topic=topic, partitions=[partition])], forgotten_topics_data=[], rack_id=""))


def _produce_request(topic: str, pairs):
    return make(ProduceRequest, dict(transactional_id=None, acks=1, timeout_ms=5000, topic_data=[dict(name=topic, partition_data=[dict(index=0, records=build_records(2, pairs))])]))


def test_parked_fetch_wakes_on_produce_and_responses_keep_request_order(ottla_broker):
    ottla_broker.create_topic("longpoll")
    with RawClient(ottla_broker.bootstrap_servers) as consumer, RawClient(ottla_broker.bootstrap_servers) as producer:
        consumer.send(_fetch_request("longpoll", 0, max_wait_ms=30_000), 11)
        fetch_id = consumer.correlation_id
        consumer.send(ApiVersionsRequest(), 0)  # pipelined behind the parked fetch
        time.sleep(0.2)
        started = time.monotonic()
        producer.call(_produce_request("longpoll", [(b"k", b"v")]), 9, ProduceResponse)
        first = consumer.receive_frame()
        woke_after = time.monotonic() - started
        second = consumer.receive_frame()
    assert struct.unpack_from(">i", first)[0] == fetch_id  # the fetch answers first, in order
    assert struct.unpack_from(">i", second)[0] == fetch_id + 1
    fetched = FetchResponse.decode(first, version=11, header=True)
    assert read_records(bytes(fetched.responses[0].partitions[0].records)) == [(0, b"k", b"v")]
    assert woke_after < 10  # woken by the append, not by the 30 s timeout


def test_fetch_waits_max_wait_when_nothing_arrives(ottla_broker):
    ottla_broker.create_topic("quiet")
    with RawClient(ottla_broker.bootstrap_servers) as consumer:
        started = time.monotonic()
        response = consumer.call(_fetch_request("quiet", 0, max_wait_ms=300), 11, FetchResponse)
        waited = time.monotonic() - started
    assert response.responses[0].partitions[0].error_code == 0
    assert bytes(response.responses[0].partitions[0].records or b"") == b""
    assert waited >= 0.25


def test_fetch_past_the_end_is_out_of_range(ottla_broker):
    ottla_broker.create_topic("range")
    with RawClient(ottla_broker.bootstrap_servers) as consumer:
        response = consumer.call(_fetch_request("range", 5, max_wait_ms=0), 11, FetchResponse)
    assert response.responses[0].partitions[0].error_code == 1  # OFFSET_OUT_OF_RANGE


def test_oversized_frame_closes_only_that_connection():
    with running_broker(data_dir=None, socket_request_max_bytes=1024) as broker:
        host, port = broker.bootstrap_servers.rsplit(":", 1)
        with RawClient(broker.bootstrap_servers) as bystander, socket.create_connection((host, int(port))) as rogue:
            rogue.sendall(struct.pack(">i", 1_000_000) + b"\x00" * 100)
            rogue.settimeout(5)
            assert rogue.recv(10) == b""
            assert bystander.call(ApiVersionsRequest(), 0, ApiVersionsResponse).error_code == 0


def test_garbage_after_a_valid_header_closes_the_connection(ottla_broker):
    host, port = ottla_broker.bootstrap_servers.rsplit(":", 1)
    with socket.create_connection((host, int(port))) as rogue:
        body = struct.pack(">hhih", 0, 9, 7, -1) + b"\xff" * 20  # Produce v9 with nonsense
        rogue.sendall(struct.pack(">i", len(body)) + body)
        rogue.settimeout(5)
        assert rogue.recv(10) == b""
    with RawClient(ottla_broker.bootstrap_servers) as client:
        assert client.call(ApiVersionsRequest(), 0, ApiVersionsResponse).error_code == 0


def test_many_pipelined_requests_answer_in_order(ottla_broker):
    with RawClient(ottla_broker.bootstrap_servers) as client:
        for _ in range(500):
            client.send(ApiVersionsRequest(), 0)
        ids = [struct.unpack_from(">i", client.receive_frame())[0] for _ in range(500)]
    assert ids == list(range(1, 501))


def test_restart_keeps_topics_and_records(tmp_path):
    with running_broker(data_dir=tmp_path / "data") as broker:
        broker.create_topic("kept", partitions=2)
        with RawClient(broker.bootstrap_servers) as client:
            client.call(_produce_request("kept", [(b"a", b"1"), (b"b", b"2")]), 9, ProduceResponse)
        broker.restart()
        with RawClient(broker.bootstrap_servers) as client:
            response = client.call(_fetch_request("kept", 0, max_wait_ms=0), 11, FetchResponse)
    partition = response.responses[0].partitions[0]
    assert partition.high_watermark == 2
    assert read_records(bytes(partition.records)) == [(0, b"a", b"1"), (1, b"b", b"2")]


def test_log_data_is_written_in_chunks_where_sendfile_is_unavailable(tmp_path, monkeypatch):
    """Where os.sendfile cannot be used (asyncio raises SendfileNotAvailableError, as it
    also does when the client has gone), the broker copies file regions itself: a real
    consumer still reads every record, megabytes of them, in order."""
    async def no_sendfile(*args, **kwargs):
        raise asyncio.SendfileNotAvailableError("os.sendfile is not available")

    monkeypatch.setattr(asyncio.BaseEventLoop, "sendfile", no_sendfile)
    values = [bytes([n]) * 100_000 for n in range(40)]
    with running_broker(data_dir=tmp_path / "data") as broker:
        broker.create_topic("copied")
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks="all")
        for value in values:
            producer.send("copied", value)
        producer.close()
        consumer = KafkaConsumer("copied", bootstrap_servers=broker.bootstrap_servers, auto_offset_reset="earliest",
                                 max_partition_fetch_bytes=8 << 20, consumer_timeout_ms=10_000)
        received = []
        for message in consumer:
            received.append(message.value)
            if len(received) == len(values):
                break
        consumer.close()
    assert received == values




def test_a_few_records_are_answered_in_one_write_and_more_by_sendfile(tmp_path, monkeypatch):
    """A parked fetch woken by a record or two gets its answer written whole, read out of the
    log file (sendfile's extra turns of the loop were most of a record's wait for a
    long-polling consumer); tens of KiB of log data and more still go by sendfile. Both
    answers carry the records as written."""
    sendfile_counts: list[int] = []
    real_sendfile = asyncio.BaseEventLoop.sendfile

    async def counting_sendfile(self, transport, file, offset=0, count=None, *, fallback=True):
        sendfile_counts.append(count)
        return await real_sendfile(self, transport, file, offset, count, fallback=fallback)

    monkeypatch.setattr(asyncio.BaseEventLoop, "sendfile", counting_sendfile)
    small, large = b"v" * 100, b"w" * 100_000
    with running_broker(data_dir=tmp_path / "data") as broker:
        broker.create_topic("sized")
        with RawClient(broker.bootstrap_servers) as consumer, RawClient(broker.bootstrap_servers) as producer:
            consumer.send(_fetch_request("sized", 0, max_wait_ms=30_000), 11)
            producer.call(_produce_request("sized", [(b"small", small)]), 9, ProduceResponse)
            woken = FetchResponse.decode(consumer.receive_frame(), version=11, header=True)
            copied = list(sendfile_counts)
            producer.call(_produce_request("sized", [(b"large", large)]), 9, ProduceResponse)
            both = consumer.call(_fetch_request("sized", 0, max_wait_ms=0), 11, FetchResponse)
    assert read_records(bytes(woken.responses[0].partitions[0].records)) == [(0, b"small", small)]
    assert copied == []
    assert read_records(bytes(both.responses[0].partitions[0].records)) == [(0, b"small", small), (1, b"large", large)]
    assert len(sendfile_counts) == 1


def test_a_fault_while_sending_log_data_closes_only_that_connection(tmp_path, monkeypatch, caplog):
    """An unexpected error while a fetch answer streams from a file is a fault of ours: that
    connection closes with the traceback logged at ERROR, instead of hanging half-answered,
    and another client goes on being served."""
    async def broken_sendfile(*args, **kwargs):
        raise ValueError("a fault of ours")

    monkeypatch.setattr(asyncio.BaseEventLoop, "sendfile", broken_sendfile)
    with running_broker(data_dir=tmp_path / "data") as broker:
        broker.create_topic("streamed")
        with RawClient(broker.bootstrap_servers) as client:
            # Past what a fetch answer copies out of the file: only larger log data goes by sendfile.
            client.call(_produce_request("streamed", [(b"k", b"v" * 100_000)]), 9, ProduceResponse)
        with RawClient(broker.bootstrap_servers) as doomed, RawClient(broker.bootstrap_servers) as other:
            doomed.sock.settimeout(30)
            doomed.send(_fetch_request("streamed", 0, max_wait_ms=0), 11)
            try:
                doomed.receive_frame()
                outcome = "answered"
            except TimeoutError:
                outcome = "left hanging"
            except (ConnectionError, OSError):
                outcome = "closed"
            assert outcome == "closed"
            versions = other.call(make(ApiVersionsRequest[0], {}), 0, ApiVersionsResponse[0])
    assert versions.error_code == 0
    assert any(r.levelname == "ERROR" and "could not be sent" in r.getMessage() for r in caplog.records)


def _start_cli(*args: str, cwd: str | None = None, preexec_fn=None) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "ottla", "serve", "--port", "0", *args]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, cwd=cwd, preexec_fn=preexec_fn)
    line = process.stderr.readline()
    threading.Thread(target=process.stderr.read, daemon=True).start()
    return process, line


def test_cli_prints_ready_line_and_stops_cleanly_on_sigterm(tmp_path):
    data = tmp_path / "cli-data"
    process, line = _start_cli("--data-dir", str(data))
    try:
        assert line.startswith("ottla ready bootstrap=127.0.0.1:") and line.rstrip().endswith(f"data={data}")
        bootstrap = line.split()[2].split("=", 1)[1]
        with RawClient(bootstrap) as client:
            assert client.call(ApiVersionsRequest(), 0, ApiVersionsResponse).error_code == 0
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_cli_memory_mode_writes_no_files(tmp_path):
    process, line = _start_cli("--memory", cwd=str(tmp_path))
    try:
        assert line.rstrip().endswith("data=memory")
        bootstrap = line.split()[2].split("=", 1)[1]
        with RawClient(bootstrap) as client:
            client.call(_produce_request("anything", [(b"k", b"v")]), 9, ProduceResponse)
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    assert list(tmp_path.iterdir()) == []


def test_cli_lifts_a_low_open_file_limit_to_hold_many_connections():
    """Started under a soft limit of 256 descriptors, `ottla serve` still holds 600 clients
    (it raises the soft limit to the hard one, as the JVM does for Kafka)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard >= 1400, f"the hard file descriptor limit ({hard}) cannot hold this test's connections"
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1400), hard))
    process, line = _start_cli("--memory", preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard)))
    clients: list[RawClient] = []
    try:
        bootstrap = line.split()[2].split("=", 1)[1]
        for _ in range(600):
            clients.append(RawClient(bootstrap))
        for client in clients:
            assert client.call(ApiVersionsRequest(), 0, ApiVersionsResponse).error_code == 0
    finally:
        for client in clients:
            client.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
