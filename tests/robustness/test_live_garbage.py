"""Garbage over real sockets (issue 8, item 1): for every API version a real broker
advertises, corrupted requests get a well-formed response or close their own connection
with one log line; a bystander connection keeps working; the broker logs no traceback and
still produces and fetches afterwards.

Inputs come from compat.fuzz's generator with a fixed seed (a bounded sample of what
`python -m compat.fuzz --live` sends by the thousand). A fetch, join or sync still held
after a second is hung up on, as a client would.
"""

from __future__ import annotations

import logging
import socket
import struct
import time
from typing import Any, Iterator

import pytest
from kafka.protocol.consumer.fetch import FetchRequest, FetchResponse
from kafka.protocol.metadata.api_versions import ApiVersionsRequest, ApiVersionsResponse
from kafka.protocol.producer import ProduceRequest, ProduceResponse

from compat.fuzz import decode_as_broker, kafka_refuses_to_parse, make_input
from compat.sockets import read_frame
from kafka_wire import RawClient, build_records, make, read_records
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, MalformedFrame
from ottla.wire.protocol import decode_response, encode_request
from ottla.wire.records import CRC, CRC_OFFSET, compute_crc

SEED = 8
INPUTS_PER_VERSION = 4
PROBE_ID = 2**31 - 7
# A fetch may wait for data, a join or sync for the group's other members: rightly held.
MAY_PARK = {ApiKey.FETCH, ApiKey.JOIN_GROUP, ApiKey.SYNC_GROUP}


@pytest.fixture(scope="module")
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=None, group_initial_rebalance_delay_ms=0) as broker:
        yield broker


