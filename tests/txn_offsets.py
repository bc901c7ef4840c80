"""A transactional producer holding a group's offsets in an open transaction, for the tests
of what a coordinator keeps of them live and after a restart."""

from __future__ import annotations

from confluent_kafka import Consumer, Producer, TopicPartition


def offsets_in_transaction(bootstrap: str, transactional_id: str, group: str, topic: str, offsets: dict[int, int]) -> Producer:
    """A producer whose open transaction holds `offsets` (partition -> offset) of `topic` for `group`."""
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id})
    producer.init_transactions(30)
    producer.begin_transaction()
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    metadata = consumer.consumer_group_metadata()
    consumer.close()
    producer.send_offsets_to_transaction([TopicPartition(topic, p, offset) for p, offset in offsets.items()], metadata, 30)
    return producer
