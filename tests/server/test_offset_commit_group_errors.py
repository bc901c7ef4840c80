"""OffsetCommit and TxnOffsetCommit group errors over a real socket, each answer the one the
reference Kafka 4.4 gives to the same requests:

- GroupCoordinatorService.commitOffsets refuses only a null group id, which OffsetCommit
  cannot carry: an empty one names a (simple) group like any other, whose offsets OffsetFetch
  returns (TxnOffsetCommit, which checks isGroupIdNotEmpty, answers it INVALID_GROUP_ID).
- ShareGroup.validateOffsetCommit: a share group's id holds no committed offsets, so a commit
  to it, plain or transactional, is GROUP_ID_NOT_FOUND (and makes no simple group of its id).
- OffsetMetadataManager.validateTransactionalOffsetCommit: from TxnOffsetCommit v6 a
  generation given for a group that does not exist is GROUP_ID_NOT_FOUND and a consumer-group
  member's epoch newer than its own STALE_MEMBER_EPOCH; before v6 both are ILLEGAL_GENERATION.

The `*_answers` functions run against any broker: the same ones checked the reference."""

from __future__ import annotations

import time
import uuid
from typing import Any

from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from tests.txn_wire import TxnClient

TOPIC = "committed"
RETRIED = {ErrorCode.COORDINATOR_NOT_AVAILABLE, ErrorCode.NOT_COORDINATOR, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS}


def _commit(client: TxnClient, version: int, group: str) -> int:
    answer = client.call(ApiKey.OFFSET_COMMIT, version, {
        "group_id": group, "generation_id_or_member_epoch": -1, "member_id": "", "group_instance_id": None, "retention_time_ms": -1,
        "topics": [{"name": TOPIC, "partitions": [{"partition_index": 0, "committed_offset": 7, "committed_leader_epoch": -1,
                                                   "committed_metadata": ""}]}]})
    code: int = answer["topics"][0]["partitions"][0]["error_code"]
    return code


def _fetched(client: TxnClient, group: str, topics: list[dict[str, Any]] | None) -> tuple[int, list[tuple[str, int, int]]]:
    answer = client.call(ApiKey.OFFSET_FETCH, 8, {"require_stable": False, "groups": [{"group_id": group, "topics": topics}]})
    (found,) = answer["groups"]
    return found["error_code"], [(t["name"], p["partition_index"], p["committed_offset"]) for t in found["topics"] for p in t["partitions"]]


def _txn_commit(client: TxnClient, version: int, group: str, producer: tuple[int, int], epoch: int, member_id: str) -> int:
    body = {"transactional_id": "committer", "group_id": group, "producer_id": producer[0], "producer_epoch": producer[1],
            "generation_id": epoch, "member_id": member_id, "group_instance_id": None,
            "topics": [{"name": TOPIC, "topic_id": _topic_id(client), "partitions": [
                {"partition_index": 0, "committed_offset": 3, "committed_leader_epoch": -1, "committed_metadata": ""}]}]}
    answer = client.call(ApiKey.TXN_OFFSET_COMMIT, version, body)
    code: int = answer["topics"][0]["partitions"][0]["error_code"]
    return code


def _topic_id(client: TxnClient) -> bytes:
    answer = client.call(ApiKey.METADATA, 12, {"topics": [{"name": TOPIC, "topic_id": bytes(16)}], "allow_auto_topic_creation": False,
                                              "include_topic_authorized_operations": False})
    topic_id: bytes = answer["topics"][0]["topic_id"]
    return topic_id


def _until_served(call: Any) -> Any:
    """`call()` again while the coordinator is still being made or loaded (a broker just started)."""
    deadline = time.monotonic() + 60
    while True:
        answer = call()
        if answer not in RETRIED or time.monotonic() > deadline:
            return answer
        time.sleep(0.2)


def _warm_up(client: TxnClient) -> None:
    """FindCoordinator makes Kafka create its internal topics, as a client's first one does;
    then a commit goes through once the offsets partition is loaded."""
    for key_type, key in ((0, "warm-up"), (1, "committer")):
        _until_served(lambda: client.call(ApiKey.FIND_COORDINATOR, 4, {"key_type": key_type, "coordinator_keys": [key]})["coordinators"][0]["error_code"])
    assert _until_served(lambda: _commit(client, 9, "warm-up")) == ErrorCode.NONE


def empty_group_answers(bootstrap: str) -> dict[str, Any]:
    with TxnClient(bootstrap, TOPIC) as client:
        _warm_up(client)
        return {
            "commit '' v9": _commit(client, 9, ""),
            "commit '' v2": _commit(client, 2, ""),
            "fetch ''": _fetched(client, "", [{"name": TOPIC, "partition_indexes": [0]}]),
            "fetch all ''": _fetched(client, "", None),
        }


