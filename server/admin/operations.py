"""The admin operations as a Python library: `AdminClient(bootstrap).list_topics()` and so on,
against any Kafka broker. Each operation returns plain dataclasses (or dicts) and raises
ClientError, whose message is the one line the `ottla` commands print; commands.py only
parses arguments and renders what these return.

    with AdminClient("127.0.0.1:9092") as admin:
        admin.create_topic("orders", partitions=3, configs={"retention.ms": "60000"})
        admin.produce("orders", [(b"k", b"v")])
        for record in admin.consume("orders", from_beginning=True):
            print(record.partition, record.offset, record.value)

Group operations act as a standalone consumer (no membership), as Kafka's
kafka-consumer-groups does, so they need a group without active members.
"""

from __future__ import annotations

import secrets
import struct
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ottla.server.admin.client import ClientError, KafkaClient, kafka_error, retrying
from ottla.server.admin.sasl import SCRAM, SaslLogin, salted_password
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.records import Record, build_batch, iter_records, scan_batches

# ListOffsets timestamps that ask for the log start and the log end.
EARLIEST, LATEST = -2, -1
# DescribeConfigs config_source of a topic's own override.
DYNAMIC_TOPIC_CONFIG = 1
# Fetch up to v12, Produce up to v12 and OffsetCommit up to v9 name topics; the versions after
# them carry topic ids instead, which Metadata v10+ would supply.
FETCH_MAX_VERSION = 12
PRODUCE_MAX_VERSION = 12
OFFSET_COMMIT_MAX_VERSION = 9
# OffsetFetch v8+ asks for many groups at once (KIP-709); one group is all an operation needs.
OFFSET_FETCH_MAX_VERSION = 7
# Records per Produce request; keeps one request well under message.max.bytes for lines.
PRODUCE_BATCH = 500
# Fetch's max_wait_ms: long when following a topic, short when reading up to its end.
FOLLOW_WAIT_MS, READ_WAIT_MS = 500, 100


@dataclass(slots=True, frozen=True)
class TopicListing:
    name: str
    partitions: int
    internal: bool


@dataclass(slots=True, frozen=True)
class CreatedTopic:
    topic: str
    partitions: int
    configs: dict[str, str]


@dataclass(slots=True, frozen=True)
class PartitionInfo:
    partition: int
    leader: int
    replicas: list[int]
    isr: list[int]


@dataclass(slots=True, frozen=True)
class ConfigEntry:
    name: str
    value: str | None
    overridden: bool


@dataclass(slots=True, frozen=True)
class TopicDescription:
    """A topic's partitions and its configs: the overridden ones, or all with all_configs."""

    name: str
    topic_id: str | None
    partitions: list[PartitionInfo]
    configs: list[ConfigEntry]


@dataclass(slots=True, frozen=True)
class PartitionOffsets:
    partition: int
    earliest: int
    latest: int
    records: int


@dataclass(slots=True, frozen=True)
class OffsetSpan:
    first_offset: int
    last_offset: int


@dataclass(slots=True, frozen=True)
class ProduceResult:
    topic: str
    records: int
    partitions: dict[int, OffsetSpan]


@dataclass(slots=True, frozen=True)
class ConsumedRecord:
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()


@dataclass(slots=True, frozen=True)
class GroupListing:
    group: str
    protocol_type: str
    state: str | None


@dataclass(slots=True, frozen=True)
class GroupMember:
    member_id: str
    client_id: str
    host: str
    assignment: dict[str, list[int]]


@dataclass(slots=True, frozen=True)
class GroupOffset:
    """A committed offset beside the log end; lag is None when either is unknown."""

    topic: str
    partition: int
    committed: int
    log_end: int | None
    lag: int | None
    member: str | None


@dataclass(slots=True, frozen=True)
class GroupDescription:
    group: str
    state: str
    protocol_type: str
    protocol: str
    members: list[GroupMember]
    offsets: list[GroupOffset]


