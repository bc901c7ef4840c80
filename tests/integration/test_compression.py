"""Compressed batches from stock clients: stored as sent, or recompressed when the topic's
compression.type names another codec (Kafka's LogValidator), and read back intact."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from ottla.storage import FileRegion
from ottla.wire.records import Compression, scan_batches

CODECS = {"gzip": Compression.GZIP, "snappy": Compression.SNAPPY, "lz4": Compression.LZ4, "zstd": Compression.ZSTD}


def _stored_codecs(broker, topic: str) -> list[Compression]:
    """The codec of every batch as it sits in the partition log (read on the broker's loop)."""
    log = broker.broker.storage.partition(topic, 0)
    result = log.read(0, 1 << 24)
    data = b"".join(chunk.read() if isinstance(chunk, FileRegion) else bytes(chunk) for chunk in result.chunks)
    return [header.compression for header, _ in scan_batches(data)]


def _values(bootstrap: str, topic: str) -> list[bytes]:
    """librdkafka reads every codec (kafka-python here has only gzip's library)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader", "enable.partition.eof": True})
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    values = []
    while True:
        message = consumer.poll(10)
        assert message is not None, "no end of partition within 10 s"
        if message.error():
            break  # partition EOF
        values.append(message.value())
    consumer.close()
    return values


def _produce(bootstrap: str, topic: str, codec: str, count: int = 20) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "compression.type": codec, "linger.ms": 50})
    for i in range(count):
        producer.produce(topic, b"value-%d" % i, partition=0)
    assert producer.flush(10) == 0


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_batches_are_stored_as_the_producer_compressed_them(ottla_broker_fn, codec: str) -> None:
    topic = f"codec-{uuid.uuid4().hex[:8]}"
    ottla_broker_fn.create_topic(topic, 1)
    _produce(ottla_broker_fn.bootstrap_servers, topic, codec)
    assert set(_stored_codecs(ottla_broker_fn, topic)) == {CODECS[codec]}
    assert _values(ottla_broker_fn.bootstrap_servers, topic) == [b"value-%d" % i for i in range(20)]


def test_a_topic_compression_type_recompresses(ottla_broker_fn) -> None:
    topic = f"codec-{uuid.uuid4().hex[:8]}"
    ottla_broker_fn.create_topic(topic, 1, compression_type="zstd")
    _produce(ottla_broker_fn.bootstrap_servers, topic, "gzip", 10)
    _produce(ottla_broker_fn.bootstrap_servers, topic, "none", 10)
    assert set(_stored_codecs(ottla_broker_fn, topic)) == {Compression.ZSTD}
    assert _values(ottla_broker_fn.bootstrap_servers, topic) == [b"value-%d" % i for i in range(10)] * 2


def test_max_decompressed_message_bytes_refuses_large_compressed_records(ottla_broker_fn) -> None:
    """Kafka 4.4's max.decompressed.message.bytes: a compressed record whose body is larger than
    the limit is INVALID_RECORD; the same record uncompressed is bounded by max.message.bytes only."""
    topic = f"codec-{uuid.uuid4().hex[:8]}"
    ottla_broker_fn.create_topic(topic, 1, max_decompressed_message_bytes="512")
    results = {}
    for codec in ("gzip", "none"):
        producer = Producer({"bootstrap.servers": ottla_broker_fn.bootstrap_servers, "compression.type": codec, "retries": 0})
        for value in (b"small", b"x" * 4000):
            producer.produce(topic, value, partition=0,
                             on_delivery=lambda err, msg, key=(codec, len(value)): results.__setitem__(key, err))
            assert producer.flush(10) == 0
    assert results[("gzip", 5)] is None and results[("none", 5)] is None and results[("none", 4000)] is None
    assert results[("gzip", 4000)].code() == KafkaError.INVALID_RECORD
    assert _values(ottla_broker_fn.bootstrap_servers, topic) == [b"small", b"small", b"x" * 4000]