def transactional_answers(bootstrap: str) -> dict[str, Any]:
    with TxnClient(bootstrap, TOPIC) as client:
        _warm_up(client)
        init = {"transactional_id": "committer", "transaction_timeout_ms": 60_000, "producer_id": -1, "producer_epoch": -1}
        _until_served(lambda: client.call(ApiKey.INIT_PRODUCER_ID, 5, init)["error_code"])
        producer = client.init("committer")
        member = str(uuid.uuid4())
        joined = client.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 1, {
            "group_id": "modern", "member_id": member, "member_epoch": 0, "instance_id": None, "rack_id": None, "rebalance_timeout_ms": 30_000,
            "subscribed_topic_names": [TOPIC], "subscribed_topic_regex": None, "server_assignor": None, "topic_partitions": []})
        assert joined["error_code"] == ErrorCode.NONE
        out: dict[str, Any] = {}
        for version in (5, 6):
            out[f"txn v{version} missing group"] = _until_served(lambda: _txn_commit(client, version, f"missing-{version}", producer, 5, "m"))
            out[f"txn v{version} newer epoch"] = _txn_commit(client, version, "modern", producer, joined["member_epoch"] + 1, member)
        out["txn '' group"] = _txn_commit(client, 6, "", producer, -1, "")
        return out


def share_group_answers(bootstrap: str) -> dict[str, Any]:
    with TxnClient(bootstrap, TOPIC) as client:
        _warm_up(client)
        heartbeat = {"group_id": "shared", "member_id": str(uuid.uuid4()), "member_epoch": 0, "rack_id": None, "subscribed_topic_names": [TOPIC]}
        assert _until_served(lambda: client.call(ApiKey.SHARE_GROUP_HEARTBEAT, 1, heartbeat)["error_code"]) == ErrorCode.NONE
        init = {"transactional_id": "committer", "transaction_timeout_ms": 60_000, "producer_id": -1, "producer_epoch": -1}
        _until_served(lambda: client.call(ApiKey.INIT_PRODUCER_ID, 5, init)["error_code"])
        producer = client.init("committer")
        out: dict[str, Any] = {f"commit v{version}": _commit(client, version, "shared") for version in (2, 8, 9)}
        for version in (5, 6):
            out[f"txn v{version}"] = _until_served(lambda: _txn_commit(client, version, "shared", producer, -1, ""))
        out["fetch"] = _fetched(client, "shared", [{"name": TOPIC, "partition_indexes": [0]}])
        out["fetch all"] = _fetched(client, "shared", None)
        listed = client.call(ApiKey.LIST_GROUPS, 5, {"states_filter": [], "types_filter": []})
        out["listed"] = sorted((g["group_id"], g["group_type"]) for g in listed["groups"] if g["group_id"] == "shared")
        return out


def test_a_share_groups_id_takes_no_offset_commit() -> None:
    with running_broker(data_dir=None) as broker:
        broker.create_topic(TOPIC, 1)
        assert share_group_answers(broker.bootstrap_servers) == {
            "commit v2": ErrorCode.GROUP_ID_NOT_FOUND,
            "commit v8": ErrorCode.GROUP_ID_NOT_FOUND,
            "commit v9": ErrorCode.GROUP_ID_NOT_FOUND,
            "txn v5": ErrorCode.GROUP_ID_NOT_FOUND,
            "txn v6": ErrorCode.GROUP_ID_NOT_FOUND,
            "fetch": (ErrorCode.NONE, [(TOPIC, 0, -1)]),
            "fetch all": (ErrorCode.NONE, []),
            "listed": [("shared", "share")],
        }


def test_an_empty_group_id_commits_as_any_group_does() -> None:
    with running_broker(data_dir=None) as broker:
        broker.create_topic(TOPIC, 1)
        assert empty_group_answers(broker.bootstrap_servers) == {
            "commit '' v9": ErrorCode.NONE,
            "commit '' v2": ErrorCode.NONE,
            "fetch ''": (ErrorCode.NONE, [(TOPIC, 0, 7)]),
            "fetch all ''": (ErrorCode.NONE, [(TOPIC, 0, 7)]),
        }


def test_txn_offset_commit_v6_names_a_missing_group_and_a_stale_epoch() -> None:
    with running_broker(data_dir=None) as broker:
        broker.create_topic(TOPIC, 1)
        assert transactional_answers(broker.bootstrap_servers) == {
            "txn v5 missing group": ErrorCode.ILLEGAL_GENERATION,
            "txn v5 newer epoch": ErrorCode.ILLEGAL_GENERATION,
            "txn v6 missing group": ErrorCode.GROUP_ID_NOT_FOUND,
            "txn v6 newer epoch": ErrorCode.STALE_MEMBER_EPOCH,
            "txn '' group": ErrorCode.INVALID_GROUP_ID,
        }
