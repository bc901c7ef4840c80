"""kafka-python 3.x driver (contract in compat/drivers/__init__.py)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from kafka import ConsumerRebalanceListener, KafkaAdminClient, KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka.admin import AlterConfigOp, ConfigResource, ConfigResourceType, NewPartitions, NewTopic
from kafka.errors import CommitFailedError

from compat.drivers import (
    ADMIN_ALTERED_RETENTION,
    ADMIN_COMMITTED,
    ADMIN_CONFIGS,
    ADMIN_DELETE_BEFORE,
    ADMIN_PARTITIONS,
    ADMIN_RECORDS,
    CODECS,
    TXN_BATCH,
    close_requested,
    once_shown,
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
        settings.update(security_protocol=secured.protocol, ssl_cafile=secured.ca, ssl_certfile=secured.cert, ssl_keyfile=secured.key)
        if secured.sasl:
            settings.update(sasl_mechanism=secured.mechanism, sasl_plain_username=secured.username, sasl_plain_password=secured.password)
    return settings


def create(args: argparse.Namespace) -> dict[str, Any]:
    admin = KafkaAdminClient(**connection(args))
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
    producer = KafkaProducer(**connection(args))
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
    consumer = KafkaConsumer(**connection(args), group_id=None, enable_auto_commit=False)
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
        **connection(args),
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
    client = KafkaAdminClient(**connection(args))
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
        altered = once_shown(configs, lambda described: described["retention.ms"][0] == ADMIN_ALTERED_RETENTION)
        client.create_partitions({args.topic: NewPartitions(ADMIN_PARTITIONS)})
        partitions = once_shown(lambda: len(client.describe_topics([args.topic])[0]["partitions"]), lambda n: n == ADMIN_PARTITIONS)

        producer = KafkaProducer(**connection(args))
        for i in range(ADMIN_RECORDS):
            producer.send(args.topic, key=key(i).encode(), value=value(i).encode(), partition=0)
        producer.flush(timeout=args.timeout)
        producer.close()
        tp = TopicPartition(args.topic, 0)
        low_watermark = client.delete_records({tp: ADMIN_DELETE_BEFORE})[tp]["low_watermark"]

        cluster = client.describe_cluster()
        group = f"{args.topic}-admin"
        consumer = KafkaConsumer(**connection(args), group_id=group, enable_auto_commit=False)
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


def idempotent(args: argparse.Namespace) -> dict[str, Any]:
    producer = KafkaProducer(**connection(args), enable_idempotence=True, retries=20)
    delivered = []
    try:
        for i in range(args.count):
            meta = producer.send(args.topic, key=key(i).encode(), value=value(i).encode(), partition=0).get(timeout=args.timeout)
            delivered.append([key(i), meta.partition, meta.offset])
    finally:
        producer.close()
    return {"produced": len(delivered), "delivered": delivered}


def _read_until_idle(args: argparse.Namespace, topic: str, isolation_level: str = "read_uncommitted") -> list[list[Any]]:
    consumer = KafkaConsumer(
        **connection(args), group_id=None, enable_auto_commit=False, isolation_level=isolation_level, consumer_timeout_ms=3000
    )
    try:
        consumer.assign([TopicPartition(topic, 0)])
        consumer.seek_to_beginning()
        return [[m.partition, m.offset, (m.key or b"").decode(), (m.value or b"").decode()] for m in consumer]
    finally:
        consumer.close()


def transactions(args: argparse.Namespace) -> dict[str, Any]:
    producer = KafkaProducer(**connection(args), transactional_id=args.topic + "-txn")
    try:
        producer.init_transactions()
        for prefix, commit in (("a", False), ("c", True)):
            producer.begin_transaction()
            for i in range(args.count):
                producer.send(args.topic, key=key(i).encode(), value=f"{prefix}{i}".encode(), partition=0)
            producer.flush(timeout=args.timeout)
            producer.commit_transaction() if commit else producer.abort_transaction()
    finally:
        producer.close()
    return {"committed": _read_until_idle(args, args.topic, "read_committed"), "uncommitted": _read_until_idle(args, args.topic)}


def ctp(args: argparse.Namespace) -> dict[str, Any]:
    group, source = args.topic + "-ctp", TopicPartition(args.topic, 0)
    consumer = KafkaConsumer(**connection(args), group_id=group, enable_auto_commit=False, auto_offset_reset="earliest")
    # Not the group id: both would hash to one partition number of __consumer_offsets and
    # __transaction_state, which several Ottla brokers lead from one broker, so the offsets
    # sent in the transaction would never go to another broker's group coordinator.
    producer = KafkaProducer(**connection(args), transactional_id=group + "-txn")
    try:
        consumer.assign([source])
        producer.init_transactions()
        for commit in (True, False):
            producer.begin_transaction()
            taken: list[Any] = []
            deadline = time.monotonic() + args.timeout
            while len(taken) < TXN_BATCH:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"read {len(taken)} of {TXN_BATCH} records")
                for records in consumer.poll(timeout_ms=500, max_records=TXN_BATCH - len(taken)).values():
                    taken += records
            for record in taken:
                producer.send(args.topic + "-out", value=b"out-" + record.value, partition=0)
            producer.send_offsets_to_transaction({source: OffsetAndMetadata(taken[-1].offset + 1, "", -1)}, group)
            producer.commit_transaction() if commit else producer.abort_transaction()
        committed = consumer.committed(source)
    finally:
        producer.close()
        consumer.close()
    output = [v for _, _, _, v in _read_until_idle(args, args.topic + "-out", "read_committed")]
    return {"committed_offset": committed, "output": output}


def codecs(args: argparse.Namespace) -> dict[str, Any]:
    from kafka import codec

    available = {"gzip": codec.has_gzip(), "snappy": codec.has_snappy(), "lz4": codec.has_lz4(), "zstd": codec.has_zstd()}
    results, unavailable = {}, {}
    for name in CODECS:
        if not available[name]:
            unavailable[name] = "its Python library is not installed (kafka-python does not use cramjam)"
            continue
        topic = f"{args.topic}-{name}"
        producer = KafkaProducer(**connection(args), compression_type=name)
        try:
            for i in range(args.count):
                producer.send(topic, key=key(i).encode(), value=value(i).encode(), partition=0)
            producer.flush(timeout=args.timeout)
        finally:
            producer.close()
        results[name] = _read_until_idle(args, topic)
    return {"codecs": results, "unavailable": unavailable}


if __name__ == "__main__":
    main({
        "create": create, "produce": produce, "consume": consume, "member": member, "admin": admin,
        "idempotent": idempotent, "transactions": transactions, "ctp": ctp, "codecs": codecs,
    })
