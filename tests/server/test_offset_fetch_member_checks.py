"""OffsetFetch v9+ names the fetching member of a KIP-848 consumer group, over a real socket,
each answer the one the reference Kafka 4.4 gives to the same requests
(ConsumerGroup.validateOffsetFetch): only a null member id with a negative epoch (an admin)
skips the check; any other member id, "" included and in an empty group too, must be a known
member at its current epoch (else UNKNOWN_MEMBER_ID, or STALE_MEMBER_EPOCH). A classic group
checks no member (ClassicGroup.validateOffsetFetch)."""

from __future__ import annotations

import uuid
from typing import Any

from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from tests.server.test_features import Client

TOPIC = "fetched"


def _heartbeat(client: Client, member_id: str, epoch: int) -> dict[str, Any]:
    return client.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 1, {
        "group_id": "cg", "member_id": member_id, "member_epoch": epoch, "instance_id": None, "rack_id": None,
        "rebalance_timeout_ms": 30_000 if epoch == 0 else -1, "subscribed_topic_names": [TOPIC] if epoch == 0 else None,
        "subscribed_topic_regex": None, "server_assignor": None, "topic_partitions": [] if epoch == 0 else None})


def _commit(client: Client, group: str, version: int, epoch: int, member_id: str) -> int:
    answer = client.call(ApiKey.OFFSET_COMMIT, version, {
        "group_id": group, "generation_id_or_member_epoch": epoch, "member_id": member_id, "group_instance_id": None,
        "retention_time_ms": -1, "topics": [{"name": TOPIC, "partitions": [
            {"partition_index": 0, "committed_offset": 7, "committed_leader_epoch": -1, "committed_metadata": ""}]}]})
    code: int = answer["topics"][0]["partitions"][0]["error_code"]
    return code


def _fetch(client: Client, group: str, member_id: str | None, epoch: int) -> tuple[int, list[int]]:
    answer = client.call(ApiKey.OFFSET_FETCH, 9, {"require_stable": False, "groups": [{
        "group_id": group, "member_id": member_id, "member_epoch": epoch, "topics": [{"name": TOPIC, "partition_indexes": [0]}]}]})
    (group_answer,) = answer["groups"]
    return group_answer["error_code"], [p["committed_offset"] for t in group_answer["topics"] for p in t["partitions"]]


def test_offset_fetch_checks_the_named_member_of_a_consumer_group() -> None:
    with running_broker(data_dir=None) as broker:
        client = Client(broker.bootstrap_servers)
        try:
            broker.create_topic(TOPIC, 1)
            member = str(uuid.uuid4())
            joined = _heartbeat(client, member, 0)
            assert joined["error_code"] == ErrorCode.NONE
            epoch = joined["member_epoch"]
            assert _commit(client, "cg", 9, epoch, member) == ErrorCode.NONE
            found = (ErrorCode.NONE, [7])
            unknown, stale = (ErrorCode.UNKNOWN_MEMBER_ID, []), (ErrorCode.STALE_MEMBER_EPOCH, [])
            live = {(None, -1): found, (None, -2): found, ("", -1): unknown, ("", 0): unknown, ("", epoch): unknown,
                    ("nobody", -1): unknown, ("nobody", epoch): unknown, (member, epoch): found,
                    (member, epoch - 1): stale, (member, epoch + 1): stale, (member, -1): stale}
            assert {case: _fetch(client, "cg", *case) for case in live} == live
            assert _heartbeat(client, member, -1)["error_code"] == ErrorCode.NONE
            empty = {(None, -1): found, ("", -1): unknown, ("", 0): unknown, ("nobody", -1): unknown, ("nobody", 3): unknown}
            assert {case: _fetch(client, "cg", *case) for case in empty} == empty
            # A classic group (here one of an admin's commit) checks no member.
            assert _commit(client, "kg", 8, -1, "") == ErrorCode.NONE
            classic = {(None, -1): found, ("", -1): found, ("x", 5): found}
            assert {case: _fetch(client, "kg", *case) for case in classic} == classic
        finally:
            client.close()
