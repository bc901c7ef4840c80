"""Metadata answered as Kafka 4.4's KafkaApis.handleTopicMetadataRequest answers it, for the
request shapes clients rarely send: the same topic twice, topic ids beside names, a null name
before v12, an internal topic that does not exist yet. Expected answers are the reference
broker's (compat.kafka.ReferenceKafka). Raw requests to a real broker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode


@pytest.fixture(scope="module")
def broker() -> Iterator[Any]:
    with running_broker() as handle:
        handle.create_topic("shapes", partitions=2)
        yield handle


@pytest.fixture
def connection(broker: Any) -> Iterator[_Connection]:
    conn = _Connection(broker.bootstrap_servers)
    yield conn
    conn.close()


def _metadata(connection: _Connection, version: int, topics: list[dict[str, Any]] | None, auto: bool = False) -> dict[str, Any]:
    return connection.call(ApiKey.METADATA, version, {
        "topics": topics, "allow_auto_topic_creation": auto,
        "include_cluster_authorized_operations": False, "include_topic_authorized_operations": False,
    })


def _topic_id(connection: _Connection) -> bytes:
    answer = _metadata(connection, 13, [{"name": "shapes", "topic_id": bytes(16)}])
    topic_id: bytes = answer["topics"][0]["topic_id"]
    return topic_id


@pytest.mark.parametrize("version", [4, 13])
def test_a_topic_named_twice_is_answered_once(connection: _Connection, version: int) -> None:
    """Kafka takes the requested names as a set."""
    answer = _metadata(connection, version, [{"name": name, "topic_id": bytes(16)} for name in ("shapes", "unknown-twice", "shapes", "unknown-twice")])
    assert [(t["name"], t["error_code"]) for t in answer["topics"]] == [("shapes", ErrorCode.NONE), ("unknown-twice", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)]


def test_a_topic_id_asked_twice_is_answered_once(connection: _Connection) -> None:
    topic_id = _topic_id(connection)
    answer = _metadata(connection, 12, [{"name": None, "topic_id": topic_id}, {"name": None, "topic_id": topic_id}])
    assert [(t["name"], t["topic_id"]) for t in answer["topics"]] == [("shapes", topic_id)]


@pytest.mark.parametrize("version", [12, 13])
def test_topic_ids_win_over_names(connection: _Connection, version: int) -> None:
    """`useTopicId`: once any topic id is given, the request is answered by ids alone; a name
    beside an unknown id is that id's UNKNOWN_TOPIC_ID, a name given without an id is ignored,
    and the unknown ids come first."""
    topic_id, stray = _topic_id(connection), uuid.uuid4().bytes
    answer = _metadata(connection, version, [{"name": "shapes", "topic_id": stray}])
    assert [(t["name"], t["topic_id"], t["error_code"]) for t in answer["topics"]] == [(None, stray, ErrorCode.UNKNOWN_TOPIC_ID)]
    answer = _metadata(connection, version, [
        {"name": "ignored", "topic_id": bytes(16)}, {"name": None, "topic_id": topic_id}, {"name": None, "topic_id": stray}])
    assert [(t["name"], t["topic_id"], t["error_code"]) for t in answer["topics"]] == [
        (None, stray, ErrorCode.UNKNOWN_TOPIC_ID), ("shapes", topic_id, ErrorCode.NONE)]


@pytest.mark.parametrize("version, topic", [(11, {"name": None, "topic_id": bytes(16)}), (10, {"name": "shapes", "topic_id": uuid.uuid4().bytes})])
def test_before_v12_a_null_name_or_an_id_is_an_error_response(connection: _Connection, version: int, topic: dict[str, Any]) -> None:
    """MetadataRequest.getErrorResponse: each topic INVALID_REQUEST, no brokers, no controller."""
    answer = _metadata(connection, version, [topic])
    assert answer["brokers"] == [] and answer["controller_id"] == -1
    assert [(t["name"], t["topic_id"], t["error_code"]) for t in answer["topics"]] == [(topic["name"] or "", topic["topic_id"], ErrorCode.INVALID_REQUEST)]


def test_a_missing_internal_topic_is_still_said_internal(connection: _Connection) -> None:
    """KafkaApis.getTopicMetadata answers an unknown topic with Topic.isInternal(name)."""
    answer = _metadata(connection, 13, [{"name": "__share_group_state", "topic_id": bytes(16)}])
    assert [(t["name"], t["error_code"], t["is_internal"]) for t in answer["topics"]] == [
        ("__share_group_state", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, True)]
