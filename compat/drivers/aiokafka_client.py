"""aiokafka 0.14 driver (contract in compat/drivers/__init__.py)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from typing import Any, Callable, Coroutine

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic, RecordsToDelete
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import CommitFailedError, KafkaConnectionError, KafkaError, for_code
from aiokafka.helpers import create_ssl_context

from compat.drivers import (
    ADMIN_SETTLES_WITHIN,
    ADMIN_ALTERED_RETENTION,
    ADMIN_COMMITTED,
    ADMIN_CONFIGS,
    ADMIN_DELETE_BEFORE,
    ADMIN_PARTITIONS,
    ADMIN_RECORDS,
    CODECS,
    TXN_BATCH,
    close_requested,
    emit,
    key,
    main,
    security,
    value,
)


def connection(args: argparse.Namespace) -> dict[str, Any]:
    """Where and how every client of this driver connects (--security, see the contract)."""
    settings: dict[str, Any] = {"bootstrap_servers": args.bootstrap}
    secured = security(args)
    if secured is not None:
        settings["security_protocol"] = secured.protocol
        if secured.tls:
            settings["ssl_context"] = create_ssl_context(cafile=secured.ca, certfile=secured.cert, keyfile=secured.key)
        if secured.sasl:
            settings.update(sasl_mechanism=secured.mechanism, sasl_plain_username=secured.username, sasl_plain_password=secured.password)
    return settings


async def create(args: argparse.Namespace) -> dict[str, Any]:
    admin = AIOKafkaAdminClient(**connection(args))
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


class _BootstrapFailures(logging.Handler):
    """aiokafka 0.14 raises only KafkaConnectionError 'Unable to bootstrap' when every bootstrap
    connection failed, and logs why each one did (a refused SASL login among them, as
    SaslAuthenticationFailed): this keeps the last logged KafkaError, for the driver to report."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.last: KafkaError | None = None

    def emit(self, record: logging.LogRecord) -> None:
        errors = [arg for arg in record.args or () if isinstance(arg, KafkaError)] if isinstance(record.args, tuple) else []
        if errors:
            self.last = errors[-1]


async def _start(client: AIOKafkaProducer) -> None:
    """Start `client`; a bootstrap failure names the error aiokafka logged for it."""
    failures = _BootstrapFailures()
    logger = logging.getLogger("aiokafka")  # aiokafka/client.py logs as "aiokafka"
    logger.addHandler(failures)
    try:
        await client.start()
    except KafkaConnectionError as exc:
        if failures.last is None:
            raise
        raise KafkaConnectionError(f"{exc.args[0]}; aiokafka logged {failures.last}") from failures.last
    finally:
        logger.removeHandler(failures)


async def produce(args: argparse.Namespace) -> dict[str, Any]:
    producer = AIOKafkaProducer(**connection(args))
    await _start(producer)
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
    consumer = AIOKafkaConsumer(**connection(args), group_id=None, enable_auto_commit=False)
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
        **connection(args),
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
    client = AIOKafkaAdminClient(**connection(args))
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
        # As compat.drivers.once_shown: Kafka applies the alter and the growth a moment after answering.
        deadline = time.monotonic() + ADMIN_SETTLES_WITHIN
        while (altered := await configs())["retention.ms"][0] != ADMIN_ALTERED_RETENTION and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await client.create_partitions({args.topic: NewPartitions(ADMIN_PARTITIONS)})
        deadline = time.monotonic() + ADMIN_SETTLES_WITHIN
        while len((description := (await client.describe_topics([args.topic]))[0])["partitions"]) != ADMIN_PARTITIONS and time.monotonic() < deadline:
            await asyncio.sleep(0.1)

        producer = AIOKafkaProducer(**connection(args))
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
        consumer = AIOKafkaConsumer(**connection(args), group_id=group, enable_auto_commit=False)
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


async def idempotent(args: argparse.Namespace) -> dict[str, Any]:
    producer = AIOKafkaProducer(**connection(args), enable_idempotence=True)
    await producer.start()
    delivered = []
    try:
        for i in range(args.count):
            meta = await asyncio.wait_for(producer.send_and_wait(args.topic, key=key(i).encode(), value=value(i).encode(), partition=0), args.timeout)
            delivered.append([key(i), meta.partition, meta.offset])
    finally:
        await producer.stop()
    return {"produced": len(delivered), "delivered": delivered}


