"""Every version of every spine API over a real socket, encoded and decoded by
kafka-python's generated protocol classes (an independent codec), against a live broker."""

from __future__ import annotations

import uuid

import pytest
from kafka.protocol.admin.topics import CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse
from kafka.protocol.consumer.fetch import FetchRequest, FetchResponse
from kafka.protocol.consumer.offsets import ListOffsetsRequest, ListOffsetsResponse
from kafka.protocol.metadata.api_versions import ApiVersionsRequest, ApiVersionsResponse
from kafka.protocol.metadata.find_coordinator import FindCoordinatorRequest, FindCoordinatorResponse
from kafka.protocol.metadata.metadata import MetadataRequest, MetadataResponse
from kafka.protocol.producer import InitProducerIdRequest, InitProducerIdResponse, ProduceRequest, ProduceResponse

from kafka_wire import RawClient, build_records, make, read_records

SPINE = {0: (0, 13), 1: (0, 18), 2: (0, 11), 3: (0, 13), 18: (0, 5), 19: (0, 7), 20: (0, 6), 22: (0, 5)}


@pytest.fixture
def client(ottla_broker):
    with RawClient(ottla_broker.bootstrap_servers) as raw:
        yield raw


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _create(client: RawClient, name: str, partitions: int = 1) -> None:
    request = make(CreateTopicsRequest, dict(topics=[dict(name=name, num_partitions=partitions, replication_factor=1, assignments=[], configs=[])], timeout_ms=5000))
    response = client.call(request, 4, CreateTopicsResponse)
    assert response.topics[0].error_code == 0


@pytest.mark.parametrize("version", range(0, 5))
def test_api_versions_lists_the_spine(client, version):
    response = client.call(ApiVersionsRequest(client_software_name="t", client_software_version="1"), version, ApiVersionsResponse)
    assert response.error_code == 0
    advertised = {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}
    for key, versions in SPINE.items():
        assert advertised[key] == versions


def test_api_versions_from_the_future_gets_a_v0_answer(client):
    # KIP-511: header v2 request at v6 (unknown) -> v0 body, UNSUPPORTED_VERSION, and
    # ApiVersions' own versions alone (ApiVersionsRequest.getErrorResponse).
    client.send(ApiVersionsRequest(client_software_name="t", client_software_version="1"), 4)
    client.receive_frame()
    request = ApiVersionsRequest(client_software_name="t", client_software_version="1")
    request.with_header(correlation_id=99, client_id="future")
    frame = bytearray(request.encode(version=4, header=True, framed=True))
    frame[6:8] = (6).to_bytes(2, "big")  # claim version 6
    client.sock.sendall(bytes(frame))
    response = ApiVersionsResponse.decode(client.receive_frame(), version=0, header=True)
    assert response.error_code == 35
    assert {k.api_key for k in response.api_keys} == {18}


def test_unknown_api_closes_only_that_connection(ottla_broker, client):
    import socket
    import struct

    with socket.create_connection(ottla_broker.bootstrap_servers.rsplit(":", 1)) as rogue:
        rogue.sendall(struct.pack(">ihhih", 10, 9999, 0, 1, -1))
        assert rogue.recv(10) == b""
    response = client.call(ApiVersionsRequest(), 0, ApiVersionsResponse)
    assert response.error_code == 0


@pytest.mark.parametrize("version", range(0, 14))
def test_metadata_auto_creates_and_describes(client, ottla_broker, version):
    name = _name(f"meta-v{version}")
    topic = {"name": name}
    if version >= 10:
        topic["topic_id"] = None
    request = make(MetadataRequest, dict(topics=[topic], allow_auto_topic_creation=True))
    response = client.call(request, version, MetadataResponse)
    assert [(b.node_id, b.port) for b in response.brokers] == [(1, int(ottla_broker.bootstrap_servers.rsplit(":", 1)[1]))]
    (entry,) = response.topics
    assert (entry.error_code, entry.name) == (0, name)
    assert [(p.partition_index, p.leader_id) for p in entry.partitions] == [(0, 1)]
    if version >= 10:
        assert entry.topic_id.int != 0
    if version >= 13:
        assert response.error_code == 0  # KIP-1102: only a broker asking for a re-bootstrap sets it


@pytest.mark.parametrize("version", range(4, 14))
def test_metadata_without_auto_create_reports_unknown_topic(client, version):
    topic = {"name": _name("absent")}
    if version >= 10:
        topic["topic_id"] = None
    response = client.call(make(MetadataRequest, dict(topics=[topic], allow_auto_topic_creation=False)), version, MetadataResponse)
    assert response.topics[0].error_code == 3


