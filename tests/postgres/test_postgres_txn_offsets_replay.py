"""Transactional offsets replayed from PostgreSQL after a restart as Kafka keeps them live
(OffsetMetadataManager: each offset carries its record's log offset; a transaction's offset
stays pending past a later plain commit and, at its marker, replaces the committed offset only
if its record is the later), with confluent-kafka against `ottla serve --storage postgresql://`.
tests/server/test_group_offsets_txn_replay.py checks the same on the local engine."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from compat.harness import OttlaBroker
from ottla.server.admin.client import KafkaClient
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from txn_offsets import offsets_in_transaction

pytestmark = pytest.mark.external

TOPIC = "pgr"


def _state(bootstrap: str, group: str) -> tuple[ErrorCode, int]:
    """Partition 0 as OffsetFetch v7 sees it: the error asking for stable offsets, and the
    committed offset asking without; asked again while the broker still loads the group's
    `__consumer_offsets` partition after its start."""
    client = KafkaClient(bootstrap)
    try:
        found = []
        for require_stable in (True, False):
            body = {"group_id": group, "require_stable": require_stable, "topics": [{"name": TOPIC, "partition_indexes": [0]}]}
            answer = client.call(ApiKey.OFFSET_FETCH, body, highest=7)[1]
            deadline = time.monotonic() + 60
            while answer["error_code"] == ErrorCode.COORDINATOR_LOAD_IN_PROGRESS and time.monotonic() < deadline:
                time.sleep(0.1)
                answer = client.call(ApiKey.OFFSET_FETCH, body, highest=7)[1]
            assert answer["error_code"] == ErrorCode.NONE, answer
            found.append(answer["topics"][0]["partitions"][0])
    finally:
        client.close()
    return ErrorCode(found[0]["error_code"]), found[1]["committed_offset"]


def test_transactional_offsets_replayed_from_postgresql_match_the_live_answers(postgres_url: str) -> None:
    """Group "two": tx-a's 100 then tx-b's 200, tx-a committing first: 200 stays. Group
    "plain": tx-p's 100 then a plain 300, the transaction still open across the restart: still
    pending after it, and its commit then leaves 300."""
    with OttlaBroker(storage=postgres_url, settings={"group.initial.rebalance.delay.ms": "0"}, ready_timeout=60, stop_timeout=30) as broker:
        bootstrap = broker.bootstrap
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            admin.create_topics([NewTopic(TOPIC, 1, 1)])
        finally:
            admin.close()
        older = offsets_in_transaction(bootstrap, "tx-a", "two", TOPIC, {0: 100})
        newer = offsets_in_transaction(bootstrap, "tx-b", "two", TOPIC, {0: 200})
        older.commit_transaction(30)
        newer.commit_transaction(30)
        pending = offsets_in_transaction(bootstrap, "tx-p", "plain", TOPIC, {0: 100})
        client = KafkaClient(bootstrap)
        try:
            committed = client.call(ApiKey.OFFSET_COMMIT, {
                "group_id": "plain", "generation_id_or_member_epoch": -1, "member_id": "",
                "topics": [{"name": TOPIC, "partitions": [{"partition_index": 0, "committed_offset": 300, "committed_metadata": ""}]}]}, highest=8)[1]
        finally:
            client.close()
        assert committed["topics"][0]["partitions"][0]["error_code"] == ErrorCode.NONE
        assert _state(bootstrap, "two") == (ErrorCode.NONE, 200)
        assert _state(bootstrap, "plain") == (ErrorCode.UNSTABLE_OFFSET_COMMIT, 300)

        broker.restart()
        bootstrap = broker.bootstrap
        assert _state(bootstrap, "two") == (ErrorCode.NONE, 200)
        assert _state(bootstrap, "plain") == (ErrorCode.UNSTABLE_OFFSET_COMMIT, 300)
        pending.commit_transaction(30)
        assert _state(bootstrap, "plain") == (ErrorCode.NONE, 300)
