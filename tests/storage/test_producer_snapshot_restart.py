"""What a broker knows of its producers after a restart, from Kafka's binary snapshot, as the
reference Kafka 4.4 answers after a clean restart: a snapshot keeps each producer's last batch
only, so a retry of that batch is a duplicate (answered with its first offsets) and a retry of an
older one is OUT_OF_ORDER_SEQUENCE_NUMBER. A snapshot Kafka wrote is read as Kafka reads it; an
earlier Ottla's JSON snapshot is unreadable, as to Kafka, so it goes and the producers are
rebuilt from the log, every batch of theirs in it replayed (the last five kept)."""

from __future__ import annotations

import pathlib
import time
from typing import Any

from kafka_wire import WireClient
from test_producer_snapshot_format import KAFKA_SNAPSHOT

from ottla.storage.producer_snapshot import decode_snapshot, encode_snapshot
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.records import Record, build_batch

BATCHES = ((0, 2), (2, 1), (3, 2))  # (first sequence, records): offsets 0-1, 2, 3-4


def _produce(client: WireClient, producer_id: int, sequence: int, count: int) -> tuple[int, int]:
    now = int(time.time() * 1000)
    records = [Record(i, now, b"k", b"v") for i in range(count)]
    batch = build_batch(records, producer_id=producer_id, producer_epoch=0, base_sequence=sequence)
    answer = client.call(ApiKey.PRODUCE, 9, {"acks": -1, "timeout_ms": 5000, "transactional_id": None, "topic_data": [
        {"name": "t", "partition_data": [{"index": 0, "records": batch}]}]})
    partition = answer["responses"][0]["partition_responses"][0]
    return partition["error_code"], partition["base_offset"]


def _create_topic(client: WireClient) -> None:
    answer = client.call(ApiKey.CREATE_TOPICS, 5, {"topics": [{"name": "t", "num_partitions": 1, "replication_factor": 1,
                                                              "assignments": [], "configs": []}], "timeout_ms": 10000, "validate_only": False})
    assert answer["topics"][0]["error_code"] == ErrorCode.NONE


def _idempotent_producer(client: WireClient) -> int:
    answer = client.call(ApiKey.INIT_PRODUCER_ID, 4, {"transactional_id": None, "transaction_timeout_ms": 60000,
                                                      "producer_id": -1, "producer_epoch": -1})
    assert answer["error_code"] == ErrorCode.NONE
    producer_id: int = answer["producer_id"]
    return producer_id


def _producers(client: WireClient) -> dict[int, dict[str, Any]]:
    answer = client.call(ApiKey.DESCRIBE_PRODUCERS, 0, {"topics": [{"name": "t", "partition_indexes": [0]}]})
    return {p["producer_id"]: p for p in answer["topics"][0]["partitions"][0]["active_producers"]}


def _write_batches(data: pathlib.Path) -> int:
    with running_broker(data_dir=str(data)) as broker:
        client = WireClient(broker.bootstrap_servers)
        _create_topic(client)
        producer_id = _idempotent_producer(client)
        for sequence, count in BATCHES:
            assert _produce(client, producer_id, sequence, count)[0] == ErrorCode.NONE
        client.close()
    return producer_id


def test_after_a_clean_restart_only_each_producers_last_batch_is_a_duplicate(tmp_path: pathlib.Path) -> None:
    producer_id = _write_batches(tmp_path)
    with running_broker(data_dir=str(tmp_path)) as broker:
        client = WireClient(broker.bootstrap_servers)
        assert _produce(client, producer_id, 0, 2) == (ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, -1)
        assert _produce(client, producer_id, 2, 1) == (ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, -1)
        assert _produce(client, producer_id, 3, 2) == (ErrorCode.NONE, 3)
        client.close()


def test_an_earlier_ottlas_json_snapshot_goes_and_the_producer_is_rebuilt_from_the_log(tmp_path: pathlib.Path) -> None:
    producer_id = _write_batches(tmp_path)
    (snapshot,) = (tmp_path / "t-0").glob("*.snapshot")
    snapshot.write_bytes(b'{"producers":{"%d":[0,null,1700000000000,[[3,4,3,4,1700000000000]],-1]},"aborted":[]}' % producer_id)
    with running_broker(data_dir=str(tmp_path)) as broker:
        client = WireClient(broker.bootstrap_servers)
        assert _producers(client)[producer_id]["last_sequence"] == 4
        # Every batch replayed from the log is known again, the first too.
        assert _produce(client, producer_id, 0, 2) == (ErrorCode.NONE, 0)
        assert _produce(client, producer_id, 5, 1) == (ErrorCode.NONE, 5)
        client.close()
    # The load wrote one at the log end it rebuilt (Kafka's rebuildProducerState), the close another.
    taken_at_load, taken_at_close = sorted((tmp_path / "t-0").glob("*.snapshot"))
    assert taken_at_load.name == "00000000000000000005.snapshot" and taken_at_load.read_bytes()[:2] == b"\x00\x01"
    assert taken_at_close.name == "00000000000000000006.snapshot" and taken_at_close.read_bytes()[:2] == b"\x00\x01"


def _stamped_now(snapshot: bytes) -> bytes:
    """The snapshot with its producers' timestamps made now: the loading broker drops those past
    producer.id.expiration.ms (a day), as Kafka's ProducerStateManager.loadFromSnapshot."""
    state = decode_snapshot(snapshot)
    for entry in state.producers.values():
        entry.last_timestamp = int(time.time() * 1000)
    return encode_snapshot(state)


def test_a_broker_restarted_on_a_snapshot_kafka_wrote_knows_its_producers(tmp_path: pathlib.Path) -> None:
    with running_broker(data_dir=str(tmp_path)) as broker:
        client = WireClient(broker.bootstrap_servers)
        _create_topic(client)
        for _ in range(8):  # the reference's log end: its snapshot's offset
            assert _produce(client, -1, -1, 1)[0] == ErrorCode.NONE
        client.close()
    (tmp_path / "t-0" / "00000000000000000008.snapshot").write_bytes(_stamped_now(KAFKA_SNAPSHOT))
    with running_broker(data_dir=str(tmp_path)) as broker:
        client = WireClient(broker.bootstrap_servers)
        producers = _producers(client)
        assert {pid: (p["last_sequence"], p["coordinator_epoch"], p["current_txn_start_offset"]) for pid, p in producers.items()} == {
            0: (4, -1, -1), 1: (0, 0, -1), 2: (0, -1, 7)
        }
        assert _produce(client, 0, 3, 2) == (ErrorCode.NONE, 3)
        assert _produce(client, 0, 2, 1) == (ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, -1)
        client.close()
