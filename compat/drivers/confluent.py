"""confluent-kafka 2.16 (librdkafka) driver (contract in compat/drivers/__init__.py)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource, NewPartitions, NewTopic, ResourceType

from compat.drivers import ADMIN_ALTERED_RETENTION, ADMIN_COMMITTED, ADMIN_CONFIGS, ADMIN_DELETE_BEFORE, ADMIN_PARTITIONS, ADMIN_RECORDS, close_requested, emit, key, main, value


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


def admin(args: argparse.Namespace) -> dict[str, Any]:
    client = AdminClient({"bootstrap.servers": args.bootstrap})

    def done(futures: dict[Any, Any]) -> list[Any]:
        return [future.result(timeout=args.timeout) for future in futures.values()]

    def configs() -> dict[str, list[str]]:
        (described,) = done(client.describe_configs([ConfigResource(ResourceType.TOPIC, args.topic)]))
        return {name: [described[name].value, ConfigSource(described[name].source).name] for name in ADMIN_CONFIGS}

    done(client.create_topics([NewTopic(args.topic, num_partitions=1, replication_factor=1, config=ADMIN_CONFIGS)]))
    created = configs()
    retention = ConfigEntry("retention.ms", ADMIN_ALTERED_RETENTION, incremental_operation=AlterConfigOpType.SET)
    done(client.incremental_alter_configs([ConfigResource(ResourceType.TOPIC, args.topic, incremental_configs=[retention])]))
    altered = configs()
    done(client.create_partitions([NewPartitions(args.topic, ADMIN_PARTITIONS)]))
    (description,) = done(client.describe_topics(TopicCollection([args.topic])))

    producer = Producer({"bootstrap.servers": args.bootstrap})
    for i in range(ADMIN_RECORDS):
        producer.produce(args.topic, key=key(i), value=value(i), partition=0)
    if producer.flush(args.timeout):
        raise KafkaException("records left undelivered")
    (deleted_records,) = done(client.delete_records([TopicPartition(args.topic, 0, ADMIN_DELETE_BEFORE)]))

    cluster = client.describe_cluster().result(timeout=args.timeout)
    group = f"{args.topic}-admin"
    consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": group, "enable.auto.commit": False})
    consumer.commit(offsets=[TopicPartition(args.topic, 0, ADMIN_COMMITTED)], asynchronous=False)
    consumer.close()
    listed = group in {g.group_id for g in client.list_consumer_groups().result(timeout=args.timeout).valid}
    (described_group,) = done(client.describe_consumer_groups([group]))
    done(client.delete_consumer_groups([group]))
    deleted = group not in {g.group_id for g in client.list_consumer_groups().result(timeout=args.timeout).valid}
    return {
        "configs": {"created": created, "altered": altered},
        "partitions": len(description.partitions),
        "low_watermark": deleted_records.low_watermark,
        "brokers": sorted(node.id for node in cluster.nodes),
        "controller": cluster.controller.id,
        # librdkafka names states in capitals (ConsumerGroupState.EMPTY); Kafka says "Empty".
        "group": {"listed": listed, "state": described_group.state.name.capitalize(), "deleted": deleted},
    }


if __name__ == "__main__":
    main({"create": create, "produce": produce, "consume": consume, "member": member, "admin": admin})
