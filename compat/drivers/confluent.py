"""confluent-kafka 2.16 (librdkafka) driver (contract in compat/drivers/__init__.py)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from compat.drivers import close_requested, emit, key, main, value


def create(args: argparse.Namespace) -> dict[str, Any]:
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    futures = admin.create_topics([NewTopic(args.topic, num_partitions=args.partitions, replication_factor=1)])
    futures[args.topic].result(timeout=args.timeout)
    return {"created": True}


def produce(args: argparse.Namespace) -> dict[str, Any]:
    producer = Producer({"bootstrap.servers": args.bootstrap})
    delivered: dict[str, list[Any]] = {}
    errors = []

    def on_delivery(err: Any, msg: Any) -> None:
        if err is not None:
            errors.append(f"{msg.key()!r}: {err}")
        else:
            delivered[msg.key().decode()] = [msg.key().decode(), msg.partition(), msg.offset()]

    for i in range(args.count):
        producer.produce(args.topic, key=key(i), value=value(i), on_delivery=on_delivery)
        producer.poll(0)
    left = producer.flush(args.timeout)
    if errors or left:
        raise KafkaException(f"{left} undelivered; errors: {errors[:3]}")
    rows = [delivered[key(i)] for i in range(args.count)]
    return {"produced": len(rows), "delivered": rows}


def consume(args: argparse.Namespace) -> dict[str, Any]:
    # confluent-kafka refuses a Consumer without group.id even for assign(); no offsets are
    # committed, but librdkafka still looks up the group coordinator in the background.
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": "ottla-compat-assign-only",
        "enable.auto.commit": False,
    })
    try:
        topic_md = consumer.list_topics(args.topic, timeout=args.timeout).topics[args.topic]
        if topic_md.error is not None:
            raise KafkaException(topic_md.error)
        partitions = sorted(topic_md.partitions)
        consumer.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in partitions])
        end = {
            p: consumer.get_watermark_offsets(TopicPartition(args.topic, p), timeout=args.timeout, cached=False)[1]
            for p in partitions
        }
        position = {p: 0 for p in partitions}
        records = []
        deadline = time.monotonic() + args.timeout
        while any(position[p] < end[p] for p in partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"read stalled at {position}, end {end}")
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            partition, offset = msg.partition(), msg.offset()
            assert partition is not None and offset is not None  # set on every fetched message
            records.append([partition, offset, (msg.key() or b"").decode(), (msg.value() or b"").decode()])
            position[partition] = offset + 1
    finally:
        consumer.close()
    return {"partitions": len(partitions), "records": records}


def member(args: argparse.Namespace) -> dict[str, Any]:
    closing = close_requested()
    config = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "session.timeout.ms": args.session_timeout_ms,
        "heartbeat.interval.ms": 1000,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    }
    if args.instance_id:
        config["group.instance.id"] = args.instance_id
    consumer = Consumer(config)

    def on_assign(_: Any, partitions: list[TopicPartition]) -> None:
        emit({"event": "assigned", "partitions": sorted(tp.partition for tp in partitions)})

    try:
        consumer.subscribe([args.topic], on_assign=on_assign)
        while not closing.is_set():
            messages = consumer.consume(num_messages=500, timeout=0.2)
            records = []
            for msg in messages:
                if msg.error():
                    raise KafkaException(msg.error())
                records.append([msg.partition(), msg.offset(), (msg.key() or b"").decode(), (msg.value() or b"").decode()])
            if not records:
                continue
            try:
                consumer.commit(asynchronous=False)
            except KafkaException:
                continue  # a rebalance took the partitions: their next owner reads these again
            emit({"event": "records", "records": records})
    finally:
        consumer.close()
    return {"closed": True}


if __name__ == "__main__":
    main({"create": create, "produce": produce, "consume": consume, "member": member})
