"""A share group member over one raw connection, speaking Ottla's own codec: shared by the
tests that need a member assigned before they act; and a fetcher, such a member alone on a
topic of its own, for the tests that pin what ShareFetch acquires."""

from __future__ import annotations

import base64
import socket
import time
import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # type: ignore[import-untyped]

from compat.sockets import read_frame
from ottla.testing import ThreadedBroker
from ottla.wire.api import ApiKey
from ottla.wire.protocol import decode_response, encode_request
from ottla.wire.records import scan_batches

# ShareFetch v2's share_acquire_mode (KIP-1206).
BATCH_OPTIMIZED, RECORD_LIMIT = 0, 1


class ShareMember:
    def __init__(self, broker: ThreadedBroker) -> None:
        host, port = broker.bootstrap_servers.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        self.correlation = 0
        self.member_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")

    def close(self) -> None:
        self.sock.close()

    def call(self, api: ApiKey, version: int, body: dict[str, Any]) -> dict[str, Any]:
        self.correlation += 1
        self.sock.sendall(encode_request(api, version, self.correlation, body))
        frame = read_frame(self.sock)
        assert frame is not None
        return decode_response(api, version, frame)[1]

    def heartbeat(self, group: str, member_epoch: int, topics: list[str]) -> dict[str, Any]:
        """One ShareGroupHeartbeat v1; the subscription is sent only when joining (epoch 0)."""
        return self.call(ApiKey.SHARE_GROUP_HEARTBEAT, 1, {"group_id": group, "member_id": self.member_id, "member_epoch": member_epoch,
                                                           "rack_id": None, "subscribed_topic_names": topics if member_epoch == 0 else None})

    def join_until_assigned(self, group: str, topics: list[str]) -> list[Any]:
        """Heartbeats until the member is assigned partitions, which happens once the
        share-partitions' state is initialized: the assignment's topic partitions."""
        member_epoch, assigned = 0, []
        for attempt in range(300):
            time.sleep(0.1 if attempt else 0)
            beat = self.heartbeat(group, member_epoch, topics)
            assert beat["error_code"] == 0
            member_epoch = beat["member_epoch"]
            assigned = (beat["assignment"] or {}).get("topic_partitions") or assigned
            if assigned:
                break
        return assigned


class Fetched(NamedTuple):
    """A ShareFetch's answer for the fetcher's partition: the acquired ranges as (first, last,
    delivery count), the acknowledge error, the base offsets of the batches sent. A partition
    the response leaves out acquired nothing and had no acknowledgement refused."""

    ranges: list[tuple[int, int, int]]
    acknowledge_error: int
    sent: list[int]


def produce_transactions(bootstrap: str, topic: str, runs: Sequence[tuple[int, bool]], end: int) -> None:
    """One transaction of `count` records (one log batch) per (count, commit) run on partition 0
    of `topic`, committed or aborted; returns once the log ends at `end` (every marker written)."""
    # Records wait for the flush, which sends them as one batch: with no linger, a loaded
    # machine's sender thread may send the first before the next is queued.
    producer = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"{topic}-tx", linger_ms=60_000)
    producer.init_transactions()
    for count, commit in runs:
        producer.begin_transaction()
        for value in range(count):
            producer.send(topic, b"t%d" % value, partition=0)
        producer.flush()
        producer.commit_transaction() if commit else producer.abort_transaction()
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    partition = TopicPartition(topic, 0)
    deadline = time.monotonic() + 30
    while consumer.end_offsets([partition])[partition] < end:
        assert time.monotonic() < deadline, "the transaction markers were not written"
    consumer.close()


