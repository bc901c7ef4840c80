"""confluent-kafka 2.16 (librdkafka) driver (contract in compat/drivers/__init__.py)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource, NewPartitions, NewTopic, ResourceType

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
    settings: dict[str, Any] = {"bootstrap.servers": args.bootstrap}
    secured = security(args)
    if secured is not None:
        settings["security.protocol"] = secured.protocol
        tls = {"ssl.ca.location": secured.ca, "ssl.certificate.location": secured.cert, "ssl.key.location": secured.key}
        settings.update({name: path for name, path in tls.items() if path})
        if secured.sasl:
            settings.update({"sasl.mechanism": secured.mechanism, "sasl.username": secured.username, "sasl.password": secured.password})
        settings["error_cb"] = _raise_refusal
    return settings


def _raise_refusal(error: KafkaError) -> None:
    """librdkafka reports a refused authentication to error_cb and keeps retrying until its
    message timeout (five minutes); raised here, it ends the poll, flush or call that served it."""
    if error.code() == KafkaError._AUTHENTICATION or error.fatal():
        raise KafkaException(error)


def create(args: argparse.Namespace) -> dict[str, Any]:
    admin = AdminClient({**connection(args)})
    futures = admin.create_topics([NewTopic(args.topic, num_partitions=args.partitions, replication_factor=1)])
    futures[args.topic].result(timeout=args.timeout)
    return {"created": True}


def produce(args: argparse.Namespace) -> dict[str, Any]:
    producer = Producer({**connection(args)})
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
        **connection(args),
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
    config: dict[str, Any] = {
        **connection(args),
        "group.id": args.group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    }
    if args.group_protocol == "consumer":
        # KIP-848: the broker's group configs set the session and heartbeats; librdkafka refuses them.
        config["group.protocol"] = "consumer"
    else:
        config |= {"session.timeout.ms": args.session_timeout_ms, "heartbeat.interval.ms": 1000}
    if args.instance_id:
        config["group.instance.id"] = args.instance_id
    consumer = Consumer(config)
    held: set[int] = set()

    # The whole assignment after each change: the classic protocol's eager rebalances hand it over
    # at once, the consumer protocol's incremental ones add and revoke some partitions at a time.
    def on_assign(_: Any, partitions: list[TopicPartition]) -> None:
        if args.group_protocol == "consumer":
            held.update(tp.partition for tp in partitions)
        else:
            held.clear()
            held.update(tp.partition for tp in partitions)
        emit({"event": "assigned", "partitions": sorted(held)})

    def on_revoke(_: Any, partitions: list[TopicPartition]) -> None:
        held.difference_update(tp.partition for tp in partitions)
        if args.group_protocol == "consumer" and partitions:
            emit({"event": "assigned", "partitions": sorted(held)})

    try:
        consumer.subscribe([args.topic], on_assign=on_assign, on_revoke=on_revoke)
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
                # A rebalance took the partitions, and their next owner reads these again; those
                # this member kept it reads again itself.
                first: dict[int, int] = {}
                for partition, offset, _, _ in records:
                    first.setdefault(partition, offset)
                for partition, offset in first.items():
                    if partition in held:
                        consumer.seek(TopicPartition(args.topic, partition, offset))
                continue
            emit({"event": "records", "records": records})
    finally:
        consumer.close()
    return {"closed": True}


def admin(args: argparse.Namespace) -> dict[str, Any]:
    client = AdminClient({**connection(args)})

    def done(futures: dict[Any, Any]) -> list[Any]:
        return [future.result(timeout=args.timeout) for future in futures.values()]

    def configs() -> dict[str, list[str]]:
        (described,) = done(client.describe_configs([ConfigResource(ResourceType.TOPIC, args.topic)]))
        return {name: [described[name].value, ConfigSource(described[name].source).name] for name in ADMIN_CONFIGS}

    done(client.create_topics([NewTopic(args.topic, num_partitions=1, replication_factor=1, config=ADMIN_CONFIGS)]))
    created = configs()
    retention = ConfigEntry("retention.ms", ADMIN_ALTERED_RETENTION, incremental_operation=AlterConfigOpType.SET)
    done(client.incremental_alter_configs([ConfigResource(ResourceType.TOPIC, args.topic, incremental_configs=[retention])]))
    altered = once_shown(configs, lambda described: described["retention.ms"][0] == ADMIN_ALTERED_RETENTION)
    done(client.create_partitions([NewPartitions(args.topic, ADMIN_PARTITIONS)]))
    (description,) = once_shown(lambda: done(client.describe_topics(TopicCollection([args.topic]))),
                                lambda described: len(described[0].partitions) == ADMIN_PARTITIONS)

    producer = Producer({**connection(args)})
    for i in range(ADMIN_RECORDS):
        producer.produce(args.topic, key=key(i), value=value(i), partition=0)
    if producer.flush(args.timeout):
        raise KafkaException("records left undelivered")
    (deleted_records,) = done(client.delete_records([TopicPartition(args.topic, 0, ADMIN_DELETE_BEFORE)]))

    cluster = client.describe_cluster().result(timeout=args.timeout)
    group = f"{args.topic}-admin"
    consumer = Consumer({**connection(args), "group.id": group, "enable.auto.commit": False})
    deadline = time.monotonic() + args.timeout
    while True:
        try:
            consumer.commit(offsets=[TopicPartition(args.topic, 0, ADMIN_COMMITTED)], asynchronous=False)
            break
        except KafkaException as exc:
            # A fresh Kafka answers NOT_COORDINATOR while it creates __consumer_offsets.
            error = exc.args[0]
            coordinator_pending = error.code() in (KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError.COORDINATOR_LOAD_IN_PROGRESS)
            if not (coordinator_pending or error.retriable()) or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
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


def idempotent(args: argparse.Namespace) -> dict[str, Any]:
    producer = Producer({**connection(args), "enable.idempotence": True, "linger.ms": 0})
    delivered: list[list[Any]] = []
    errors: list[str] = []

    def on_delivery(err: Any, msg: Any) -> None:
        if err is not None:
            errors.append(str(err))
        else:
            delivered.append([msg.key().decode(), msg.partition(), msg.offset()])

    for i in range(args.count):
        producer.produce(args.topic, key=key(i), value=value(i), partition=0, on_delivery=on_delivery)
        if producer.flush(args.timeout):
            raise TimeoutError(f"record {i} not acknowledged in {args.timeout}s")
        if errors:
            raise KafkaException(errors[0])
    return {"produced": len(delivered), "delivered": delivered}


def _read_until_idle(args: argparse.Namespace, topic: str, isolation_level: str = "read_uncommitted") -> list[list[Any]]:
    consumer = Consumer({
        **connection(args), "group.id": topic + "-reader", "enable.auto.commit": False, "isolation.level": isolation_level,
    })
    records: list[list[Any]] = []
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        idle_since = time.monotonic()
        deadline = idle_since + args.timeout
        while time.monotonic() - idle_since < 3 and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None or (msg.error() and msg.error().code() == -191):  # -191: partition EOF
                continue
            if msg.error():
                raise KafkaException(msg.error())
            records.append([msg.partition(), msg.offset(), (msg.key() or b"").decode(), (msg.value() or b"").decode()])
            idle_since = time.monotonic()
    finally:
        consumer.close()
    return records


def transactions(args: argparse.Namespace) -> dict[str, Any]:
    producer = Producer({**connection(args), "transactional.id": args.topic + "-txn"})
    producer.init_transactions(args.timeout)
    for prefix, commit in (("a", False), ("c", True)):
        producer.begin_transaction()
        for i in range(args.count):
            producer.produce(args.topic, key=key(i), value=f"{prefix}{i}", partition=0)
        producer.flush(args.timeout)
        producer.commit_transaction(args.timeout) if commit else producer.abort_transaction(args.timeout)
    return {"committed": _read_until_idle(args, args.topic, "read_committed"), "uncommitted": _read_until_idle(args, args.topic)}


def ctp(args: argparse.Namespace) -> dict[str, Any]:
    group = args.topic + "-ctp"
    consumer = Consumer({**connection(args), "group.id": group, "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    # Not the group id: both would hash to one partition number of __consumer_offsets and
    # __transaction_state, which several Ottla brokers lead from one broker, so the offsets
    # sent in the transaction would never go to another broker's group coordinator.
    producer = Producer({**connection(args), "transactional.id": group + "-txn"})
    try:
        consumer.assign([TopicPartition(args.topic, 0, OFFSET_BEGINNING)])
        producer.init_transactions(args.timeout)
        for commit in (True, False):
            producer.begin_transaction()
            taken: list[Any] = []
            deadline = time.monotonic() + args.timeout
            while len(taken) < TXN_BATCH:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"read {len(taken)} of {TXN_BATCH} records")
                msg = consumer.poll(0.5)
                if msg is not None and not msg.error():
                    taken.append(msg)
            for msg in taken:
                producer.produce(args.topic + "-out", value=b"out-" + msg.value(), partition=0)
            offsets = [TopicPartition(args.topic, 0, taken[-1].offset() + 1)]
            producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), args.timeout)
            producer.commit_transaction(args.timeout) if commit else producer.abort_transaction(args.timeout)
        (committed,) = consumer.committed([TopicPartition(args.topic, 0)], args.timeout)
    finally:
        consumer.close()
    output = [v for _, _, _, v in _read_until_idle(args, args.topic + "-out", "read_committed")]
    return {"committed_offset": committed.offset if committed.offset >= 0 else None, "output": output}


def codecs(args: argparse.Namespace) -> dict[str, Any]:
    results = {}
    for name in CODECS:  # librdkafka builds all four in
        topic = f"{args.topic}-{name}"
        producer = Producer({**connection(args), "compression.type": name, "linger.ms": 50})
        for i in range(args.count):
            producer.produce(topic, key=key(i), value=value(i), partition=0)
        if producer.flush(args.timeout):
            raise TimeoutError(f"{name}: records not acknowledged")
        results[name] = _read_until_idle(args, topic)
    return {"codecs": results, "unavailable": {}}


if __name__ == "__main__":
    main({
        "create": create, "produce": produce, "consume": consume, "member": member, "admin": admin,
        "idempotent": idempotent, "transactions": transactions, "ctp": ctp, "codecs": codecs,
    })
