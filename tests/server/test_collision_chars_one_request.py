"""Names differing only by '.' and '_' (their metric names would be the same), as Kafka 4.4
judges them: its controller checks each name of a CreateTopics against the topics it had before
the request (ReplicationControlManager.validateNewTopicNames over topicsWithCollisionChars), and
a broker's Metadata auto-creation sends one CreateTopics per Metadata request
(DefaultAutoTopicCreationManager). So two such names asked in one request are both created; a
name colliding with an existing topic is INVALID_TOPIC to CreateTopics and, auto-created, stays
UNKNOWN_TOPIC_OR_PARTITION (the broker answers that whatever its controller says). Each answer
here is the reference Kafka 4.4's to the same requests."""

from __future__ import annotations

import pytest
from kafka.protocol.admin.topics import CreateTopicsRequest, CreateTopicsResponse
from kafka.protocol.metadata.metadata import MetadataRequest, MetadataResponse
from kafka_wire import RawClient, make

from ottla.testing import running_broker

NONE, UNKNOWN_TOPIC_OR_PARTITION, INVALID_TOPIC = 0, 3, 17


@pytest.fixture(params=["disk", "memory"])
def client(request, tmp_path):
    """A raw connection to a broker on disk (topics created in steps, their files on a thread)
    or in memory (created at once)."""
    with running_broker(data_dir=tmp_path / "data" if request.param == "disk" else None) as broker:
        with RawClient(broker.bootstrap_servers) as raw:
            yield raw


def metadata_auto_creating(client: RawClient, names: list[str]) -> dict[str, tuple[int, int]]:
    """Each asked topic's (error code, partition count), auto-creation allowed."""
    request = dict(topics=[dict(name=name, topic_id=None) for name in names], allow_auto_topic_creation=True, include_topic_authorized_operations=False)
    response = client.call(make(MetadataRequest, request), 12, MetadataResponse)
    return {topic.name: (topic.error_code, len(topic.partitions)) for topic in response.topics}


def create_one_partition_topics(client: RawClient, names: list[str]) -> list[tuple[str, int, str | None]]:
    topics = [dict(name=name, num_partitions=1, replication_factor=1, assignments=[], configs=[]) for name in names]
    response = client.call(make(CreateTopicsRequest, dict(topics=topics, timeout_ms=5000, validate_only=False)), 7, CreateTopicsResponse)
    return [(topic.name, topic.error_code, topic.error_message) for topic in response.topics]


def test_metadata_auto_creates_both_names_of_one_request(client: RawClient) -> None:
    metadata_auto_creating(client, ["m.1x", "m_1x", "m__1x"])
    assert metadata_auto_creating(client, ["m.1x", "m_1x", "m__1x"]) == {"m.1x": (NONE, 1), "m_1x": (NONE, 1), "m__1x": (NONE, 1)}


def test_metadata_leaves_a_name_colliding_with_an_existing_topic_unknown(client: RawClient) -> None:
    metadata_auto_creating(client, ["e.1"])
    assert metadata_auto_creating(client, ["e_1", "bad name"]) == {"e_1": (UNKNOWN_TOPIC_OR_PARTITION, 0), "bad name": (INVALID_TOPIC, 0)}
    # Asked with a pair of new names that collide only with each other: those are created.
    metadata_auto_creating(client, ["e_1", "p.1", "p_1"])
    assert metadata_auto_creating(client, ["e_1", "p.1", "p_1"]) == {"e_1": (UNKNOWN_TOPIC_OR_PARTITION, 0), "p.1": (NONE, 1), "p_1": (NONE, 1)}


def test_create_topics_creates_both_names_of_one_request_and_refuses_one_colliding_with_a_topic(client: RawClient) -> None:
    assert create_one_partition_topics(client, ["ok.1"]) == [("ok.1", NONE, None)]
    assert create_one_partition_topics(client, ["ok__1", "ok_1", "q.1", "q_1"]) == [
        ("ok__1", NONE, None),
        ("ok_1", INVALID_TOPIC, "Topic 'ok_1' collides with existing topic: ok.1"),
        ("q.1", NONE, None),
        ("q_1", NONE, None),
    ]
    assert create_one_partition_topics(client, ["d.1"]) == [("d.1", NONE, None)]
    assert create_one_partition_topics(client, ["d_1"]) == [("d_1", INVALID_TOPIC, "Topic 'd_1' collides with existing topic: d.1")]