class ShareFetcher:
    """One member of a fresh share group (`group_configs` set before it joins, as
    share.isolation.level must be) on a fresh one-partition topic, assigned it, sending raw
    ShareFetch requests of one version. With `open_session` its first fetch (epoch 0) is made
    at once, so the share-partition starts at the end of the log (share.auto.offset.reset latest)."""

    def __init__(self, broker: ThreadedBroker, topic: str, *, version: int = 1, batch_size: int = 500,
                 group_configs: dict[str, str] | None = None, open_session: bool = True) -> None:
        self.topic, self.group = topic, f"{topic}-group"
        self.bootstrap = broker.bootstrap_servers
        self.version, self.batch_size, self.epoch = version, batch_size, 0
        broker.create_topic(topic, partitions=1)
        self.member = ShareMember(broker)
        if group_configs:
            altered = self.member.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {"resources": [{
                "resource_type": 32, "resource_name": self.group,
                "configs": [{"name": name, "config_operation": 0, "value": value} for name, value in group_configs.items()]}],
                "validate_only": False})
            assert altered["responses"][0]["error_code"] == 0
        self.topic_id = bytes(self.member.join_until_assigned(self.group, [topic])[0]["topic_id"])
        if open_session:
            self.fetch(0, max_wait_ms=0)

    def produce_batch(self, prefix: bytes = b"v", count: int = 10) -> None:
        """`count` records in one log batch: sent together, flushed before the linger ends."""
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=60000, batch_size=1 << 20)
        for value in range(count):
            producer.send(self.topic, prefix + b"%d" % value, partition=0)
        producer.flush()
        producer.close()

    def produce_one_per_batch(self, count: int) -> None:
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=0)
        for value in range(count):
            producer.send(self.topic, b"v%d" % value, partition=0).get(timeout=30)
        producer.close()

    def transactions(self, runs: Sequence[tuple[int, bool]], end: int) -> None:
        produce_transactions(self.bootstrap, self.topic, runs, end)

    def described(self) -> tuple[int, int]:
        """The share-partition's start offset and lag as DescribeShareGroupOffsets v1 answers them."""
        described = self.member.call(ApiKey.DESCRIBE_SHARE_GROUP_OFFSETS, 1, {"groups": [
            {"group_id": self.group, "topics": [{"topic_name": self.topic, "partitions": [0]}]}]})
        (partition,) = [p for group in described["groups"] for topic in group["topics"] for p in topic["partitions"]]
        assert partition["error_code"] == 0
        return int(partition["start_offset"]), int(partition["lag"])

    def request(self, epoch: int | None = None, max_records: int = 500, acquire_mode: int = BATCH_OPTIMIZED, *,
                batch_size: int | None = None, max_wait_ms: int = 5000,
                acknowledgements: Sequence[tuple[int, int, int]] = ()) -> dict[str, Any]:
        """One ShareFetch of the partition, acknowledging (first, last, type) ranges: the response.
        `epoch` is the session's next unless given (after -1, which closes the session, 0);
        `batch_size` the fetcher's unless given; the acquire mode is sent from version 2."""
        epoch = self.epoch if epoch is None else epoch
        self.epoch = 0 if epoch == -1 else epoch + 1
        body: dict[str, Any] = {
            "group_id": self.group, "member_id": self.member.member_id, "share_session_epoch": epoch, "max_wait_ms": max_wait_ms,
            "min_bytes": 1, "max_bytes": 1 << 20, "max_records": max_records,
            "batch_size": self.batch_size if batch_size is None else batch_size,
            "topics": [{"topic_id": self.topic_id, "partitions": [{"partition_index": 0, "acknowledgement_batches": [
                {"first_offset": first, "last_offset": last, "acknowledge_types": [kind]} for first, last, kind in acknowledgements]}]}],
            "forgotten_topics_data": []}
        if self.version >= 2:
            body |= {"share_acquire_mode": acquire_mode, "is_renew_ack": False}
        return self.member.call(ApiKey.SHARE_FETCH, self.version, body)

    def fetch(self, epoch: int | None = None, max_records: int = 500, acquire_mode: int = BATCH_OPTIMIZED, *,
              batch_size: int | None = None, max_wait_ms: int = 5000,
              acknowledgements: Sequence[tuple[int, int, int]] = ()) -> Fetched:
        """`request`'s answer for the partition, neither the request nor the partition refused."""
        response = self.request(epoch, max_records, acquire_mode, batch_size=batch_size, max_wait_ms=max_wait_ms,
                                acknowledgements=acknowledgements)
        assert response["error_code"] == 0
        partitions: list[Any] = [p for topic in response["responses"] for p in topic["partitions"]]
        if not partitions:
            return Fetched([], 0, [])
        (partition,) = partitions
        assert partition["error_code"] == 0
        return Fetched([(r["first_offset"], r["last_offset"], r["delivery_count"]) for r in partition["acquired_records"]],
                       partition["acknowledge_error_code"],
                       [header.base_offset for header, _ in scan_batches(bytes(partition["records"] or b""))])
