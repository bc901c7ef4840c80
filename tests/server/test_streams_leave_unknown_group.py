"""A streams member leaving (epoch -1 or -2) a group that is not there: Kafka 4.4's
GroupMetadataManager.streamsGroupLeave looks the group up through streamsGroup(groupId), so
the refusal's message is "Group X not found." (or "... is not a streams group." for a group
of another type), not the joining path's "Streams group X not found."."""

from __future__ import annotations

from typing import Any

from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode


def _leave(connection: _Connection, group: str, epoch: int) -> dict[str, Any]:
    """A dynamic member's leave (-1), or a static one's (-2, which must name its instance)."""
    return connection.call(ApiKey.STREAMS_GROUP_HEARTBEAT, 0, {
        "group_id": group, "member_id": "m", "member_epoch": epoch, "endpoint_information_epoch": 0,
        "instance_id": "i" if epoch == -2 else None,
        "rack_id": None, "rebalance_timeout_ms": -1, "topology": None, "active_tasks": None, "standby_tasks": None,
        "warmup_tasks": None, "process_id": "m", "user_endpoint": None, "client_tags": None, "task_offsets": None,
        "task_end_offsets": None, "shutdown_application": False})


def test_leaving_a_missing_or_other_group_is_refused_as_streamsGroup_refuses() -> None:
    with running_broker() as broker:
        connection = _Connection(broker.bootstrap_servers)
        try:
            joined = connection.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 0, {
                "group_id": "consumer", "member_id": "", "member_epoch": 0, "instance_id": None, "rack_id": None,
                "rebalance_timeout_ms": 30000, "subscribed_topic_names": [], "server_assignor": None, "topic_partitions": []})
            assert joined["error_code"] == ErrorCode.NONE
            for epoch in (-1, -2):
                missing = _leave(connection, "nobody", epoch)
                assert (missing["error_code"], missing["error_message"]) == (ErrorCode.GROUP_ID_NOT_FOUND, "Group nobody not found.")
            other = _leave(connection, "consumer", -1)
            assert (other["error_code"], other["error_message"]) == (
                ErrorCode.GROUP_ID_NOT_FOUND, "Group consumer is not a streams group.")
        finally:
            connection.close()
