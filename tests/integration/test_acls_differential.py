"""Authorization, differential: the same ACL set on Ottla and on a reference Kafka 4.4 with
StandardAuthorizer, then the same requests from the same principal, compared answer by answer.

The principal is User:ANONYMOUS, what a PLAINTEXT connection is. Kafka's combined-mode node
talks to its own controller over a PLAINTEXT listener as ANONYMOUS too, so ANONYMOUS needs
CLUSTER_ACTION there or the broker cannot register; and ACLs can only be created through the
broker, by a principal with ALTER on the cluster. Both brokers therefore run with
`allow.everyone.if.no.acl.found=true` and no super user: everything starts allowed, a set-up
as ANONYMOUS creates the topics and offsets, then one CreateAcls gives ANONYMOUS CLUSTER_ACTION
and ALTER on the cluster and governs every `acl-` topic, group and transactional id with a
PREFIXED ACL for another principal. From then on an `acl-` resource allows exactly what a
LITERAL ACL grants ANONYMOUS (deny by default, as with allow.everyone=false), and the cluster
only CLUSTER_ACTION and ALTER (with its implied DESCRIBE). A last phase deletes the ALTER
grant, which leaves ANONYMOUS without DESCRIBE and ALTER on the cluster, for the cluster APIs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from compat.differential import REFERENCE_SETTINGS, _Connection, compare
from compat.harness import wait_for
from ottla.server.security.authorizer import STANDARD_AUTHORIZER, AclOperation as Op, AclPermissionType, PatternType, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.records import Record, build_batch

pytestmark = [pytest.mark.external, pytest.mark.slow]

AUTHORIZATION = {"authorizer.class.name": STANDARD_AUTHORIZER, "allow.everyone.if.no.acl.found": "true"}
ANONYMOUS, NOBODY = "User:ANONYMOUS", "User:nobody"
TOPICS = ("acl-read", "acl-write", "acl-describe", "acl-all", "acl-hidden", "acl-configs")
KAFKA_ACLS = "org.apache.kafka.tools.AclCommand"  # what kafka-acls.sh runs
_ZERO_ID = bytes(16)
_BATCH = build_batch([Record(0, int(time.time() * 1000), b"k", b"v", ())])
_UNKNOWN_ID = bytes(range(1, 17))


def _acl(resource_type: ResourceType, name: str, operation: Op, principal: str = ANONYMOUS,
         pattern: PatternType = PatternType.LITERAL, permission: AclPermissionType = AclPermissionType.ALLOW) -> dict[str, Any]:
    return {"resource_type": resource_type, "resource_name": name, "resource_pattern_type": pattern, "principal": principal,
            "host": "*", "operation": operation, "permission_type": permission}


CLUSTER_ALTER = _acl(ResourceType.CLUSTER, "kafka-cluster", Op.ALTER)
ACLS = [
    # First: the controller's own calls (broker heartbeats) must never be refused.
    _acl(ResourceType.CLUSTER, "kafka-cluster", Op.CLUSTER_ACTION),
    CLUSTER_ALTER,
    *(_acl(kind, "acl-", Op.ALL, NOBODY, PatternType.PREFIXED) for kind in (ResourceType.TOPIC, ResourceType.GROUP, ResourceType.TRANSACTIONAL_ID)),
    _acl(ResourceType.TOPIC, "acl-read", Op.READ),
    _acl(ResourceType.TOPIC, "acl-write", Op.WRITE),
    _acl(ResourceType.TOPIC, "acl-describe", Op.DESCRIBE),
    _acl(ResourceType.TOPIC, "acl-all", Op.ALL),
    _acl(ResourceType.TOPIC, "acl-all", Op.ALTER_CONFIGS, permission=AclPermissionType.DENY),
    _acl(ResourceType.TOPIC, "acl-configs", Op.DESCRIBE_CONFIGS),
    _acl(ResourceType.TOPIC, "acl-create", Op.CREATE),
    _acl(ResourceType.GROUP, "acl-group-read", Op.READ),
    _acl(ResourceType.GROUP, "acl-group-describe", Op.DESCRIBE),
    _acl(ResourceType.GROUP, "acl-group-all", Op.ALL),
    _acl(ResourceType.TRANSACTIONAL_ID, "acl-txn-write", Op.WRITE),
    _acl(ResourceType.TRANSACTIONAL_ID, "acl-txn-describe", Op.DESCRIBE),
]
ALL_ACLS = {"resource_type_filter": ResourceType.ANY, "resource_name_filter": None, "pattern_type_filter": PatternType.ANY,
            "principal_filter": None, "host_filter": None, "operation": Op.ANY, "permission_type": AclPermissionType.ANY}


def _commit(group: str, topic: str) -> dict[str, Any]:
    return {"group_id": group, "generation_id_or_member_epoch": -1, "member_id": "", "group_instance_id": None, "retention_time_ms": -1,
            "topics": [{"name": topic, "partitions": [{"partition_index": 0, "committed_offset": 1, "committed_leader_epoch": -1,
                                                       "commit_timestamp": -1, "committed_metadata": ""}]}]}


def _set_up(conn: _Connection) -> dict[str, bytes]:
    """Topics and committed offsets while everything is allowed, then the ACLs; the topic ids."""
    created = conn.call(ApiKey.CREATE_TOPICS, 7, {"timeout_ms": 5000, "validate_only": False, "topics": [
        {"name": name, "num_partitions": 1, "replication_factor": 1, "assignments": [], "configs": []} for name in TOPICS]})
    assert [t["error_code"] for t in created["topics"]] == [0] * len(TOPICS), created
    ids = {t["name"]: t["topic_id"] for t in created["topics"]}
    deadline = time.monotonic() + 60
    # Kafka creates __consumer_offsets and __transaction_state on the first FindCoordinator and
    # answers NOT_COORDINATOR until it has loaded them.
    while (conn.call(ApiKey.FIND_COORDINATOR, 3, {"key": "acl-group-read", "key_type": 0})["error_code"]
           or conn.call(ApiKey.FIND_COORDINATOR, 3, {"key": "acl-txn-write", "key_type": 1})["error_code"]
           or conn.call(ApiKey.DESCRIBE_TRANSACTIONS, 0, {"transactional_ids": ["acl-txn-write"]})["transaction_states"][0]["error_code"] != 105):
        assert time.monotonic() < deadline, "set-up: no group coordinator"
        time.sleep(0.2)
    for group, topic in (("acl-group-read", "acl-read"), ("acl-group-describe", "acl-hidden"), ("acl-group-all", "acl-all"),
                         ("acl-group-hidden", "acl-read")):
        while (error := conn.call(ApiKey.OFFSET_COMMIT, 9, _commit(group, topic))["topics"][0]["partitions"][0]["error_code"]) != 0:
            assert time.monotonic() < deadline, f"set-up: OffsetCommit answers {error}"
            time.sleep(0.2)
    created_acls = conn.call(ApiKey.CREATE_ACLS, 3, {"creations": ACLS})
    assert [r["error_code"] for r in created_acls["results"]] == [0] * len(ACLS), created_acls
    # Kafka's broker learns ACLs from the metadata log: wait until its authorizer has them all.
    while sum(len(resource["acls"]) for resource in conn.call(ApiKey.DESCRIBE_ACLS, 3, ALL_ACLS).get("resources", [])) < len(ACLS):
        assert time.monotonic() < deadline, "set-up: the ACLs never reached the broker's authorizer"
        time.sleep(0.2)
    return ids


@pytest.fixture(scope="module")
def brokers() -> Iterator[tuple[_Connection, _Connection, dict[str, bytes], dict[str, bytes]]]:
    """A separate reference Kafka (never the shared one: its ACLs would refuse other tests) and an Ottla, both set up alike."""
    from compat.harness import OttlaBroker
    from compat.kafka import ReferenceKafka, fetch

    fetch()
    with ReferenceKafka(config=AUTHORIZATION) as kafka, OttlaBroker(settings={**REFERENCE_SETTINGS, **AUTHORIZATION}) as ottla:
        ottla_conn, kafka_conn = _Connection(ottla.bootstrap), _Connection(kafka.bootstrap_servers)
        yield ottla_conn, kafka_conn, _set_up(ottla_conn), _set_up(kafka_conn)
        ottla_conn.close()
        kafka_conn.close()


def _acls_tool(bootstrap: str, *args: str) -> list[str]:
    """kafka-acls' output lines, sorted: it prints a resource's ACLs in its hash set's order."""
    from compat.kafka import run_tool

    done = run_tool(KAFKA_ACLS, "--bootstrap-server", bootstrap, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return sorted(line.strip() for line in done.stdout.splitlines() if line.strip())


def _tool_acls(conn: _Connection) -> set[tuple[int, str, int, str, int, int]]:
    """The `tool-` resources' ACLs as DescribeAcls gives them: (type, name, pattern, principal, operation, permission)."""
    return {(resource["resource_type"], resource["resource_name"], resource["pattern_type"], acl["principal"], acl["operation"],
             acl["permission_type"])
            for resource in conn.call(ApiKey.DESCRIBE_ACLS, 3, ALL_ACLS).get("resources", []) if resource["resource_name"].startswith("tool-")
            for acl in resource["acls"]}


def _await_tool_acls(conn: _Connection, expected: set[tuple[int, str, int, str, int, int]]) -> None:
    """Until DescribeAcls shows the `tool-` ACLs kafka-acls just added or removed (it exits 0 only
    once every one was accepted). Kafka's broker authorizes and lists from a metadata image that
    applies the controller's records a moment after the tool's requests are answered, so a --list
    at once could still show the ACLs before them. Ottla applies before it answers."""
    assert wait_for(lambda: _tool_acls(conn) == expected, timeout=10), ("kafka-acls' changes never visible", expected, _tool_acls(conn))


ALICE, MALLORY = "User:alice", "User:mallory"
TOOL_ACLS = {
    *((kind, name, PatternType.LITERAL, ALICE, operation, AclPermissionType.ALLOW)
      for kind, name in ((ResourceType.TOPIC, "tool-orders"), (ResourceType.GROUP, "tool-app")) for operation in (Op.READ, Op.DESCRIBE)),
    (ResourceType.TOPIC, "tool-", PatternType.PREFIXED, MALLORY, Op.WRITE, AclPermissionType.DENY),
}


def test_kafka_acls_tool_adds_lists_and_removes_as_on_kafka(brokers):
    """Kafka's own kafka-acls, against each broker, prints the same (before the cluster tests take
    ALTER away; `tool-` resources are outside what the other tests decide)."""
    ottla, kafka, _, _ = brokers
    outputs = []
    for conn in (ottla, kafka):
        bootstrap = f"{conn.address[0]}:{conn.address[1]}"
        steps = [
            _acls_tool(bootstrap, "--add", "--allow-principal", ALICE, "--operation", "Read", "--operation", "Describe",
                       "--topic", "tool-orders", "--group", "tool-app"),
            _acls_tool(bootstrap, "--add", "--deny-principal", MALLORY, "--operation", "Write", "--resource-pattern-type", "prefixed",
                       "--topic", "tool-"),
        ]
        _await_tool_acls(conn, TOOL_ACLS)
        steps += [
            _acls_tool(bootstrap, "--list", "--topic", "tool-orders", "--resource-pattern-type", "match"),
            _acls_tool(bootstrap, "--remove", "--force", "--resource-pattern-type", "any", "--topic", "tool-orders", "--topic", "tool-",
                       "--group", "tool-app"),
        ]
        _await_tool_acls(conn, set())
        steps.append(_acls_tool(bootstrap, "--list", "--resource-pattern-type", "any", "--topic", "tool-orders"))
        outputs.append(steps)
    assert outputs[0] == outputs[1]
    listed = outputs[0][2]
    assert any("User:alice" in line for line in listed) and any("User:mallory" in line for line in listed) and not outputs[0][4]


def _validation_creation(name: str, **fields: Any) -> dict[str, Any]:
    return {**_acl(ResourceType.TOPIC, name, Op.READ, ALICE), **fields}


def _acl_validation(conn: _Connection) -> dict[str, Any]:
    """What the broker makes of ACL requests it must refuse, and which `val-` ACLs it then holds,
    with every message (Kafka's answers without error carry "", not null)."""
    def closed(answer: dict[str, Any]) -> bool:
        return list(answer) == ["connection"]  # _Connection.call's report of a hang-up

    filters = {"resource_type": "resource_type_filter", "resource_pattern_type": "pattern_type_filter"}
    seen: dict[str, Any] = {}
    for field in ("resource_type", "resource_pattern_type", "operation", "permission_type"):
        seen[f"code 0 in {field}: closed unanswered"] = [
            closed(conn.call(ApiKey.CREATE_ACLS, 3, {"creations": [_validation_creation("val-kept"), _validation_creation("val-zero", **{field: 0})]})),
            closed(conn.call(ApiKey.DESCRIBE_ACLS, 3, {**ALL_ACLS, filters.get(field, field): 0})),
            closed(conn.call(ApiKey.DELETE_ACLS, 3, {"filters": [ALL_ACLS, {**ALL_ACLS, filters.get(field, field): 0}]}))]
    for field in ("resource_type_filter", "pattern_type_filter", "operation", "permission_type"):
        described = conn.call(ApiKey.DESCRIBE_ACLS, 3, {**ALL_ACLS, field: 99})
        seen[f"describe, {field} 99"] = (described["error_code"], described["error_message"], described["resources"])
    for field, code in (("resource_type", ResourceType.ANY), ("resource_pattern_type", PatternType.MATCH), ("resource_pattern_type", PatternType.ANY),
                        ("operation", Op.ANY), ("permission_type", AclPermissionType.ANY)):
        created = conn.call(ApiKey.CREATE_ACLS, 3, {"creations": [_validation_creation("val-valid"), _validation_creation("val-filter-only", **{field: code})]})
        seen[f"create, {field} {code.name}"] = [(r["error_code"], r["error_message"]) for r in created["results"]]
    created = conn.call(ApiKey.CREATE_ACLS, 3, {"creations": [
        _validation_creation("val-no-colon", principal="alice"), _validation_creation("val-empty-host", host=""),
        _validation_creation("val-typed", principal="Group:admins", host="somehost"),
        _validation_creation("val-cidr", host="10.0.0.0/8"), _validation_creation("val-bad-cidr", host="10.0.0.0/99"),
        _validation_creation("val-cidr6", host="fe80::/10")]})
    seen["create, principals and hosts"] = [(r["error_code"], r["error_message"]) for r in created["results"]]

    def held() -> list[str]:
        return sorted(resource["resource_name"] for resource in conn.call(ApiKey.DESCRIBE_ACLS, 3, ALL_ACLS).get("resources", [])
                      if resource["resource_name"].startswith("val-"))

    # Kafka's broker lists what its controller committed a moment after the creation is answered.
    wait_for(lambda: {"val-typed", "val-cidr", "val-cidr6"} <= set(held()), timeout=10)
    seen["held"] = held()
    for name in ("val-typed", "val-cidr", "val-cidr6"):
        conn.call(ApiKey.DELETE_ACLS, 3, {"filters": [{**ALL_ACLS, "resource_name_filter": name}]})
    return seen


def test_acl_requests_are_refused_as_kafka_refuses_them(brokers):
    """Codes 0 (UNKNOWN) that do not parse, codes Kafka does not know in a DescribeAcls, filter-only
    codes in a CreateAcls, a principal without a type and an empty host (AclControlManager's
    checks) and CIDR hosts (metadata.version 4.4-IV2 on both), each answered as the reference
    answers it (before the cluster tests take ALTER away)."""
    ottla, kafka, _, _ = brokers
    differences = compare(_acl_validation(ottla), _acl_validation(kafka), "acl validation")
    assert not differences, "\n".join(map(str, differences))


def _offset_fetch(groups: list[tuple[str, list[str] | None]]) -> dict[str, Any]:
    return {"require_stable": False, "groups": [
        {"group_id": group, "member_id": None, "member_epoch": -1,
         "topics": None if topics is None else [{"name": name, "partition_indexes": [0]} for name in topics]} for group, topics in groups]}


TXN = {"producer_id": 4242, "producer_epoch": 0}
TXN_COMMIT = {**TXN, "generation_id": -1, "member_id": "", "group_instance_id": None}
JOIN = {"session_timeout_ms": 10000, "rebalance_timeout_ms": 10000, "member_id": "", "group_instance_id": None, "protocol_type": "consumer",
        "reason": None, "protocols": [{"name": "range", "metadata": b""}]}


def _partition_cases(ids: dict[str, bytes]) -> list[tuple[str, int, int, dict[str, Any]]]:
    """(label, api, version, body) of the requests the topic, group and transactional id ACLs decide."""
    partition = {"partition_index": 0, "current_leader_epoch": -1, "timestamp": -1, "max_num_offsets": 1}
    return [
        ("metadata named", ApiKey.METADATA, 12, {"topics": [{"name": n, "topic_id": _ZERO_ID} for n in ("acl-read", "acl-hidden", "acl-gone")],
                                                 "allow_auto_topic_creation": False, "include_topic_authorized_operations": True}),
        # By topic id, a refused topic answers as a refused name does, never UNKNOWN_TOPIC_ID.
        ("metadata by id", ApiKey.METADATA, 12, {"topics": [{"name": None, "topic_id": ids[n]} for n in ("acl-read", "acl-hidden")],
                                                 "allow_auto_topic_creation": False, "include_topic_authorized_operations": False}),
        ("fetch by id", ApiKey.FETCH, 17, {"replica_id": -1, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 1 << 20, "isolation_level": 0,
                                           "session_id": 0, "session_epoch": -1, "rack_id": "", "forgotten_topics_data": [], "topics": [
            {"topic_id": ids[n], "partitions": [{"partition": 0, "current_leader_epoch": -1, "fetch_offset": 0, "last_fetched_epoch": -1,
                                                 "log_start_offset": -1, "partition_max_bytes": 1 << 20}]} for n in ("acl-read", "acl-write", "acl-hidden")]}),
        ("produce by id", ApiKey.PRODUCE, 13, {"acks": -1, "timeout_ms": 5000, "transactional_id": None, "topic_data": [
            {"topic_id": ids[n], "partition_data": [{"index": 0, "records": _BATCH}]} for n in ("acl-read", "acl-hidden")]}),
        ("list offsets", ApiKey.LIST_OFFSETS, 9, {"replica_id": -1, "isolation_level": 0, "timeout_ms": 5000, "topics": [
            {"name": name, "partitions": [partition]} for name in ("acl-read", "acl-hidden", "acl-gone")]}),
        ("offset commit", ApiKey.OFFSET_COMMIT, 9, {**_commit("acl-group-read", "acl-read"), "topics": [
            *_commit("acl-group-read", "acl-read")["topics"], *_commit("acl-group-read", "acl-write")["topics"],
            *_commit("acl-group-read", "acl-gone")["topics"], *_commit("acl-group-read", "free-gone")["topics"]]}),
        ("offset commit, group refused", ApiKey.OFFSET_COMMIT, 9, _commit("acl-group-describe", "acl-read")),
        ("offset fetch", ApiKey.OFFSET_FETCH, 9, _offset_fetch([("acl-group-read", ["acl-read", "acl-hidden"]), ("acl-group-describe", None),
                                                                ("acl-group-hidden", None)])),
        ("offset fetch v7", ApiKey.OFFSET_FETCH, 7, {"group_id": "acl-group-hidden", "topics": None, "require_stable": False}),
        ("offset delete, group refused", ApiKey.OFFSET_DELETE, 0, {"group_id": "acl-group-read", "topics": [
            {"name": "acl-read", "partitions": [{"partition_index": 0}]}]}),
        ("offset delete", ApiKey.OFFSET_DELETE, 0, {"group_id": "acl-group-all", "topics": [
            {"name": name, "partitions": [{"partition_index": 0}]} for name in ("acl-describe", "acl-gone", "free-gone")]}),
        ("join group", ApiKey.JOIN_GROUP, 9, {**JOIN, "group_id": "acl-group-describe"}),
        ("sync group", ApiKey.SYNC_GROUP, 5, {"group_id": "acl-group-describe", "generation_id": 1, "member_id": "m", "group_instance_id": None,
                                              "protocol_type": "consumer", "protocol_name": "range", "assignments": []}),
        ("heartbeat", ApiKey.HEARTBEAT, 4, {"group_id": "acl-group-describe", "generation_id": 1, "member_id": "m", "group_instance_id": None}),
        ("leave group", ApiKey.LEAVE_GROUP, 5, {"group_id": "acl-group-describe", "members": [{"member_id": "m", "group_instance_id": None,
                                                                                              "reason": None}]}),
        ("list groups", ApiKey.LIST_GROUPS, 5, {"states_filter": [], "types_filter": []}),
        ("delete groups", ApiKey.DELETE_GROUPS, 2, {"groups_names": ["acl-group-read", "acl-group-describe", "free-gone"]}),
        ("find coordinator, groups", ApiKey.FIND_COORDINATOR, 6, {"key_type": 0, "coordinator_keys": ["acl-group-describe", "acl-group-hidden"]}),
        ("find coordinator, transactions", ApiKey.FIND_COORDINATOR, 6, {"key_type": 1, "coordinator_keys": ["acl-txn-write", "acl-txn-hidden"]}),
        ("find coordinator v3", ApiKey.FIND_COORDINATOR, 3, {"key": "acl-group-hidden", "key_type": 0}),
        ("init producer id", ApiKey.INIT_PRODUCER_ID, 5, {"transactional_id": "acl-txn-hidden", "transaction_timeout_ms": 60000,
                                                           "producer_id": -1, "producer_epoch": -1}),
        ("add partitions, id refused", ApiKey.ADD_PARTITIONS_TO_TXN, 3, {
            "v3_and_below_transactional_id": "acl-txn-describe", "v3_and_below_producer_id": 4242, "v3_and_below_producer_epoch": 0,
            "v3_and_below_topics": [{"name": "acl-write", "partitions": [0]}]}),
        ("add partitions, topics refused", ApiKey.ADD_PARTITIONS_TO_TXN, 3, {
            "v3_and_below_transactional_id": "acl-txn-write", "v3_and_below_producer_id": 4242, "v3_and_below_producer_epoch": 0,
            "v3_and_below_topics": [{"name": n, "partitions": [0]} for n in ("acl-write", "acl-read", "acl-gone", "free-gone", "__consumer_offsets")]}),
        ("add offsets, id refused", ApiKey.ADD_OFFSETS_TO_TXN, 4, {**TXN, "transactional_id": "acl-txn-hidden", "group_id": "acl-group-read"}),
        ("add offsets, group refused", ApiKey.ADD_OFFSETS_TO_TXN, 4, {**TXN, "transactional_id": "acl-txn-write", "group_id": "acl-group-describe"}),
        ("end txn", ApiKey.END_TXN, 4, {**TXN, "transactional_id": "acl-txn-describe", "committed": True}),
        ("txn offset commit, id refused", ApiKey.TXN_OFFSET_COMMIT, 4, {**TXN_COMMIT, "transactional_id": "acl-txn-hidden",
                                                                        "group_id": "acl-group-read", "topics": _commit("g", "acl-read")["topics"]}),
        ("txn offset commit, group refused", ApiKey.TXN_OFFSET_COMMIT, 4, {**TXN_COMMIT, "transactional_id": "acl-txn-write",
                                                                           "group_id": "acl-group-describe", "topics": _commit("g", "acl-read")["topics"]}),
        ("txn offset commit, topic refused", ApiKey.TXN_OFFSET_COMMIT, 4, {**TXN_COMMIT, "transactional_id": "acl-txn-write",
                                                                           "group_id": "acl-group-read", "topics": _commit("g", "acl-write")["topics"]}),
        ("describe transactions", ApiKey.DESCRIBE_TRANSACTIONS, 0, {"transactional_ids": ["acl-txn-hidden", "acl-txn-describe"]}),
        ("list transactions", ApiKey.LIST_TRANSACTIONS, 1, {"state_filters": [], "producer_id_filters": [], "duration_filter": -1}),
        ("describe producers", ApiKey.DESCRIBE_PRODUCERS, 0, {"topics": [{"name": n, "partition_indexes": [0]} for n in ("acl-read", "acl-describe")]}),
        ("create topics", ApiKey.CREATE_TOPICS, 7, {"timeout_ms": 5000, "validate_only": False, "topics": [
            {"name": name, "num_partitions": 1, "replication_factor": 1, "assignments": [], "configs": []} for name in ("acl-create", "acl-refused")]}),
        ("delete topics", ApiKey.DELETE_TOPICS, 6, {"timeout_ms": 5000, "topics": [
            *({"name": name, "topic_id": _ZERO_ID} for name in ("acl-read", "acl-gone", "free-gone")),
            {"name": None, "topic_id": ids["acl-hidden"]}, {"name": None, "topic_id": ids["acl-describe"]}, {"name": None, "topic_id": _UNKNOWN_ID}]}),
        ("create partitions", ApiKey.CREATE_PARTITIONS, 3, {"timeout_ms": 5000, "validate_only": True, "topics": [
            {"name": name, "count": 2, "assignments": None} for name in ("acl-read", "acl-all")]}),
        ("delete records", ApiKey.DELETE_RECORDS, 2, {"timeout_ms": 5000, "topics": [
            {"name": name, "partitions": [{"partition_index": 0, "offset": 0}]} for name in ("acl-read", "acl-all")]}),
        ("offset for leader epoch", ApiKey.OFFSET_FOR_LEADER_EPOCH, 4, {"replica_id": -1, "topics": [
            {"topic": name, "partitions": [{"partition": 0, "current_leader_epoch": -1, "leader_epoch": 0}]} for name in ("acl-read", "acl-hidden")]}),
        ("describe configs", ApiKey.DESCRIBE_CONFIGS, 4, {"include_synonyms": False, "include_documentation": False, "resources": [
            {"resource_type": 2, "resource_name": "acl-configs", "configuration_keys": ["cleanup.policy"]},
            {"resource_type": 2, "resource_name": "acl-read", "configuration_keys": None},
            {"resource_type": 4, "resource_name": "1", "configuration_keys": None},
            {"resource_type": 8, "resource_name": "1", "configuration_keys": None}]}),
        ("alter configs", ApiKey.ALTER_CONFIGS, 2, {"validate_only": True, "resources": [
            {"resource_type": 2, "resource_name": "acl-read", "configs": [{"name": "retention.ms", "value": "3600000"}]},
            {"resource_type": 4, "resource_name": "", "configs": [{"name": "log.retention.hours", "value": "1"}]}]}),
        ("incremental alter configs", ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {"validate_only": True, "resources": [
            {"resource_type": 2, "resource_name": name, "configs": [{"name": "retention.ms", "config_operation": 0, "value": "3600000"}]}
            for name in ("acl-all", "acl-configs", "acl-describe")] + [
            {"resource_type": 8, "resource_name": "1", "configs": [{"name": "root", "config_operation": 0, "value": "INFO"}]}]}),
        ("describe topic partitions", ApiKey.DESCRIBE_TOPIC_PARTITIONS, 0, {"topics": [{"name": n} for n in ("acl-describe", "acl-hidden", "acl-gone")],
                                                                             "response_partition_limit": 2000, "cursor": None}),
    ]


def _cluster_cases() -> list[tuple[str, int, int, dict[str, Any]]]:
    """Requests the cluster's ACLs decide, once ANONYMOUS has neither DESCRIBE nor ALTER there."""
    return [
        ("describe acls", ApiKey.DESCRIBE_ACLS, 3, ALL_ACLS),
        ("create acls", ApiKey.CREATE_ACLS, 3, {"creations": [CLUSTER_ALTER]}),
        ("describe cluster", ApiKey.DESCRIBE_CLUSTER, 1, {"include_cluster_authorized_operations": True}),
        ("list groups, only those it may describe", ApiKey.LIST_GROUPS, 5, {"states_filter": [], "types_filter": []}),
        ("describe log dirs", ApiKey.DESCRIBE_LOG_DIRS, 4, {"topics": None}),
        ("elect leaders", ApiKey.ELECT_LEADERS, 2, {"election_type": 0, "timeout_ms": 5000, "topic_partitions": [{"topic": "acl-all", "partitions": [0]}]}),
        ("alter partition reassignments", ApiKey.ALTER_PARTITION_REASSIGNMENTS, 0, {"timeout_ms": 5000, "topics": [
            {"name": "acl-all", "partitions": [{"partition_index": 0, "replicas": None}]}]}),
        ("list partition reassignments", ApiKey.LIST_PARTITION_REASSIGNMENTS, 0, {"timeout_ms": 5000, "topics": None}),
        ("update features", ApiKey.UPDATE_FEATURES, 1, {"timeout_ms": 5000, "validate_only": True, "feature_updates": [
            {"feature": "metadata.version", "max_version_level": 7, "upgrade_type": 2}]}),
        # Named users: asked for every user (null), Kafka 4.4 leaves a refused request unanswered.
        ("describe user scram credentials", ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS, 0, {"users": [{"name": "alice"}]}),
        ("metadata, cluster operations", ApiKey.METADATA, 10, {"topics": [], "allow_auto_topic_creation": False,
                                                               "include_cluster_authorized_operations": True, "include_topic_authorized_operations": True}),
        ("alter user scram credentials", ApiKey.ALTER_USER_SCRAM_CREDENTIALS, 0, {"deletions": [{"name": "bob", "mechanism": 1}], "upsertions": [
            {"name": "alice", "mechanism": 1, "iterations": 8192, "salt": b"salt", "salted_password": b"x" * 32}]}),
        ("list config resources", ApiKey.LIST_CONFIG_RESOURCES, 1, {"resource_types": [2, 4]}),
    ]


def _call(conn: _Connection, api: int, version: int, body: dict[str, Any]) -> dict[str, Any]:
    response = conn.call(api, version, body)
    if api == ApiKey.DELETE_TOPICS:
        # Kafka shuffles these answers (ControllerApis.deleteTopics) so that their order reveals
        # nothing, and refusals by id carry no name: order them by what they do carry.
        response["responses"].sort(key=lambda r: (r["name"] or "", r["error_code"]))
    return response


def _differences(ottla: _Connection, kafka: _Connection, cases: list[tuple[str, int, int, dict[str, Any]]],
                 kafka_cases: list[tuple[str, int, int, dict[str, Any]]] | None = None) -> list[str]:
    found = []
    for (label, api, version, body), (_, _, _, kafka_body) in zip(cases, kafka_cases or cases):
        found += [f"{label}: {difference}" for difference in compare(_call(ottla, api, version, body), _call(kafka, api, version, kafka_body), label)]
    return found


def test_every_api_refuses_and_allows_as_kafka_does(brokers):
    ottla, kafka, ottla_ids, kafka_ids = brokers
    differences = _differences(ottla, kafka, _partition_cases(ottla_ids), _partition_cases(kafka_ids))
    assert not differences, "\n".join(differences)

    # Without the ALTER grant ANONYMOUS may neither DESCRIBE nor ALTER the cluster: wait until
    # Kafka's broker has the change, which its DescribeAcls refusing shows.
    for conn in (ottla, kafka):
        deleted = conn.call(ApiKey.DELETE_ACLS, 3, {"filters": [{
            "resource_type_filter": ResourceType.CLUSTER, "resource_name_filter": "kafka-cluster", "pattern_type_filter": PatternType.LITERAL,
            "principal_filter": ANONYMOUS, "host_filter": "*", "operation": Op.ALTER, "permission_type": AclPermissionType.ALLOW}]})
        assert [len(result["matching_acls"]) for result in deleted["filter_results"]] == [1], deleted
        deadline = time.monotonic() + 30
        while conn.call(ApiKey.DESCRIBE_ACLS, 3, ALL_ACLS)["error_code"] == 0:
            assert time.monotonic() < deadline, "the ACL deletion never reached the broker's authorizer"
            time.sleep(0.2)
    differences = _differences(ottla, kafka, _cluster_cases())
    assert not differences, "\n".join(differences)


@pytest.mark.parametrize("api", [ApiKey.CREATE_ACLS, ApiKey.DESCRIBE_ACLS, ApiKey.DELETE_ACLS])
def test_acl_api_version_0_is_answered_as_kafka_answers_it(brokers, api):
    """Kafka 4 removed v0 of the ACL APIs (KIP-896): a client that still sends it (kafkajs) gets what Kafka gives."""
    ottla, kafka, _, _ = brokers
    body = {"creations": [], "filters": [], **ALL_ACLS}
    assert compare(ottla.call(api, 0, body), kafka.call(api, 0, body), f"{api.name} v0") == []
