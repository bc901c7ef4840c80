"""`ottla topics|groups|produce|consume|offsets`: Kafka's command-line tools for a person at
a terminal, against any broker. Tables by default, `--json` for scripts; a failure is one
line on stderr and exit status 1.

Built on `wire/` rather than kafka-python: the CLI is then a second, independent user of our
codec from the client side, and every request it sends is one we chose and can explain.
"""

from __future__ import annotations

import argparse
import struct
import sys
import time
from typing import Any, Callable

from ottla.server.admin.client import ClientError, KafkaClient, kafka_error, retrying
from ottla.server.admin.output import as_json, table
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.records import Record, build_batch, iter_records, scan_batches

EARLIEST, LATEST = -2, -1
# DescribeConfigs config_source of a topic's own override.
DYNAMIC_TOPIC_CONFIG = 1
# Fetch up to v12 names topics; v13+ needs topic ids, which Metadata v10+ would supply.
FETCH_MAX_VERSION = 12
# OffsetFetch v8+ asks for many groups at once (KIP-709); one group is all a command needs.
OFFSET_FETCH_MAX_VERSION = 7
# Records per Produce request; keeps one request well under message.max.bytes for lines.
PRODUCE_BATCH = 500


def add_commands(commands: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--bootstrap", default="127.0.0.1:9092", help="host:port[,host:port...] (default 127.0.0.1:9092)")
    common.add_argument("--json", action="store_true", help="machine-readable output")
    common.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the broker (default 30)")

    topics = commands.add_parser("topics", help="list, create, describe, alter and delete topics").add_subparsers(dest="action", required=True)
    topics.add_parser("list", parents=[common], help="all topics")
    create = topics.add_parser("create", parents=[common], help="create a topic")
    create.add_argument("topic")
    create.add_argument("--partitions", type=int, default=-1, help="default: the broker's num.partitions")
    create.add_argument("--replication-factor", type=int, default=-1, help="default: the broker's default")
    create.add_argument("--config", action="append", default=[], metavar="KEY=VALUE", help="a topic config; repeatable")
    describe = topics.add_parser("describe", parents=[common], help="partitions and configs of topics")
    describe.add_argument("topic", nargs="+")
    describe.add_argument("--all-configs", action="store_true", help="include configs left at their default")
    delete = topics.add_parser("delete", parents=[common], help="delete topics")
    delete.add_argument("topic", nargs="+")
    alter = topics.add_parser("alter", parents=[common], help="add partitions or change configs")
    alter.add_argument("topic")
    alter.add_argument("--partitions", type=int, help="grow the topic to this many partitions")
    alter.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="set a topic config; repeatable")
    alter.add_argument("--delete", action="append", default=[], metavar="KEY", help="return a config to its default; repeatable")

    groups = commands.add_parser("groups", help="list, describe, delete consumer groups and reset their offsets").add_subparsers(
        dest="action", required=True
    )
    groups.add_parser("list", parents=[common], help="all groups")
    describe_group = groups.add_parser("describe", parents=[common], help="state, members, committed offsets and lag")
    describe_group.add_argument("group")
    delete_group = groups.add_parser("delete", parents=[common], help="delete empty groups")
    delete_group.add_argument("group", nargs="+")
    reset = groups.add_parser("reset-offsets", parents=[common], help="commit new positions for an empty group")
    reset.add_argument("group")
    reset.add_argument("--topic", required=True)
    target = reset.add_mutually_exclusive_group(required=True)
    target.add_argument("--to-earliest", action="store_true")
    target.add_argument("--to-latest", action="store_true")
    target.add_argument("--to-offset", type=int)

    produce = commands.add_parser("produce", parents=[common], help="send stdin lines as records (key<TAB>value or value)")
    produce.add_argument("topic")
    produce.add_argument("--partition", type=int, help="default: by key hash (as Kafka's producer), round robin without a key")

    consume = commands.add_parser("consume", parents=[common], help="print records (key<TAB>value or value per line)")
    consume.add_argument("topic")
    consume.add_argument("--from-beginning", action="store_true", help="start at the earliest offset (default: the end)")
    consume.add_argument("--group", help="start from and commit to this group's offsets")
    consume.add_argument("--follow", action="store_true", help="keep waiting for new records (default: stop at the end)")
    consume.add_argument("--partition", type=int, action="append", help="only this partition; repeatable")
    consume.add_argument("--max-messages", type=int, help="stop after this many records")

    offsets = commands.add_parser("offsets", parents=[common], help="earliest and latest offset of each partition")
    offsets.add_argument("topic")


