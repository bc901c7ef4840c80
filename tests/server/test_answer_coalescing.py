"""Answers to pipelined requests leave a connection together: one write for those ready at once;
the requests themselves are taken a few per turn of the event loop."""

from __future__ import annotations

import struct

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
