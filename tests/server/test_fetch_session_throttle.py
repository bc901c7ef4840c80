"""A consumer's incremental fetch throttled by its consumer_byte_rate keeps its fetch session as
Kafka 4.4 does (KafkaApis.handleFetchRequest decides the throttle from
FetchContext.getResponseSize, then answers IncrementalFetchContext.getThrottledResponse instead of
updateAndGenerateResponseData): the session's id, no partitions, and the session's cached
partitions as they were, so the next fetch of the session gets what the throttled one read.

Over a real socket with kafka-python's codec; each throttled connection is left muted and closed,
the session carried on from a new connection (sessions belong to the broker, not a connection)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kafka.protocol.admin import AlterClientQuotasRequest, AlterClientQuotasResponse
from kafka.protocol.consumer.fetch import FetchRequest, FetchResponse
from kafka.protocol.producer import ProduceRequest, ProduceResponse

from kafka_wire import RawClient, build_records, make, read_records
from ottla.testing import ThreadedBroker, running_broker

TOPIC = "throttled-session"
CLIENT = "throttled-consumer"
VERSION = 11  # sessions from v7; v8+ clients wait out throttle_time_ms themselves (KIP-219)


@pytest.fixture
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=None, quota_window_num=2, quota_window_size_seconds=1) as broker:
        broker.create_topic(TOPIC)
        yield broker


def _quota(broker: ThreadedBroker, rate: float | None) -> None:
    """Set (or, with None, remove) the consumer's consumer_byte_rate."""
    op = dict(key="consumer_byte_rate", value=rate or 0.0, remove=rate is None)
    request = make(AlterClientQuotasRequest, dict(entries=[dict(entity=[dict(entity_type="client-id", entity_name=CLIENT)], ops=[op])], validate_only=False))
    with RawClient(broker.bootstrap_servers) as admin:
        assert admin.call(request, 1, AlterClientQuotasResponse).entries[0].error_code == 0


def _produce(broker: ThreadedBroker, values: list[bytes]) -> None:
    records = build_records(2, [(None, value) for value in values])
    request = make(ProduceRequest, dict(transactional_id=None, acks=1, timeout_ms=5000, topic_data=[dict(name=TOPIC, partition_data=[dict(index=0, records=records)])]))
    with RawClient(broker.bootstrap_servers) as producer:
        assert producer.call(request, 9, ProduceResponse).responses[0].partition_responses[0].error_code == 0


def _fetch(client: RawClient, session_id: int, epoch: int, offset: int | None = None) -> FetchResponse:
    """A fetch of the session; `offset` names partition 0 at that fetch offset (a full request
    must), None leaves the session's partitions as they are."""
    topics = []
    if offset is not None:
        partition = dict(partition=0, fetch_offset=offset, partition_max_bytes=64_000, current_leader_epoch=-1, log_start_offset=-1, last_fetched_epoch=-1)
        topics = [dict(topic=TOPIC, partitions=[partition])]
    request = make(FetchRequest, dict(replica_id=-1, max_wait_ms=0, min_bytes=0, max_bytes=64_000, isolation_level=0, session_id=session_id,
                                      session_epoch=epoch, topics=topics, forgotten_topics_data=[], rack_id=""))
    return client.call(request, VERSION, FetchResponse)


def _throttled_fetch(broker: ThreadedBroker, session_id: int, epoch: int) -> FetchResponse:
    """The session's next fetch while the consumer's quota is a byte a second: throttled."""
    _quota(broker, 1)
    with RawClient(broker.bootstrap_servers, client_id=CLIENT) as client:
        throttled = _fetch(client, session_id, epoch)
    _quota(broker, None)
    return throttled


def _open_session(broker: ThreadedBroker) -> int:
    with RawClient(broker.bootstrap_servers, client_id=CLIENT) as client:
        opened = _fetch(client, 0, 0, offset=0)
    assert opened.error_code == 0 and opened.session_id != 0
    return opened.session_id


def test_a_throttled_incremental_fetch_keeps_its_session_and_the_next_gets_its_records(broker: ThreadedBroker) -> None:
    session_id = _open_session(broker)
    _produce(broker, [b"a", b"b", b"c"])

    throttled = _throttled_fetch(broker, session_id, 1)
    assert throttled.throttle_time_ms > 0
    assert (throttled.error_code, throttled.session_id, throttled.responses) == (0, session_id, [])

    with RawClient(broker.bootstrap_servers, client_id=CLIENT) as client:
        after = _fetch(client, session_id, 2)
    assert (after.error_code, after.session_id, after.throttle_time_ms) == (0, session_id, 0)
    [(topic, [partition])] = [(t.topic, t.partitions) for t in after.responses]
    assert (topic, partition.error_code, partition.high_watermark) == (TOPIC, 0, 3)
    assert [value for _, _, value in read_records(bytes(partition.records))] == [b"a", b"b", b"c"]


def test_a_throttled_fetch_leaves_the_sessions_cached_high_watermark(broker: ThreadedBroker) -> None:
    """The throttled fetch read a high watermark of 2 that it did not send: the session still
    holds 0, so a fetch that reads no records (its offset moved past them) is answered with it."""
    session_id = _open_session(broker)
    _produce(broker, [b"a", b"b"])

    throttled = _throttled_fetch(broker, session_id, 1)
    assert throttled.throttle_time_ms > 0 and (throttled.session_id, throttled.responses) == (session_id, [])

    with RawClient(broker.bootstrap_servers, client_id=CLIENT) as client:
        after = _fetch(client, session_id, 2, offset=2)
    assert (after.error_code, after.session_id) == (0, session_id)
    [(topic, [partition])] = [(t.topic, t.partitions) for t in after.responses]
    assert (topic, partition.high_watermark, bytes(partition.records or b"")) == (TOPIC, 2, b"")


def test_a_throttled_full_fetch_opens_no_session(broker: ThreadedBroker) -> None:
    """FullFetchContext keeps FetchContext.getThrottledResponse: session id 0, no partitions."""
    _produce(broker, [b"a"])
    _quota(broker, 1)
    with RawClient(broker.bootstrap_servers, client_id=CLIENT) as client:
        throttled = _fetch(client, 0, 0, offset=0)
    assert throttled.throttle_time_ms > 0
    assert (throttled.error_code, throttled.session_id, throttled.responses) == (0, 0, [])
    assert len(broker.broker.services.fetch_sessions) == 0


def test_a_faults_throttle_sends_the_sessions_answer(broker: ThreadedBroker) -> None:
    """A fault's throttle_ms is no quota: the answer goes out whole and the session keeps it."""
    session_id = _open_session(broker)
    _produce(broker, [b"a"])
    broker.faults.add(api="fetch", client_id=CLIENT, throttle_ms=50, count=1)
    with RawClient(broker.bootstrap_servers, client_id=CLIENT) as client:
        faulted = _fetch(client, session_id, 1)
    assert (faulted.error_code, faulted.session_id, faulted.throttle_time_ms) == (0, session_id, 50)
    [(_, [partition])] = [(t.topic, t.partitions) for t in faulted.responses]
    assert [value for _, _, value in read_records(bytes(partition.records))] == [b"a"]
    with RawClient(broker.bootstrap_servers, client_id=CLIENT) as client:
        after = _fetch(client, session_id, 2, offset=1)
    assert (after.error_code, after.session_id, after.responses) == (0, session_id, [])