@pytest.mark.parametrize("version", range(0, 8))
def test_create_topics(client, version):
    name = _name(f"create-v{version}")
    spec = dict(name=name, num_partitions=3, replication_factor=1, assignments=[], configs=[])
    body = dict(topics=[spec], timeout_ms=5000)
    if version >= 1:
        body["validate_only"] = True
        response = client.call(make(CreateTopicsRequest, body), version, CreateTopicsResponse)
        assert response.topics[0].error_code == 0
        body["validate_only"] = False
    response = client.call(make(CreateTopicsRequest, body), version, CreateTopicsResponse)
    assert response.topics[0].error_code == 0  # validate-only created nothing
    response = client.call(make(CreateTopicsRequest, body), version, CreateTopicsResponse)
    assert response.topics[0].error_code == 36  # TOPIC_ALREADY_EXISTS
    bad = dict(body, topics=[dict(spec, name=_name("rf"), replication_factor=3)])
    assert client.call(make(CreateTopicsRequest, bad), version, CreateTopicsResponse).topics[0].error_code == 38
    bad = dict(body, topics=[dict(spec, name="bad/name")])
    assert client.call(make(CreateTopicsRequest, bad), version, CreateTopicsResponse).topics[0].error_code == 17


def _produce(client: RawClient, version: int, name: str, partition: int, records: bytes, acks: int = -1):
    """From v13 the topic goes by its id (KIP-516): a name's id from Metadata, zero when unknown."""
    topic = dict(name=name, topic_id=_topic_id(client, name)) if version >= 13 else dict(name=name)
    body = dict(acks=acks, timeout_ms=5000, topic_data=[dict(topic, partition_data=[dict(index=partition, records=records)])])
    if version >= 3:
        body["transactional_id"] = None
    return client.call(make(ProduceRequest, body), version, ProduceResponse)


@pytest.mark.parametrize("version", range(0, 14))
def test_produce_assigns_consecutive_offsets(client, version):
    name = _name(f"produce-v{version}")
    _create(client, name)
    magic = 0 if version < 2 else (1 if version == 2 else 2)
    for expected_base in (0, 2):
        response = _produce(client, version, name, 0, build_records(magic, [(b"k1", b"v1"), (b"k2", b"v2")]))
        (partition,) = response.responses[0].partition_responses
        assert (partition.error_code, partition.base_offset) == (0, expected_base)
    missing = _produce(client, version, _name("nope"), 0, build_records(magic, [(b"k", b"v")]))
    assert missing.responses[0].partition_responses[0].error_code == (100 if version >= 13 else 3)  # UNKNOWN_TOPIC_ID


def test_produce_with_acks_0_gets_no_response(client):
    name = _name("acks0")
    _create(client, name)
    body = dict(acks=0, timeout_ms=5000, transactional_id=None, topic_data=[dict(name=name, partition_data=[dict(index=0, records=build_records(2, [(b"k", b"v")]))])])
    client.send(make(ProduceRequest, body), 9)
    # The next response on the connection answers the next request, not the produce.
    response = client.call(ApiVersionsRequest(), 0, ApiVersionsResponse)
    assert response.error_code == 0
    offsets = client.call(_list_offsets_request(name, -1, 1), 1, ListOffsetsResponse)
    assert offsets.topics[0].partitions[0].offset == 1


def test_produce_corrupt_batch_is_rejected(client):
    name = _name("corrupt")
    _create(client, name)
    batch = bytearray(build_records(2, [(b"k", b"v")]))
    batch[-1] ^= 0xFF  # breaks the CRC
    response = _produce(client, 9, name, 0, bytes(batch))
    assert response.responses[0].partition_responses[0].error_code == 2  # CORRUPT_MESSAGE


def _topic_id(client: RawClient, name: str):
    response = client.call(make(MetadataRequest, dict(topics=[dict(name=name, topic_id=None)], allow_auto_topic_creation=False)), 12, MetadataResponse)
    return response.topics[0].topic_id


@pytest.mark.parametrize("version", range(0, 19))
def test_fetch_returns_what_was_produced(client, version):
    name = _name(f"fetch-v{version}")
    _create(client, name)
    pairs = [(b"k%d" % i, b"v%d" % i) for i in range(5)]
    _produce(client, 9, name, 0, build_records(2, pairs))
    topic = dict(partitions=[dict(partition=0, fetch_offset=2, partition_max_bytes=1 << 20, current_leader_epoch=-1, log_start_offset=-1, last_fetched_epoch=-1)])
    if version >= 13:
        topic["topic_id"] = _topic_id(client, name)
    else:
        topic["topic"] = name
    body = dict(replica_id=-1, max_wait_ms=0, min_bytes=0, max_bytes=1 << 20, isolation_level=0, session_id=0, session_epoch=-1, topics=[topic], forgotten_topics_data=[], rack_id="")
    response = client.call(make(FetchRequest, body), version, FetchResponse)
    partition = response.responses[0].partitions[0]
    assert (partition.error_code, partition.high_watermark) == (0, 5)
    records = read_records(bytes(partition.records))
    # Whole batches: the batch holding offset 2 starts at 0; clients skip the records before it.
    assert [(o, k, v) for o, k, v in records if o >= 2] == [(i, b"k%d" % i, b"v%d" % i) for i in range(2, 5)]