async def _read_until_idle(args: argparse.Namespace, topic: str, isolation_level: str = "read_uncommitted") -> list[list[Any]]:
    consumer = AIOKafkaConsumer(**connection(args), enable_auto_commit=False, isolation_level=isolation_level)
    await consumer.start()
    records: list[list[Any]] = []
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            batch = await consumer.getmany(tp, timeout_ms=3000)
            if not batch:
                break
            records += [[m.partition, m.offset, (m.key or b"").decode(), (m.value or b"").decode()] for m in batch[tp]]
    finally:
        await consumer.stop()
    return records


async def _delivered(sent: list[asyncio.Future[Any]]) -> None:
    """Raise the first refusal among a transaction's sends: aiokafka fails only the refused batch's
    future and would still commit the transaction (Kafka's Java producer makes it abortable)."""
    await asyncio.gather(*sent)


async def transactions(args: argparse.Namespace) -> dict[str, Any]:
    producer = AIOKafkaProducer(**connection(args), transactional_id=args.topic + "-txn")
    await producer.start()
    try:
        for prefix, commit in (("a", False), ("c", True)):
            await producer.begin_transaction()
            sent = [await producer.send(args.topic, key=key(i).encode(), value=f"{prefix}{i}".encode(), partition=0)
                    for i in range(args.count)]
            await _delivered(sent)
            await (producer.commit_transaction() if commit else producer.abort_transaction())
    finally:
        await producer.stop()
    return {"committed": await _read_until_idle(args, args.topic, "read_committed"), "uncommitted": await _read_until_idle(args, args.topic)}


async def ctp(args: argparse.Namespace) -> dict[str, Any]:
    group, source = args.topic + "-ctp", TopicPartition(args.topic, 0)
    consumer = AIOKafkaConsumer(**connection(args), group_id=group, enable_auto_commit=False, auto_offset_reset="earliest")
    # Not the group id: both would hash to one partition number of __consumer_offsets and
    # __transaction_state, which several Ottla brokers lead from one broker, so the offsets
    # sent in the transaction would never go to another broker's group coordinator.
    producer = AIOKafkaProducer(**connection(args), transactional_id=group + "-txn")
    await consumer.start()
    await producer.start()
    try:
        consumer.assign([source])
        for commit in (True, False):
            await producer.begin_transaction()
            taken: list[Any] = []
            deadline = time.monotonic() + args.timeout
            while len(taken) < TXN_BATCH:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"read {len(taken)} of {TXN_BATCH} records")
                batch = await consumer.getmany(source, timeout_ms=500, max_records=TXN_BATCH - len(taken))
                taken += batch.get(source, [])
            await _delivered([await producer.send(args.topic + "-out", value=b"out-" + record.value, partition=0)
                              for record in taken])
            await producer.send_offsets_to_transaction({source: taken[-1].offset + 1}, group)
            await (producer.commit_transaction() if commit else producer.abort_transaction())
        committed = await consumer.committed(source)
    finally:
        await producer.stop()
        await consumer.stop()
    output = [v for _, _, _, v in await _read_until_idle(args, args.topic + "-out", "read_committed")]
    return {"committed_offset": committed, "output": output}


async def codecs(args: argparse.Namespace) -> dict[str, Any]:
    results = {}
    for name in CODECS:  # gzip from the standard library, the others through cramjam
        topic = f"{args.topic}-{name}"
        producer = AIOKafkaProducer(**connection(args), compression_type=name)
        await producer.start()
        try:
            for i in range(args.count):
                await producer.send(topic, key=key(i).encode(), value=value(i).encode(), partition=0)
            await producer.flush()
        finally:
            await producer.stop()
        results[name] = await _read_until_idle(args, topic)
    return {"codecs": results, "unavailable": {}}


def _sync(action: Callable[[argparse.Namespace], Coroutine[Any, Any, dict[str, Any]]]) -> Callable[[argparse.Namespace], dict[str, Any]]:
    return lambda args: asyncio.run(action(args))


if __name__ == "__main__":
    main({
        "create": _sync(create), "produce": _sync(produce), "consume": _sync(consume), "member": _sync(member), "admin": _sync(admin),
        "idempotent": _sync(idempotent), "transactions": _sync(transactions), "ctp": _sync(ctp), "codecs": _sync(codecs),
    })