@pytest.fixture
def ottla_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every warning or worse the broker logs during the test; none may carry a traceback."""
    caplog.set_level(logging.WARNING, logger="ottla")
    yield caplog
    bugs = [record for record in caplog.records if record.exc_info or "handling failed" in record.getMessage() or "handler failed" in record.getMessage()]
    assert not bugs, "\n".join(caplog.text.splitlines()[:40])


class Connection:
    def __init__(self, bootstrap: str) -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)

    def send(self, frame: bytes) -> None:
        self.sock.sendall(struct.pack(">i", len(frame)) + frame)

    def receive(self) -> bytes | None:
        """The next response frame, or None when the broker closed the connection."""
        return read_frame(self.sock)

    def close(self) -> None:
        self.sock.close()


def _judge(connection: Connection, frame: bytes, supported: set[tuple[int, int]]) -> str:
    """Send `frame` and an ApiVersions probe behind it; what came back, or an AssertionError."""
    try:
        api_key, version, body = decode_as_broker(frame, supported)
    except MalformedFrame:
        (api_key, version), body = struct.unpack_from(">hh", frame) if len(frame) >= 4 else (-1, -1), None
    connection.send(frame)
    connection.sock.sendall(encode_request(ApiKey.API_VERSIONS, 0, PROBE_ID, {}))
    if body is not None and api_key in MAY_PARK:
        connection.sock.settimeout(1)
        try:
            first = connection.receive()
        except TimeoutError:
            return "parked"  # the caller hangs up, as a client would
        connection.sock.settimeout(10)
    else:
        first = connection.receive()
    if body is None:
        # Undecodable: closed, except ApiVersions at a version we lack, answered at v0 (KIP-511).
        if first is None:
            return "closed"
        assert api_key == ApiKey.API_VERSIONS, f"api {api_key} v{version} was answered though it cannot be decoded"
        decode_response(ApiKey.API_VERSIONS, 0, first)
        return "answered"
    if kafka_refuses_to_parse(api_key, body):
        # Kafka's ACL requests refuse an UNKNOWN (0) code as they are parsed: closed unanswered.
        assert first is None, f"api {api_key} v{version} was answered though Kafka cannot parse it"
        return "closed"
    if api_key == ApiKey.PRODUCE and body["acks"] == 0:
        # Never answered; one that failed closes the connection (KafkaApis), else the probe
        # behind it is answered.
        if first is None:
            return "closed after a failed acks=0 produce"
        assert struct.unpack_from(">i", first)[0] == PROBE_ID, "an acks=0 produce was answered"
        return "silent"
    assert first is not None, f"the broker closed the connection on a decodable api {api_key} v{version}: {body!r:.300}"
    (correlation_id,) = struct.unpack_from(">i", first)
    assert correlation_id == struct.unpack_from(">i", frame, 4)[0]
    decode_response(api_key, version, first)  # well formed, or this raises
    probe = connection.receive()
    assert probe is not None and struct.unpack_from(">i", probe)[0] == PROBE_ID
    return "answered"


def _bystander_works(bystander: RawClient) -> bool:
    return bystander.call(ApiVersionsRequest(), 0, ApiVersionsResponse).error_code == 0


def test_corrupted_requests_for_every_advertised_version(broker: ThreadedBroker, ottla_log: pytest.LogCaptureFixture) -> None:
    advertised = [(int(key), version) for key, low, high in broker.broker.dispatcher.supported() for version in range(low, high + 1)]
    supported = set(advertised)
    outcomes: dict[str, int] = {}
    connection: Connection | None = None
    with RawClient(broker.bootstrap_servers) as bystander:
        for target_number, target in enumerate(advertised):
            for number in range(INPUTS_PER_VERSION):
                frame, _ = make_input(SEED, target_number * INPUTS_PER_VERSION + number, [target])
                connection = connection or Connection(broker.bootstrap_servers)
                outcome = _judge(connection, frame, supported)
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
                if outcome in ("closed", "parked", "closed after a failed acks=0 produce"):
                    connection.close()
                    connection = None
                assert _bystander_works(bystander)
    if connection is not None:
        connection.close()
    # Both ways out were exercised, and each closed connection said why in one line.
    assert outcomes["answered"] > len(advertised) and outcomes["closed"] > len(advertised), outcomes
    closing = [r for r in ottla_log.records if r.name == "ottla.connection" and "malformed request" in r.getMessage()]
    assert len(closing) == outcomes["closed"], outcomes
    _produce_and_fetch_work(broker, "after-garbage")


def _produce_and_fetch_work(broker: ThreadedBroker, topic: str) -> None:
    broker.create_topic(topic)
    with RawClient(broker.bootstrap_servers) as client:
        produced = client.call(_produce_request(topic, {0: build_records(2, [(b"k", b"still-serving")])}), 9, ProduceResponse)
        assert produced.responses[0].partition_responses[0].error_code == 0
        partition = dict(partition=0, fetch_offset=0, partition_max_bytes=1 << 20, current_leader_epoch=-1, log_start_offset=-1, last_fetched_epoch=-1)
        body = dict(replica_id=-1, max_wait_ms=0, min_bytes=0, max_bytes=1 << 20, isolation_level=0, session_id=0, session_epoch=-1, topics=[dict(topic=topic, partitions=[partition])], forgotten_topics_data=[], rack_id="")
        fetched = client.call(make(FetchRequest, body), 11, FetchResponse)
    assert read_records(bytes(fetched.responses[0].partitions[0].records)) == [(0, b"k", b"still-serving")]


def _produce_request(topic: str, partitions: dict[int, bytes], acks: int = -1) -> Any:
    data = [dict(index=index, records=records) for index, records in partitions.items()]
    return make(ProduceRequest, dict(transactional_id=None, acks=acks, timeout_ms=5000, topic_data=[dict(name=topic, partition_data=data)]))


def _with_crc(batch: bytearray) -> bytes:
    CRC.pack_into(batch, CRC_OFFSET, compute_crc(batch))
    return bytes(batch)


def _lying(field_offset: int, fmt: str, value: int, fix_crc: bool = True) -> bytes:
    batch = bytearray(build_records(2, [(b"k", b"v"), (b"k2", b"v2")]))
    struct.pack_into(fmt, batch, field_offset, value)
    return _with_crc(batch) if fix_crc else bytes(batch)


def test_corrupt_record_batches_get_errors_per_partition(broker: ThreadedBroker, ottla_log: pytest.LogCaptureFixture) -> None:
    topic = "corrupt-batches"
    broker.create_topic(topic, partitions=9)
    valid = build_records(2, [(b"k", b"v")])
    flipped = bytearray(valid)
    flipped[-1] ^= 0xFF
    partitions = {
        0: valid,
        1: bytes(flipped),  # CRC mismatch
        2: _lying(8, ">i", 10_000),  # batch length past the end
        3: _lying(8, ">i", 3),  # batch length below the minimum
        4: _lying(16, ">b", 7),  # unknown magic
        5: _lying(57, ">i", 5),  # records count disagrees with last offset delta
        6: _lying(21, ">h", 0x20),  # a control batch from a client
        7: bytes(16) + b"\x01",  # a legacy message set too short for its header
        8: valid[:40],  # truncated
    }
    # Each code as Kafka 4.4 answers the same bytes in a request of their own: bytes that
    # hold no whole batch are INVALID_RECORD, an impossible size or magic CORRUPT_MESSAGE
    # (which, read first for the whole request, would fail every partition beside it).
    expected = {
        0: ErrorCode.NONE,
        1: ErrorCode.CORRUPT_MESSAGE,
        2: ErrorCode.INVALID_RECORD,
        3: ErrorCode.CORRUPT_MESSAGE,
        4: ErrorCode.CORRUPT_MESSAGE,
        5: ErrorCode.INVALID_RECORD,
        6: ErrorCode.INVALID_RECORD,
        7: ErrorCode.CORRUPT_MESSAGE,
        8: ErrorCode.INVALID_RECORD,
    }
    with RawClient(broker.bootstrap_servers) as client:
        for version in (3, 9, 11):
            codes = {}
            for index, records in partitions.items():
                response = client.call(_produce_request(topic, {index: records}), version, ProduceResponse)
                codes[index] = response.responses[0].partition_responses[0].error_code
            assert codes == expected, version
        # The same connection still works: a clean produce lands after the valid ones.
        response = client.call(_produce_request(topic, {0: valid}), 9, ProduceResponse)
        assert response.responses[0].partition_responses[0].base_offset == 3
        # Produce v2 carries legacy message sets: a lying size or CRC is CORRUPT_MESSAGE.
        legacy = bytearray(build_records(1, [(b"k", b"v")]))
        legacy[20] ^= 0xFF  # a byte of the message, under its CRC
        lying_size = bytearray(build_records(1, [(b"k", b"v")]))
        struct.pack_into(">i", lying_size, 8, 1 << 20)
        response = client.call(_produce_request(topic, {0: bytes(legacy), 1: bytes(lying_size)}), 2, ProduceResponse)
        assert [p.error_code for p in response.responses[0].partition_responses] == [ErrorCode.CORRUPT_MESSAGE] * 2
    _produce_and_fetch_work(broker, "after-corrupt-batches")


def _metadata(connection: Connection, version: int, topics: list[dict[str, Any]]) -> dict[str, Any]:
    connection.send(encode_request(ApiKey.METADATA, version, 5, {"topics": topics, "allow_auto_topic_creation": True})[4:])
    frame = connection.receive()
    assert frame is not None, f"Metadata v{version} closed the connection"
    return decode_response(ApiKey.METADATA, version, frame)[1]


@pytest.mark.parametrize("version", [10, 11, 12])
def test_metadata_with_a_null_topic_name_is_answered(broker: ThreadedBroker, ottla_log: pytest.LogCaptureFixture, version: int) -> None:
    # Names may be null from v10 (ids instead), but only v12 responses may carry a null name
    # (found by compat.fuzz --live: the response failed to encode and the connection closed).
    connection = Connection(broker.bootstrap_servers)
    try:
        for topic_id in (bytes(16), b"\x01" * 16):
            response = _metadata(connection, version, [{"name": None, "topic_id": topic_id}])
            [topic] = response["topics"]
            expected = ErrorCode.UNKNOWN_TOPIC_ID if version == 12 and any(topic_id) else ErrorCode.INVALID_REQUEST
            assert topic["error_code"] == expected
        if version < 12:  # KafkaApis: topic ids are not accepted before v12
            response = _metadata(connection, version, [{"name": "named", "topic_id": b"\x01" * 16}])
            assert response["topics"][0]["error_code"] == ErrorCode.INVALID_REQUEST
    finally:
        connection.close()


def _call(broker: ThreadedBroker, api_key: int, version: int, body: dict[str, Any]) -> dict[str, Any]:
    connection = Connection(broker.bootstrap_servers)
    try:
        connection.send(encode_request(api_key, version, 9, body)[4:])
        frame = connection.receive()
        assert frame is not None, f"api {api_key} v{version} closed the connection"
        return decode_response(api_key, version, frame)[1]
    finally:
        connection.close()


def test_partition_counts_past_kafkas_bound_fail_fast(broker: ThreadedBroker, ottla_log: pytest.LogCaptureFixture) -> None:
    # One request could ask for 2**31 - 1 partitions, which the broker allocated eagerly,
    # blocking every client (found by compat.fuzz). Kafka refuses more than 10,000 per request.
    def create(*counts: int) -> list[dict[str, Any]]:
        topics = [{"name": f"huge-{n}-{count}", "num_partitions": count, "replication_factor": -1, "assignments": [], "configs": []} for n, count in enumerate(counts)]
        return _call(broker, ApiKey.CREATE_TOPICS, 7, {"topics": topics, "timeout_ms": 1000, "validate_only": False})["topics"]

    started = time.monotonic()
    for counts in [(2**31 - 1,), (6_000, 6_000)]:
        assert {topic["error_code"] for topic in create(*counts)} == {ErrorCode.POLICY_VIOLATION}
    broker.create_topic("grows", partitions=1)
    grown = _call(broker, ApiKey.CREATE_PARTITIONS, 3, {"topics": [{"name": "grows", "count": 2**31 - 1, "assignments": None}], "timeout_ms": 1000, "validate_only": False})
    assert grown["results"][0]["error_code"] == ErrorCode.POLICY_VIOLATION
    assert time.monotonic() - started < 5
    assert [topic["error_code"] for topic in create(3)] == [ErrorCode.NONE]


@pytest.mark.parametrize(
    "raw",
    [
        struct.pack(">i", -1) + b"\x00" * 8,  # negative frame size
        struct.pack(">i", -(2**31)),
        struct.pack(">i", 0),  # an empty frame has no header
        struct.pack(">i", 3) + b"\x00\x12\x00",  # shorter than api key, version and correlation id
        struct.pack(">i", 2**31 - 1) + b"\x00" * 64,  # past socket.request.max.bytes
    ],
    ids=["negative", "most-negative", "empty", "short-header", "huge"],
)
def test_lying_frame_sizes_close_only_that_connection(broker: ThreadedBroker, ottla_log: pytest.LogCaptureFixture, raw: bytes) -> None:
    with RawClient(broker.bootstrap_servers) as bystander:
        rogue = Connection(broker.bootstrap_servers)
        try:
            rogue.sock.sendall(raw)
            assert rogue.receive() is None
        finally:
            rogue.close()
        assert _bystander_works(bystander)
    assert [r.levelno for r in ottla_log.records if r.name == "ottla.connection"] == [logging.WARNING]


def test_join_group_listing_a_protocol_twice_is_answered(broker: ThreadedBroker, ottla_log: pytest.LogCaptureFixture) -> None:
    # A protocol name listed twice counted twice towards "supported by every member", so no
    # protocol could be elected: the join was never answered and the group stuck (found by
    # compat.fuzz --live).
    protocols = [{"name": "range", "metadata": b"first"}, {"name": "range", "metadata": b"second"}]
    body = {"group_id": "twice", "session_timeout_ms": 10_000, "rebalance_timeout_ms": 10_000, "member_id": "", "protocol_type": "consumer", "protocols": protocols}
    joined = _call(broker, ApiKey.JOIN_GROUP, 1, body)
    assert (joined["error_code"], joined["protocol_name"]) == (ErrorCode.NONE, "range")
    assert [bytes(member["metadata"]) for member in joined["members"]] == [b"first"]


@pytest.mark.parametrize("retention_ms", [2**63 - 1, -(2**63)])
def test_offset_commit_with_an_extreme_retention_is_answered(broker: ThreadedBroker, ottla_log: pytest.LogCaptureFixture, retention_ms: int) -> None:
    # OffsetCommit v2-v4 carry a retention added to the commit time: past int64 it broke the
    # stored offset record and closed the connection (found by compat.fuzz --live).
    topic = f"retained-{retention_ms}"
    broker.create_topic(topic)
    partition = {"partition_index": 0, "committed_offset": 7, "committed_metadata": ""}
    body = {"group_id": f"g-{retention_ms}", "generation_id_or_member_epoch": -1, "member_id": "", "retention_time_ms": retention_ms, "topics": [{"name": topic, "partitions": [partition]}]}
    committed = _call(broker, ApiKey.OFFSET_COMMIT, 2, body)
    assert committed["topics"][0]["partitions"][0]["error_code"] == ErrorCode.NONE
