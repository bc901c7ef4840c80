"""`__share_group_state` as Kafka 4.4 keeps it (kafka-share-coordinator's ShareCoordinatorConfig,
ShareCoordinatorService, ShareCoordinatorShard), checked against the reference broker after the
same share fetch and acknowledgement: created with share.coordinator.state.topic.num.partitions
partitions (50 by default), each share-partition's records on the partition of its key
"groupId:topicId:partition" (ShareCoordinatorService.partitionFor, the key's Java hash), a data
dir whose topic has one partition (Ottla's former count) keeping it; and, each
share.coordinator.cold.partition.snapshot.interval.ms, a ShareSnapshot of each share-partition
idle since (snapshotColdPartitions): the next snapshot epoch, its create timestamp kept, written
now, once after each snapshot written for a change."""

from __future__ import annotations

import base64
import pathlib
import struct
import time

from ottla.server.admin.client import KafkaClient
from ottla.server.coordinator import SHARE_GROUP_STATE, CoordinatorLog, java_string_hash
from ottla.storage import Storage
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from tests.share_member import ShareFetcher, ShareMember

ACCEPT = 1
SNAPSHOT, UPDATE = 0, 1


class _Rejoined(ShareFetcher):
    """A new member of `earlier`'s group on its topic, as an earlier broker on the same data dir left them."""

    def __init__(self, broker: ThreadedBroker, earlier: ShareFetcher) -> None:
        self.topic, self.group, self.topic_id = earlier.topic, earlier.group, earlier.topic_id
        self.bootstrap = broker.bootstrap_servers
        self.version, self.batch_size, self.epoch = 1, 500, 0
        self.member = ShareMember(broker)


def _state_partitions(broker: ThreadedBroker) -> int:
    with KafkaClient(broker.bootstrap_servers) as client:
        (topic,) = client.call(ApiKey.METADATA, {"topics": [{"name": SHARE_GROUP_STATE.name}]})[1]["topics"]
    assert topic["error_code"] == 0
    return len(topic["partitions"])


def _key_partition(group: str, topic_id: bytes, partitions: int) -> int:
    """Utils.abs(asCoordinatorKey().hashCode()) % partitions; "t9-group:aIn60jmdTfOmROXA5urWcg:0"
    is partition 19 of 50 on the reference broker, as here."""
    code = java_string_hash(f"{group}:{base64.urlsafe_b64encode(topic_id).rstrip(b'=').decode()}:0")
    return abs(code) % partitions


def _records_by_partition(data_dir: pathlib.Path, fetcher: ShareFetcher) -> dict[int, list[tuple[int, bytes | None]]]:
    """The (record type, value) of each of the fetcher's share-partition records, by partition."""
    group = fetcher.group.encode()
    storage = Storage.open(data_dir)
    try:
        state_log = CoordinatorLog(storage, SHARE_GROUP_STATE, 1, None)
        found: dict[int, list[tuple[int, bytes | None]]] = {}
        for index in range(state_log.partitions):
            for key, value in state_log.replay([index]):
                if key[4:4 + len(group)] == group and fetcher.topic_id in key:
                    found.setdefault(index, []).append((struct.unpack_from(">h", key)[0], value))
        return found
    finally:
        storage.close()


def _fetch_and_accept(fetcher: ShareFetcher) -> None:
    fetcher.produce_batch(count=5)
    assert fetcher.fetch().ranges == [(0, 4, 1)]
    fetcher.fetch(acknowledgements=[(0, 4, ACCEPT)], max_wait_ms=0)


def test_share_partition_records_go_to_their_keys_partition_of_fifty(tmp_path: pathlib.Path) -> None:
    with running_broker(data_dir=tmp_path) as broker:
        fetcher = ShareFetcher(broker, "t9")
        _fetch_and_accept(fetcher)
        assert _state_partitions(broker) == 50
        fetcher.member.close()
    found = _records_by_partition(tmp_path, fetcher)
    assert list(found) == [_key_partition(fetcher.group, fetcher.topic_id, 50)]
    assert found[_key_partition(fetcher.group, fetcher.topic_id, 50)][0][0] == SNAPSHOT


def test_the_state_topic_is_created_with_the_configured_partition_count(tmp_path: pathlib.Path) -> None:
    with running_broker(data_dir=tmp_path, share_coordinator_state_topic_num_partitions=7) as broker:
        fetcher = ShareFetcher(broker, "t9")
        _fetch_and_accept(fetcher)
        assert _state_partitions(broker) == 7
        fetcher.member.close()
    assert list(_records_by_partition(tmp_path, fetcher)) == [_key_partition(fetcher.group, fetcher.topic_id, 7)]


def test_a_one_partition_state_topic_keeps_its_count_and_its_state_after_a_restart(tmp_path: pathlib.Path) -> None:
    with running_broker(data_dir=tmp_path, share_coordinator_state_topic_num_partitions=1) as broker:
        fetcher = ShareFetcher(broker, "t9")
        _fetch_and_accept(fetcher)
        fetcher.member.close()
    with running_broker(data_dir=tmp_path) as broker:
        assert _state_partitions(broker) == 1
        again = _Rejoined(broker, fetcher)
        assert again.described() == (5, 0)
        again.member.join_until_assigned(again.group, [again.topic])
        again.produce_batch(count=2)
        assert again.fetch(0).ranges == [(5, 6, 1)]
        again.member.close()
    assert list(_records_by_partition(tmp_path, fetcher)) == [0]


def test_an_idle_share_partition_is_snapshotted_again_once_per_snapshot(tmp_path: pathlib.Path) -> None:
    with running_broker(data_dir=tmp_path, share_coordinator_cold_partition_snapshot_interval_ms=300) as broker:
        fetcher = ShareFetcher(broker, "t9")
        _fetch_and_accept(fetcher)
        # Several intervals: one cold snapshot, none after it, as the updates merged over it
        # keep its timestamps (ShareCoordinatorShard.merge) and it has moved them apart.
        time.sleep(1.5)
        fetcher.member.close()
    ((_, records),) = _records_by_partition(tmp_path, fetcher).items()
    assert [record_type for record_type, _ in records].count(SNAPSHOT) == 2
    first, cold = (value for record_type, value in records if record_type == SNAPSHOT)
    assert first is not None and cold is not None
    # version, snapshot epoch, state epoch, leader epoch, start offset, create and write timestamps
    first_fields, cold_fields = struct.unpack_from(">hiiiqqq", first), struct.unpack_from(">hiiiqqq", cold)
    assert cold_fields[1] == first_fields[1] + 1
    assert cold_fields[2:4] == first_fields[2:4]
    assert cold_fields[5] == first_fields[5] < cold_fields[6]