@dataclass(slots=True, frozen=True)
class ScramUser:
    """A user's SCRAM credentials as the broker describes them: mechanism names and iterations."""

    user: str
    mechanisms: dict[str, int]


class AdminClient:
    """Kafka's admin tools as methods over one KafkaClient (`client`, for raw requests)."""

    def __init__(self, bootstrap: str, timeout: float = 30.0, client_id: str = "ottla-cli", sasl: SaslLogin | None = None) -> None:
        self.client = KafkaClient(bootstrap, timeout=timeout, client_id=client_id, sasl=sasl)
        self.timeout = timeout

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()

    # --- topics -----------------------------------------------------------------------

    def list_topics(self) -> list[TopicListing]:
        response = self.client.metadata(None)
        listed = [TopicListing(t["name"], len(t["partitions"]), t["is_internal"]) for t in response["topics"] if not t["error_code"]]
        return sorted(listed, key=lambda t: t.name)

    def create_topic(self, name: str, partitions: int = -1, configs: dict[str, str] | None = None, replication_factor: int = -1) -> CreatedTopic:
        """partitions and replication_factor -1: the broker's defaults (CreateTopics v4+, KIP-464)."""
        configs = dict(configs or {})
        body = {
            "topics": [
                {
                    "name": name,
                    "num_partitions": partitions,
                    "replication_factor": replication_factor,
                    "assignments": [],
                    "configs": [{"name": k, "value": v} for k, v in configs.items()],
                }
            ],
            "timeout_ms": self._timeout_ms,
            "validate_only": False,
        }
        _, response = self.client.call(ApiKey.CREATE_TOPICS, body)
        result = response["topics"][0]
        if result["error_code"]:
            raise kafka_error(result["error_code"], result["error_message"], f"cannot create {name}")
        return CreatedTopic(name, result.get("num_partitions", partitions), configs)

    def describe_topics(self, names: Sequence[str], all_configs: bool = False) -> list[TopicDescription]:
        topics = self._topic_partitions(names)
        body = {
            "resources": [{"resource_type": 2, "resource_name": name, "configuration_keys": None} for name, _, _ in topics],
            "include_synonyms": False,
            "include_documentation": False,
        }
        version, response = self.client.call(ApiKey.DESCRIBE_CONFIGS, body)
        described = []
        for (name, topic_id, partitions), result in zip(topics, response["results"]):
            if result["error_code"]:
                raise kafka_error(result["error_code"], result["error_message"], f"configs of {name}")
            configs = []
            for entry in result["configs"]:
                overridden = entry["config_source"] == DYNAMIC_TOPIC_CONFIG if version >= 1 else not entry["is_default"]
                if overridden or all_configs:
                    configs.append(ConfigEntry(entry["name"], entry["value"], overridden))
            described.append(TopicDescription(name, topic_id, partitions, configs))
        return described

    def _topic_partitions(self, names: Sequence[str]) -> list[tuple[str, str | None, list[PartitionInfo]]]:
        """(name, topic id in hex, partitions) for each name, in order; an unknown topic raises."""
        by_name = {t["name"]: t for t in self.client.metadata(list(names))["topics"]}
        found = []
        for name in names:
            entry = by_name.get(name)
            if entry is None or entry["error_code"]:
                raise kafka_error(entry["error_code"] if entry else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, subject=f"topic {name}")
            topic_id = bytes(entry["topic_id"]).hex() if entry.get("topic_id") else None
            partitions = [
                PartitionInfo(p["partition_index"], p["leader_id"], p["replica_nodes"], p["isr_nodes"])
                for p in sorted(entry["partitions"], key=lambda p: p["partition_index"])
            ]
            found.append((name, topic_id, partitions))
        return found

    def delete_topics(self, names: Sequence[str]) -> None:
        version = self.client.bootstrap.version(ApiKey.DELETE_TOPICS)
        if version >= 6:
            body: dict[str, Any] = {"topics": [{"name": name, "topic_id": bytes(16)} for name in names]}
        else:
            body = {"topic_names": list(names)}
        body["timeout_ms"] = self._timeout_ms
        _, response = self.client.call(ApiKey.DELETE_TOPICS, body)
        for result in response["responses"]:
            if result["error_code"]:
                raise kafka_error(result["error_code"], result.get("error_message"), f"cannot delete {result['name']}")

    def create_partitions(self, topic: str, count: int) -> None:
        """Grow `topic` to `count` partitions."""
        body = {"topics": [{"name": topic, "count": count, "assignments": None}], "timeout_ms": self._timeout_ms, "validate_only": False}
        _, response = self.client.call(ApiKey.CREATE_PARTITIONS, body)
        result = response["results"][0]
        if result["error_code"]:
            raise kafka_error(result["error_code"], result["error_message"], f"cannot add partitions to {topic}")

    def alter_topic_configs(self, topic: str, set_configs: dict[str, str] | None = None, delete_configs: Sequence[str] = ()) -> None:
        """Set some configs and return others to their defaults, in one IncrementalAlterConfigs."""
        operations = [{"name": k, "config_operation": 0, "value": v} for k, v in (set_configs or {}).items()]
        operations += [{"name": k, "config_operation": 1, "value": None} for k in delete_configs]
        body = {"resources": [{"resource_type": 2, "resource_name": topic, "configs": operations}], "validate_only": False}
        _, response = self.client.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, body)
        result = response["responses"][0]
        if result["error_code"]:
            raise kafka_error(result["error_code"], result["error_message"], f"cannot alter {topic}")

    # --- offsets ----------------------------------------------------------------------

    def list_offsets(self, topic: str) -> list[PartitionOffsets]:
        leaders = self._leaders(topic)
        earliest = self._offsets(topic, leaders, EARLIEST)
        latest = self._offsets(topic, leaders, LATEST)
        return [PartitionOffsets(p, earliest[p], latest[p], latest[p] - earliest[p]) for p in sorted(leaders)]

    def _leaders(self, topic: str, create: bool = False) -> dict[int, int]:
        """partition -> leader node. `create`: let the broker auto-create the topic, as a
        producer's Metadata request does (a new topic may be LEADER_NOT_AVAILABLE at first)."""

        def lookup() -> dict[int, int]:
            (entry,) = self.client.metadata([topic], allow_auto_topic_creation=create)["topics"]
            if entry["error_code"]:
                raise kafka_error(entry["error_code"], subject=f"topic {topic}")
            return {p["partition_index"]: p["leader_id"] for p in entry["partitions"]}

        return retrying(self.timeout, lookup)

    def _offsets(self, topic: str, leaders: dict[int, int], timestamp: int) -> dict[int, int]:
        """partition -> the offset ListOffsets answers for `timestamp` (EARLIEST, LATEST)."""
        offsets = {}
        for leader, partitions in _by_leader(leaders).items():
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
            version, response = self.client.call(ApiKey.LIST_OFFSETS, body, node=leader)
            for entry in response["topics"][0]["partitions"]:
                if entry["error_code"]:
                    raise kafka_error(entry["error_code"], subject=f"offsets of {topic}-{entry['partition_index']}")
                offsets[entry["partition_index"]] = entry["old_style_offsets"][0] if version == 0 else entry["offset"]
        return offsets

    # --- produce and consume ----------------------------------------------------------

    def produce(self, topic: str, records: Iterable[tuple[bytes | None, bytes | None]], partition: int | None = None) -> ProduceResult:
        """Send (key, value) pairs, PRODUCE_BATCH per request and partition, with acks=all.
        Without `partition`, a key picks the partition as Kafka's producer does (murmur2),
        and keyless records go round robin. The topic is auto-created if the broker allows."""
        leaders = self._leaders(topic, create=True)
        if partition is not None and partition not in leaders:
            raise ClientError(f"topic {topic} has no partition {partition}")
        pending: dict[int, list[Record]] = {}
        written: dict[int, list[int]] = {}
        round_robin = sorted(leaders)
        next_round_robin = 0
        count = 0
        for key, value in records:
            if partition is not None:
                target = partition
            elif key is not None:
                target = partition_for_key(key, len(leaders))
            else:
                target = round_robin[next_round_robin % len(round_robin)]
                next_round_robin += 1
            batch = pending.setdefault(target, [])
            batch.append(Record(offset=len(batch), timestamp=int(time.time() * 1000), key=key, value=value))
            count += 1
            if len(batch) >= PRODUCE_BATCH:
                self._send(topic, leaders, {target: pending.pop(target)}, written)
        if pending:
            self._send(topic, leaders, pending, written)
        return ProduceResult(topic, count, {p: OffsetSpan(*span) for p, span in sorted(written.items())})

    def _send(self, topic: str, leaders: dict[int, int], batches: dict[int, list[Record]], written: dict[int, list[int]]) -> None:
        """One Produce per leader; widens `written` (partition -> [first, last] offset)."""
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
            version, response = self.client.call(ApiKey.PRODUCE, body, node=leader, highest=PRODUCE_MAX_VERSION)
            if version < 3:
                raise ClientError("the broker does not accept record batches v2 (Produce v3+)")
            for result in response["responses"][0]["partition_responses"]:
                if result["error_code"]:
                    raise kafka_error(result["error_code"], result.get("error_message"), f"produce to {topic}-{result['index']}")
                last = result["base_offset"] + len(partitions[result["index"]]) - 1
                span = written.setdefault(result["index"], [result["base_offset"], last])
                span[1] = last

    def consume(
        self,
        topic: str,
        from_beginning: bool = False,
        group: str | None = None,
        partitions: Sequence[int] | None = None,
        follow: bool = False,
    ) -> TopicReader:
        """A reader of `topic` (or of some of its partitions) from its end, or its start with
        `from_beginning`; a group's committed offsets win over both. Iterating it stops at the
        end offsets found now, unless `follow`."""
        leaders = self._leaders(topic)
        if partitions:
            missing = set(partitions) - leaders.keys()
            if missing:
                raise ClientError(f"topic {topic} has no partition {sorted(missing)[0]}")
            leaders = {p: leaders[p] for p in partitions}
        latest = self._offsets(topic, leaders, LATEST)
        positions = self._offsets(topic, leaders, EARLIEST) if from_beginning else dict(latest)
        coordinator = None
        if group is not None:
            coordinator = self.client.coordinator(group)
            committed = self._committed(coordinator, group, {topic: list(leaders)}).get(topic, {})
            positions.update({p: offset for p, offset in committed.items() if offset >= 0 and p in positions})
        return TopicReader(self, topic, leaders, positions, latest, follow, group, coordinator)

    def _fetch(self, topic: str, leaders: dict[int, int], positions: dict[int, int], wait_ms: int) -> tuple[list[ConsumedRecord], dict[int, int]]:
        """One Fetch per leader from `positions`: the records, and each partition's position
        after them (past control batches, and at the log start if records were deleted)."""
        after = dict(positions)
        out = []
        for leader, partitions in _by_leader(leaders).items():
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
                            {"partition": p, "current_leader_epoch": -1, "fetch_offset": after[p], "log_start_offset": -1, "partition_max_bytes": 1 << 20}
                            for p in partitions
                        ],
                    }
                ],
                "forgotten_topics_data": [],
                "rack_id": "",
            }
            _, response = self.client.call(ApiKey.FETCH, body, node=leader, highest=FETCH_MAX_VERSION)
            if response.get("error_code"):
                raise kafka_error(response["error_code"], subject=f"fetch from {topic}")
            for entry in response["responses"][0]["partitions"]:
                partition = entry["partition_index"]
                if entry["error_code"] == ErrorCode.OFFSET_OUT_OF_RANGE:
                    # Records were deleted under us (retention, DeleteRecords): go on from the start.
                    if entry["log_start_offset"] >= 0:
                        after[partition] = entry["log_start_offset"]
                    continue
                if entry["error_code"]:
                    raise kafka_error(entry["error_code"], subject=f"fetch from {topic}-{partition}")
                for header, batch in scan_batches(entry["records"] or b""):
                    if not header.is_control:
                        out += [_consumed(partition, record) for record in iter_records(batch) if record.offset >= after[partition]]
                    after[partition] = max(after[partition], header.last_offset + 1)
        return out, after

    # --- groups -----------------------------------------------------------------------

    def list_groups(self) -> list[GroupListing]:
        """The groups every broker of the cluster coordinates."""
        found = []
        for node in [b["node_id"] for b in self.client.metadata([])["brokers"]]:
            response = retrying(self.timeout, lambda: self._list_groups(node))
            found += [GroupListing(g["group_id"], g["protocol_type"], g.get("group_state") or None) for g in response["groups"]]
        return sorted(found, key=lambda g: g.group)

    def _list_groups(self, node: int) -> dict[str, Any]:
        _, response = self.client.call(ApiKey.LIST_GROUPS, {"states_filter": [], "types_filter": []}, node=node)
        if response["error_code"]:
            raise kafka_error(response["error_code"], subject="list groups")
        return response

    def describe_group(self, group: str) -> GroupDescription:
        """State, members with their assignments, and each committed offset with its lag."""
        coordinator = self.client.coordinator(group)
        described = retrying(self.timeout, lambda: self._describe_group(coordinator, group))
        owners = {}
        members = []
        for member in described["members"]:
            assigned = _assignment(member["member_assignment"]) if described["protocol_type"] == "consumer" else {}
            members.append(GroupMember(member["member_id"], member["client_id"], member["client_host"], assigned))
            for topic, partitions in assigned.items():
                for partition in partitions:
                    owners[(topic, partition)] = member["member_id"]
        offsets = []
        for topic, committed in sorted(self._committed(coordinator, group, None).items()):
            leaders = self._leaders(topic)
            ends = self._offsets(topic, {p: leaders[p] for p in committed if p in leaders}, LATEST)
            for partition, offset in sorted(committed.items()):
                end = ends.get(partition)
                lag = end - offset if end is not None and offset >= 0 else None
                offsets.append(GroupOffset(topic, partition, offset, end, lag, owners.get((topic, partition))))
        return GroupDescription(group, described["group_state"], described["protocol_type"], described["protocol_data"], members, offsets)

    def _describe_group(self, coordinator: int, group: str) -> dict[str, Any]:
        body = {"groups": [group], "include_authorized_operations": False}
        _, response = self.client.call(ApiKey.DESCRIBE_GROUPS, body, node=coordinator)
        described: dict[str, Any] = response["groups"][0]
        if described["error_code"]:
            raise kafka_error(described["error_code"], described.get("error_message"), f"group {group}")
        return described

    def delete_groups(self, groups: Sequence[str]) -> None:
        """Delete groups that have no members, each at its coordinator."""
        by_coordinator: dict[int, list[str]] = {}
        for group in groups:
            by_coordinator.setdefault(self.client.coordinator(group), []).append(group)
        for coordinator, names in by_coordinator.items():
            _, response = self.client.call(ApiKey.DELETE_GROUPS, {"groups_names": names}, node=coordinator)
            for result in response["results"]:
                if result["error_code"]:
                    raise kafka_error(result["error_code"], subject=f"cannot delete group {result['group_id']}")

    def reset_offsets(self, group: str, topic: str, to: Literal["earliest", "latest"] | int) -> dict[int, int]:
        """Commit `group`'s position on every partition of `topic`: its start, its end, or an
        offset, clamped into the log as kafka-consumer-groups does. Returns partition -> offset."""
        leaders = self._leaders(topic)
        if to == "earliest" or to == "latest":
            positions = self._offsets(topic, leaders, EARLIEST if to == "earliest" else LATEST)
        else:
            earliest = self._offsets(topic, leaders, EARLIEST)
            latest = self._offsets(topic, leaders, LATEST)
            positions = {p: min(max(to, earliest[p]), latest[p]) for p in leaders}
        self._commit(self.client.coordinator(group), group, topic, positions)
        return dict(sorted(positions.items()))

    def _committed(self, coordinator: int, group: str, topics: dict[str, list[int]] | None) -> dict[str, dict[int, int]]:
        """Committed offsets of `group` (topics None: all of them, OffsetFetch v2+)."""
        return retrying(self.timeout, lambda: self._fetch_committed(coordinator, group, topics))

    def _fetch_committed(self, coordinator: int, group: str, topics: dict[str, list[int]] | None) -> dict[str, dict[int, int]]:
        body = {
            "group_id": group,
            "topics": None if topics is None else [{"name": t, "partition_indexes": ps} for t, ps in topics.items()],
            "require_stable": False,
        }
        _, response = self.client.call(ApiKey.OFFSET_FETCH, body, node=coordinator, highest=OFFSET_FETCH_MAX_VERSION)
        if response.get("error_code"):
            raise kafka_error(response["error_code"], subject=f"offsets of group {group}")
        committed: dict[str, dict[int, int]] = {}
        for topic in response["topics"]:
            for entry in topic["partitions"]:
                if entry["error_code"]:
                    raise kafka_error(entry["error_code"], subject=f"offsets of group {group}")
                committed.setdefault(topic["name"], {})[entry["partition_index"]] = entry["committed_offset"]
        return committed

    def _commit(self, coordinator: int, group: str, topic: str, positions: dict[int, int]) -> None:
        """Commit as a standalone consumer (generation -1, no member id), as Kafka's
        kafka-consumer-groups --reset-offsets does; the group must have no active members."""
        retrying(self.timeout, lambda: self._send_commit(coordinator, group, topic, positions))

    def _send_commit(self, coordinator: int, group: str, topic: str, positions: dict[int, int]) -> None:
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
        _, response = self.client.call(ApiKey.OFFSET_COMMIT, body, node=coordinator, highest=OFFSET_COMMIT_MAX_VERSION)
        for entry in response["topics"][0]["partitions"]:
            if entry["error_code"]:
                raise kafka_error(entry["error_code"], subject=f"commit for group {group}")

    # --- SCRAM users (KIP-554) -----------------------------------------------------------

    def describe_scram_users(self, users: Sequence[str] = ()) -> list[ScramUser]:
        """The named users' SCRAM mechanisms (all users with credentials when none is named)."""
        body = {"users": [{"name": name} for name in users] or None}
        _, response = self.client.call(ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS, body)
        if response["error_code"]:
            raise kafka_error(response["error_code"], response["error_message"], "cannot describe SCRAM users")
        described = []
        for result in response["results"]:
            if result["error_code"]:
                raise kafka_error(result["error_code"], result["error_message"], f"user {result['user']}")
            mechanisms = {_mechanism_name(info["mechanism"]): info["iterations"] for info in result["credential_infos"]}
            described.append(ScramUser(result["user"], mechanisms))
        return sorted(described, key=lambda user: user.user)

    def add_scram_user(self, user: str, password: str, mechanisms: Sequence[str] = tuple(SCRAM), iterations: int = 4096) -> None:
        """Set `user`'s password for each mechanism (SCRAM-SHA-256, SCRAM-SHA-512). The password
        is salted here, as Kafka's Admin.alterUserScramCredentials salts it: the broker
        receives only the salted form."""
        upsertions = []
        for mechanism in mechanisms:
            if mechanism not in SCRAM:
                raise ClientError(f"{mechanism} is not a SCRAM mechanism ({', '.join(SCRAM)})")
            salt = secrets.token_bytes(32)
            salted = salted_password(mechanism, password, salt, iterations)
            upsertions.append({"name": user, "mechanism": SCRAM[mechanism][0], "iterations": iterations, "salt": salt, "salted_password": salted})
        # One user may be altered once per request (DUPLICATE_RESOURCE): a request per mechanism.
        for upsertion in upsertions:
            self._alter_scram(user, {"deletions": [], "upsertions": [upsertion]})

    def delete_scram_user(self, user: str, mechanisms: Sequence[str] = ()) -> list[str]:
        """Delete `user`'s credentials for `mechanisms` (all it has when none is named);
        returns the mechanism names deleted."""
        names = list(mechanisms) or list(self.describe_scram_users([user])[0].mechanisms)
        for name in names:
            if name not in SCRAM:
                raise ClientError(f"{name} is not a SCRAM mechanism ({', '.join(SCRAM)})")
            self._alter_scram(user, {"deletions": [{"name": user, "mechanism": SCRAM[name][0]}], "upsertions": []})
        return names

    def _alter_scram(self, user: str, body: dict[str, Any]) -> None:
        _, response = self.client.call(ApiKey.ALTER_USER_SCRAM_CREDENTIALS, body)
        for result in response["results"]:
            if result["error_code"]:
                raise kafka_error(result["error_code"], result["error_message"], f"user {user}")

    @property
    def _timeout_ms(self) -> int:
        return int(self.timeout * 1000)