def run(args: argparse.Namespace) -> int:
    command = COMMANDS[(args.command, getattr(args, "action", None))]
    try:
        with KafkaClient(args.bootstrap, timeout=args.timeout) as client:
            command(client, args)
    except ClientError as exc:
        print(f"ottla: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, separator, value = item.partition("=")
        if not separator or not key:
            raise ClientError(f"{flag} takes KEY=VALUE, got {item!r}")
        pairs[key.strip()] = value.strip()
    return pairs


# --- topics ---------------------------------------------------------------------------


def topics_list(client: KafkaClient, args: argparse.Namespace) -> None:
    response = client.metadata(None)
    topics = sorted(
        ({"name": t["name"], "partitions": len(t["partitions"]), "internal": t["is_internal"]} for t in response["topics"] if not t["error_code"]),
        key=lambda t: t["name"],
    )
    if args.json:
        as_json(topics)
    else:
        table(["TOPIC", "PARTITIONS", "INTERNAL"], [(t["name"], t["partitions"], t["internal"]) for t in topics])


def topics_create(client: KafkaClient, args: argparse.Namespace) -> None:
    configs = _pairs(args.config, "--config")
    body = {
        "topics": [
            {
                "name": args.topic,
                "num_partitions": args.partitions,
                "replication_factor": args.replication_factor,
                "assignments": [],
                "configs": [{"name": k, "value": v} for k, v in configs.items()],
            }
        ],
        "timeout_ms": int(args.timeout * 1000),
        "validate_only": False,
    }
    # v4+ accepts -1 for partitions and replication factor (KIP-464).
    _, response = client.call(ApiKey.CREATE_TOPICS, body)
    result = response["topics"][0]
    if result["error_code"]:
        raise kafka_error(result["error_code"], result["error_message"], f"cannot create {args.topic}")
    created = {"topic": args.topic, "partitions": result.get("num_partitions", args.partitions), "configs": configs}
    if args.json:
        as_json(created)
    else:
        print(f"created topic {args.topic} with {created['partitions']} partition(s)")


def _describe_topics(client: KafkaClient, names: list[str]) -> list[dict[str, Any]]:
    response = client.metadata(names)
    by_name = {t["name"]: t for t in response["topics"]}
    described = []
    for name in names:
        entry = by_name.get(name)
        if entry is None or entry["error_code"]:
            raise kafka_error(entry["error_code"] if entry else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, subject=f"topic {name}")
        described.append(
            {
                "name": name,
                "topic_id": bytes(entry["topic_id"]).hex() if entry.get("topic_id") else None,
                "partitions": [
                    {"partition": p["partition_index"], "leader": p["leader_id"], "replicas": p["replica_nodes"], "isr": p["isr_nodes"]}
                    for p in sorted(entry["partitions"], key=lambda p: p["partition_index"])
                ],
            }
        )
    return described


def topics_describe(client: KafkaClient, args: argparse.Namespace) -> None:
    topics = _describe_topics(client, args.topic)
    body = {
        "resources": [{"resource_type": 2, "resource_name": t["name"], "configuration_keys": None} for t in topics],
        "include_synonyms": False,
        "include_documentation": False,
    }
    version, response = client.call(ApiKey.DESCRIBE_CONFIGS, body)
    for topic, result in zip(topics, response["results"]):
        if result["error_code"]:
            raise kafka_error(result["error_code"], result["error_message"], f"configs of {topic['name']}")
        configs = []
        for entry in result["configs"]:
            overridden = entry["config_source"] == DYNAMIC_TOPIC_CONFIG if version >= 1 else not entry["is_default"]
            if overridden or args.all_configs:
                configs.append({"name": entry["name"], "value": entry["value"], "overridden": overridden})
        topic["configs"] = configs
    if args.json:
        as_json(topics)
        return
    for topic in topics:
        overrides = ",".join(f"{c['name']}={c['value']}" for c in topic["configs"] if c["overridden"])
        print(f"Topic: {topic['name']}  TopicId: {topic['topic_id']}  Partitions: {len(topic['partitions'])}  Configs: {overrides or '-'}")
        table(
            ["PARTITION", "LEADER", "REPLICAS", "ISR"],
            [(p["partition"], p["leader"], ",".join(map(str, p["replicas"])), ",".join(map(str, p["isr"]))) for p in topic["partitions"]],
        )
        if args.all_configs:
            table(["CONFIG", "VALUE", "OVERRIDDEN"], [(c["name"], c["value"], c["overridden"]) for c in topic["configs"]])


def topics_delete(client: KafkaClient, args: argparse.Namespace) -> None:
    version = client.bootstrap.version(ApiKey.DELETE_TOPICS)
    if version >= 6:
        body: dict[str, Any] = {"topics": [{"name": name, "topic_id": bytes(16)} for name in args.topic]}
    else:
        body = {"topic_names": args.topic}
    body["timeout_ms"] = int(args.timeout * 1000)
    _, response = client.call(ApiKey.DELETE_TOPICS, body)
    for result in response["responses"]:
        if result["error_code"]:
            raise kafka_error(result["error_code"], result.get("error_message"), f"cannot delete {result['name']}")
    if args.json:
        as_json({"deleted": args.topic})
    else:
        for name in args.topic:
            print(f"deleted topic {name}")


def topics_alter(client: KafkaClient, args: argparse.Namespace) -> None:
    changes = _pairs(args.set, "--set")
    if args.partitions is None and not changes and not args.delete:
        raise ClientError("nothing to alter: give --partitions, --set or --delete")
    if args.partitions is not None:
        body = {
            "topics": [{"name": args.topic, "count": args.partitions, "assignments": None}],
            "timeout_ms": int(args.timeout * 1000),
            "validate_only": False,
        }
        _, response = client.call(ApiKey.CREATE_PARTITIONS, body)
        result = response["results"][0]
        if result["error_code"]:
            raise kafka_error(result["error_code"], result["error_message"], f"cannot add partitions to {args.topic}")
    if changes or args.delete:
        operations = [{"name": k, "config_operation": 0, "value": v} for k, v in changes.items()]
        operations += [{"name": k, "config_operation": 1, "value": None} for k in args.delete]
        body = {"resources": [{"resource_type": 2, "resource_name": args.topic, "configs": operations}], "validate_only": False}
        _, response = client.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, body)
        result = response["responses"][0]
        if result["error_code"]:
            raise kafka_error(result["error_code"], result["error_message"], f"cannot alter {args.topic}")
    if args.json:
        as_json({"topic": args.topic, "partitions": args.partitions, "set": changes, "deleted": args.delete})
    else:
        print(f"altered topic {args.topic}")


