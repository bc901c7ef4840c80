"""kafka-python 3.x driver (contract in compat/drivers/__init__.py)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from compat.drivers import key, main, value


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


if __name__ == "__main__":
    main({"create": create, "produce": produce, "consume": consume})
