"""AlterShareGroupOffsets and DeleteShareGroupOffsets on a broker over PostgreSQL that is reading a
`__consumer_offsets` partition again, having just gained it from a broker that stopped: Kafka 4.4's
GroupCoordinatorService hands both to CoordinatorRuntime.scheduleWriteOperation
("share-group-offsets-alter", "initiate-delete-share-group-offsets"), whose
withActiveContextOrThrow throws COORDINATOR_LOAD_IN_PROGRESS for a partition still loading; the
answer is that error alone, in its default words, no topic listed. The load is held open by the
test's own connection: an ACCESS EXCLUSIVE lock on `batches`, which the load's read waits for,
taken before the broker stops and released once the answers are checked."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from compat.harness import PostgresBrokers
from ottla.server.admin.client import KafkaClient
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

pytestmark = [pytest.mark.external, pytest.mark.slow]

_DEADLINE = 60.0
_GROUP = 0  # FindCoordinator key type
_TOPIC = "shared-work"
_LOADING = (ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, "The coordinator is loading and hence can't process requests.", [])


def _until(check: Any, what: str) -> Any:
    deadline = time.monotonic() + _DEADLINE
    while True:
        found = check()
        if found is not None:
            return found
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _coordinator(client: KafkaClient, key: str) -> int | None:
    entry = client.call(ApiKey.FIND_COORDINATOR, {"key_type": _GROUP, "coordinator_keys": [key]}, highest=4)[1]["coordinators"][0]
    return None if entry["error_code"] else int(entry["node_id"])


def _describe(client: KafkaClient, group_id: str) -> ErrorCode:
    return ErrorCode(client.call(ApiKey.DESCRIBE_GROUPS, {"groups": [group_id], "include_authorized_operations": False})[1]["groups"][0]["error_code"])


def _alter(client: KafkaClient, group_id: str) -> tuple[int, str | None, list[Any]]:
    answer = client.call(ApiKey.ALTER_SHARE_GROUP_OFFSETS, {"group_id": group_id, "topics": [
        {"topic_name": _TOPIC, "partitions": [{"partition_index": 0, "start_offset": 3}]}]})[1]
    return answer["error_code"], answer["error_message"], answer["responses"]


def _delete(client: KafkaClient, group_id: str) -> tuple[int, str | None, list[Any]]:
    answer = client.call(ApiKey.DELETE_SHARE_GROUP_OFFSETS, {"group_id": group_id, "topics": [{"topic_name": _TOPIC}]})[1]
    return answer["error_code"], answer["error_message"], answer["responses"]


def test_share_offsets_admin_answers_load_in_progress_while_the_groups_partition_loads(postgres_url: str, tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    try:
        with PostgresBrokers(tmp_path, storage=postgres_url, nodes=2) as brokers:
            staying, leaving = brokers.brokers
            with KafkaClient(staying.bootstrap) as client:
                created = client.call(ApiKey.CREATE_TOPICS, {"topics": [{"name": _TOPIC, "num_partitions": 1, "replication_factor": 1,
                                                                          "assignments": [], "configs": []}], "timeout_ms": 10000})[1]
                assert created["topics"][0]["error_code"] == ErrorCode.NONE, created
                moving = next(f"there-{n}" for n in itertools.count() if _until(lambda n=n: _coordinator(client, f"there-{n}"), "no coordinator") == 2)
                connection = loop.run_until_complete(asyncpg.connect(postgres_url))
                try:
                    transaction = connection.transaction()
                    loop.run_until_complete(transaction.start())
                    loop.run_until_complete(connection.execute("LOCK TABLE batches IN ACCESS EXCLUSIVE MODE"))
                    leaving.stop()
                    # The staying broker has gained the group's partition and is reading it.
                    _until(lambda: True if _describe(client, moving) is ErrorCode.COORDINATOR_LOAD_IN_PROGRESS else None, "no load began")
                    altered, deleted = _alter(client, moving), _delete(client, moving)
                    loop.run_until_complete(transaction.rollback())
                finally:
                    loop.run_until_complete(connection.close())
                assert altered == _LOADING
                assert deleted == _LOADING
                # Once the partition is read, the group is served: an empty share group is made for the alter.
                altered = _until(lambda: answer if (answer := _alter(client, moving))[0] != ErrorCode.COORDINATOR_LOAD_IN_PROGRESS else None,
                                 "the load never ended")
                assert altered[:2] == (ErrorCode.NONE, None) and [p["error_code"] for t in altered[2] for p in t["partitions"]] == [0]
    finally:
        loop.close()
