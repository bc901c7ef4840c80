"""Over PostgreSQL too, `__share_group_state` has share.coordinator.state.topic.num.partitions
partitions, each share-partition's records on its key's partition (Kafka 4.4's
ShareCoordinatorService.partitionFor; tests/server/test_share_state_partitions.py on the local
engine), an existing topic keeps its count at a restart with another setting and the state is
read back from the key's partition; an idle share-partition gets its cold snapshot there."""

from __future__ import annotations

import base64
import time
from types import SimpleNamespace
from typing import cast

import pytest
from kafka import KafkaConsumer, TopicPartition  # type: ignore[import-untyped]

from ottla.server.admin.client import KafkaClient
from ottla.server.coordinator import java_string_hash
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from share_member import ShareFetcher, ShareMember

pytestmark = pytest.mark.external

_DEADLINE_S = 30.0
_STATE = "__share_group_state"
_TOPIC, _GROUP = "pg-state-partitions", "pg-state-partitions-group"
ACCEPT = 1


class _Fetcher(ShareFetcher):
    """A member of the group on the topic, joined once the broker serves the group (its
    coordinator answers NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS until then)."""

    def __init__(self, broker: ThreadedBroker) -> None:
        self.topic, self.group, self.bootstrap = _TOPIC, _GROUP, broker.bootstrap_servers
        self.version, self.batch_size, self.epoch = 1, 500, 0
        self.member = ShareMember(cast(ThreadedBroker, SimpleNamespace(bootstrap_servers=broker.bootstrap_servers)))
        deadline, member_epoch = time.monotonic() + _DEADLINE_S, 0
        while time.monotonic() < deadline:
            beat = self.member.heartbeat(_GROUP, member_epoch, [_TOPIC])
            if beat["error_code"] == 0:
                member_epoch = beat["member_epoch"]
                assigned = (beat["assignment"] or {}).get("topic_partitions")
                if assigned:
                    self.topic_id = bytes(assigned[0]["topic_id"])
                    return
            time.sleep(0.1)
        raise AssertionError("not assigned")


def _record_types_by_partition(bootstrap: str) -> dict[int, list[int]]:
    """The record type (0 snapshot, 1 update) of each record of `__share_group_state`, by partition."""
    with KafkaClient(bootstrap) as client:
        (topic,) = client.call(ApiKey.METADATA, {"topics": [{"name": _STATE}]})[1]["topics"]
    partitions = [TopicPartition(_STATE, entry["partition_index"]) for entry in topic["partitions"]]
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=3000)
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    found: dict[int, list[int]] = {index: [] for index in range(len(partitions))}
    for message in consumer:
        if not bytes(message.key).startswith(b"["):
            found[message.partition].append(int.from_bytes(bytes(message.key)[:2], "big"))
    consumer.close()
    return found


def _key_partition(topic_id: bytes, partitions: int) -> int:
    return abs(java_string_hash(f"{_GROUP}:{base64.urlsafe_b64encode(topic_id).rstrip(b'=').decode()}:0")) % partitions


def test_share_state_partitions_over_postgresql(postgres_url: str) -> None:
    with running_broker(storage_url=postgres_url, share_coordinator_state_topic_num_partitions=7,
                        share_coordinator_cold_partition_snapshot_interval_ms=300) as broker:
        member = ShareMember(cast(ThreadedBroker, SimpleNamespace(bootstrap_servers=broker.bootstrap_servers)))
        created = member.call(ApiKey.CREATE_TOPICS, 7, {"topics": [{"name": _TOPIC, "num_partitions": 1, "replication_factor": 1,
                                                                    "assignments": [], "configs": []}], "timeout_ms": 30000,
                                                        "validate_only": False})
        assert created["topics"][0]["error_code"] == 0
        member.close()
        fetcher = _Fetcher(broker)
        fetcher.fetch(0, max_wait_ms=0)
        fetcher.produce_batch(count=5)
        assert fetcher.fetch().ranges == [(0, 4, 1)]
        fetcher.fetch(acknowledgements=[(0, 4, ACCEPT)], max_wait_ms=0)
        time.sleep(1.5)  # several cold-snapshot intervals
        found = _record_types_by_partition(broker.bootstrap_servers)
        fetcher.member.close()
    key_partition = _key_partition(fetcher.topic_id, 7)
    assert len(found) == 7
    assert {index for index, types in found.items() if types} == {key_partition}
    # The initialization's snapshot and one cold snapshot.
    assert found[key_partition][0] == 0 and found[key_partition].count(0) == 2

    with running_broker(storage_url=postgres_url) as broker:
        again = _Fetcher(broker)
        assert again.described() == (5, 0)
        assert len(_record_types_by_partition(broker.bootstrap_servers)) == 7
        again.member.close()
