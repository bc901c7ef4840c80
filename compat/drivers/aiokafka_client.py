"""aiokafka 0.14 driver (contract in compat/drivers/__init__.py)."""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any, Callable, Coroutine

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import CommitFailedError, for_code

from compat.drivers import close_requested, emit, key, main, value


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


def _sync(action: Callable[[argparse.Namespace], Coroutine[Any, Any, dict[str, Any]]]) -> Callable[[argparse.Namespace], dict[str, Any]]:
    return lambda args: asyncio.run(action(args))


if __name__ == "__main__":
    main({"create": _sync(create), "produce": _sync(produce), "consume": _sync(consume), "member": _sync(member)})