# --- offsets --------------------------------------------------------------------------


def _partitions(client: KafkaClient, topic: str, create: bool = False) -> dict[int, int]:
    """partition -> leader node. `create`: let the broker auto-create the topic, as a
    producer's Metadata request does (a new topic may be LEADER_NOT_AVAILABLE at first)."""

    def lookup() -> dict[int, int]:
        (entry,) = client.metadata([topic], allow_auto_topic_creation=create)["topics"]
        if entry["error_code"]:
            raise kafka_error(entry["error_code"], subject=f"topic {topic}")
        return {p["partition_index"]: p["leader_id"] for p in entry["partitions"]}

    return retrying(client.timeout, lookup)


def _list_offsets(client: KafkaClient, topic: str, leaders: dict[int, int], timestamp: int) -> dict[int, int]:
    by_leader: dict[int, list[int]] = {}
    for partition, leader in leaders.items():
        by_leader.setdefault(leader, []).append(partition)
    offsets = {}
    for leader, partitions in by_leader.items():
        body = {
            "replica_id": -1,
            "isolation_level": 0,
            "topics": [
                {
                    "name": topic,
                    "partitions": [
                        {"partition_index": p, "current_leader_epoch": -1, "timestamp": timestamp, "max_num_offsets": 1} for p in partitions
                    ],
                }
            ],
        }
        version, response = client.call(ApiKey.LIST_OFFSETS, body, node=leader)
        for entry in response["topics"][0]["partitions"]:
            if entry["error_code"]:
                raise kafka_error(entry["error_code"], subject=f"offsets of {topic}-{entry['partition_index']}")
            offsets[entry["partition_index"]] = entry["old_style_offsets"][0] if version == 0 else entry["offset"]
    return offsets


