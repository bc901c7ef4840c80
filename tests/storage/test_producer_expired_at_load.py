"""A producer already past producer.id.expiration.ms when its log's snapshot loads is forgotten
then, as Kafka 4.4's ProducerStateManager.loadFromSnapshot drops it (isProducerExpired: silent
that long and no transaction open), not at the first periodic expiry up to
producer.id.expiration.check.interval.ms later. The reference Kafka 4.4, restarted cleanly with
producer.id.expiration.ms=60000 after an idempotent batch stamped ten minutes earlier, listed no
producer in DescribeProducers and appended a retry of that batch at a new offset. The batches
replayed from the log after the snapshot are kept until the periodic expiry, as there."""

from __future__ import annotations

import pathlib
import time

from kafka_wire import WireClient
from test_producer_snapshot_format import KAFKA_SNAPSHOT
from test_producer_snapshot_restart import _create_topic, _idempotent_producer, _producers

from ottla.storage import LogConfig, PartitionLog
from ottla.storage.handles import FileHandles
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.records import Record, build_batch

EXPIRATION_MS = 60000


def _now_ms() -> int:
    return int(time.time() * 1000)


def _produce(client: WireClient, producer_id: int, sequence: int, timestamp: int) -> tuple[int, int]:
    batch = build_batch([Record(0, timestamp, b"k", b"v")], producer_id=producer_id, producer_epoch=0, base_sequence=sequence)
    answer = client.call(ApiKey.PRODUCE, 9, {"acks": -1, "timeout_ms": 5000, "transactional_id": None, "topic_data": [
        {"name": "t", "partition_data": [{"index": 0, "records": batch}]}]})
    partition = answer["responses"][0]["partition_responses"][0]
    return partition["error_code"], partition["base_offset"]


def test_a_producer_expired_when_the_snapshot_loads_is_forgotten_and_its_retry_appended(tmp_path: pathlib.Path) -> None:
    stale_time = _now_ms() - 10 * EXPIRATION_MS
    with running_broker(data_dir=str(tmp_path), producer_id_expiration_ms=EXPIRATION_MS) as broker:
        client = WireClient(broker.bootstrap_servers)
        _create_topic(client)
        stale, recent = _idempotent_producer(client), _idempotent_producer(client)
        assert _produce(client, stale, 0, stale_time) == (ErrorCode.NONE, 0)
        assert _produce(client, recent, 0, _now_ms()) == (ErrorCode.NONE, 1)
        assert set(_producers(client)) == {stale, recent}  # no periodic expiry ran yet
        client.close()
    with running_broker(data_dir=str(tmp_path), producer_id_expiration_ms=EXPIRATION_MS) as broker:
        client = WireClient(broker.bootstrap_servers)
        assert set(_producers(client)) == {recent}
        assert _produce(client, stale, 0, stale_time) == (ErrorCode.NONE, 2)  # not a duplicate any more
        assert _produce(client, recent, 0, _now_ms()) == (ErrorCode.NONE, 1)  # still one
        client.close()


def test_of_a_snapshot_kafka_wrote_only_the_producer_with_a_transaction_open_outlives_the_expiration(tmp_path: pathlib.Path) -> None:
    """KAFKA_SNAPSHOT's producers 0 and 1 are idle; 2, stamped in 2023, holds a transaction open."""
    with running_broker(data_dir=str(tmp_path)) as broker:
        client = WireClient(broker.bootstrap_servers)
        _create_topic(client)
        for _ in range(8):  # the reference's log end: its snapshot's offset
            assert _produce(client, -1, -1, _now_ms())[0] == ErrorCode.NONE
        client.close()
    (tmp_path / "t-0" / "00000000000000000008.snapshot").write_bytes(KAFKA_SNAPSHOT)
    with running_broker(data_dir=str(tmp_path), producer_id_expiration_ms=1) as broker:
        client = WireClient(broker.bootstrap_servers)
        assert {pid: p["current_txn_start_offset"] for pid, p in _producers(client).items()} == {2: 7}
        client.close()


def test_batches_replayed_after_the_snapshot_wait_for_the_periodic_expiry(tmp_path: pathlib.Path) -> None:
    """A crash after a roll: the producer in the roll's snapshot goes at load, the one whose batch
    comes after it is replayed and kept (Kafka's rebuildProducerState appends it unfiltered)."""
    def open_log(recovery_point: int = 0) -> PartitionLog:
        return PartitionLog(
            tmp_path / "t-0", LogConfig.from_overrides({}), FileHandles(64), producer_expiration_ms=EXPIRATION_MS, recovery_point=recovery_point
        )

    def batch(producer_id: int) -> bytes:
        return build_batch([Record(0, 1000, b"k", b"v")], producer_id=producer_id, producer_epoch=0, base_sequence=0)

    crashed = open_log()
    crashed.append(batch(7))
    crashed.roll()  # takes the snapshot at offset 1
    crashed.append(batch(8))
    assert set(crashed.producer_state.producers) == {7, 8}
    # `crashed` never closed: no snapshot at its log end. Its roll's flush checkpointed, the segment after it is recovered
    # from the roll's snapshot (from an older recovery point Kafka's LogLoader would recover, and replay, the first one too).
    reopened = open_log(crashed.recovery_point)
    assert set(reopened.producer_state.producers) == {8}
    reopened.close()