def _list_offsets_request(name: str, timestamp: int, version_fields: int):
    return make(ListOffsetsRequest, dict(replica_id=-1, isolation_level=0, topics=[dict(name=name, partitions=[dict(partition_index=0, timestamp=timestamp, max_num_offsets=1, current_leader_epoch=-1)])], timeout_ms=1000))


@pytest.mark.parametrize("version", range(0, 12))
def test_list_offsets_earliest_and_latest(client, version):
    name = _name(f"offsets-v{version}")
    _create(client, name)
    _produce(client, 9, name, 0, build_records(2, [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")]))
    found = {}
    for timestamp in (-2, -1):
        partition = client.call(_list_offsets_request(name, timestamp, version), version, ListOffsetsResponse).topics[0].partitions[0]
        assert partition.error_code == 0
        found[timestamp] = partition.old_style_offsets[0] if version == 0 else partition.offset
    assert found == {-2: 0, -1: 3}


@pytest.mark.parametrize("version", range(1, 12))
def test_list_offsets_special_timestamps_need_their_version(client, version):
    """Each special timestamp from the version that introduced it (-3 v7, -4 v8, -5 v9, -6 v11);
    before it, or for a negative timestamp that is none of them, UNSUPPORTED_VERSION, as
    Kafka's ReplicaManager answers. Without tiered storage -5 and -6 find no offset."""
    name = _name(f"special-v{version}")
    _create(client, name)
    _produce(client, 9, name, 0, build_records(2, [(b"a", b"1"), (b"b", b"2")]))
    answers = {}
    for timestamp, first in ((-3, 7), (-4, 8), (-5, 9), (-6, 11), (-7, 99)):
        partition = client.call(_list_offsets_request(name, timestamp, version), version, ListOffsetsResponse).topics[0].partitions[0]
        answers[timestamp] = (partition.error_code, partition.offset)
        if version < first:
            assert answers[timestamp] == (35, -1), timestamp
    if version >= 11:
        assert answers == {-3: (0, 0), -4: (0, 0), -5: (0, -1), -6: (0, -1), -7: (35, -1)}


@pytest.mark.parametrize("version", range(0, 7))
def test_delete_topics(client, version):
    name = _name(f"delete-v{version}")
    _create(client, name)
    if version >= 6:
        body = dict(topics=[dict(name=name, topic_id=None)], timeout_ms=5000)
    else:
        body = dict(topic_names=[name], timeout_ms=5000)
    response = client.call(make(DeleteTopicsRequest, body), version, DeleteTopicsResponse)
    assert response.responses[0].error_code == 0
    response = client.call(make(DeleteTopicsRequest, body), version, DeleteTopicsResponse)
    assert response.responses[0].error_code == 3


@pytest.mark.parametrize("version", range(0, 6))
def test_init_producer_id_hands_out_distinct_ids(client, version):
    body = dict(transactional_id=None, transaction_timeout_ms=60000, producer_id=-1, producer_epoch=-1)
    first = client.call(make(InitProducerIdRequest, body), version, InitProducerIdResponse)
    second = client.call(make(InitProducerIdRequest, body), version, InitProducerIdResponse)
    assert first.error_code == second.error_code == 0
    assert first.producer_id >= 0 and second.producer_id >= 0 and first.producer_id != second.producer_id
    assert first.producer_epoch == 0


def test_produce_v3_and_later_take_exactly_one_batch_of_magic_2(client):
    name = _name("one-batch")
    _create(client, name)
    two = build_records(2, [(b"a", b"1")]) + build_records(2, [(b"b", b"2")])
    assert _produce(client, 3, name, 0, two).responses[0].partition_responses[0].error_code == 87  # INVALID_RECORD
    legacy = build_records(1, [(b"a", b"1")])
    assert _produce(client, 9, name, 0, legacy).responses[0].partition_responses[0].error_code == 87
    assert _produce(client, 2, name, 0, legacy).responses[0].partition_responses[0].error_code == 0


def test_zstd_needs_produce_v7(client):
    from ottla.wire.records import Compression, Record, build_batch

    name = _name("zstd")
    _create(client, name)
    batch = build_batch([Record(0, 1_700_000_000_000, b"k", b"v")], compression=Compression.ZSTD)
    assert _produce(client, 6, name, 0, batch).responses[0].partition_responses[0].error_code == 76
    assert _produce(client, 7, name, 0, batch).responses[0].partition_responses[0].error_code == 0


def test_clients_cannot_write_internal_topics(client):
    # The group coordinator's log, created by the first lookup of a group as Kafka creates it.
    found = client.call(make(FindCoordinatorRequest, dict(key="spine-group", key_type=0)), 3, FindCoordinatorResponse)
    assert found.error_code == 0
    response = _produce(client, 9, "__consumer_offsets", 0, build_records(2, [(b"k", b"v")]))
    assert response.responses[0].partition_responses[0].error_code == 17  # INVALID_TOPIC_EXCEPTION
