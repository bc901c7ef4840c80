"""A connection stops reading while the requests it is still handling add up to a bound.

librdkafka pipelines produce requests without limit (max.in.flight defaults to a million); a
broker whose appends wait (a PostgreSQL commit, here a delaying fault) would otherwise read and
hold every one of them up to MAX_IN_FLIGHT.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

from ottla.server.connection import MAX_WORKING_BYTES, Connection
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.protocol import encode_request
from ottla.wire.records import Record, build_batch

PRODUCE, PRODUCE_VERSION = 0, 9
RECORD_BYTES = 1 << 20
# Far more than the bound and far fewer than MAX_IN_FLIGHT, which would stop reading too.
REQUESTS = 3 * MAX_WORKING_BYTES // RECORD_BYTES


def _produce_frame(topic: str, correlation_id: int) -> bytes:
    batch = build_batch([Record(0, int(time.time() * 1000), None, bytes(RECORD_BYTES))])
    body = {"transactional_id": None, "acks": 1, "timeout_ms": 30_000, "topic_data": [{"name": topic, "partition_data": [{"index": 0, "records": batch}]}]}
    return encode_request(PRODUCE, PRODUCE_VERSION, correlation_id, body)


def _connection_state(broker: ThreadedBroker) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        assert broker.broker is not None
        connections: list[Connection] = list(broker.broker.connections)
        return [
            {"paused": connection._reading_paused, "working": connection._working_bytes, "pending": len(connection.pending)}
            for connection in connections
        ]

    return broker._call(read())


def test_requests_being_handled_stop_reading_at_the_bound() -> None:
    with running_broker(data_dir=None, message_max_bytes=2 * RECORD_BYTES) as broker:
        broker.create_topic("held", max_message_bytes=2 * RECORD_BYTES)
        # Every produce waits (as for a slow commit) while the client keeps sending more.
        broker.faults.add("Produce", delay_ms=600_000)
        host, port = broker.bootstrap_servers.split(":")
        frames = [_produce_frame("held", i) for i in range(REQUESTS)]
        with socket.create_connection((host, int(port))) as client:
            sender = threading.Thread(target=lambda: _send_all(client, frames), daemon=True)
            sender.start()
            deadline = time.monotonic() + 60
            while not any(state["paused"] and state["working"] >= MAX_WORKING_BYTES for state in _connection_state(broker)):
                assert time.monotonic() < deadline, f"reading never stopped: {_connection_state(broker)}"
                time.sleep(0.05)
            (state,) = [state for state in _connection_state(broker) if state["working"]]
            # Stopped within one request past the bound, with the rest left in the socket.
            assert state["working"] < MAX_WORKING_BYTES + len(frames[0])
            assert state["pending"] < REQUESTS
            client.shutdown(socket.SHUT_RDWR)
        sender.join(30)


def _send_all(client: socket.socket, frames: list[bytes]) -> None:
    try:
        for frame in frames:
            client.sendall(frame)
    except OSError:
        pass  # the test closed the socket once it had seen what it wanted
