"""kafka-python 3.x driver (contract in compat/drivers/__init__.py)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from kafka import ConsumerRebalanceListener, KafkaAdminClient, KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka.admin import AlterConfigOp, ConfigResource, ConfigResourceType, NewPartitions, NewTopic
from kafka.errors import CommitFailedError

from compat.drivers import ADMIN_ALTERED_RETENTION, ADMIN_COMMITTED, ADMIN_CONFIGS, ADMIN_DELETE_BEFORE, ADMIN_PARTITIONS, ADMIN_RECORDS, close_requested, emit, key, main, value


def create(args: argparse.Namespace) -> dict[str, Any]:
    admin = KafkaAdminClient(bootstrap_servers=args.bootstrap)
    try:
        admin.create_topics(
            {args.topic: {"num_partitions": args.partitions, "replication_factor": 1}},
            wait_for_metadata=True,
        )
    finally:
        admin.close()
    return {"created": True}


def produce(args: argparse.Namespace) -> dict[str, Any]:
    # Stock defaults: idempotence on, acks=all (KIP-679), so InitProducerId is exercised too.
    producer = KafkaProducer(bootstrap_servers=args.bootstrap)
    try:
        futures = [
            producer.send(args.topic, key=key(i).encode(), value=value(i).encode())
            for i in range(args.count)
        ]
        producer.flush(timeout=args.timeout)
        delivered = []
        for i, future in enumerate(futures):
            meta = future.get(timeout=args.timeout)
            delivered.append([key(i), meta.partition, meta.offset])
    finally:
        producer.close()
    return {"produced": len(delivered), "delivered": delivered}


def consume(args: argparse.Namespace) -> dict[str, Any]:
    consumer = KafkaConsumer(bootstrap_servers=args.bootstrap, group_id=None, enable_auto_commit=False)
    try:
        partitions = consumer.partitions_for_topic(args.topic) or set()
        if not partitions:
            return {"partitions": 0, "records": []}  # the scenario names the missing topic
        tps = [TopicPartition(args.topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        records = []
        deadline = time.monotonic() + args.timeout
        while any(consumer.position(tp) < end[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise TimeoutError(f"read stalled at {[consumer.position(tp) for tp in tps]}, end {end}")
            for batch in consumer.poll(timeout_ms=500).values():
                records += [[r.partition, r.offset, r.key.decode(), r.value.decode()] for r in batch]
    finally:
        consumer.close()
    return {"partitions": len(partitions), "records": records}


class _ReportAssignment(ConsumerRebalanceListener):
    def on_partitions_revoked(self, revoked: Any) -> None:
        pass

    def on_partitions_assigned(self, assigned: Any) -> None:
        emit({"event": "assigned", "partitions": sorted(tp.partition for tp in assigned)})


def member(args: argparse.Namespace) -> dict[str, Any]:
    closing = close_requested()
    consumer = KafkaConsumer(
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        group_instance_id=args.instance_id,
        session_timeout_ms=args.session_timeout_ms,
        heartbeat_interval_ms=1000,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    try:
        consumer.subscribe([args.topic], listener=_ReportAssignment())
        while not closing.is_set():
            batches = consumer.poll(timeout_ms=200)
            records = [[r.partition, r.offset, r.key.decode(), r.value.decode()] for batch in batches.values() for r in batch]
            if not records:
                continue
            try:
                consumer.commit()
            except CommitFailedError:
                continue  # a rebalance took the partitions: their next owner reads these again
            emit({"event": "records", "records": records})
    finally:
        consumer.close()
    return {"closed": True}


def admin(args: argparse.Namespace) -> dict[str, Any]:
    client = KafkaAdminClient(bootstrap_servers=args.bootstrap)
    try:
        client.create_topics([NewTopic(args.topic, 1, 1, topic_configs=ADMIN_CONFIGS)])

        def configs() -> dict[str, list[str]]:
            (described,) = client.describe_configs([ConfigResource(ConfigResourceType.TOPIC, args.topic)], config_filter="all")["topic"].values()
            return {name: [described[name]["value"], described[name]["config_source"]] for name in ADMIN_CONFIGS}

        created = configs()
        change = ConfigResource(ConfigResourceType.TOPIC, args.topic, configs={"retention.ms": (AlterConfigOp.SET, ADMIN_ALTERED_RETENTION)})
        altered_result = client.alter_configs([change], incremental=True)["topic"][args.topic]
        if altered_result != "OK":
            raise RuntimeError(f"IncrementalAlterConfigs: {altered_result}")
        altered = configs()
        client.create_partitions({args.topic: NewPartitions(ADMIN_PARTITIONS)})
        partitions = len(client.describe_topics([args.topic])[0]["partitions"])

        producer = KafkaProducer(bootstrap_servers=args.bootstrap)
        for i in range(ADMIN_RECORDS):
            producer.send(args.topic, key=key(i).encode(), value=value(i).encode(), partition=0)
        producer.flush(timeout=args.timeout)
        producer.close()
        tp = TopicPartition(args.topic, 0)
        low_watermark = client.delete_records({tp: ADMIN_DELETE_BEFORE})[tp]["low_watermark"]

        cluster = client.describe_cluster()
        group = f"{args.topic}-admin"
        consumer = KafkaConsumer(bootstrap_servers=args.bootstrap, group_id=group, enable_auto_commit=False)
        consumer.assign([tp])
        consumer.commit({tp: OffsetAndMetadata(ADMIN_COMMITTED, "", -1)})
        consumer.close()
        listed = group in {g["group_id"] for g in client.list_groups()}
        state = client.describe_groups([group])[group]["group_state"]
        outcome = client.delete_groups([group])[group]
        if outcome != "OK":
            raise RuntimeError(f"DeleteGroups {group}: {outcome}")
        deleted = group not in {g["group_id"] for g in client.list_groups()}
    finally:
        client.close()
    return {
        "configs": {"created": created, "altered": altered},
        "partitions": partitions,
        "low_watermark": low_watermark,
        "brokers": sorted(b["broker_id"] for b in cluster["brokers"]),
        "controller": cluster["controller_id"],
        "group": {"listed": listed, "state": state, "deleted": deleted},
    }


if __name__ == "__main__":
    main({"create": create, "produce": produce, "consume": consume, "member": member, "admin": admin})
