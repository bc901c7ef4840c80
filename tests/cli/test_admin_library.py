"""The admin operations used from Python, without argparse: AdminClient against a real broker
on a real socket, its answers as dataclasses, its failures as ClientError."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator

import pytest

from ottla.server.admin import AdminClient, ClientError, ConfigEntry, OffsetSpan, PartitionOffsets, TopicListing
from ottla.server.admin.operations import partition_for_key
from ottla.testing import ThreadedBroker, running_broker


@pytest.fixture(scope="module")
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=None, group_initial_rebalance_delay_ms=0) as broker:
        yield broker


@pytest.fixture
def admin(broker: ThreadedBroker) -> Iterator[AdminClient]:
    with AdminClient(broker.bootstrap_servers, timeout=10) as admin:
        yield admin


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_topic_lifecycle(admin: AdminClient) -> None:
    topic = _name("lib-topic")
    created = admin.create_topic(topic, partitions=2, configs={"retention.ms": "60000"})
    assert (created.topic, created.partitions, created.configs) == (topic, 2, {"retention.ms": "60000"})
    assert TopicListing(topic, 2, False) in admin.list_topics()

    admin.create_partitions(topic, 3)
    admin.alter_topic_configs(topic, set_configs={"cleanup.policy": "compact"}, delete_configs=["retention.ms"])
    (described,) = admin.describe_topics([topic])
    assert [p.partition for p in described.partitions] == [0, 1, 2]
    assert all(p.leader == 1 and p.replicas == [1] and p.isr == [1] for p in described.partitions)
    assert described.configs == [ConfigEntry("cleanup.policy", "compact", True)]
    (everything,) = admin.describe_topics([topic], all_configs=True)
    assert ConfigEntry("retention.ms", "604800000", False) in everything.configs

    admin.delete_topics([topic])
    assert topic not in {t.name for t in admin.list_topics()}


def test_failures_are_client_errors_naming_kafkas_error(admin: AdminClient) -> None:
    with pytest.raises(ClientError, match="^topic no-such-topic: UNKNOWN_TOPIC_OR_PARTITION$"):
        admin.describe_topics(["no-such-topic"])
    with pytest.raises(ClientError, match="^cannot create bad: INVALID_CONFIG"):
        admin.create_topic("bad", configs={"retention.ms": "soon"})


def test_produce_then_read_to_the_end(admin: AdminClient) -> None:
    topic = _name("lib-data")
    admin.create_topic(topic, partitions=3)
    records = [(f"key-{i}".encode(), f"value {i}".encode()) for i in range(20)] + [(None, b"no key")]
    result = admin.produce(topic, iter(records))
    assert result.records == 21
    assert sum(span.last_offset - span.first_offset + 1 for span in result.partitions.values()) == 21

    read = list(admin.consume(topic, from_beginning=True))
    assert sorted((r.key or b"", r.value) for r in read) == sorted((k or b"", v) for k, v in records)
    assert all(r.partition == partition_for_key(r.key, 3) for r in read if r.key is not None)
    offsets = admin.list_offsets(topic)
    assert [(o.partition, o.earliest) for o in offsets] == [(0, 0), (1, 0), (2, 0)]
    assert sum(o.records for o in offsets) == 21
    # From the end (the default), a reader has nothing to give.
    assert list(admin.consume(topic)) == []


def test_produce_to_one_partition(admin: AdminClient) -> None:
    topic = _name("lib-one")
    admin.create_topic(topic, partitions=2)
    result = admin.produce(topic, [(b"k", b"a"), (None, b"b")], partition=1)
    assert result.partitions == {1: OffsetSpan(0, 1)}
    assert admin.list_offsets(topic) == [PartitionOffsets(0, 0, 0, 0), PartitionOffsets(1, 0, 2, 2)]
    with pytest.raises(ClientError, match=f"^topic {topic} has no partition 5$"):
        admin.produce(topic, [(None, b"x")], partition=5)


def test_a_reader_stopped_early_commits_only_what_it_handed_out(admin: AdminClient) -> None:
    topic, group = _name("lib-early"), _name("lib-early-group")
    admin.create_topic(topic, partitions=2)
    for partition in (0, 1):
        admin.produce(topic, [(None, b"%d-%d" % (partition, i)) for i in range(3)], partition=partition)
    # One Fetch returns both partitions; the reader is left after four of its six records.
    with admin.consume(topic, from_beginning=True, group=group) as reader:
        taken = list(itertools.islice(reader, 4))
    handed_out = {0: 0, 1: 0}
    for record in taken:
        handed_out[record.partition] = record.offset + 1
    assert reader.positions == handed_out
    assert {o.partition: o.committed for o in admin.describe_group(group).offsets} == handed_out
    rest = [r.value for r in admin.consume(topic, group=group)]
    assert sorted([r.value for r in taken] + rest) == sorted(b"%d-%d" % (p, i) for p in (0, 1) for i in range(3))


def test_group_offsets_reset_describe_and_delete(admin: AdminClient) -> None:
    topic, group = _name("lib-grp"), _name("lib-group")
    admin.create_topic(topic, partitions=2)
    admin.produce(topic, [(None, b"a"), (None, b"b"), (None, b"c"), (None, b"d")])
    assert admin.reset_offsets(group, topic, "latest") == {0: 2, 1: 2}
    described = admin.describe_group(group)
    assert (described.state, described.members) == ("Empty", [])
    assert [(o.partition, o.committed, o.log_end, o.lag) for o in described.offsets] == [(0, 2, 2, 0), (1, 2, 2, 0)]
    assert group in {g.group for g in admin.list_groups()}

    # An offset outside the log is clamped to its nearest end, as kafka-consumer-groups does.
    assert admin.reset_offsets(group, topic, 100) == {0: 2, 1: 2}
    assert admin.reset_offsets(group, topic, 1) == {0: 1, 1: 1}
    # Keyless records went round robin: a and c to partition 0, b and d to partition 1.
    assert sorted(r.value for r in admin.consume(topic, group=group)) == [b"c", b"d"]
    assert admin.reset_offsets(group, topic, "earliest") == {0: 0, 1: 0}
    assert sum(o.lag or 0 for o in admin.describe_group(group).offsets) == 4

    admin.delete_groups([group])
    assert group not in {g.group for g in admin.list_groups()}
    with pytest.raises(ClientError, match=f"^cannot delete group {group}: GROUP_ID_NOT_FOUND"):
        admin.delete_groups([group])