def offsets(client: KafkaClient, args: argparse.Namespace) -> None:
    leaders = _partitions(client, args.topic)
    earliest = _list_offsets(client, args.topic, leaders, EARLIEST)
    latest = _list_offsets(client, args.topic, leaders, LATEST)
    rows = [{"partition": p, "earliest": earliest[p], "latest": latest[p], "records": latest[p] - earliest[p]} for p in sorted(leaders)]
    if args.json:
        as_json({"topic": args.topic, "partitions": rows})
    else:
        table(["PARTITION", "EARLIEST", "LATEST", "RECORDS"], [tuple(r.values()) for r in rows])


# --- produce --------------------------------------------------------------------------


def murmur2(data: bytes) -> int:
    """Kafka's Utils.murmur2, which its default partitioner hashes keys with: the same key
    lands in the same partition whether the Java client or this one writes it."""
    m, r = 0x5BD1E995, 24
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = struct.unpack_from("<I", data, i)[0]
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = length % 4
    base = length - tail
    if tail == 3:
        h ^= data[base + 2] << 16
    if tail >= 2:
        h ^= data[base + 1] << 8
    if tail >= 1:
        h ^= data[base]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def partition_for_key(key: bytes, partitions: int) -> int:
    # Kafka's BuiltInPartitioner.partitionForKey: toPositive(murmur2(key)) % numPartitions.
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def produce(client: KafkaClient, args: argparse.Namespace) -> None:
    leaders = _partitions(client, args.topic, create=True)
    if args.partition is not None and args.partition not in leaders:
        raise ClientError(f"topic {args.topic} has no partition {args.partition}")
    pending: dict[int, list[Record]] = {}
    written: dict[int, list[int]] = {}
    next_round_robin = 0
    count = 0
    for line in sys.stdin.buffer:
        line = line.rstrip(b"\r\n")
        key, tab, value = line.partition(b"\t")
        record_key, record_value = (key, value) if tab else (None, line)
        if args.partition is not None:
            partition = args.partition
        elif record_key is not None:
            partition = partition_for_key(record_key, len(leaders))
        else:
            partition = sorted(leaders)[next_round_robin % len(leaders)]
            next_round_robin += 1
        batch = pending.setdefault(partition, [])
        batch.append(Record(offset=len(batch), timestamp=int(time.time() * 1000), key=record_key, value=record_value))
        count += 1
        if len(batch) >= PRODUCE_BATCH:
            _send(client, args.topic, leaders, {partition: pending.pop(partition)}, written)
    if pending:
        _send(client, args.topic, leaders, pending, written)
    summary = {"topic": args.topic, "records": count, "partitions": {p: {"first_offset": o[0], "last_offset": o[1]} for p, o in sorted(written.items())}}
    if args.json:
        as_json(summary)
    else:
        print(f"produced {count} record(s) to {args.topic}", file=sys.stderr)


def _send(client: KafkaClient, topic: str, leaders: dict[int, int], batches: dict[int, list[Record]], written: dict[int, list[int]]) -> None:
    by_leader: dict[int, dict[int, list[Record]]] = {}
    for partition, records in batches.items():
        by_leader.setdefault(leaders[partition], {})[partition] = records
    for leader, partitions in by_leader.items():
        body = {
            "transactional_id": None,
            "acks": -1,
            "timeout_ms": 30000,
            "topic_data": [
                {"name": topic, "partition_data": [{"index": p, "records": build_batch(records)} for p, records in partitions.items()]}
            ],
        }
        # Produce v3+ carries RecordBatch v2, the only format build_batch writes.
        version, response = client.call(ApiKey.PRODUCE, body, node=leader)
        if version < 3:
            raise ClientError("the broker does not accept record batches v2 (Produce v3+)")
        for result in response["responses"][0]["partition_responses"]:
            if result["error_code"]:
                raise kafka_error(result["error_code"], result.get("error_message"), f"produce to {topic}-{result['index']}")
            count = len(partitions[result["index"]])
            span = written.setdefault(result["index"], [result["base_offset"], result["base_offset"] + count - 1])
            span[1] = result["base_offset"] + count - 1


# --- consume --------------------------------------------------------------------------


