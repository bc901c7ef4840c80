"""A ShareFetch parked for records ends when its share session does.

A share consumer closing with a ShareFetch in flight (librdkafka's close waits for it before it
sends its final ShareAcknowledge) ends the session meanwhile: a ShareAcknowledge or ShareFetch
with epoch -1, or a new session opened with epoch 0. The parked fetch is then answered at once,
empty, rather than when its max wait runs out; a request pipelined behind it on the same
connection is answered with it, in order. Its ShareGroupHeartbeat leave on the coordinator's
connection does not end the session, as on Kafka 4.4 (the leave reaches the group coordinator
alone): its final acknowledgements, sent beside the leave, must still count.

Requests by hand in Ottla's codec over a real socket: which request is in flight when is the
point, and no stock client lets a test choose that. The fetches wait up to two minutes, and
each answer is waited for with a deadline far shorter, so a parked fetch that outlives its
session fails the test instead of passing late.
"""

from __future__ import annotations

import base64
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from compat.harness import wait_for
from compat.sockets import read_frame
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.protocol import decode_response, encode_request

TOPIC = "parked"
GROUP = "parked-workers"
MAX_WAIT_MS = 120_000
# How long an answer due at once may take on a loaded CI machine: far below MAX_WAIT_MS.
ANSWER_DEADLINE_S = 30


class _Connection:
    """One client connection: requests sent as they come, answers read in order."""

    def __init__(self, bootstrap: str) -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=ANSWER_DEADLINE_S)
        self.correlation = 0
        self.sent: list[tuple[int, ApiKey, int]] = []

    def send(self, api: ApiKey, version: int, body: dict[str, Any]) -> int:
        return self.send_together([(api, version, body)])[0]

    def send_together(self, requests: list[tuple[ApiKey, int, dict[str, Any]]]) -> list[int]:
        """Send `requests` in one write, so that the broker takes them from one read, in one turn."""
        frames, correlations = [], []
        for api, version, body in requests:
            self.correlation += 1
            frames.append(encode_request(api, version, self.correlation, body, client_id="share-session-end"))
            self.sent.append((self.correlation, api, version))
            correlations.append(self.correlation)
        self.sock.sendall(b"".join(frames))
        return correlations

    def answer(self) -> tuple[int, dict[str, Any]]:
        """The next answer, as (correlation id, body); the oldest request sent is answered first."""
        _, api, version = self.sent.pop(0)
        frame = read_frame(self.sock)
        assert frame is not None, f"{api.name}: the broker closed the connection"
        return decode_response(api, version, frame)

    def call(self, api: ApiKey, version: int, body: dict[str, Any]) -> dict[str, Any]:
        self.send(api, version, body)
        return self.answer()[1]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=None) as running:
        running.create_topic(TOPIC, partitions=1)
        yield running


@pytest.fixture
def connections(broker: ThreadedBroker) -> Iterator[list[_Connection]]:
    opened = [_Connection(broker.bootstrap_servers) for _ in range(2)]
    yield opened
    for connection in opened:
        connection.close()


def _member_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def _topic_id(connection: _Connection) -> bytes:
    metadata = connection.call(ApiKey.METADATA, 12, {"topics": [{"topic_id": bytes(16), "name": TOPIC}],
                                                     "allow_auto_topic_creation": False,
                                                     "include_topic_authorized_operations": False})
    return bytes(metadata["topics"][0]["topic_id"])


def _fetch_request(member: str, topic_id: bytes, epoch: int, max_wait_ms: int = MAX_WAIT_MS) -> tuple[ApiKey, int, dict[str, Any]]:
    """A ShareFetch that waits up to `max_wait_ms` for records of the empty topic."""
    return ApiKey.SHARE_FETCH, 1, {
        "group_id": GROUP, "member_id": member, "share_session_epoch": epoch, "max_wait_ms": max_wait_ms, "min_bytes": 1,
        "max_bytes": 1 << 20, "max_records": 500, "batch_size": 500,
        "topics": [{"topic_id": topic_id, "partitions": [{"partition_index": 0, "acknowledgement_batches": []}]}],
        "forgotten_topics_data": []}


def _fetch(connection: _Connection, member: str, topic_id: bytes, epoch: int) -> int:
    return connection.send(*_fetch_request(member, topic_id, epoch))


