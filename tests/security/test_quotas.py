"""Client quotas: the rules without sockets (Kafka's Rate, throttle time, precedence, the
durable table), then over a real socket: DescribeClientQuotas / AlterClientQuotas, a
producer and a consumer over their byte rates, and connection-creation rates.

The throughput tests assert orders of magnitude only: the bytes a throttled client gets
through in a few seconds are bounded by its quota times the time plus one window (what a
first burst may take), times a generous factor, while an unthrottled client on loopback
moves far more. A loaded machine only makes the client slower, never faster."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from kafka.protocol.admin import AlterClientQuotasRequest, AlterClientQuotasResponse, DescribeClientQuotasRequest, DescribeClientQuotasResponse
from kafka.protocol.consumer.fetch import FetchRequest, FetchResponse
from kafka.protocol.metadata.api_versions import ApiVersionsRequest, ApiVersionsResponse
from kafka.protocol.producer import ProduceRequest, ProduceResponse

from kafka_wire import RawClient, build_records, make
from ottla.server.security.quotas import ClientQuotas, ConnectionRates, QuotaError, QuotaKind, Rate, check_value, make_entity
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.errors import ErrorCode

# --- The rules, without sockets.


def test_rate_spans_at_least_all_but_one_window() -> None:
    rate = Rate(samples=11, window_ms=1000)
    rate.record(10_000, now_ms=0)
    # One sample 0 ms old: the rate is measured over (11 - 1) whole windows, not 1 ms.
    assert rate.measure(0) == pytest.approx(1000)
    rate.record(10_000, now_ms=10_500)
    assert rate.measure(10_500) == pytest.approx(20_000 / 10.5)


def test_old_samples_stop_counting() -> None:
    rate = Rate(samples=2, window_ms=1000)
    rate.record(5000, now_ms=0)
    assert rate.measure(1999) > 0
    assert rate.measure(2000) == 0


def test_throttle_time_is_kafkas_formula() -> None:
    rate = Rate(samples=11, window_ms=1000)
    rate.record(30_000, now_ms=0)
    # 3,000 B/s measured over 10 s against 1,000 B/s: (3000 - 1000) / 1000 × 10,000 ms.
    assert rate.throttle_time_ms(1000, 0) == 20_000
    assert rate.throttle_time_ms(3000, 0) == 0


def _quotas(*entries: tuple[tuple[tuple[str, str | None], ...], dict[str, float]]) -> ClientQuotas:
    quotas = ClientQuotas(None, {}, samples=2, window_seconds=1)
    quotas.alter((make_entity(entity), values) for entity, values in entries)
    return quotas


def test_precedence_is_kafkas() -> None:
    key = "producer_byte_rate"
    quotas = _quotas(
        ((("client-id", None),), {key: 1}),
        ((("client-id", "app"),), {key: 2}),
        ((("user", None),), {key: 3}),
        ((("user", None), ("client-id", "app")), {key: 4}),
        ((("user", "alice"),), {key: 5}),
        ((("user", "alice"), ("client-id", "app")), {key: 6}),
    )
    produce = QuotaKind.PRODUCER_BYTE_RATE
    assert quotas.quota(produce, "User:alice", "app") == (6, "alice", "app")
    assert quotas.quota(produce, "User:alice", "other") == (5, "alice", "")
    assert quotas.quota(produce, "User:bob", "app") == (4, "bob", "app")
    assert quotas.quota(produce, "User:bob", "other") == (3, "bob", "")
    assert quotas.quota(QuotaKind.CONSUMER_BYTE_RATE, "User:bob", "other") is None
    only_clients = _quotas(((("client-id", None),), {key: 1}), ((("client-id", "app"),), {key: 2}))
    assert only_clients.quota(produce, "User:ANONYMOUS", "app") == (2, "", "app")
    # A default gives each client id a budget of its own.
    assert only_clients.quota(produce, "User:ANONYMOUS", "other") == (1, "", "other")


def test_a_default_quota_counts_each_client_on_its_own() -> None:
    quotas = _quotas(((("client-id", None),), {"producer_byte_rate": 1000}))
    assert quotas.record(QuotaKind.PRODUCER_BYTE_RATE, "User:ANONYMOUS", "a", 5000, now_ms=0) > 0
    assert quotas.record(QuotaKind.PRODUCER_BYTE_RATE, "User:ANONYMOUS", "b", 500, now_ms=0) == 0


def test_quotas_are_active_only_while_a_client_quota_is_set() -> None:
    quotas = ClientQuotas(None, {})
    assert not quotas.active
    quotas.alter([(make_entity([("ip", None)]), {"connection_creation_rate": 5})])
    assert not quotas.active  # an IP quota is the acceptor's, not the dispatcher's
    quotas.alter([(make_entity([("user", "alice")]), {"request_percentage": 50})])
    assert quotas.active
    quotas.alter([(make_entity([("user", "alice")]), {"request_percentage": None})])
    assert not quotas.active and make_entity([("user", "alice")]) not in quotas.entities()


@pytest.mark.parametrize(
    ("entity", "key", "value"),
    [
        ((("ip", "127.0.0.1"), ("user", "alice")), "connection_creation_rate", 1),
        ((("ip", "not an address"),), "connection_creation_rate", 1),
        ((("group", "g"),), "producer_byte_rate", 1),
        ((("user", "alice"),), "connection_creation_rate", 1),
        ((("ip", None),), "producer_byte_rate", 1),
        ((("user", "alice"),), "producer_byte_rate", 1.5),
        ((("user", "alice"),), "no_such_quota", 1),
    ],
)
def test_what_kafka_refuses(entity: tuple[tuple[str, str | None], ...], key: str, value: float) -> None:
    with pytest.raises(QuotaError) as refused:
        check_value(make_entity(entity), key, value)
    assert refused.value.code == ErrorCode.INVALID_REQUEST


def test_the_table_survives_a_restart(tmp_path: Path) -> None:
    quotas = ClientQuotas.open(tmp_path)
    quotas.alter([(make_entity([("user", "alice"), ("client-id", None)]), {"producer_byte_rate": 1024.0, "request_percentage": 12.5})])
    reopened = ClientQuotas.open(tmp_path)
    assert reopened.entities() == {(("client-id", None), ("user", "alice")): {"producer_byte_rate": 1024.0, "request_percentage": 12.5}}
    assert reopened.active


def test_connection_creation_rates() -> None:
    quotas = _quotas(((("ip", "10.0.0.1"),), {"connection_creation_rate": 3}))
    rates = ConnectionRates(quotas)
    # With 2 one-second samples the rate is measured over at least one second: 3 pass at once.
    assert [rates.refusal("10.0.0.1", now_ms=0) for _ in range(4)][:3] == [None, None, None]
    assert rates.refusal("10.0.0.1", now_ms=0) is not None
    assert rates.refusal("10.0.0.2", now_ms=0) is None  # no quota for this address
    assert rates.refusal("10.0.0.1", now_ms=2500) is None  # the old samples expired


# --- Over a real socket.


def _alter(client: RawClient, entity: dict[str, str | None], values: dict[str, float | None], validate_only: bool = False) -> tuple[int, str | None]:
    ops = [dict(key=key, value=value or 0.0, remove=value is None) for key, value in values.items()]
    request = make(
        AlterClientQuotasRequest,
        dict(entries=[dict(entity=[dict(entity_type=t, entity_name=n) for t, n in entity.items()], ops=ops)], validate_only=validate_only),
    )
    entry = client.call(request, 1, AlterClientQuotasResponse).entries[0]
    return entry.error_code, entry.error_message


def _describe(client: RawClient, components: list[tuple[str, int, str | None]], strict: bool = False) -> DescribeClientQuotasResponse:
    request = make(DescribeClientQuotasRequest, dict(components=[dict(entity_type=t, match_type=m, match=v) for t, m, v in components], strict=strict))
    return client.call(request, 1, DescribeClientQuotasResponse)


def _described(response: DescribeClientQuotasResponse) -> dict[tuple[tuple[str, str | None], ...], dict[str, float]]:
    return {
        tuple(sorted((part.entity_type, part.entity_name) for part in entry.entity)): {value.key: value.value for value in entry.values}
        for entry in response.entries
    }


def test_alter_and_describe_client_quotas(tmp_path: Path) -> None:
    with running_broker(data_dir=str(tmp_path)) as broker:
        with RawClient(broker.bootstrap_servers) as client:
            assert _alter(client, {"client-id": "app"}, {"producer_byte_rate": 1024}) == (0, None)
            assert _alter(client, {"user": None}, {"consumer_byte_rate": 2048, "request_percentage": 50}) == (0, None)
            assert _alter(client, {"user": "alice", "client-id": None}, {"producer_byte_rate": 512}) == (0, None)
            assert _alter(client, {"user": "bob"}, {"producer_byte_rate": 1}, validate_only=True) == (0, None)
            assert _alter(client, {"user": "bob"}, {"producer_byte_rate": 1.5})[0] == ErrorCode.INVALID_REQUEST
            assert _alter(client, {"ip": "127.0.0.1", "user": "bob"}, {"connection_creation_rate": 1})[0] == ErrorCode.INVALID_REQUEST
            everything = _describe(client, [])
            assert everything.error_code == 0
            assert _described(everything) == {
                (("client-id", "app"),): {"producer_byte_rate": 1024.0},
                (("user", None),): {"consumer_byte_rate": 2048.0, "request_percentage": 50.0},
                (("client-id", None), ("user", "alice")): {"producer_byte_rate": 512.0},
            }
            users = _describe(client, [("user", 2, None)], strict=True)  # any user, and nothing else
            assert _described(users) == {(("user", None),): {"consumer_byte_rate": 2048.0, "request_percentage": 50.0}}
            alice = _describe(client, [("user", 0, "alice")])
            assert list(_described(alice)) == [(("client-id", None), ("user", "alice"))]
            assert _describe(client, [("user", 1, None), ("user", 2, None)]).error_code == ErrorCode.INVALID_REQUEST
            assert _describe(client, [("ip", 2, None), ("user", 2, None)]).entries is None
            assert _alter(client, {"client-id": "app"}, {"producer_byte_rate": None}) == (0, None)
    with running_broker(data_dir=str(tmp_path)) as broker, RawClient(broker.bootstrap_servers) as client:
        assert set(_described(_describe(client, []))) == {(("user", None),), (("client-id", None), ("user", "alice"))}


QUOTA = 40_000  # bytes per second
WINDOW_S = 1
RUN_S = 2.5


def _bound(elapsed: float) -> float:
    """What a client held to QUOTA may move in `elapsed` seconds, generously: the quota for
    the time plus one window (a first burst), three times over."""
    return 3 * QUOTA * (elapsed + 2 * WINDOW_S)


@pytest.fixture
def quota_broker() -> ThreadedBroker:
    with running_broker(data_dir=None, quota_window_num=2, quota_window_size_seconds=WINDOW_S) as broker:
        yield broker


def _produce(topic: str, size: int):
    records = build_records(2, [(None, b"x" * size)])
    return make(ProduceRequest, dict(transactional_id=None, acks=1, timeout_ms=5000, topic_data=[dict(name=topic, partition_data=[dict(index=0, records=records)])]))


def _produce_for(broker: ThreadedBroker, client_id: str, seconds: float) -> tuple[int, int, float]:
    """Produce 10 KB requests back to back for `seconds`: (bytes acknowledged, largest throttle, elapsed)."""
    acknowledged = 0
    throttle = 0
    with RawClient(broker.bootstrap_servers, client_id=client_id) as client:
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            response = client.call(_produce("quota-produce", 10_000), 9, ProduceResponse)
            assert response.responses[0].partition_responses[0].error_code == 0
            acknowledged += 10_000
            throttle = max(throttle, response.throttle_time_ms)
        return acknowledged, throttle, time.monotonic() - started


def test_a_producer_over_its_byte_rate_is_throttled(quota_broker: ThreadedBroker) -> None:
    quota_broker.create_topic("quota-produce")
    with RawClient(quota_broker.bootstrap_servers) as admin:
        assert _alter(admin, {"client-id": "slow-producer"}, {"producer_byte_rate": QUOTA}) == (0, None)
    acknowledged, throttle, elapsed = _produce_for(quota_broker, "slow-producer", RUN_S)
    assert throttle > 0
    assert acknowledged <= _bound(elapsed)
    # Another client id has no quota: the same loop moves far more (the test's own check).
    unthrottled, no_throttle, elapsed = _produce_for(quota_broker, "fast-producer", 1.0)
    assert no_throttle == 0 and unthrottled > acknowledged


def test_a_kafka_python_producer_sees_its_throttle(quota_broker: ThreadedBroker, caplog: pytest.LogCaptureFixture) -> None:
    from kafka import KafkaProducer

    quota_broker.create_topic("quota-kafka-python")
    with RawClient(quota_broker.bootstrap_servers) as admin:
        assert _alter(admin, {"client-id": "kp-slow"}, {"producer_byte_rate": QUOTA}) == (0, None)
    producer = KafkaProducer(bootstrap_servers=quota_broker.bootstrap_servers, client_id="kp-slow", linger_ms=5, batch_size=16_384)
    try:
        started = time.monotonic()
        futures = [producer.send("quota-kafka-python", b"y" * 1000) for _ in range(300)]
        producer.flush(timeout=30)
        elapsed = time.monotonic() - started
        assert all(future.get(timeout=1).offset >= 0 for future in futures)
        assert any("ProduceResponse throttled by broker" in record.getMessage() for record in caplog.records)
        # 300 KB at 40 KB/s, of which a first window's worth passes at once.
        assert elapsed >= 2
    finally:
        producer.close(timeout=5)


def _fetch(topic: str, offset: int):
    partition = dict(partition=0, fetch_offset=offset, partition_max_bytes=64_000, current_leader_epoch=-1, log_start_offset=-1, last_fetched_epoch=-1)
    return make(FetchRequest, dict(replica_id=-1, max_wait_ms=0, min_bytes=1, max_bytes=64_000, isolation_level=0, session_id=0, session_epoch=-1, topics=[dict(topic=topic, partitions=[partition])], forgotten_topics_data=[], rack_id=""))


def test_a_consumer_over_its_byte_rate_is_throttled(quota_broker: ThreadedBroker) -> None:
    quota_broker.create_topic("quota-fetch")
    with RawClient(quota_broker.bootstrap_servers) as producer:
        for _ in range(100):
            producer.call(_produce("quota-fetch", 10_000), 9, ProduceResponse)
    with RawClient(quota_broker.bootstrap_servers) as admin:
        assert _alter(admin, {"client-id": "slow-consumer"}, {"consumer_byte_rate": QUOTA}) == (0, None)
    fetched = 0
    empty_throttled = 0
    with RawClient(quota_broker.bootstrap_servers, client_id="slow-consumer") as consumer:
        started = time.monotonic()
        while time.monotonic() - started < RUN_S:
            # The same ~64 KB again and again: what counts is the bytes answered.
            response = consumer.call(_fetch("quota-fetch", 0), 11, FetchResponse)
            if response.throttle_time_ms > 0 and not response.responses:
                empty_throttled += 1  # Kafka answers a throttled fetch with no data
                continue
            fetched += len(bytes(response.responses[0].partitions[0].records or b""))
        elapsed = time.monotonic() - started
    assert empty_throttled > 0
    assert fetched <= _bound(elapsed)


def test_a_throttled_client_is_not_read_from(quota_broker: ThreadedBroker) -> None:
    """The muted channel: a request sent during the throttle is answered only after it ends."""
    quota_broker.create_topic("quota-mute")
    with RawClient(quota_broker.bootstrap_servers) as admin:
        assert _alter(admin, {"client-id": "muted"}, {"producer_byte_rate": 1000}) == (0, None)
    with RawClient(quota_broker.bootstrap_servers, client_id="muted") as client:
        first = client.call(_produce("quota-mute", 3_000), 9, ProduceResponse)
        assert first.throttle_time_ms >= 1000
        sent = time.monotonic()
        client.call(_produce("quota-mute", 10), 9, ProduceResponse)
        assert time.monotonic() - sent >= first.throttle_time_ms / 1000 * 0.8


def test_an_ip_over_its_connection_creation_rate_is_refused() -> None:
    with running_broker(data_dir=None, quota_window_num=2) as broker:
        with RawClient(broker.bootstrap_servers) as admin:
            assert _alter(admin, {"ip": "127.0.0.1"}, {"connection_creation_rate": 2}) == (0, None)
        refused = 0
        for _ in range(6):
            with RawClient(broker.bootstrap_servers) as client:
                try:
                    client.call(ApiVersionsRequest(), 0, ApiVersionsResponse)
                except ConnectionError:
                    refused += 1
        assert refused >= 3
