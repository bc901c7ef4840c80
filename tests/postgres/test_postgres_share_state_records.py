"""Over PostgreSQL too, a share-partition's state goes to `__share_group_state` as Kafka 4.4's
ShareSnapshot and ShareUpdate records (tests/server/test_share_state_records.py pins their
bytes on the local engine), and a new broker process over the same database rebuilds the
state from them: the snapshot with every update merged over it."""

from __future__ import annotations

import struct
import time
from types import SimpleNamespace
from typing import Any, cast

import pytest
from kafka import KafkaConsumer, TopicPartition  # type: ignore[import-untyped]

from compat.harness import OttlaBroker
from ottla.server.admin.operations import AdminClient
from ottla.testing import ThreadedBroker
from ottla.wire.api import ApiKey
from share_member import ShareFetcher, ShareMember

pytestmark = pytest.mark.external

_START_TIMEOUT = 60.0
_TOPIC, _GROUP = "pg-state-records", "pg-state-records-group"
ACCEPT, RELEASE, REJECT = 1, 2, 3


class _Fetcher(ShareFetcher):
    """A member of the group on the topic, over a broker process: joined once the group's
    coordinator has loaded (COORDINATOR_LOAD_IN_PROGRESS is retried)."""

    def __init__(self, bootstrap: str) -> None:
        self.topic, self.group, self.bootstrap = _TOPIC, _GROUP, bootstrap
        self.version, self.batch_size, self.epoch = 1, 500, 0
        self.member = ShareMember(cast(ThreadedBroker, SimpleNamespace(bootstrap_servers=bootstrap)))
        deadline, member_epoch = time.monotonic() + _START_TIMEOUT, 0
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

    def described_start(self) -> Any:
        described = self.member.call(ApiKey.DESCRIBE_SHARE_GROUP_OFFSETS, 1, {"groups": [
            {"group_id": self.group, "topics": [{"topic_name": self.topic, "partitions": [0]}]}]})
        return described["groups"][0]["topics"][0]["partitions"][0]["start_offset"]


def _state_keys(bootstrap: str) -> list[bytes]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=3000)
    # The share-partition's records are all on its key's partition, in their order.
    partitions = [TopicPartition("__share_group_state", index) for index in consumer.partitions_for_topic("__share_group_state")]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    keys = [bytes(message.key) for message in consumer]
    consumer.close()
    return keys


def test_share_state_records_are_kafkas_and_rebuild_the_state_in_a_new_process(postgres_url: str) -> None:
    with OttlaBroker(storage=postgres_url, ready_timeout=_START_TIMEOUT, stop_timeout=30) as broker:
        with AdminClient(broker.bootstrap) as admin:
            admin.create_topic(_TOPIC, 1)
        fetcher = _Fetcher(broker.bootstrap)
        fetcher.fetch(0, max_wait_ms=0)
        fetcher.produce_batch(count=10)
        assert fetcher.fetch().ranges == [(0, 9, 1)]
        assert fetcher.fetch(acknowledgements=[(0, 3, ACCEPT), (4, 4, REJECT), (5, 9, RELEASE)]).ranges == [(5, 9, 2)]
        topic_id = fetcher.topic_id
        keys = [key for key in _state_keys(broker.bootstrap) if not key.startswith(b"[")]
        fetcher.member.close()
    group = _GROUP.encode()
    snapshot_key, update_key = (struct.pack(">hh", record_type, len(group)) + group + topic_id + struct.pack(">i", 0) for record_type in (0, 1))
    assert keys[0] == snapshot_key and keys[1:] and set(keys[1:]) == {update_key}

    with OttlaBroker(storage=postgres_url, ready_timeout=_START_TIMEOUT, stop_timeout=30) as broker:
        again = _Fetcher(broker.bootstrap)
        assert again.described_start() == 5
        # 5 to 9 were acquired a second time when the first process stopped: the third delivery.
        assert again.fetch(0, max_wait_ms=0).ranges == [(5, 9, 3)]