def _final_acknowledge_request(member: str) -> tuple[ApiKey, int, dict[str, Any]]:
    return ApiKey.SHARE_ACKNOWLEDGE, 1, {"group_id": GROUP, "member_id": member, "share_session_epoch": -1, "topics": []}


def _final_acknowledge(connection: _Connection, member: str) -> int:
    return connection.send(*_final_acknowledge_request(member))


def _heartbeat(connection: _Connection, member: str, epoch: int) -> dict[str, Any]:
    return connection.call(ApiKey.SHARE_GROUP_HEARTBEAT, 1, {
        "group_id": GROUP, "member_id": member, "member_epoch": epoch, "rack_id": None,
        "subscribed_topic_names": [TOPIC] if epoch == 0 else None})


def _acquired(answer: dict[str, Any]) -> list[Any]:
    return [r for t in answer["responses"] for p in t["partitions"] for r in p["acquired_records"]]


def _until_parked(broker: ThreadedBroker, member: str) -> None:
    """Until the member's opening ShareFetch has been handled: with no records to give, it parks."""
    def opened() -> bool:
        share = broker.broker.share if broker.broker is not None else None
        return share is not None and bool(share.sessions.of_member(GROUP, member))

    assert wait_for(opened, timeout=ANSWER_DEADLINE_S), "the ShareFetch opened no share session"


def _ends_empty(connection: _Connection, fetch: int) -> None:
    """The parked fetch `fetch` is answered (within the deadline), without error or records."""
    correlation, answer = connection.answer()
    assert correlation == fetch
    assert (answer["error_code"], _acquired(answer)) == (0, [])


def test_a_final_acknowledge_behind_a_parked_fetch_ends_it_and_both_are_answered_in_order(broker, connections):
    fetching, _ = connections
    member, topic_id = _member_id(), _topic_id(fetching)
    opened = fetching.call(*_fetch_request(member, topic_id, 0, max_wait_ms=0))
    assert (opened["error_code"], _acquired(opened)) == (0, [])
    # Taken in one turn: the session ends before the parked fetch's task has first run.
    fetch, leave = fetching.send_together([_fetch_request(member, topic_id, 1), _final_acknowledge_request(member)])
    _ends_empty(fetching, fetch)
    correlation, answer = fetching.answer()
    assert (correlation, answer["error_code"]) == (leave, 0)


def test_a_final_epoch_share_fetch_on_another_connection_ends_a_parked_fetch(broker, connections):
    fetching, closing = connections
    member, topic_id = _member_id(), _topic_id(fetching)
    fetch = _fetch(fetching, member, topic_id, 0)
    _until_parked(broker, member)
    closed = closing.call(ApiKey.SHARE_FETCH, 1, {
        "group_id": GROUP, "member_id": member, "share_session_epoch": -1, "max_wait_ms": 0, "min_bytes": 1,
        "max_bytes": 1 << 20, "max_records": 500, "batch_size": 500, "topics": [], "forgotten_topics_data": []})
    assert closed["error_code"] == 0
    _ends_empty(fetching, fetch)


def test_leaving_the_group_leaves_the_parked_fetch_to_the_sessions_end(broker, connections):
    fetching, coordinator = connections
    member, topic_id = _member_id(), _topic_id(fetching)
    assert _heartbeat(coordinator, member, 0)["error_code"] == 0
    fetch = _fetch(fetching, member, topic_id, 0)
    _until_parked(broker, member)
    assert _heartbeat(coordinator, member, -1)["error_code"] == 0
    share = broker.broker.share if broker.broker is not None else None
    assert share is not None and share.sessions.of_member(GROUP, member), "the leave ended the share session"
    leave = _final_acknowledge(coordinator, member)
    _ends_empty(fetching, fetch)
    correlation, answer = coordinator.answer()
    assert (correlation, answer["error_code"]) == (leave, 0)


def test_a_new_session_of_the_member_ends_the_old_sessions_parked_fetch(broker, connections):
    first, second = connections
    member, topic_id = _member_id(), _topic_id(first)
    fetch = _fetch(first, member, topic_id, 0)
    _until_parked(broker, member)
    replacing = _fetch(second, member, topic_id, 0)
    _ends_empty(first, fetch)
    leave = _final_acknowledge(second, member)
    _ends_empty(second, replacing)
    correlation, answer = second.answer()
    assert (correlation, answer["error_code"]) == (leave, 0)
