"""OffsetFetch v10 under an authorizer, over a real socket: the topics the broker refuses
itself, an id no topic has (UNKNOWN_TOPIC_ID) and a topic the principal may not DESCRIBE
(TOPIC_AUTHORIZATION_FAILED), follow the coordinator's answer in the order the request named
them, as KafkaApis.fetchOffsetsForGroup appends them to one list while it walks the request."""

from __future__ import annotations

import uuid

from kafka import KafkaAdminClient
from kafka.admin import ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourcePattern, ResourceType

from ottla.server.security.authorizer import STANDARD_AUTHORIZER
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from tests.txn_wire import TxnClient


def _topic_id(client: TxnClient, name: str) -> bytes:
    answer = client.call(ApiKey.METADATA, 12, {"topics": [{"name": name, "topic_id": bytes(16)}], "allow_auto_topic_creation": False,
                                              "include_topic_authorized_operations": False})
    topic_id: bytes = answer["topics"][0]["topic_id"]
    return topic_id


def test_refused_topics_follow_the_coordinators_in_request_order(tmp_path) -> None:
    settings = {"data_dir": tmp_path, "authorizer_class_name": STANDARD_AUTHORIZER}
    with running_broker(super_users="User:ANONYMOUS", **settings) as broker:
        broker.create_topic("seen")
        broker.create_topic("hidden")
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        grants = [(ResourceType.GROUP, "reader"), (ResourceType.TOPIC, "seen")]
        assert not admin.create_acls([ACL("User:ANONYMOUS", "*", ACLOperation.DESCRIBE, ACLPermissionType.ALLOW, ResourcePattern(
            kind, name, ACLResourcePatternType.LITERAL)) for kind, name in grants])["failed"]
        admin.close()
        with TxnClient(broker.bootstrap_servers, "seen") as client:
            ids = {name: _topic_id(client, name) for name in ("seen", "hidden")}
            committed = client.call(ApiKey.OFFSET_COMMIT, 10, {
                "group_id": "reader", "generation_id_or_member_epoch": -1, "member_id": "", "group_instance_id": None,
                "topics": [{"topic_id": ids["seen"], "partitions": [
                    {"partition_index": 0, "committed_offset": 5, "committed_leader_epoch": -1, "committed_metadata": ""}]}]})
            assert committed["topics"][0]["partitions"][0]["error_code"] == ErrorCode.NONE
    unknown = uuid.uuid4().bytes
    with running_broker(**settings) as broker, TxnClient(broker.bootstrap_servers, "seen") as client:
        answer = client.call(ApiKey.OFFSET_FETCH, 10, {"require_stable": False, "groups": [{
            "group_id": "reader", "member_id": None, "member_epoch": -1, "topics": [
                {"topic_id": unknown, "partition_indexes": [0]}, {"topic_id": ids["hidden"], "partition_indexes": [0]},
                {"topic_id": ids["seen"], "partition_indexes": [0]}]}]})
    (group,) = answer["groups"]
    assert group["error_code"] == ErrorCode.NONE
    assert [(t["topic_id"], [(p["committed_offset"], p["error_code"]) for p in t["partitions"]]) for t in group["topics"]] == [
        (ids["seen"], [(5, ErrorCode.NONE)]),
        (unknown, [(-1, ErrorCode.UNKNOWN_TOPIC_ID)]),
        (ids["hidden"], [(-1, ErrorCode.TOPIC_AUTHORIZATION_FAILED)]),
    ]
