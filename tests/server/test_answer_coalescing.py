"""Answers to pipelined requests leave a connection together: one write for those ready at once;
the requests themselves are taken a few per turn of the event loop."""

from __future__ import annotations

import select
import struct
import time
from typing import Any

from kafka.protocol.metadata.api_versions import ApiVersionsRequest, ApiVersionsResponse

from kafka_wire import RawClient
from ottla.testing import running_broker

PIPELINED = 20


def test_pipelined_answers_leave_in_one_write_in_order_and_a_lone_answer_at_once():
    """Requests pipelined in one send are handled a few per turn of the event loop (fairness
    without a turn each), and their answers, ready together, go out in one write rather than
    one each, in request order; a lone request's answer is written as soon as it is made,
    waiting for no company."""
    with running_broker(data_dir=None) as broker, RawClient(broker.bootstrap_servers) as client:
        client.call(ApiVersionsRequest(), 0, ApiVersionsResponse)
        (connection,) = broker.broker.connections
        transport = connection.transport
        written: list[int] = []
        write = transport.write

        def counted_write(data: bytes) -> None:
            written.append(len(data))
            write(data)

        transport.write = counted_write
        turns: list[None] = []
        next_turn = connection._next_turn

        def counted_turn() -> None:
            turns.append(None)
            next_turn()

        connection._next_turn = counted_turn
        frames = []
        for _ in range(PIPELINED):
            client.correlation_id += 1
            request = ApiVersionsRequest()
            request.with_header(correlation_id=client.correlation_id, client_id=client.client_id)
            frames.append(bytes(request.encode(version=0, header=True, framed=True)))
        client.sock.sendall(b"".join(frames))
        answered = [struct.unpack_from(">i", client.receive_frame())[0] for _ in range(PIPELINED)]
        assert answered == list(range(2, 2 + PIPELINED))
        assert 1 <= len(written) < PIPELINED / 2, f"{PIPELINED} pipelined answers took {len(written)} writes"
        assert len(turns) < PIPELINED / 4, f"{PIPELINED} pipelined requests took {len(turns) + 1} turns"

        written.clear()
        assert client.call(ApiVersionsRequest(), 0, ApiVersionsResponse).error_code == 0
        assert len(written) == 1


def test_answers_of_later_turns_of_an_iteration_leave_after_every_request_read_in_it_is_handled():
    """Three clients' requests read in one iteration of the event loop: the first turn's answer
    is written at once (a lone client waits for nothing), the later turns' only after all three
    were handled: a loopback write wakes its client at once, which would preempt the broker
    between the turns (the single-record produce benchmark's involuntary context switches)."""
    with running_broker(data_dir=None) as broker, RawClient(broker.bootstrap_servers) as first, RawClient(broker.bootstrap_servers) as second, RawClient(broker.bootstrap_servers) as third:
        clients = (first, second, third)
        for client in clients:
            client.call(ApiVersionsRequest(), 0, ApiVersionsResponse)
        assert broker.broker is not None
        connections = list(broker.broker.connections)
        assert len(connections) == len(clients)
        events: list[str] = []

        async def hold_reading() -> None:
            for connection in connections:
                write, handle_frame = connection._write_buffers, connection._handle_frame

                def logged_write(outbox: Any, write: Any = write) -> None:
                    events.append("write")
                    write(outbox)

                def logged_handle(frame: bytes, handle_frame: Any = handle_frame) -> None:
                    events.append("handle")
                    handle_frame(frame)

                connection._write_buffers = logged_write
                connection._handle_frame = logged_handle
                connection.transport.pause_reading()

        async def all_readable() -> bool:
            sockets = [connection.transport.get_extra_info("socket").fileno() for connection in connections]
            return len(select.select(sockets, [], [], 0)[0]) == len(sockets)

        async def resume_reading() -> None:
            for connection in connections:
                connection.transport.resume_reading()

        broker._call(hold_reading())
        for client in clients:
            client.send(ApiVersionsRequest(), 0)
        deadline = time.monotonic() + 30
        while not broker._call(all_readable()):
            assert time.monotonic() < deadline, "the requests never reached the broker"
            time.sleep(0.01)
        broker._call(resume_reading())
        for client in clients:
            assert struct.unpack_from(">i", client.receive_frame())[0] == client.correlation_id
        assert events == ["handle", "write", "handle", "handle", "write", "write"]
