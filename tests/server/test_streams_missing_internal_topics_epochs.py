"""A streams group whose internal topics are missing, heartbeat by heartbeat, as Kafka 4.4
answers it (asked of the reference broker, default assignment interval): the heartbeat that
finds them missing is answered MISSING_INTERNAL_TOPICS at the epoch its join bumped to, with
no tasks (the group not ready, its target computed empty); KafkaApis then has the controller
create them, and the next heartbeat finds them, which bumps the group epoch once more, its
target waiting for the assignment interval since the first."""

from __future__ import annotations

import time
from typing import Any

from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

MISSING = (3, "Internal topics are missing: s1-store-changelog")
DELAYED = (5, "Assignment delayed due to the configured assignment interval.")


def _topology() -> dict[str, Any]:
    changelog = {"name": "s1-store-changelog", "partitions": 0, "replication_factor": 0, "topic_configs": []}
    return {"epoch": 0, "subtopologies": [
        {"subtopology_id": "0", "source_topics": ["words"], "source_topic_regex": [], "state_changelog_topics": [changelog],
         "repartition_sink_topics": [], "repartition_source_topics": [], "copartition_groups": []}]}


def _beat(connection: _Connection, epoch: int) -> tuple[Any, ...]:
    joining = epoch == 0
    tasks = [] if joining else None
    answer = connection.call(ApiKey.STREAMS_GROUP_HEARTBEAT, 0, {
        "group_id": "s1", "member_id": "m1", "member_epoch": epoch, "endpoint_information_epoch": 0, "instance_id": None, "rack_id": None,
        "rebalance_timeout_ms": 30_000 if joining else -1, "topology": _topology() if joining else None, "active_tasks": tasks,
        "standby_tasks": tasks, "warmup_tasks": tasks, "process_id": "p1" if joining else None, "user_endpoint": None,
        "client_tags": [] if joining else None, "task_offsets": tasks, "task_end_offsets": tasks, "shutdown_application": False})
    assert answer["error_code"] == ErrorCode.NONE, answer
    active = None if answer["active_tasks"] is None else [(t["subtopology_id"], t["partitions"]) for t in answer["active_tasks"]]
    return answer["member_epoch"], [(s["status_code"], s["status_detail"]) for s in answer["status"] or ()], active


def _described(connection: _Connection) -> tuple[str, int, int]:
    group = connection.call(ApiKey.STREAMS_GROUP_DESCRIBE, 0, {"group_ids": ["s1"], "include_authorized_operations": False})["groups"][0]
    return group["group_state"], group["group_epoch"], group["assignment_epoch"]


def test_internal_topics_found_missing_bump_the_epoch_at_the_next_heartbeat() -> None:
    with running_broker(data_dir=None, group_streams_initial_rebalance_delay_ms=0) as broker:
        connection = _Connection(broker.bootstrap_servers)
        try:
            created = connection.call(ApiKey.CREATE_TOPICS, 7, {"topics": [{"name": "words", "num_partitions": 2, "replication_factor": 1,
                                                                            "assignments": [], "configs": []}], "timeout_ms": 10_000, "validate_only": False})
            assert created["topics"][0]["error_code"] == ErrorCode.NONE
            assert _beat(connection, 0) == (2, [MISSING], [])
            assigned = time.monotonic()  # the join's (empty) target was computed before this
            assert _described(connection) == ("NotReady", 2, 2)
            assert _beat(connection, 2) == (2, [DELAYED], None)
            assert _described(connection) == ("Assigning", 3, 2)
            time.sleep(max(0.0, assigned + 1.05 - time.monotonic()))
            assert _beat(connection, 2) == (3, [], [("0", [0, 1])])
            assert _described(connection) == ("Stable", 3, 3)
        finally:
            connection.close()
