"""A transaction that commits a group's offsets twice keeps the second, in the log too (a restart
reads it back): the coordinator's
batches of one producer and epoch all start at sequence 0 (Kafka's CoordinatorRuntime numbers
every batch so), and a coordinator's own writes are never taken for a client's retries
(Kafka checks duplicates and sequences for AppendOrigin.CLIENT only). On both engines' paths:
the file engine here, PostgreSQL in tests/postgres/test_postgres_txn_offsets_across_brokers.py."""

from __future__ import annotations

from confluent_kafka import Consumer, TopicPartition

from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from tests.server.test_features import Client
from txn_offsets import offsets_in_transaction

TOPIC = "t"


def _committed(bootstrap: str, group: str) -> int:
    client = Client(bootstrap)
    try:
        answer = client.call(ApiKey.OFFSET_FETCH, 7, {"group_id": group, "require_stable": True,
                                                      "topics": [{"name": TOPIC, "partition_indexes": [0]}]})
    finally:
        client.close()
    return answer["topics"][0]["partitions"][0]["committed_offset"]


def test_the_second_commit_of_offsets_in_one_transaction_is_the_one_kept(tmp_path) -> None:
    with running_broker(data_dir=tmp_path / "data") as broker:
        broker.create_topic(TOPIC, partitions=1)
        producer = offsets_in_transaction(broker.bootstrap_servers, "twice", "g", TOPIC, {0: 10})
        consumer = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": "g"})
        metadata = consumer.consumer_group_metadata()
        consumer.close()
        producer.send_offsets_to_transaction([TopicPartition(TOPIC, 0, 30)], metadata, 30)
        producer.commit_transaction(30)
        assert _committed(broker.bootstrap_servers, "g") == 30
    with running_broker(data_dir=tmp_path / "data") as restarted:
        assert _committed(restarted.bootstrap_servers, "g") == 30
