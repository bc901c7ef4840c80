"""KIP-467 over a socket: a stock producer (librdkafka) fails only the records the broker
names in `record_errors`, and the rest of their batch with its "invalid record in the same
batch" error, as it does against Kafka 4.4."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Producer

from ottla.testing import ThreadedBroker

HOUR = 3_600_000


def _produce(bootstrap: str, topic: str, records: list[tuple[bytes | None, int]]) -> list[str]:
    """Each record's delivery report: its error's name, or "offset <n>"."""
    reports: dict[int, str] = {}

    def report(index: int) -> object:
        return lambda error, message: reports.__setitem__(index, error.name() if error else f"offset {message.offset()}")

    # One batch: the whole request within one linger.
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 200, "enable.idempotence": False})
    for index, (key, timestamp) in enumerate(records):
        producer.produce(topic, b"v%d" % index, key=key, partition=0, timestamp=timestamp, on_delivery=report(index))
    assert producer.flush(20) == 0
    return [reports[index] for index in range(len(records))]


def test_librdkafka_fails_only_the_records_the_broker_names(ottla_broker_fn: ThreadedBroker) -> None:
    topic = f"record-errors-{uuid.uuid4().hex[:8]}"
    ottla_broker_fn.create_topic(topic, 1, cleanup_policy="compact")
    now = int(time.time() * 1000)
    # A record without a key on a compacted topic, and one stamped two hours ahead.
    records: list[tuple[bytes | None, int]] = [(b"a", now), (None, now), (b"c", now), (b"d", now + 2 * HOUR)]
    bystander = "_INVALID_DIFFERENT_RECORD"  # librdkafka's "an invalid record in the same batch"
    assert _produce(ottla_broker_fn.bootstrap_servers, topic, records) == [bystander, "INVALID_RECORD", bystander, "INVALID_RECORD"]
    # The bystanders sent again on their own are written.
    assert _produce(ottla_broker_fn.bootstrap_servers, topic, [(b"a", now), (b"c", now)]) == ["offset 0", "offset 1"]
