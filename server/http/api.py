"""The JSON API's answers: what the console shows and scripts read, from the broker's services.

Reads go to storage and the coordinators directly. Every change a Kafka client could ask
for (create, alter configs, add partitions, delete records or topics, produce) is made by
calling that API's own handler in-process with a request body built here, so the same
validation applies (topic names, config values, partition limits, internal topics) and
the same Kafka error comes back, as a 422 naming it. Nothing here speaks Kafka to the
broker over a socket. Offsets are reset as `kafka-consumer-groups --reset-offsets` does:
only for a group with no members, previewed without a change when `dry_run` is true.
Message values (and keys) in a schema registry's wire format are decoded beside the raw
bytes when the broker has `console.schema.registry.url` (ottla.server.http.schemas).
A partition of an async engine (PostgreSQL) answers its reads and time lookups with
coroutines: `_settled` awaits them, so every read here works on either engine.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import inspect
import json
import random
import struct
import time
import uuid
from typing import Any, Callable, Iterable, Mapping

from ottla.server.context import ANONYMOUS, ClientIdentity, RequestContext, acl_host
from ottla.server.groups import CommitEntry
from ottla.server.handlers import HANDLERS
from ottla.server.http import ServedBroker
from ottla.server.http.schemas import SchemaRegistry, schema_id
from ottla.server.logs import RECENT
from ottla.server.security.authorizer import AclOperation, AclPermissionType, PatternType, ResourceType
from ottla.storage import FileRegion
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.header import RequestHeader, request_header_version
from ottla.wire.records import iter_batches
from ottla.wire.records.record import Record, build_batch, iter_records

# Most messages one read returns, most bytes of log one request reads to find them (across
# all its partitions), and most bytes of one key, value or header shown (the rest is cut, and
# the message says so). A read yields to the event loop after each chunk of READ_CHUNK_BYTES.
MAX_MESSAGES = 500
MAX_READ_BYTES = 8 << 20
READ_CHUNK_BYTES = 256 << 10
MAX_SHOWN_BYTES = 64 << 10
MAX_LOG_LINES = 1000
# Most bytes of keys and values one read decodes with registry schemas: the rest say so.
MAX_DECODED_BYTES = 1 << 20
ENCODINGS = ("text", "json", "base64", "hex")
_TOPIC, _BROKER, _CLIENT_METRICS = 2, 4, 16  # ConfigResource.Type
_OPERATIONS = {"set": 0, "delete": 1}  # AlterConfigOp.OpType
_INACTIVE = {"Empty", "Dead"}
_HTTP_LISTENER = "HTTP"
_PRODUCE_BY_NAME = 12  # v13 names topics by id (KIP-516)

# Picks a key-less record's partition: its own generator, so a broker embedded in a program (a
# test suite seeding `random`) never moves the program's global random state.
_KEYLESS_PARTITIONS = random.Random()


class ApiError(Exception):
    """A refusal with its HTTP status; the message is the answer's `error`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Api:
    """The answers for one request, made as `principal` (from `address`): changes go through
    the handlers, which authorize them as a Kafka client's; reads check the ACL Kafka's own
    read of the same thing would (Describe a topic or group, Read a topic's records)."""

    def __init__(self, broker: ServedBroker, principal: str = ANONYMOUS, address: str = "", schemas: SchemaRegistry | None = None) -> None:
        self.broker = broker
        self.principal = principal
        self.address = address
        self.schemas = schemas

    # --- plumbing -----------------------------------------------------------------------

    @property
    def _services(self) -> Any:
        services = self.broker.services
        if services is None:
            raise ApiError(503, "the broker is not running")
        return services

    async def _kafka(self, api: ApiKey, body: dict[str, Any], version: int | None = None) -> Any:
        """Answer `body` with API `api`'s handler at `version` (default its highest), as a client's request would be."""
        handle, _, highest = HANDLERS[api]
        version = highest if version is None else version
        context = RequestContext(self._services, self._identity)
        header = RequestHeader(api, version, 0, "ottla-http", request_header_version(api, version))
        result = handle(context, header, body)
        if asyncio.iscoroutine(result):
            result = await result
        return result

    @property
    def _identity(self) -> ClientIdentity:
        return ClientIdentity(self.principal, _HTTP_LISTENER, f"{self.address}:0")

    def _may(self, operation: AclOperation, resource_type: ResourceType, name: str) -> bool:
        authorizer = self._services.authorizer
        return authorizer is None or bool(authorizer.authorize(self.principal, acl_host(self.address), operation, resource_type, name))

    def _require(self, operation: AclOperation, resource_type: ResourceType, name: str) -> None:
        if not self._may(operation, resource_type, name):
            raise ApiError(403, f"{_DENIED[resource_type]}: {self.principal} may not {operation.name} {resource_type.name} {name!r}")

    @staticmethod
    def _check(error_code: int, message: str | None = None) -> None:
        if error_code:
            name = _error_name(error_code)
            status = 404 if error_code in _NOT_FOUND else 403 if name.endswith("AUTHORIZATION_FAILED") else 422
            raise ApiError(status, f"{name}: {message}" if message else name)

    def _log(self, topic: str, partition: int) -> Any:
        try:
            return self._services.storage.partition(topic, partition)
        except KafkaError as exc:
            raise ApiError(404, f"{_error_name(exc.code)}: {exc.message or f'{topic}-{partition}'}") from None

    def _topic_info(self, name: str) -> Any:
        info = self._services.storage.topic(name)
        if info is None:
            raise ApiError(404, f"UNKNOWN_TOPIC_OR_PARTITION: no topic {name!r}")
        return info

    # --- cluster ------------------------------------------------------------------------

    def cluster(self) -> dict[str, Any]:
        """The broker at a glance; `data_dir` only for a principal that may Describe the cluster,
        as Kafka shows log directories only through DescribeLogDirs, which asks that."""
        services = self._services
        broker = self.broker
        answer = {
            "cluster_id": services.config.cluster_id,
            "node_id": services.node.node_id,
            "bootstrap_servers": broker.bootstrap_servers,
            "http": None if broker.http is None else broker.http.url,
            "connections": len(broker.connections),
            "uptime_seconds": round(time.time() - broker.metrics.started, 3),
            "apis": [{"api": key.name, "min_version": low, "max_version": high} for key, low, high in services.supported_apis],
        }
        if self._may(AclOperation.DESCRIBE, ResourceType.CLUSTER, "kafka-cluster"):
            answer["data_dir"] = None if services.data_dir is None else str(services.data_dir)
        return answer

    async def broker_configs(self) -> dict[str, Any]:
        return {"configs": await self._configs(_BROKER, str(self._services.node.node_id))}

    async def alter_broker_configs(self, body: dict[str, Any]) -> dict[str, Any]:
        """`{"set": {key: value}, "delete": [key]}`: dynamic broker configs, as
        `kafka-configs --entity-type brokers --alter` changes them (IncrementalAlterConfigs)."""
        node = str(self._services.node.node_id)
        await self._alter_configs(_BROKER, node, body)
        return await self.broker_configs()

    async def _alter_configs(self, kind: int, name: str, body: dict[str, Any]) -> None:
        changes = [{"name": str(key), "config_operation": _OPERATIONS["set"], "value": str(value)} for key, value in _field(body, "set", dict, {}).items()]
        changes += [{"name": str(key), "config_operation": _OPERATIONS["delete"], "value": None} for key in _field(body, "delete", list, [])]
        if not changes:
            raise ApiError(400, "nothing to change: give `set` and/or `delete`")
        answer = await self._kafka(
            ApiKey.INCREMENTAL_ALTER_CONFIGS,
            {"resources": [{"resource_type": kind, "resource_name": name, "configs": changes}], "validate_only": _field(body, "validate_only", bool, False)},
        )
        result = answer["responses"][0]
        self._check(result["error_code"], result["error_message"])

    def stats(self) -> dict[str, Any]:
        """The broker's running totals, for charts that difference two samples: bytes and
        messages in and out of the topics the principal may Describe; with Describe on the
        cluster (what the broker as a whole did is the cluster's), also the connections and,
        per API, the requests answered and the seconds they took (otherwise null and none)."""
        metrics = self.broker.metrics
        topics = [stats for name, stats in metrics.topics.items() if self._may(AclOperation.DESCRIBE, ResourceType.TOPIC, name)]
        whole = self._may(AclOperation.DESCRIBE, ResourceType.CLUSTER, "kafka-cluster")
        apis = {
            ApiKey(key).name: {"requests": stats.requests, "seconds": round(stats.seconds, 6), "errors": sum(stats.errors.values())}
            for key, stats in enumerate(metrics.apis)
            if whole and stats is not None and key in ApiKey._value2member_map_
        }
        return {
            "time": time.time(),
            "bytes_in": sum(stats.bytes_in for stats in topics),
            "bytes_out": sum(stats.bytes_out for stats in topics),
            "messages_in": sum(stats.messages_in for stats in topics),
            "connections": len(self.broker.connections) if whole else None,
            "apis": apis,
        }

    async def _configs(self, kind: int, name: str) -> list[dict[str, Any]]:
        answer = await self._kafka(
            ApiKey.DESCRIBE_CONFIGS,
            {"resources": [{"resource_type": kind, "resource_name": name, "configuration_keys": None}], "include_synonyms": False, "include_documentation": False},
        )
        result = answer["results"][0]
        self._check(result["error_code"], result["error_message"])
        return [
            {"name": entry["name"], "value": entry["value"], "source": _SOURCES.get(entry["config_source"], str(entry["config_source"])), "read_only": entry["read_only"], "sensitive": entry["is_sensitive"]}
            for entry in result["configs"]
        ]

    # --- topics -------------------------------------------------------------------------

    def topics(self) -> dict[str, Any]:
        storage = self._services.storage
        listed = []
        for info in sorted(storage.topics(), key=lambda topic: topic.name):
            if not self._may(AclOperation.DESCRIBE, ResourceType.TOPIC, info.name):
                continue
            logs = [storage.partition(info.name, index) for index in range(info.partitions)]
            listed.append(
                {
                    "name": info.name,
                    "topic_id": _uuid(info.topic_id),
                    "partitions": info.partitions,
                    "internal": info.name.startswith("__"),
                    "size": sum(log.size for log in logs),
                    "messages_estimate": sum(log.log_end_offset - log.log_start_offset for log in logs),
                }
            )
        return {"topics": listed}

    async def topic(self, name: str) -> dict[str, Any]:
        self._require(AclOperation.DESCRIBE, ResourceType.TOPIC, name)
        info = self._topic_info(name)
        node = self._services.node.node_id
        partitions = []
        for index in range(info.partitions):
            log = self._log(name, index)
            partitions.append(
                {
                    "partition": index,
                    "leader": node,
                    "replicas": [node],
                    "isr": [node],
                    "log_start_offset": log.log_start_offset,
                    "log_end_offset": log.log_end_offset,
                    "high_watermark": log.high_watermark,
                    "last_stable_offset": log.last_stable_offset,
                    "size": log.size,
                    "segments": len(log.segments),
                }
            )
        return {"name": name, "topic_id": _uuid(info.topic_id), "partitions": partitions, "configs": await self._configs(_TOPIC, name)}

    async def create_topic(self, body: dict[str, Any]) -> dict[str, Any]:
        name = _field(body, "name", str)
        partitions = _field(body, "partitions", int, -1)
        configs = _field(body, "configs", dict, {})
        answer = await self._kafka(
            ApiKey.CREATE_TOPICS,
            {
                "topics": [
                    {
                        "name": name,
                        "num_partitions": partitions,
                        "replication_factor": _field(body, "replication_factor", int, -1),
                        "assignments": [],
                        "configs": [{"name": str(key), "value": None if value is None else str(value)} for key, value in configs.items()],
                    }
                ],
                "timeout_ms": 30000,
                "validate_only": _field(body, "validate_only", bool, False),
            },
        )
        result = answer["topics"][0]
        if result["error_code"] == ErrorCode.TOPIC_ALREADY_EXISTS:
            raise ApiError(409, f"TOPIC_ALREADY_EXISTS: {result['error_message']}")
        self._check(result["error_code"], result["error_message"])
        return {"name": name, "topic_id": _uuid(result.get("topic_id", bytes(16))), "partitions": result.get("num_partitions", partitions)}

    async def delete_topic(self, name: str) -> dict[str, Any]:
        answer = await self._kafka(ApiKey.DELETE_TOPICS, {"topics": [{"name": name, "topic_id": bytes(16)}], "topic_names": [name], "timeout_ms": 30000})
        result = answer["responses"][0]
        self._check(result["error_code"], result.get("error_message"))
        return {"deleted": name}

    async def alter_topic_configs(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """`{"set": {key: value}, "delete": [key]}`, applied together as IncrementalAlterConfigs does."""
        await self._alter_configs(_TOPIC, name, body)
        return {"name": name, "configs": await self._configs(_TOPIC, name)}

    async def add_partitions(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """`{"count": N}`: the topic's new total, as CreatePartitions takes it."""
        count = _field(body, "count", int)
        answer = await self._kafka(
            ApiKey.CREATE_PARTITIONS,
            {"topics": [{"name": name, "count": count, "assignments": None}], "timeout_ms": 30000, "validate_only": _field(body, "validate_only", bool, False)},
        )
        result = answer["results"][0]
        self._check(result["error_code"], result["error_message"])
        return {"name": name, "partitions": self._topic_info(name).partitions}

    async def delete_records(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """`{"offsets": {"0": 42}}`: each partition's records before that offset (-1: all) go."""
        offsets = _field(body, "offsets", dict)
        try:
            wanted = [{"partition_index": int(partition), "offset": int(offset)} for partition, offset in offsets.items()]
        except (TypeError, ValueError):
            raise ApiError(400, "`offsets` maps partition numbers to offsets") from None
        answer = await self._kafka(ApiKey.DELETE_RECORDS, {"topics": [{"name": name, "partitions": wanted}], "timeout_ms": 30000})
        results = answer["topics"][0]["partitions"]
        for result in results:
            self._check(result["error_code"], f"partition {result['partition_index']}")
        return {"name": name, "low_watermarks": {str(result["partition_index"]): result["low_watermark"] for result in results}}

    # --- messages -----------------------------------------------------------------------

    async def messages(self, name: str, query: Mapping[str, str]) -> dict[str, Any]:
        """Messages of one partition from `offset` or `timestamp` (ms), or the `newest` N of one
        partition or of all; at most `limit` (<= MAX_MESSAGES), keys, values and headers
        rendered in `encoding`. With `key` (a key equal to it) or `contains` (a substring of
        the key, value or a header value), only matching messages are returned. One request
        reads at most MAX_READ_BYTES of log, whatever the partitions: `scanned_to` says where
        a read from an offset stopped, so the next page starts there; the newest N are searched
        backwards from each high watermark, each partition with an equal share of what the
        ones before it left, and `complete` is false when the budget ran out
        before every partition had its N or reached its start. With a schema registry, a key or value in its
        wire format gains `key_schema` or `value_schema`: `{"id", "type", "value"}` decoded
        (Protobuf adds `message`, and `note` on what it could not name), or `{"id", "error"}`."""
        self._require(AclOperation.READ, ResourceType.TOPIC, name)
        info = self._topic_info(name)
        wanted = _matcher(query.get("key"), query.get("contains"))
        encoding = query.get("encoding", "text")
        if encoding not in ENCODINGS:
            raise ApiError(400, f"encoding must be one of {', '.join(ENCODINGS)}")
        limit = _query_int(query, "limit", 50)
        if not 1 <= limit <= MAX_MESSAGES:
            raise ApiError(400, f"limit must be between 1 and {MAX_MESSAGES}")
        partition = _query_int(query, "partition", None) if "partition" in query else None
        if partition is not None and not 0 <= partition < info.partitions:
            raise ApiError(404, f"UNKNOWN_TOPIC_OR_PARTITION: {name} has {info.partitions} partitions")
        if "newest" in query:
            newest = _query_int(query, "newest", limit)
            if not 1 <= newest <= MAX_MESSAGES:
                raise ApiError(400, f"newest must be between 1 and {MAX_MESSAGES}")
            found = []
            budget = _Budget(MAX_READ_BYTES)
            complete = True
            indexes = list(range(info.partitions)) if partition is None else [partition]
            for position, index in enumerate(indexes):
                # An equal share of what is left, so the first partitions cannot spend it all.
                share = _Budget(budget.remaining // (len(indexes) - position))
                given = share.remaining
                newest_found, reached = await _newest(self._log(name, index), index, newest, wanted, share)
                budget.remaining -= given - share.remaining
                found += newest_found
                complete = complete and reached
            found.sort(key=lambda item: (item[1].timestamp, item[0], item[1].offset))
            found = found[-newest:]
            return {"topic": name, "encoding": encoding, "complete": complete, "messages": await self._rendered(found, encoding)}
        if partition is None:
            raise ApiError(400, "give `partition` with `offset` or `timestamp`, or ask for the `newest`")
        log = self._log(name, partition)
        if "timestamp" in query:
            located = await _settled(log.offset_for_timestamp(_query_int(query, "timestamp", 0)))
            start = log.high_watermark if located is None else located[1]
        else:
            start = _query_int(query, "offset", log.log_start_offset)
            if start < 0:
                raise ApiError(400, "offset must not be negative")
        found, scanned_to = await _read(log, partition, max(start, log.log_start_offset), limit, wanted, _Budget(MAX_READ_BYTES))
        return {"topic": name, "encoding": encoding, "scanned_to": scanned_to, "messages": await self._rendered(found, encoding)}

    async def _rendered(self, found: list[tuple[int, Record]], encoding: str) -> list[dict[str, Any]]:
        rendered = [_render(index, record, encoding) for index, record in found]
        if self.schemas is None:
            return rendered
        budget = MAX_DECODED_BYTES
        for message, (_, record) in zip(rendered, found):
            for part, data in (("key", record.key), ("value", record.value)):
                found_id = schema_id(data)
                if found_id is None or data is None:
                    continue
                if len(data) > min(budget, MAX_SHOWN_BYTES):
                    why = f"larger than {MAX_SHOWN_BYTES} bytes" if len(data) > MAX_SHOWN_BYTES else f"this read decoded {MAX_DECODED_BYTES} bytes already: read fewer messages"
                    message[f"{part}_schema"] = {"id": found_id, "error": why}
                    continue
                budget -= len(data)
                message[f"{part}_schema"] = await self.schemas.decode(bytes(data))
        return rendered

    async def produce(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """`{"key", "value", "headers": {name: value}, "partition", "encoding"}`: one record,
        appended through the Produce handler with acks=all; key and value in `encoding`
        (text, json: any JSON value, base64, hex); no partition: the key's, as Kafka's
        default partitioner picks it, or any for no key. Write is checked before the topic is
        looked up, as Kafka's Produce does: a topic the principal may not write to is refused
        whether it exists or not."""
        self._require(AclOperation.WRITE, ResourceType.TOPIC, name)
        info = self._topic_info(name)
        encoding = _field(body, "encoding", str, "text")
        if encoding not in ENCODINGS:
            raise ApiError(400, f"encoding must be one of {', '.join(ENCODINGS)}")
        key = _decode(body.get("key"), encoding, "key")
        value = _decode(body.get("value"), encoding, "value")
        headers = _field(body, "headers", dict, {})
        for header in headers:
            _utf8(header, "a header name")
        record_headers = tuple((header, _decode(content, encoding, f"header {header}")) for header, content in headers.items())
        partition = _field(body, "partition", int, -1)
        if partition < 0:
            partition = (murmur2(key) & 0x7FFFFFFF) % info.partitions if key is not None else _KEYLESS_PARTITIONS.randrange(info.partitions)
        timestamp = _field(body, "timestamp", int, int(time.time() * 1000))
        if not 0 <= timestamp < 1 << 63:
            raise ApiError(400, "`timestamp` must be milliseconds since the epoch, from 0 to 2^63-1")
        batch = bytearray(build_batch([Record(0, timestamp, key, value, record_headers)]))
        answer = await self._kafka(
            ApiKey.PRODUCE,
            {"transactional_id": None, "acks": -1, "timeout_ms": 30000, "topic_data": [{"name": name, "topic_id": bytes(16), "partition_data": [{"index": partition, "records": memoryview(batch)}]}]},
            _PRODUCE_BY_NAME,
        )
        result = answer["responses"][0]["partition_responses"][0]
        self._check(result["error_code"], result.get("error_message"))
        return {"topic": name, "partition": partition, "offset": result["base_offset"], "timestamp": timestamp}

    # --- groups -------------------------------------------------------------------------

    def groups(self) -> dict[str, Any]:
        """Every group: classic ones, KIP-848 `consumer` ones and share groups, each with its `type`."""
        coordinator = self._services.groups
        consumer_groups = coordinator.consumer.groups
        listed = [
            {"group_id": group_id, "type": "classic", "state": group.state.value, "protocol_type": group.protocol_type or "", "members": len(group.members)}
            for group_id, group in coordinator.groups.items()
            if group_id not in consumer_groups
        ]
        listed += [
            {"group_id": group_id, "type": "consumer", "state": group.state.value, "protocol_type": "consumer", "members": len(group.members)}
            for group_id, group in consumer_groups.items()
        ]
        listed += [
            {"group_id": group_id, "type": "share", "state": group.state.value, "protocol_type": "share", "members": len(group.members)}
            for group_id, group in self._services.share.groups.items()
            if not group.dead
        ]
        listed = [item for item in listed if self._may(AclOperation.DESCRIBE, ResourceType.GROUP, item["group_id"])]
        return {"groups": sorted(listed, key=lambda item: (item["group_id"], item["type"]))}

    def group(self, group_id: str) -> dict[str, Any]:
        """One group's state, members with their assignments, and committed offsets with lag
        (of the topics the principal may describe, as OffsetFetch filters them)."""
        self._require(AclOperation.DESCRIBE, ResourceType.GROUP, group_id)
        coordinator = self._services.groups
        consumer = coordinator.consumer.groups.get(group_id)
        if consumer is not None:
            return self._consumer_group(consumer, coordinator.groups.get(group_id))
        share = self._services.share.groups.get(group_id)
        if share is not None and not share.dead and group_id not in coordinator.groups:
            return self._share_group(share)
        group = coordinator.groups.get(group_id)
        if group is None:
            raise ApiError(404, f"GROUP_ID_NOT_FOUND: no group {group_id!r}")
        members = [
            {
                "member_id": member.member_id,
                "group_instance_id": member.group_instance_id,
                "client_id": member.client_id,
                "client_host": member.client_host,
                "assignment": _assignment(member.assignment) if group.protocol_type == "consumer" else None,
            }
            for member in group.members.values()
        ]
        return {
            "group_id": group_id,
            "type": "classic",
            "state": group.state.value,
            "protocol_type": group.protocol_type or "",
            "protocol": group.protocol_name,
            "generation_id": group.generation_id,
            "leader": group.leader_id,
            "members": members,
            "offsets": self._lag(group.offsets, members),
        }

    def _consumer_group(self, group: Any, offset_holder: Any) -> dict[str, Any]:
        """A KIP-848 group: its offsets live in the classic offset holder of the same id."""
        members = [
            {
                "member_id": member.member_id,
                "group_instance_id": member.instance_id,
                "client_id": member.metadata.client_id,
                "client_host": member.metadata.client_host,
                "member_epoch": member.member_epoch,
                "subscribed_topics": list(member.metadata.subscribed_topic_names),
                "assignment": self._by_topic_name(member.current.assigned),
            }
            for member in group.members.values()
        ]
        self._require_assigned_topics(members, (self._by_topic_name(target) for target in group.target.values()))
        return _epoch_group(group, "consumer", members, self._lag({} if offset_holder is None else offset_holder.offsets, members))

    def _share_group(self, group: Any) -> dict[str, Any]:
        members = [
            {
                "member_id": member.member_id,
                "group_instance_id": None,
                "client_id": member.client_id,
                "client_host": member.client_host,
                "member_epoch": member.member_epoch,
                "subscribed_topics": list(member.subscribed_topic_names),
                "assignment": self._by_topic_name(member.assignment),
            }
            for member in group.members.values()
        ]
        self._require_assigned_topics(members, ())
        return _epoch_group(group, "share", members, [])

    def _require_assigned_topics(self, members: list[dict[str, Any]], targets: Iterable[Mapping[str, Any]]) -> None:
        """KafkaApis.handleConsumerGroupDescribe / handleShareGroupDescribeRequest: a group with
        a current or target assignment of a topic the principal may not DESCRIBE is refused
        whole (TOPIC_AUTHORIZATION_FAILED), so none of its members' topics are shown."""
        if self._services.authorizer is None:
            return
        assigned = {name for member in members for name in member["assignment"]} | {name for target in targets for name in target}
        for name in sorted(assigned):
            if not self._may(AclOperation.DESCRIBE, ResourceType.TOPIC, name):
                raise ApiError(403, f"TOPIC_AUTHORIZATION_FAILED: {self.principal} may not DESCRIBE TOPIC {name!r} the group is assigned")

    def _by_topic_name(self, assignment: Mapping[bytes, Any]) -> dict[str, list[int]]:
        storage = self._services.storage
        named: dict[str, list[int]] = {}
        for topic_id, partitions in assignment.items():
            info = storage.topic_by_id(topic_id)
            named[_uuid(topic_id) if info is None else info.name] = sorted(partitions)
        return named

    def _lag(self, committed_offsets: Mapping[tuple[str, int], Any], members: list[dict[str, Any]]) -> list[dict[str, Any]]:
        owners = {(topic, partition): member["member_id"] for member in members for topic, partitions in (member["assignment"] or {}).items() for partition in partitions}
        offsets = []
        for (topic, partition), committed in sorted(committed_offsets.items()):
            if not self._may(AclOperation.DESCRIBE, ResourceType.TOPIC, topic):
                continue
            end = self._end_offset(topic, partition)
            offsets.append(
                {
                    "topic": topic,
                    "partition": partition,
                    "committed_offset": committed.offset,
                    "log_end_offset": end,
                    "lag": None if end is None else max(end - committed.offset, 0),
                    "metadata": committed.metadata,
                    "member_id": owners.get((topic, partition)),
                }
            )
        return offsets

    def _end_offset(self, topic: str, partition: int) -> int | None:
        try:
            return int(self._services.storage.partition(topic, partition).high_watermark)
        except KafkaError:
            return None

    async def reset_offsets(self, group_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """`{"topic", "partitions": [..] (default all), "to": earliest|latest|timestamp|offset|shift,
        "value": N, "dry_run": true}`, as kafka-consumer-groups --reset-offsets: each offset
        clamped to the partition's log, and only for a group with no active members; as the tool,
        `shift` refuses a partition without a committed offset, and a share group is refused."""
        services = self._services
        topic = _field(body, "topic", str)
        # What OffsetCommit asks of its caller: Read on the group and on the topic.
        self._require(AclOperation.READ, ResourceType.GROUP, group_id)
        self._require(AclOperation.READ, ResourceType.TOPIC, topic)
        info = self._topic_info(topic)
        to = _field(body, "to", str)
        if to not in ("earliest", "latest", "timestamp", "offset", "shift"):
            raise ApiError(400, "to must be earliest, latest, timestamp, offset or shift")
        value = _field(body, "value", int, 0) if to in ("earliest", "latest") else _field(body, "value", int)
        dry_run = _field(body, "dry_run", bool, True)
        partitions = _field(body, "partitions", list, list(range(info.partitions)))
        if not all(isinstance(p, int) and not isinstance(p, bool) and 0 <= p < info.partitions for p in partitions):
            raise ApiError(404, f"UNKNOWN_TOPIC_OR_PARTITION: {topic} has {info.partitions} partitions")
        group = services.groups.groups.get(group_id)
        if group is not None and group.state.value not in _INACTIVE:
            raise ApiError(409, f"offsets can only be reset for an inactive group; {group_id!r} is {group.state.value}")
        consumer = services.groups.consumer.groups.get(group_id)
        if consumer is not None and consumer.members:
            raise ApiError(409, f"offsets can only be reset for an inactive group; {group_id!r} is {consumer.state.value}")
        share = services.share.groups.get(group_id)
        if share is not None and not share.dead and group is None:
            raise ApiError(409, f"{group_id!r} is a share group: kafka-share-groups --reset-offsets resets its start offsets")
        planned = []
        for partition in partitions:
            log = self._log(topic, partition)
            committed = None if group is None else group.offsets.get((topic, partition))
            start, end = log.log_start_offset, log.high_watermark
            if to == "earliest":
                target = start
            elif to == "latest":
                target = end
            elif to == "timestamp":
                located = await _settled(log.offset_for_timestamp(value))
                target = end if located is None else located[1]
            elif to == "offset":
                target = value
            elif committed is None:
                raise ApiError(409, f"Cannot shift offset for partition {topic}-{partition} since there is no current committed offset")
            else:
                target = committed.offset + value
            planned.append({"topic": topic, "partition": partition, "previous_offset": None if committed is None else committed.offset, "new_offset": min(max(target, start), end)})
        if not dry_run:
            entries = [CommitEntry(topic, item["partition"], item["new_offset"]) for item in planned]
            errors = services.groups.commit_offsets(group_id, -1, "", None, entries)
            for error in errors:
                if error:
                    self._check(error)
        return {"group_id": group_id, "dry_run": dry_run, "offsets": planned}

    # --- security: ACLs and SCRAM users -------------------------------------------------------

    async def acls(self) -> dict[str, Any]:
        """Every ACL, as `kafka-acls --list` shows them (DescribeAcls, which asks Describe on
        the cluster); `enabled` is false when the broker has no authorizer."""
        any_ = 1  # the ANY of each DescribeAcls filter field
        answer = await self._kafka(
            ApiKey.DESCRIBE_ACLS,
            {"resource_type_filter": any_, "resource_name_filter": None, "pattern_type_filter": any_, "principal_filter": None, "host_filter": None, "operation": any_, "permission_type": any_},
        )
        if answer["error_code"] == ErrorCode.SECURITY_DISABLED:
            return {"enabled": False, "acls": []}
        self._check(answer["error_code"], answer["error_message"])
        listed = [
            {
                "resource_type": _enum_name(ResourceType, resource["resource_type"]),
                "resource_name": resource["resource_name"],
                "pattern_type": _enum_name(PatternType, resource["pattern_type"]),
                "principal": acl["principal"],
                "host": acl["host"],
                "operation": _enum_name(AclOperation, acl["operation"]),
                "permission": _enum_name(AclPermissionType, acl["permission_type"]),
            }
            for resource in answer["resources"]
            for acl in resource["acls"]
        ]
        return {"enabled": True, "acls": listed}

    async def users(self) -> dict[str, Any]:
        """The SCRAM users and their mechanisms (DescribeUserScramCredentials: Describe on the cluster)."""
        answer = await self._kafka(ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS, {"users": None})
        self._check(answer["error_code"], answer["error_message"])
        mechanisms = {1: "SCRAM-SHA-256", 2: "SCRAM-SHA-512"}
        return {
            "users": [
                {"user": result["user"], "mechanisms": [{"mechanism": mechanisms.get(info["mechanism"], str(info["mechanism"])), "iterations": info["iterations"]} for info in result["credential_infos"]]}
                for result in answer["results"]
                if not result["error_code"]
            ]
        }

    # --- client telemetry (KIP-714) ---------------------------------------------------------

    def client_metrics(self) -> dict[str, Any]:
        """The CLIENT_METRICS subscriptions and the client instances that asked for them."""
        self._require(AclOperation.DESCRIBE_CONFIGS, ResourceType.CLUSTER, "kafka-cluster")
        telemetry = self._services.telemetry
        subscriptions = [{"name": name, "configs": telemetry.configs(name)} for name in telemetry.names()]
        instances = [
            {
                "client_instance_id": str(uuid.UUID(bytes=instance.instance_id)),
                "client_id": instance.client.client_id,
                "client_address": f"{instance.client.source_address}:{instance.client.source_port}",
                "subscription_id": instance.subscription_id,
                "requested_metrics": list(instance.metrics),
                "push_interval_ms": instance.push_interval_ms,
                "pushes": instance.pushes,
                "last_push_ms": instance.last_push_ms or None,
                "last_error": _error_name(instance.last_error) if instance.last_error else None,
                "terminating": instance.terminating,
                "series": len(instance.series),
            }
            for instance in telemetry.describe_instances()
        ]
        return {"subscriptions": subscriptions, "instances": instances}

    def client_instance(self, instance_id: str) -> dict[str, Any]:
        """The latest value of every metric one client instance pushed."""
        self._require(AclOperation.DESCRIBE_CONFIGS, ResourceType.CLUSTER, "kafka-cluster")
        try:
            key = uuid.UUID(instance_id).bytes
        except ValueError:
            raise ApiError(400, "a client instance id is a UUID") from None
        instance = self._services.telemetry.instances.get(key)
        if instance is None:
            raise ApiError(404, f"no client instance {instance_id}")
        metrics = [
            {"name": name, "attributes": dict(attributes), "kind": series.kind, "value": series.value}
            for (name, attributes), series in sorted(instance.series.items())
        ]
        return {"client_instance_id": instance_id, "client_id": instance.client.client_id, "metrics": metrics}

    async def alter_client_metrics(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """`{"set": {"metrics": "org.apache.kafka.producer.", "interval.ms": "10000", "match":
        "client_id=app.*"}, "delete": [key]}`: a subscription changed as `kafka-client-metrics
        --alter` changes it (IncrementalAlterConfigs on the CLIENT_METRICS resource)."""
        await self._alter_configs(_CLIENT_METRICS, name, body)
        return {"name": name, "configs": self._services.telemetry.configs(name)}

    # --- transactions, producers, logs ----------------------------------------------------

    def transactions(self) -> dict[str, Any]:
        listed = [
            {
                "transactional_id": metadata.transactional_id,
                "producer_id": metadata.producer_id,
                "producer_epoch": metadata.producer_epoch,
                "state": metadata.state.value,
                "timeout_ms": metadata.timeout_ms,
                "start_ms": metadata.start_ms,
                # DescribeTransactions leaves out the topics the principal may not Describe.
                "partitions": sorted(
                    f"{topic}-{partition}" for topic, partition in metadata.partitions if self._may(AclOperation.DESCRIBE, ResourceType.TOPIC, topic)
                ),
            }
            for metadata in sorted(self._services.txn.transactions.values(), key=lambda item: item.transactional_id)
            if self._may(AclOperation.DESCRIBE, ResourceType.TRANSACTIONAL_ID, metadata.transactional_id)
        ]
        return {"transactions": listed}

    def producers(self, query: Mapping[str, str]) -> dict[str, Any]:
        """The producers each partition of `topic` (or of every topic) remembers. A topic named
        is refused before it is looked up, as DescribeProducers does, when it may not be Read."""
        storage = self._services.storage
        if "topic" in query:
            self._require(AclOperation.READ, ResourceType.TOPIC, query["topic"])
        topics = [self._topic_info(query["topic"])] if "topic" in query else storage.topics()
        found = []
        for info in sorted(topics, key=lambda item: item.name):
            if not self._may(AclOperation.READ, ResourceType.TOPIC, info.name):
                continue  # DescribeProducers asks Read on the topic
            for index in range(info.partitions):
                for producer_id, state in sorted(storage.partition(info.name, index).producer_state.producers.items()):
                    found.append(
                        {
                            "topic": info.name,
                            "partition": index,
                            "producer_id": producer_id,
                            "producer_epoch": state.epoch,
                            "last_sequence": state.last_seq,
                            "last_timestamp": state.last_timestamp,
                            "current_txn_start_offset": state.current_txn_first_offset,
                        }
                    )
        return {"producers": found}

    def logs(self, query: Mapping[str, str]) -> dict[str, Any]:
        """The broker's newest log lines after `since` (a line's `seq`), at most `limit`."""
        self._require(AclOperation.DESCRIBE, ResourceType.CLUSTER, "kafka-cluster")
        limit = _query_int(query, "limit", 200)
        if not 1 <= limit <= MAX_LOG_LINES:
            raise ApiError(400, f"limit must be between 1 and {MAX_LOG_LINES}")
        return {"lines": RECENT.since(_query_int(query, "since", 0), limit)}


_DENIED = {
    ResourceType.TOPIC: "TOPIC_AUTHORIZATION_FAILED",
    ResourceType.GROUP: "GROUP_AUTHORIZATION_FAILED",
    ResourceType.CLUSTER: "CLUSTER_AUTHORIZATION_FAILED",
    ResourceType.TRANSACTIONAL_ID: "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
}
_NOT_FOUND = {ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.UNKNOWN_TOPIC_ID, ErrorCode.GROUP_ID_NOT_FOUND}
_SOURCES = {1: "DYNAMIC_TOPIC_CONFIG", 2: "DYNAMIC_BROKER_CONFIG", 3: "DYNAMIC_DEFAULT_BROKER_CONFIG", 4: "STATIC_BROKER_CONFIG", 5: "DEFAULT_CONFIG", 6: "DYNAMIC_BROKER_LOGGER_CONFIG", 7: "CLIENT_METRICS_CONFIG", 8: "GROUP_CONFIG"}
_MISSING = object()


def _epoch_group(group: Any, kind: str, members: list[dict[str, Any]], offsets: list[dict[str, Any]]) -> dict[str, Any]:
    """A group of the KIP-848 protocols (consumer, share) in the classic group's answer shape:
    its epoch is the generation, and it has no protocol or leader."""
    return {
        "group_id": group.group_id,
        "type": kind,
        "state": group.state.value,
        "protocol_type": kind,
        "protocol": None,
        "generation_id": group.group_epoch,
        "leader": None,
        "members": members,
        "offsets": offsets,
    }


def _enum_name(kind: Any, value: int) -> str:
    try:
        return str(kind(value).name)
    except ValueError:
        return str(value)


def _error_name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return f"error {code}"


def _uuid(raw: bytes) -> str:
    """A Kafka Uuid as its tools print it: URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")


def _field(body: Mapping[str, Any], name: str, kind: type, default: Any = _MISSING) -> Any:
    value = body.get(name, _MISSING)
    if value is _MISSING or (value is None and default is not _MISSING):
        if default is _MISSING:
            raise ApiError(400, f"`{name}` is required")
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ApiError(400, f"`{name}` must be a JSON {_JSON_NAMES.get(kind, kind.__name__)}")
    return value


_JSON_NAMES = {str: "string", int: "integer", bool: "boolean", dict: "object", list: "array"}


def _query_int(query: Mapping[str, str], name: str, default: Any) -> Any:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, f"`{name}` must be an integer") from None


def _matcher(key: str | None, contains: str | None) -> Callable[[Record], bool] | None:
    """What a search keeps: a record whose key is `key` (UTF-8), and whose key, value or a
    header value holds the bytes of `contains`; None when neither is asked for."""
    if key is None and contains is None:
        return None
    wanted_key = None if key is None else _utf8(key, "`key`")
    needle = None if not contains else _utf8(contains, "`contains`")

    def matches(record: Record) -> bool:
        if wanted_key is not None and (record.key is None or bytes(record.key) != wanted_key):
            return False
        if needle is None:
            return True
        parts = (record.key, record.value, *(value for _, value in record.headers))
        return any(part is not None and needle in bytes(part) for part in parts)

    return matches


async def _settled(answer: Any) -> Any:
    """A partition's answer: as given by the local engine, awaited from an async one."""
    return await answer if inspect.isawaitable(answer) else answer


class _Budget:
    """The bytes of log one request may still read, shared by all the partitions it reads."""

    def __init__(self, remaining: int) -> None:
        self.remaining = remaining


async def _read(
    log: Any, partition: int, start: int, limit: int, wanted: Callable[[Record], bool] | None, budget: _Budget, end: int | None = None
) -> tuple[list[tuple[int, Record]], int]:
    """Up to `limit` records of `log` from offset `start` below `end` (default its high
    watermark) that `wanted` keeps (all without it), reading while `budget` lasts and yielding
    to the event loop after each chunk, so a search never holds up Kafka clients for long;
    control batches (transaction markers) are skipped. Also returns the offset the read
    stopped before."""
    found: list[tuple[int, Record]] = []
    offset = start
    end = log.high_watermark if end is None else min(end, log.high_watermark)
    while len(found) < limit and offset < end and budget.remaining > 0:
        try:
            result = await _settled(log.read(offset, min(READ_CHUNK_BYTES, budget.remaining), min_one=True, max_offset=end))
        except KafkaError:
            break  # retention moved the start past `offset` meanwhile
        if not result.chunks:
            break
        data = b"".join(chunk.read() if isinstance(chunk, FileRegion) else bytes(chunk) for chunk in result.chunks)
        budget.remaining -= len(data)
        for header, batch in iter_batches(data, from_client=False):
            if not header.is_control:
                for record in iter_records(batch, from_offset=offset):
                    if record.offset >= end:
                        break
                    if len(found) < limit and (wanted is None or wanted(record)):
                        found.append((partition, record))
                        if len(found) == limit:
                            offset = record.offset + 1
            if len(found) >= limit:
                break
            offset = min(max(offset, header.next_offset), end)
        await asyncio.sleep(0)
    return found, offset


async def _newest(log: Any, partition: int, count: int, wanted: Callable[[Record], bool] | None, budget: _Budget) -> tuple[list[tuple[int, Record]], bool]:
    """The newest `count` records of `log` that `wanted` keeps, oldest first: windows of
    offsets read backwards from the high watermark, each twice the one before, until `count`
    are found or the log start is reached (then also True), or `budget` is spent (False)."""
    found: list[tuple[int, Record]] = []
    end = log.high_watermark
    window = count
    while len(found) < count and end > log.log_start_offset:
        if budget.remaining <= 0:
            return found, False
        start = max(end - window, log.log_start_offset)
        matches, stopped = await _read(log, partition, start, end - start, wanted, budget, end)
        found = matches[max(len(matches) - (count - len(found)), 0) :] + found
        if stopped < end and budget.remaining <= 0:
            return found, False
        end, window = start, window * 2
    return found, True


def _render(partition: int, record: Record, encoding: str) -> dict[str, Any]:
    return {
        "partition": partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
        "key": _encode(record.key, encoding),
        "value": _encode(record.value, encoding),
        "headers": [{"key": name, "value": _encode(value, encoding)} for name, value in record.headers],
        "size": (0 if record.key is None else len(record.key)) + (0 if record.value is None else len(record.value)),
        "truncated": any(part is not None and len(part) > MAX_SHOWN_BYTES for part in (record.key, record.value)),
    }


def _encode(data: Any, encoding: str) -> Any:
    """Bytes as the reader asked: text (UTF-8, undecodable bytes replaced), json (the parsed
    value, or the text when it is not JSON), base64 or hex; cut at MAX_SHOWN_BYTES."""
    if data is None:
        return None
    raw = bytes(data[:MAX_SHOWN_BYTES])
    if encoding == "base64":
        return base64.b64encode(raw).decode()
    if encoding == "hex":
        return raw.hex()
    text = raw.decode("utf-8", errors="replace")
    if encoding == "json" and len(data) <= MAX_SHOWN_BYTES:
        try:
            return json.loads(text)
        except (ValueError, RecursionError):  # nested deeper than the parser goes: shown as text
            return text
    return text


def _decode(value: Any, encoding: str, what: str) -> bytes | None:
    """A produced key, value or header from JSON, in `encoding` (json: any JSON value, serialised)."""
    if value is None:
        return None
    if encoding == "json":
        return json.dumps(value, separators=(",", ":")).encode()
    if not isinstance(value, str):
        raise ApiError(400, f"the {what} must be a string in {encoding}")
    try:
        if encoding == "base64":
            return base64.b64decode(value, validate=True)
        if encoding == "hex":
            return bytes.fromhex(value)
    except (binascii.Error, ValueError):
        raise ApiError(400, f"the {what} is not {encoding}") from None
    return _utf8(value, f"the {what}")


def _utf8(text: str, what: str) -> bytes:
    """`text` as UTF-8; 400 for one that has none (a lone surrogate, which JSON's \\ud800 escapes can carry)."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        raise ApiError(400, f"{what} is not valid Unicode text (a lone surrogate)") from None


def murmur2(data: bytes) -> int:
    """Kafka's Utils.murmur2, which its default partitioner hashes keys with (seed 0x9747b28c)."""
    length = len(data)
    m, r = 0x5BD1E995, 24
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    whole = length - length % 4
    for (k,) in struct.iter_unpack("<I", data[:whole]):
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = data[whole:]
    if len(tail) == 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if tail:
        h ^= tail[0]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def _assignment(data: bytes) -> dict[str, list[int]] | None:
    """A consumer-protocol member's assignment (ConsumerProtocolAssignment): topic -> partitions;
    None when the bytes are not one."""
    try:
        position = 2  # version
        (topics,) = struct.unpack_from(">i", data, position)
        position += 4
        assigned: dict[str, list[int]] = {}
        for _ in range(max(topics, 0)):
            (length,) = struct.unpack_from(">h", data, position)
            position += 2
            topic = bytes(data[position : position + length]).decode()
            position += length
            (count,) = struct.unpack_from(">i", data, position)
            position += 4
            assigned[topic] = list(struct.unpack_from(f">{max(count, 0)}i", data, position))
            position += 4 * max(count, 0)
        return assigned
    except (struct.error, UnicodeDecodeError):
        return None
