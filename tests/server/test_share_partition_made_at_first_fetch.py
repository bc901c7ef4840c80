"""A share-partition is made when a ShareFetch first names it, as Kafka 4.4's
SharePartitionManager.processShareFetch makes every partition a fetch names (starting it from
share.auto.offset.reset then), even one the fetch's max_records ran out before reaching.
Asked of Kafka 4.4 with the same requests."""

from __future__ import annotations

from typing import Any

from share_member import ShareMember

from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.records import Record, build_batch


def _fetch(member: ShareMember, group: str, epoch: int, named: list[tuple[bytes, int]], max_records: int) -> dict[int, list[tuple[int, int]]]:
    """One ShareFetch v1: the acquired ranges by partition."""
    answer: dict[str, Any] = member.call(ApiKey.SHARE_FETCH, 1, {
        "group_id": group, "member_id": member.member_id, "share_session_epoch": epoch, "max_wait_ms": 0, "min_bytes": 1,
        "max_bytes": 1 << 20, "max_records": max_records, "batch_size": 500,
        "topics": [{"topic_id": topic_id, "partitions": [{"partition_index": index, "acknowledgement_batches": []}]} for topic_id, index in named],
        "forgotten_topics_data": []})
    assert answer["error_code"] == 0
    return {partition["partition_index"]: [(r["first_offset"], r["last_offset"]) for r in partition["acquired_records"]]
            for topic in answer["responses"] for partition in topic["partitions"] if partition["acquired_records"]}


def _produce(member: ShareMember, topic: str, index: int, batches: int = 1) -> None:
    """`batches` log batches of 3 records each."""
    for _ in range(batches):
        produced = member.call(ApiKey.PRODUCE, 9, {"transactional_id": None, "acks": -1, "timeout_ms": 5000, "topic_data": [
            {"name": topic, "partition_data": [{"index": index, "records": build_batch([Record(i, 0, None, b"v") for i in range(3)])}]}]})
        assert produced["responses"][0]["partition_responses"][0]["error_code"] == 0


def _member(broker: ThreadedBroker, topic: str, group: str, partitions: int, configs: dict[str, str]) -> tuple[ShareMember, bytes]:
    broker.create_topic(topic, partitions=partitions)
    member = ShareMember(broker)
    if configs:
        altered = member.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {"resources": [{
            "resource_type": 32, "resource_name": group,
            "configs": [{"name": name, "config_operation": 0, "value": value} for name, value in configs.items()]}], "validate_only": False})
        assert altered["responses"][0]["error_code"] == 0
    return member, bytes(member.join_until_assigned(group, [topic])[0]["topic_id"])


def test_a_partition_named_past_max_records_starts_at_the_end_of_the_log_then() -> None:
    """latest: partition 1, named while partition 0's batch spends max_records, starts at the
    end of its log at that fetch, so the records produced after it are handed out."""
    with running_broker(data_dir=None) as broker:
        member, topic_id = _member(broker, "late", "late-group", 2, {})
        assert _fetch(member, "late-group", 0, [(topic_id, 0)], 3) == {}
        _produce(member, "late", 0, batches=2)
        _produce(member, "late", 1)
        assert _fetch(member, "late-group", 1, [(topic_id, 1)], 3) == {0: [(0, 2)]}
        _produce(member, "late", 1)
        assert _fetch(member, "late-group", 2, [], 100) == {1: [(3, 5)], 0: [(3, 5)]}
        member.close()


def test_a_backlog_from_earliest_is_served_in_kafkas_turns() -> None:
    """earliest, 3 batches of 3 records on each of 3 partitions before the session opens,
    fetches of max_records 3: the partitions named at the first fetch are made by it."""
    with running_broker(data_dir=None) as broker:
        member, topic_id = _member(broker, "backlog", "backlog-group", 3, {"share.auto.offset.reset": "earliest"})
        for _ in range(3):
            for index in range(3):
                _produce(member, "backlog", index)
        served = [_fetch(member, "backlog-group", epoch, [(topic_id, index) for index in range(3)] if epoch == 0 else [], 3)
                  for epoch in range(9)]
        member.close()
    assert [list(got) for got in served] == [[0], [1], [0], [2], [0], [1], [2], [1], [2]]
