"""The discovery requests every client sends first, answered as Kafka answers them, over raw
requests to a real broker: ApiVersions v3+ judges the client's software name and version, and
Metadata without auto-creation tells an illegal topic name from an unknown one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode


@pytest.fixture
def connection() -> Iterator[_Connection]:
    with running_broker(data_dir=None) as broker:
        yield _Connection(broker.bootstrap_servers)


@pytest.mark.parametrize("name, version, error", [
    ("confluent-kafka-python", "2.12.1-rdkafka-2.12.1", ErrorCode.NONE),
    ("", "1.0", ErrorCode.INVALID_REQUEST),
    ("bad name!", "1.0", ErrorCode.INVALID_REQUEST),
    ("client", "-1", ErrorCode.INVALID_REQUEST),
])
def test_api_versions_judges_the_client_software_as_kafka_does(connection: _Connection, name: str, version: str, error: ErrorCode) -> None:
    """ApiVersionsRequest.isValid: both match [a-zA-Z0-9](?:[a-zA-Z0-9-.]*[a-zA-Z0-9])?."""
    answer = connection.call(ApiKey.API_VERSIONS, 3, {"client_software_name": name, "client_software_version": version})
    assert answer["error_code"] == error
    assert bool(answer["api_keys"]) == (error == ErrorCode.NONE)


@pytest.mark.parametrize("version", [4, 9, 12])
def test_metadata_without_auto_creation_calls_an_illegal_name_invalid(connection: _Connection, version: int) -> None:
    """KafkaApis.getTopicMetadata: INVALID_TOPIC_EXCEPTION, fatal to the client, for a name no
    topic could have; UNKNOWN_TOPIC_OR_PARTITION, retried, for one that could exist later."""
    answer = connection.call(ApiKey.METADATA, version, {
        "topics": [{"name": name, "topic_id": bytes(16)} for name in ("bad name!", "later")],
        "allow_auto_topic_creation": False, "include_cluster_authorized_operations": False, "include_topic_authorized_operations": False,
    })
    assert [(t["name"], t["error_code"]) for t in answer["topics"]] == [("bad name!", ErrorCode.INVALID_TOPIC), ("later", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)]


def test_metadata_does_not_make_an_internal_topic_a_clients_topic(connection: _Connection) -> None:
    """`__share_group_state` before any share group: auto-created by Metadata it would get the
    defaults of a client's topic (one partition, cleanup.policy=delete), and its coordinator
    would keep share state in a log retention deletes. It is left to its coordinator."""
    answer = connection.call(ApiKey.METADATA, 12, {
        "topics": [{"name": "__share_group_state", "topic_id": bytes(16)}],
        "allow_auto_topic_creation": True, "include_cluster_authorized_operations": False, "include_topic_authorized_operations": False,
    })
    assert [(t["name"], t["error_code"]) for t in answer["topics"]] == [("__share_group_state", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)]