@dataclass(slots=True, eq=False)
class TopicReader:
    """Records of one topic, in fetch order, as an iterator. `positions` (partition -> next
    offset) is always just past the records handed out; with a group, it is committed after
    each fetch that returned records and on close, so a reader stopped early resumes there.
    `end_offsets` are the log ends found when the reader was made."""

    admin: AdminClient
    topic: str
    leaders: dict[int, int]
    positions: dict[int, int]
    end_offsets: dict[int, int]
    follow: bool = False
    group: str | None = None
    coordinator: int | None = None
    start: dict[int, int] = field(init=False)

    def __post_init__(self) -> None:
        self.start = dict(self.positions)

    def __enter__(self) -> TopicReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[ConsumedRecord]:
        wait_ms = FOLLOW_WAIT_MS if self.follow else READ_WAIT_MS
        while self.follow or not self.at_end:
            records, after = self.admin._fetch(self.topic, self.leaders, self.positions, wait_ms)
            for record in records:
                self.positions[record.partition] = record.offset + 1
                yield record
            self.positions.update(after)
            if records:
                self.commit()

    @property
    def at_end(self) -> bool:
        """Every partition read up to the end offset found at the start."""
        return all(self.positions[p] >= self.end_offsets[p] for p in self.positions)

    def commit(self) -> None:
        """Commit `positions` to the group, if there is one."""
        if self.group is not None and self.coordinator is not None:
            self.admin._commit(self.coordinator, self.group, self.topic, self.positions)

    def close(self) -> None:
        self.commit()


def _mechanism_name(type_code: int) -> str:
    return next((name for name, (code, _) in SCRAM.items() if code == type_code), f"mechanism {type_code}")


def _consumed(partition: int, record: Record) -> ConsumedRecord:
    def copied(data: bytes | bytearray | memoryview | None) -> bytes | None:
        return None if data is None else bytes(data)

    headers = tuple((name, copied(value)) for name, value in record.headers)
    return ConsumedRecord(partition, record.offset, record.timestamp, copied(record.key), copied(record.value), headers)


def _by_leader(leaders: dict[int, int]) -> dict[int, list[int]]:
    """leader node -> its partitions, from partition -> leader."""
    grouped: dict[int, list[int]] = {}
    for partition, leader in leaders.items():
        grouped.setdefault(leader, []).append(partition)
    return grouped


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
