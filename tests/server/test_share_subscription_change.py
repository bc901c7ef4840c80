"""A share member whose subscription changes keeps its epoch until the next target assignment,
but at once holds only partitions of the topics it still subscribes to: Kafka 4.4's
ShareGroupAssignmentBuilder filters the member's target by its subscription whenever that
changed (as the reference broker answers a member that drops a topic: an assignment without it)."""

from __future__ import annotations

from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from share_member import ShareMember


def test_a_member_dropping_a_topic_is_no_longer_assigned_it_before_the_next_assignment() -> None:
    with running_broker(data_dir=None) as broker:
        broker.create_topic("kept", partitions=1)
        broker.create_topic("dropped", partitions=1)
        member = ShareMember(broker)
        # A long interval: the target stays the one computed when the member was assigned.
        altered = member.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {"resources": [{
            "resource_type": 32, "resource_name": "g", "configs": [
                {"name": "share.assignment.interval.ms", "config_operation": 0, "value": "3000"}]}], "validate_only": False})
        assert altered["responses"][0]["error_code"] == 0
        member_epoch, assigned = 0, 0
        while assigned < 2:
            beat = member.heartbeat("g", member_epoch, ["kept", "dropped"])
            assert beat["error_code"] == 0
            member_epoch = beat["member_epoch"]
            if beat["assignment"] is not None:
                assigned = len(beat["assignment"]["topic_partitions"])
        beat = member.call(ApiKey.SHARE_GROUP_HEARTBEAT, 1, {"group_id": "g", "member_id": member.member_id, "member_epoch": member_epoch,
                                                             "rack_id": None, "subscribed_topic_names": ["kept"]})
        assert beat["error_code"] == 0
        assert beat["member_epoch"] == member_epoch
        described = member.call(ApiKey.SHARE_GROUP_DESCRIBE, 1, {"group_ids": ["g"], "include_authorized_operations": False})
        (described_member,) = described["groups"][0]["members"]
        names = [tp["topic_name"] for tp in described_member["assignment"]["topic_partitions"]]
        assert names == ["kept"]
        assert [bytes(tp["topic_id"]) for tp in beat["assignment"]["topic_partitions"]] == [
            bytes(tp["topic_id"]) for tp in described_member["assignment"]["topic_partitions"]]
        member.close()
