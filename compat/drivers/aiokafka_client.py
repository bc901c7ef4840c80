"""aiokafka 0.14 driver (contract in compat/drivers/__init__.py)."""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any, Callable, Coroutine

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic, RecordsToDelete
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import CommitFailedError, for_code

from compat.drivers import ADMIN_ALTERED_RETENTION, ADMIN_COMMITTED, ADMIN_CONFIGS, ADMIN_DELETE_BEFORE, ADMIN_PARTITIONS, ADMIN_RECORDS, close_requested, emit, key, main, value


async def create(args: argparse.Namespace) -> dict[str, Any]:
    admin = AIOKafkaAdminClient(bootstrap_servers=args.bootstrap)
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(args.topic, args.partitions, 1)])
    finally:
        await admin.close()
    # aiokafka hands back the raw response: per-topic errors are ours to raise.
    for topic, code, *_ in response.topic_errors:
        if code:
            raise for_code(code)(f"CreateTopics {topic}")
    return {"created": True}


async def produce(args: argparse.Namespace) -> dict[str, Any]:
    producer = AIOKafkaProducer(bootstrap_servers=args.bootstrap)
    await producer.start()
    try:
        futures = [
            await producer.send(args.topic, key=key(i).encode(), value=value(i).encode())
            for i in range(args.count)
        ]
        metas = await asyncio.wait_for(asyncio.gather(*futures), args.timeout)
    finally:
        await producer.stop()
    delivered = [[key(i), m.partition, m.offset] for i, m in enumerate(metas)]
    return {"produced": len(delivered), "delivered": delivered}


async def consume(args: argparse.Namespace) -> dict[str, Any]:
    consumer = AIOKafkaConsumer(bootstrap_servers=args.bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        # aiokafka only loads a topic's metadata once it is assigned, so assign the expected
        # partitions and report what the client's metadata says afterwards.
        tps = [TopicPartition(args.topic, p) for p in range(args.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        records = []
        deadline = time.monotonic() + args.timeout
        while any([await consumer.position(tp) < end[tp] for tp in tps]):
            if time.monotonic() > deadline:
                raise TimeoutError(f"read stalled at {[await consumer.position(tp) for tp in tps]}, end {end}")
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records += [[r.partition, r.offset, r.key.decode(), r.value.decode()] for r in batch]
        partitions = consumer.partitions_for_topic(args.topic) or set()
    finally:
        await consumer.stop()
    return {"partitions": len(partitions), "records": records}


class _ReportAssignment(ConsumerRebalanceListener):
    async def on_partitions_revoked(self, revoked: Any) -> None:
        pass

    async def on_partitions_assigned(self, assigned: Any) -> None:
        emit({"event": "assigned", "partitions": sorted(tp.partition for tp in assigned)})


async def member(args: argparse.Namespace) -> dict[str, Any]:
    closing = close_requested()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        group_instance_id=args.instance_id,
        session_timeout_ms=args.session_timeout_ms,
        heartbeat_interval_ms=1000,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        consumer.subscribe([args.topic], listener=_ReportAssignment())
        while not closing.is_set():
            batches = await consumer.getmany(timeout_ms=200)
            records = [[r.partition, r.offset, r.key.decode(), r.value.decode()] for batch in batches.values() for r in batch]
            if not records:
                continue
            try:
                await consumer.commit()
            except CommitFailedError:
                continue  # a rebalance took the partitions: their next owner reads these again
            emit({"event": "records", "records": records})
    finally:
        await consumer.stop()
    return {"closed": True}


# DescribeConfigs config_source ids (Kafka's DescribeConfigsResponse.json), by Kafka's names.
_CONFIG_SOURCES = {1: "DYNAMIC_TOPIC_CONFIG", 2: "DYNAMIC_BROKER_CONFIG", 3: "DYNAMIC_DEFAULT_BROKER_CONFIG", 4: "STATIC_BROKER_CONFIG", 5: "DEFAULT_CONFIG"}


async def admin(args: argparse.Namespace) -> dict[str, Any]:
    client = AIOKafkaAdminClient(bootstrap_servers=args.bootstrap)
    await client.start()
    try:
        response = await client.create_topics([NewTopic(args.topic, 1, 1, topic_configs=ADMIN_CONFIGS)])
        for topic, code, *_ in response.topic_errors:
            if code:
                raise for_code(code)(f"CreateTopics {topic}")

        async def configs() -> dict[str, list[str]]:
            (response,) = await client.describe_configs([ConfigResource(ConfigResourceType.TOPIC, args.topic)])
            ((code, message, _, _, entries),) = response.resources
            if code:
                raise for_code(code)(f"DescribeConfigs: {message}")
            # Entries are (name, value, read_only, config_source, is_sensitive, synonyms) from v1.
            return {entry[0]: [entry[1], _CONFIG_SOURCES[entry[3]]] for entry in entries if entry[0] in ADMIN_CONFIGS}

        created = await configs()
        # aiokafka has only the legacy AlterConfigs, which resets what it does not name:
        # the other override is sent again, as its users must.
        change = {**ADMIN_CONFIGS, "retention.ms": ADMIN_ALTERED_RETENTION}
        (response,) = await client.alter_configs([ConfigResource(ConfigResourceType.TOPIC, args.topic, configs=change)])
        for code, message, *_ in response.resources:
            if code:
                raise for_code(code)(f"AlterConfigs: {message}")
        altered = await configs()
        await client.create_partitions({args.topic: NewPartitions(ADMIN_PARTITIONS)})
        (description,) = await client.describe_topics([args.topic])

        producer = AIOKafkaProducer(bootstrap_servers=args.bootstrap)
        await producer.start()
        try:
            for i in range(ADMIN_RECORDS):
                await producer.send_and_wait(args.topic, key=key(i).encode(), value=value(i).encode(), partition=0)
        finally:
            await producer.stop()
        tp = TopicPartition(args.topic, 0)
        low_watermark = (await client.delete_records({tp: RecordsToDelete(ADMIN_DELETE_BEFORE)}))[tp]

        cluster = await client.describe_cluster()
        group = f"{args.topic}-admin"
        consumer = AIOKafkaConsumer(bootstrap_servers=args.bootstrap, group_id=group, enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign([tp])
            await consumer.commit({tp: ADMIN_COMMITTED})
        finally:
            await consumer.stop()
        listed = group in {name for name, *_ in await client.list_consumer_groups()}
        (response,) = await client.describe_consumer_groups([group])
        (described_group,) = response.groups
    finally:
        await client.close()
    return {
        "configs": {"created": created, "altered": altered},
        "partitions": len(description["partitions"]),
        "low_watermark": low_watermark,
        "brokers": sorted(b["node_id"] for b in cluster["brokers"]),
        "controller": cluster["controller_id"],
        # aiokafka's admin client has no DeleteGroups.
        "group": {"listed": listed, "state": described_group[2], "deleted": None},
    }


def _sync(action: Callable[[argparse.Namespace], Coroutine[Any, Any, dict[str, Any]]]) -> Callable[[argparse.Namespace], dict[str, Any]]:
    return lambda args: asyncio.run(action(args))


if __name__ == "__main__":
    main({"create": _sync(create), "produce": _sync(produce), "consume": _sync(consume), "member": _sync(member), "admin": _sync(admin)})