def consume(client: KafkaClient, args: argparse.Namespace) -> None:
    leaders = _partitions(client, args.topic)
    if args.partition:
        missing = set(args.partition) - leaders.keys()
        if missing:
            raise ClientError(f"topic {args.topic} has no partition {sorted(missing)[0]}")
        leaders = {p: leaders[p] for p in args.partition}
    latest = _list_offsets(client, args.topic, leaders, LATEST)
    positions = _list_offsets(client, args.topic, leaders, EARLIEST) if args.from_beginning else dict(latest)
    coordinator = None
    if args.group:
        coordinator = client.coordinator(args.group)
        committed = _committed(client, coordinator, args.group, {args.topic: list(leaders)}).get(args.topic, {})
        positions.update({p: offset for p, offset in committed.items() if offset >= 0 and p in positions})
    progress = _Progress(positions, latest)
    printed = 0
    try:
        while args.follow or any(positions[p] < latest[p] for p in positions):
            fetched = _fetch(client, args.topic, leaders, positions, wait_ms=500 if args.follow else 100)
            for partition, record in fetched:
                _print_record(args, partition, record)
                printed += 1
                if args.max_messages is not None and printed >= args.max_messages:
                    positions[partition] = record.offset + 1
                    return
            progress.show(positions)
            if args.follow:
                sys.stdout.flush()
            if coordinator is not None and fetched:
                _commit(client, coordinator, args.group, args.topic, positions)
    finally:
        progress.clear()
        if coordinator is not None:
            _commit(client, coordinator, args.group, args.topic, positions)
        sys.stdout.flush()


def _print_record(args: argparse.Namespace, partition: int, record: Record) -> None:
    key = None if record.key is None else bytes(record.key).decode("utf-8", "replace")
    value = None if record.value is None else bytes(record.value).decode("utf-8", "replace")
    if args.json:
        as_json({"partition": partition, "offset": record.offset, "timestamp": record.timestamp, "key": key, "value": value})
    elif key is not None:
        sys.stdout.write(f"{key}\t{value or ''}\n")
    else:
        sys.stdout.write(f"{value or ''}\n")


class _Progress:
    """A one-line progress report on stderr, for reads that take a while at a terminal."""

    def __init__(self, start: dict[int, int], end: dict[int, int]) -> None:
        self.total = sum(max(end[p] - start[p], 0) for p in start)
        self.start = dict(start)
        self.started = time.monotonic()
        self.enabled = sys.stderr.isatty()
        self.shown = False

    def show(self, positions: dict[int, int]) -> None:
        if not self.enabled or time.monotonic() - self.started < 1.0:
            return
        done = sum(positions[p] - self.start[p] for p in positions)
        sys.stderr.write(f"\r{done}/{self.total} records read")
        sys.stderr.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def _fetch(client: KafkaClient, topic: str, leaders: dict[int, int], positions: dict[int, int], wait_ms: int) -> list[tuple[int, Record]]:
    by_leader: dict[int, list[int]] = {}
    for partition, leader in leaders.items():
        by_leader.setdefault(leader, []).append(partition)
    out = []
    for leader, partitions in by_leader.items():
        body = {
            "replica_id": -1,
            "max_wait_ms": wait_ms,
            "min_bytes": 1,
            "max_bytes": 8 << 20,
            "isolation_level": 0,
            "session_id": 0,
            "session_epoch": -1,
            "topics": [
                {
                    "topic": topic,
                    "partitions": [
                        {"partition": p, "current_leader_epoch": -1, "fetch_offset": positions[p], "log_start_offset": -1, "partition_max_bytes": 1 << 20}
                        for p in partitions
                    ],
                }
            ],
            "forgotten_topics_data": [],
            "rack_id": "",
        }
        _, response = client.call(ApiKey.FETCH, body, node=leader, highest=FETCH_MAX_VERSION)
        if response.get("error_code"):
            raise kafka_error(response["error_code"], subject=f"fetch from {topic}")
        for entry in response["responses"][0]["partitions"]:
            partition = entry["partition_index"]
            if entry["error_code"] == ErrorCode.OFFSET_OUT_OF_RANGE:
                # Records were deleted under us (retention, DeleteRecords): go on from the start.
                positions[partition] = max(entry["log_start_offset"], 0) if entry["log_start_offset"] >= 0 else positions[partition]
                continue
            if entry["error_code"]:
                raise kafka_error(entry["error_code"], subject=f"fetch from {topic}-{partition}")
            for header, batch in scan_batches(entry["records"] or b""):
                if header.is_control:
                    positions[partition] = max(positions[partition], header.last_offset + 1)
                    continue
                for record in iter_records(batch):
                    if record.offset >= positions[partition]:
                        out.append((partition, record))
                positions[partition] = max(positions[partition], header.last_offset + 1)
    return out


