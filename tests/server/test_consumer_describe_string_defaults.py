"""ConsumerGroupDescribe describes a member's unset strings as Kafka 4.4's
ConsumerGroupMember.asConsumerGroupDescribeMember does: no regex is "" (the Builder's
default), no rack or instance id is null. Raw requests to a real broker; every answer here is
the reference Kafka 4.4's."""

from __future__ import annotations

from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode


def test_a_member_without_a_regex_is_described_with_an_empty_one() -> None:
    with running_broker(data_dir=None) as broker:
        connection = _Connection(broker.bootstrap_servers)
        joined = connection.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 0, {
            "group_id": "g", "member_id": "m", "member_epoch": 0, "instance_id": None, "rack_id": None,
            "rebalance_timeout_ms": 30_000, "subscribed_topic_names": ["t"], "subscribed_topic_regex": None,
            "server_assignor": None, "topic_partitions": []})
        assert joined["error_code"] == ErrorCode.NONE
        described = connection.call(ApiKey.CONSUMER_GROUP_DESCRIBE, 1, {"group_ids": ["g"], "include_authorized_operations": False})
        [member] = described["groups"][0]["members"]
        assert {key: member[key] for key in ("subscribed_topic_regex", "rack_id", "instance_id", "client_id", "subscribed_topic_names")} == {
            "subscribed_topic_regex": "", "rack_id": None, "instance_id": None, "client_id": "ottla-differential", "subscribed_topic_names": ["t"]}
        connection.close()
