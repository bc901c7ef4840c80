"""The broker on uvloop (`ottla serve --event-loop uvloop`): it serves, and log data still
leaves by sendfile, zero-copy, although uvloop's transports have no loop.sendfile."""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.protocol.consumer.fetch import FetchRequest, FetchResponse
from kafka.protocol.admin import DescribeConfigsRequest

from kafka_wire import RawClient, make, read_records
from compat.harness import wait_for
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from unavailable import unavailable


@pytest.fixture(autouse=True)
def _uvloop() -> None:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        unavailable("uvloop is not installed: python3 -m pip install -e '.[test]'")


# DescribeConfigs of the broker with documentation: about 70 KB an answer, 7 MB in all.
_BETWEEN = 100


def _answered(broker: ThreadedBroker, api: ApiKey) -> int:
    """How many `api` requests the broker has answered (its own counter, read across threads)."""
    assert broker.broker is not None
    stats = broker.broker.metrics.apis[api]
    return 0 if stats is None else stats.requests


def _fetch_everything(topic: str) -> FetchRequest:
    partition = dict(partition=0, fetch_offset=0, partition_max_bytes=16 << 20, current_leader_epoch=-1, log_start_offset=-1, last_fetched_epoch=-1)
    return make(FetchRequest, dict(replica_id=-1, max_wait_ms=0, min_bytes=1, max_bytes=16 << 20, isolation_level=0, session_id=0, session_epoch=-1,
                                   topics=[dict(topic=topic, partitions=[partition])], forgotten_topics_data=[], rack_id=""))


def test_uvloop_broker_sends_log_data_by_sendfile_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Values of several MiB fill the socket's buffer, so the broker waits for the client to
    read between sendfile calls, and a fetch of three partitions writes bytes between their
    regions, which the next region must wait behind; every value arrives, each partition in
    order, and every byte of them went through os.sendfile."""
    sent_by_sendfile = 0
    real_sendfile = os.sendfile
    lock = threading.Lock()

    def counting_sendfile(out_fd: int, in_fd: int, offset: int | None, count: int) -> int:
        nonlocal sent_by_sendfile
        sent = real_sendfile(out_fd, in_fd, offset, count)
        with lock:
            sent_by_sendfile += sent
        return sent

    monkeypatch.setattr(os, "sendfile", counting_sendfile)
    values = [bytes([n]) * (3 << 20 if n % 4 == 0 else 50_000) for n in range(24)]
    with running_broker(event_loop="uvloop", data_dir=tmp_path / "data", message_max_bytes=4 << 20) as broker:
        broker.create_topic("zero-copy", partitions=3)
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks="all", max_request_size=4 << 20)
        for n, value in enumerate(values):
            producer.send("zero-copy", value, partition=n % 3)
        producer.close()
        consumer = KafkaConsumer(
            "zero-copy", bootstrap_servers=broker.bootstrap_servers, auto_offset_reset="earliest",
            max_partition_fetch_bytes=16 << 20, fetch_max_bytes=16 << 20, consumer_timeout_ms=20_000,
        )
        received: list[list[bytes]] = [[], [], []]
        for message in consumer:
            received[message.partition].append(message.value)
            if sum(map(len, received)) == len(values):
                break
        consumer.close()
        # Megabytes of answers pipelined behind a fetch the client has not read yet: more than
        # the socket holds, so they wait in the transport when the fetch is sent, and the next
        # fetch's sendfile must wait until the transport has written them.
        between = make(DescribeConfigsRequest, dict(resources=[dict(resource_type=4, resource_name="1", configuration_keys=None)],
                                                    include_synonyms=True, include_documentation=True))
        with RawClient(broker.bootstrap_servers) as client:
            client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)  # loopback's would hold it all
            fetches = _answered(broker, ApiKey.FETCH)
            client.send(_fetch_everything("zero-copy"), 11)
            for _ in range(_BETWEEN):
                client.send(between, 4)
            client.send(_fetch_everything("zero-copy"), 11)
            # Every answer is ready while the first fetch still waits for the client to read.
            assert wait_for(lambda: _answered(broker, ApiKey.FETCH) == fetches + 2, timeout=30)
            answers = [client.receive_frame() for _ in range(_BETWEEN + 2)]
            last_id = client.correlation_id
    assert [struct.unpack_from(">i", answer)[0] for answer in answers] == list(range(last_id - _BETWEEN - 1, last_id + 1))
    assert sum(map(len, answers[1:-1])) > 4 << 20
    for answer in (answers[0], answers[-1]):
        fetched = FetchResponse.decode(answer, version=11, header=True)
        assert [value for _, _, value in read_records(bytes(fetched.responses[0].partitions[0].records))] == values[0::3]
    expected = [values[partition::3] for partition in range(3)]
    assert [[(value[:1], len(value)) for value in got] for got in received] == [[(value[:1], len(value)) for value in want] for want in expected]
    assert received == expected, "the values' bytes differ"
    assert sent_by_sendfile >= sum(len(value) for value in values)


def test_cli_serves_on_uvloop_when_asked_and_refuses_tls_listeners_there() -> None:
    """uvloop reads a new connection before the TLS acceptor's start_tls can take it over, so
    a TLS listener on it would stall every handshake: the broker refuses to start instead."""
    refused = subprocess.run(
        [sys.executable, "-m", "ottla", "serve", "--memory", "--event-loop", "uvloop", "--set", "listeners=SSL://127.0.0.1:0"],
        capture_output=True, text=True, timeout=60,
    )
    assert refused.returncode == 2
    assert "TLS listeners (SSL, SASL_SSL) need asyncio's event loop" in refused.stderr
    process = subprocess.Popen(
        [sys.executable, "-m", "ottla", "serve", "--port", "0", "--memory", "--event-loop", "uvloop"], stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stderr is not None
        assert "ottla ready" in process.stderr.readline()
        maps = Path(f"/proc/{process.pid}/maps").read_text()
        assert "uvloop" in maps, "the broker did not load uvloop"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
