"""What the group coordinator checks and does on OffsetCommit and TxnOffsetCommit, over raw
requests to a real broker, as Kafka's OffsetMetadataManager does: a classic member's commit
keeps its session alive, a stale member epoch in a transactional commit is ILLEGAL_GENERATION,
and offset metadata is measured in UTF-16 code units as Java's String.length() counts them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
import pytest

from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from tests.server.test_features import Client

TOPIC = "t"
SESSION_MS = 1000


@pytest.fixture
def client() -> Iterator[Client]:
    with running_broker(data_dir=None, group_initial_rebalance_delay_ms=0, group_min_session_timeout_ms=SESSION_MS) as broker:
        broker.create_topic(TOPIC, partitions=1)
        raw = Client(broker.bootstrap_servers)
        try:
            yield raw
        finally:
            raw.close()


def _consumer_protocol_subscription(topics: list[str]) -> bytes:
    """ConsumerProtocolSubscription v0: version, topics, null user data."""
    out = (0).to_bytes(2, "big") + len(topics).to_bytes(4, "big")
    for topic in topics:
        out += len(topic).to_bytes(2, "big") + topic.encode()
    return out + (-1).to_bytes(4, "big", signed=True)


def _stable_classic_member(client: Client, group: str) -> tuple[str, int]:
    """(member id, generation) of the sole member of a classic group, through JoinGroup and SyncGroup."""
    join = {"group_id": group, "session_timeout_ms": SESSION_MS, "rebalance_timeout_ms": 10_000, "group_instance_id": None,
            "protocol_type": "consumer", "protocols": [{"name": "range", "metadata": _consumer_protocol_subscription([TOPIC])}]}
    member_id = client.call(ApiKey.JOIN_GROUP, 5, {**join, "member_id": ""})["member_id"]
    joined = client.call(ApiKey.JOIN_GROUP, 5, {**join, "member_id": member_id})
    assert joined["error_code"] == ErrorCode.NONE, joined
    synced = client.call(ApiKey.SYNC_GROUP, 3, {"group_id": group, "generation_id": joined["generation_id"], "member_id": member_id,
                                                "group_instance_id": None, "assignments": [{"member_id": member_id, "assignment": b""}]})
    assert synced["error_code"] == ErrorCode.NONE, synced
    return member_id, joined["generation_id"]


def _commit(client: Client, group: str, generation: int = -1, member_id: str = "", metadata: str = "", offset: int = 1) -> int:
    answer = client.call(ApiKey.OFFSET_COMMIT, 8, {
        "group_id": group, "generation_id_or_member_epoch": generation, "member_id": member_id, "group_instance_id": None,
        "topics": [{"name": TOPIC, "partitions": [{"partition_index": 0, "committed_offset": offset, "committed_leader_epoch": -1,
                                                   "committed_metadata": metadata}]}]})
    code: int = answer["topics"][0]["partitions"][0]["error_code"]
    return code


def _open_transaction(client: Client, group: str) -> tuple[str, int, int]:
    """(transactional id, producer id, epoch) of a transaction that has AddOffsetsToTxn'd `group`."""
    transactional_id = f"tx-{uuid.uuid4().hex[:8]}"
    init = client.call(ApiKey.INIT_PRODUCER_ID, 4, {"transactional_id": transactional_id, "transaction_timeout_ms": 60_000,
                                                    "producer_id": -1, "producer_epoch": -1})
    assert init["error_code"] == ErrorCode.NONE, init
    added = client.call(ApiKey.ADD_OFFSETS_TO_TXN, 3, {"transactional_id": transactional_id, "producer_id": init["producer_id"],
                                                       "producer_epoch": init["producer_epoch"], "group_id": group})
    assert added["error_code"] == ErrorCode.NONE, added
    return transactional_id, init["producer_id"], init["producer_epoch"]


def _txn_commit(client: Client, group: str, transaction: tuple[str, int, int], generation: int = -1, member_id: str = "", metadata: str = "") -> int:
    transactional_id, producer_id, producer_epoch = transaction
    answer = client.call(ApiKey.TXN_OFFSET_COMMIT, 3, {
        "transactional_id": transactional_id, "group_id": group, "producer_id": producer_id, "producer_epoch": producer_epoch,
        "generation_id": generation, "member_id": member_id, "group_instance_id": None,
        "topics": [{"name": TOPIC, "partitions": [{"partition_index": 0, "committed_offset": 1, "committed_leader_epoch": -1,
                                                   "committed_metadata": metadata}]}]})
    code: int = answer["topics"][0]["partitions"][0]["error_code"]
    return code


def test_offset_commits_keep_a_classic_members_session_alive(client) -> None:
    """A member that commits more often than its session timeout but never heartbeats stays in
    the group (OffsetMetadataManager.commitOffset reschedules its heartbeat)."""
    member_id, generation = _stable_classic_member(client, "g")
    deadline = time.monotonic() + 3 * SESSION_MS / 1000
    offset = 0
    while time.monotonic() < deadline:
        offset += 1
        assert _commit(client, "g", generation, member_id, offset=offset) == ErrorCode.NONE
        time.sleep(SESSION_MS / 4000)
    heartbeat = client.call(ApiKey.HEARTBEAT, 3, {"group_id": "g", "generation_id": generation, "member_id": member_id, "group_instance_id": None})
    assert heartbeat["error_code"] == ErrorCode.NONE


def test_txn_offset_commit_at_a_stale_member_epoch_is_illegal_generation(client) -> None:
    """A KIP-848 member's TxnOffsetCommit at an epoch it does not hold gets ILLEGAL_GENERATION,
    not STALE_MEMBER_EPOCH (OffsetMetadataManager.validateTransactionalOffsetCommit)."""
    member_id = str(uuid.uuid4())
    joined = client.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 0, {
        "group_id": "cg", "member_id": member_id, "member_epoch": 0, "instance_id": None, "rack_id": None,
        "rebalance_timeout_ms": 30_000, "subscribed_topic_names": [TOPIC], "server_assignor": None, "topic_partitions": []})
    assert joined["error_code"] == ErrorCode.NONE, joined
    transaction = _open_transaction(client, "cg")
    assert _txn_commit(client, "cg", transaction, joined["member_epoch"] + 1, member_id) == ErrorCode.ILLEGAL_GENERATION
    assert _txn_commit(client, "cg", transaction, joined["member_epoch"], member_id) == ErrorCode.NONE


def test_offset_metadata_is_measured_in_utf16_code_units(client) -> None:
    """offset.metadata.max.bytes (4096) bounds String.length(): 3000 'é' (6000 UTF-8 bytes)
    fit, 2049 emoji (2049 characters, 4098 UTF-16 code units) do not."""
    fits, too_long = "\u00e9" * 3000, "\U0001f600" * 2049
    assert _commit(client, "g", metadata=fits) == ErrorCode.NONE
    assert _commit(client, "g", metadata=too_long) == ErrorCode.OFFSET_METADATA_TOO_LARGE
    transaction = _open_transaction(client, "g")
    assert _txn_commit(client, "g", transaction, metadata=fits) == ErrorCode.NONE
    assert _txn_commit(client, "g", transaction, metadata=too_long) == ErrorCode.OFFSET_METADATA_TOO_LARGE