# --- groups ---------------------------------------------------------------------------


def _committed(client: KafkaClient, coordinator: int, group: str, topics: dict[str, list[int]] | None) -> dict[str, dict[int, int]]:
    """Committed offsets of `group` (topics None: all of them, OffsetFetch v2+)."""
    return retrying(client.timeout, lambda: _fetch_committed(client, coordinator, group, topics))


def _fetch_committed(client: KafkaClient, coordinator: int, group: str, topics: dict[str, list[int]] | None) -> dict[str, dict[int, int]]:
    body = {
        "group_id": group,
        "topics": None if topics is None else [{"name": t, "partition_indexes": ps} for t, ps in topics.items()],
        "require_stable": False,
    }
    _, response = client.call(ApiKey.OFFSET_FETCH, body, node=coordinator, highest=OFFSET_FETCH_MAX_VERSION)
    if response.get("error_code"):
        raise kafka_error(response["error_code"], subject=f"offsets of group {group}")
    committed: dict[str, dict[int, int]] = {}
    for topic in response["topics"]:
        for entry in topic["partitions"]:
            if entry["error_code"]:
                raise kafka_error(entry["error_code"], subject=f"offsets of group {group}")
            committed.setdefault(topic["name"], {})[entry["partition_index"]] = entry["committed_offset"]
    return committed


def _commit(client: KafkaClient, coordinator: int, group: str, topic: str, positions: dict[int, int]) -> None:
    """Commit as a standalone consumer (generation -1, no member id), as Kafka's
    kafka-consumer-groups --reset-offsets does; the group must have no active members."""
    retrying(client.timeout, lambda: _send_commit(client, coordinator, group, topic, positions))


def _send_commit(client: KafkaClient, coordinator: int, group: str, topic: str, positions: dict[int, int]) -> None:
    body = {
        "group_id": group,
        "generation_id_or_member_epoch": -1,
        "member_id": "",
        "group_instance_id": None,
        "retention_time_ms": -1,
        "topics": [
            {
                "name": topic,
                "partitions": [
                    {"partition_index": p, "committed_offset": o, "committed_leader_epoch": -1, "committed_metadata": ""}
                    for p, o in sorted(positions.items())
                ],
            }
        ],
    }
    _, response = client.call(ApiKey.OFFSET_COMMIT, body, node=coordinator)
    for entry in response["topics"][0]["partitions"]:
        if entry["error_code"]:
            raise kafka_error(entry["error_code"], subject=f"commit for group {group}")


def groups_list(client: KafkaClient, args: argparse.Namespace) -> None:
    nodes = [b["node_id"] for b in client.metadata([])["brokers"]]
    found = []
    for node in nodes:
        response = retrying(args.timeout, lambda: _list_groups(client, node))
        found += [
            {"group": g["group_id"], "protocol_type": g["protocol_type"], "state": g.get("group_state") or None} for g in response["groups"]
        ]
    found.sort(key=lambda g: g["group"])
    if args.json:
        as_json(found)
    else:
        table(["GROUP", "STATE", "PROTOCOL TYPE"], [(g["group"], g["state"], g["protocol_type"]) for g in found])


def _list_groups(client: KafkaClient, node: int) -> dict[str, Any]:
    _, response = client.call(ApiKey.LIST_GROUPS, {"states_filter": [], "types_filter": []}, node=node)
    if response["error_code"]:
        raise kafka_error(response["error_code"], subject="list groups")
    return response


def _assignment(data: bytes | None) -> dict[str, list[int]]:
    """Kafka's ConsumerProtocolAssignment: version, then [topic, [partition]], user data."""
    if not data:
        return {}
    try:
        return _parse_assignment(memoryview(bytes(data)))
    except (struct.error, UnicodeDecodeError):
        return {}  # not the consumer protocol's layout: no assignment to show


def _parse_assignment(view: memoryview) -> dict[str, list[int]]:
    position = 2
    (count,) = struct.unpack_from(">i", view, position)
    position += 4
    topics = {}
    for _ in range(max(count, 0)):
        (length,) = struct.unpack_from(">h", view, position)
        name = bytes(view[position + 2 : position + 2 + length]).decode()
        position += 2 + length
        (partitions,) = struct.unpack_from(">i", view, position)
        position += 4
        topics[name] = list(struct.unpack_from(f">{max(partitions, 0)}i", view, position))
        position += 4 * max(partitions, 0)
    return topics


