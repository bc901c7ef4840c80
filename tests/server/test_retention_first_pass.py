"""The first retention pass runs log.initial.task.delay.ms after the broker starts (Kafka's
LogManager.startup schedules cleanupLogs with that initial delay, 30 s by default), whatever
log.retention.check.interval.ms is: a record stamped older than retention.ms is gone then, not
only one interval (5 minutes) later."""

from __future__ import annotations

import time

from kafka_wire import WireClient

from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.records import Record, build_batch

# 2023-11-14: far past the default retention.ms of 7 days.
OLD_TIMESTAMP_MS = 1_700_000_000_000


def _earliest(client: WireClient, topic: str) -> int:
    answer = client.call(ApiKey.LIST_OFFSETS, 7, {"replica_id": -1, "isolation_level": 0, "topics": [
        {"name": topic, "partitions": [{"partition_index": 0, "current_leader_epoch": -1, "timestamp": -2}]}]})
    partition = answer["topics"][0]["partitions"][0]
    assert partition["error_code"] == 0, answer
    return int(partition["offset"])


def _produce(client: WireClient, topic: str, timestamp_ms: int) -> None:
    answer = client.call(ApiKey.PRODUCE, 9, {"acks": -1, "timeout_ms": 5000, "transactional_id": None, "topic_data": [
        {"name": topic, "partition_data": [{"index": 0, "records": build_batch([Record(0, timestamp_ms, b"k", b"v")])}]}]})
    assert answer["responses"][0]["partition_responses"][0]["error_code"] == 0, answer


def test_the_first_retention_pass_comes_after_the_initial_delay_not_the_interval() -> None:
    with running_broker(data_dir=None, log_initial_task_delay_ms=1500) as broker:  # the interval stays 5 minutes
        client = WireClient(broker.bootstrap_servers)
        try:
            for topic in ("stamped-long-ago", "stamped-now"):
                broker.create_topic(topic, partitions=1)
            _produce(client, "stamped-long-ago", OLD_TIMESTAMP_MS)
            _produce(client, "stamped-now", int(time.time() * 1000))
            deadline = time.monotonic() + 15
            # The only segment, the active one, is rolled and deleted: the log starts where it ended.
            while _earliest(client, "stamped-long-ago") == 0:
                assert time.monotonic() < deadline, "no retention pass within 15 s of the start"
                time.sleep(0.1)
            assert _earliest(client, "stamped-long-ago") == 1
            assert _earliest(client, "stamped-now") == 0
        finally:
            client.close()