def groups_describe(client: KafkaClient, args: argparse.Namespace) -> None:
    coordinator = client.coordinator(args.group)
    group = retrying(args.timeout, lambda: _describe_group(client, coordinator, args.group))
    owners = {}
    members = []
    for member in group["members"]:
        assigned = _assignment(member["member_assignment"]) if group["protocol_type"] == "consumer" else {}
        members.append({"member_id": member["member_id"], "client_id": member["client_id"], "host": member["client_host"], "assignment": assigned})
        for topic, partitions in assigned.items():
            for partition in partitions:
                owners[(topic, partition)] = member["member_id"]
    committed = _committed(client, coordinator, args.group, None)
    rows = []
    for topic, partitions in sorted(committed.items()):
        leaders = _partitions(client, topic)
        ends = _list_offsets(client, topic, {p: leaders[p] for p in partitions if p in leaders}, LATEST)
        for partition, offset in sorted(partitions.items()):
            end = ends.get(partition)
            lag = end - offset if end is not None and offset >= 0 else None
            rows.append({"topic": topic, "partition": partition, "committed": offset, "log_end": end, "lag": lag, "member": owners.get((topic, partition))})
    described = {"group": args.group, "state": group["group_state"], "protocol_type": group["protocol_type"], "protocol": group["protocol_data"], "members": members, "offsets": rows}
    if args.json:
        as_json(described)
        return
    print(f"Group: {args.group}  State: {group['group_state']}  Protocol: {group['protocol_data'] or '-'}  Members: {len(members)}")
    table(["TOPIC", "PARTITION", "COMMITTED", "LOG END", "LAG", "MEMBER"], [tuple(r.values()) for r in rows])


def _describe_group(client: KafkaClient, coordinator: int, name: str) -> dict[str, Any]:
    body = {"groups": [name], "include_authorized_operations": False}
    _, response = client.call(ApiKey.DESCRIBE_GROUPS, body, node=coordinator)
    group = response["groups"][0]
    if group["error_code"]:
        raise kafka_error(group["error_code"], group.get("error_message"), f"group {name}")
    return group


def groups_delete(client: KafkaClient, args: argparse.Namespace) -> None:
    by_coordinator: dict[int, list[str]] = {}
    for group in args.group:
        by_coordinator.setdefault(client.coordinator(group), []).append(group)
    for coordinator, groups in by_coordinator.items():
        _, response = client.call(ApiKey.DELETE_GROUPS, {"groups_names": groups}, node=coordinator)
        for result in response["results"]:
            if result["error_code"]:
                raise kafka_error(result["error_code"], subject=f"cannot delete group {result['group_id']}")
    if args.json:
        as_json({"deleted": args.group})
    else:
        for group in args.group:
            print(f"deleted group {group}")


def groups_reset_offsets(client: KafkaClient, args: argparse.Namespace) -> None:
    leaders = _partitions(client, args.topic)
    if args.to_offset is not None:
        earliest = _list_offsets(client, args.topic, leaders, EARLIEST)
        latest = _list_offsets(client, args.topic, leaders, LATEST)
        # kafka-consumer-groups clamps a target outside the log to its nearest end.
        positions = {p: min(max(args.to_offset, earliest[p]), latest[p]) for p in leaders}
    else:
        positions = _list_offsets(client, args.topic, leaders, EARLIEST if args.to_earliest else LATEST)
    _commit(client, client.coordinator(args.group), args.group, args.topic, positions)
    rows = [{"topic": args.topic, "partition": p, "offset": o} for p, o in sorted(positions.items())]
    if args.json:
        as_json(rows)
    else:
        table(["TOPIC", "PARTITION", "NEW OFFSET"], [tuple(r.values()) for r in rows])


COMMANDS: dict[tuple[str, str | None], Callable[[KafkaClient, argparse.Namespace], None]] = {
    ("topics", "list"): topics_list,
    ("topics", "create"): topics_create,
    ("topics", "describe"): topics_describe,
    ("topics", "delete"): topics_delete,
    ("topics", "alter"): topics_alter,
    ("groups", "list"): groups_list,
    ("groups", "describe"): groups_describe,
    ("groups", "delete"): groups_delete,
    ("groups", "reset-offsets"): groups_reset_offsets,
    ("produce", None): produce,
    ("consume", None): consume,
    ("offsets", None): offsets,
}
