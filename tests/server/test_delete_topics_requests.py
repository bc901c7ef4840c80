"""DeleteTopics v6 entries Kafka refuses before it deletes anything (ControllerApis.deleteTopics),
over raw requests to a real broker: a name with an id, neither, a name or id given twice, a name
and its own topic's id. None of them deletes a topic."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from compat.differential import _Connection
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

_NO_ID = bytes(16)


@pytest.fixture
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=None) as handle:
        for topic in ("kept", "other"):
            handle.create_topic(topic)
        yield handle


def _delete(broker: ThreadedBroker, topics: list[dict[str, Any]]) -> list[tuple[str | None, int, str | None]]:
    answer = _Connection(broker.bootstrap_servers).call(ApiKey.DELETE_TOPICS, 6, {"topics": topics, "timeout_ms": 5000})
    return sorted(((r["name"], r["error_code"], r["error_message"]) for r in answer["responses"]), key=lambda r: (r[0] or "", r[2] or ""))


def _id(broker: ThreadedBroker, topic: str) -> bytes:
    assert broker.broker is not None and broker.broker.storage is not None
    info = broker.broker.storage.topic(topic)
    assert info is not None
    return info.topic_id


def test_entries_kafka_refuses_delete_nothing(broker: ThreadedBroker) -> None:
    refused = ErrorCode.INVALID_REQUEST
    assert _delete(broker, [{"name": "kept", "topic_id": _id(broker, "other")}]) == [
        ("kept", refused, "You may not specify both topic name and topic id.")]
    assert _delete(broker, [{"name": None, "topic_id": _NO_ID}]) == [(None, refused, "Neither topic name nor id were specified.")]
    assert _delete(broker, [{"name": "kept", "topic_id": _NO_ID}, {"name": "kept", "topic_id": _NO_ID}]) == [("kept", refused, "Duplicate topic name.")]
    assert _delete(broker, [{"name": None, "topic_id": _id(broker, "other")}] * 2) == [(None, refused, "Duplicate topic id.")]
    assert _delete(broker, [{"name": "kept", "topic_id": _NO_ID}, {"name": None, "topic_id": _id(broker, "kept")}]) == [
        ("kept", refused, "The provided topic name maps to an ID that was already supplied.")]
    assert broker.broker is not None and broker.broker.storage is not None
    assert {info.name for info in broker.broker.storage.topics()} >= {"kept", "other"}
    deleted = _delete(broker, [{"name": "kept", "topic_id": _NO_ID}, {"name": None, "topic_id": _id(broker, "other")}])
    assert [error for _, error, _ in deleted] == [ErrorCode.NONE, ErrorCode.NONE]
    assert not {info.name for info in broker.broker.storage.topics()} & {"kept", "other"}


@pytest.mark.parametrize("timeout_ms", [0, -1])
def test_a_passed_deadline_fails_every_entry_and_deletes_nothing(broker: ThreadedBroker, timeout_ms: int) -> None:
    """ControllerApis gives the controller a deadline of timeout_ms from now: at 0 or less it
    has passed, and the reference Kafka 4.4 answered every entry, duplicates and refusals alike,
    REQUEST_TIMED_OUT without a message."""
    connection = _Connection(broker.bootstrap_servers)
    kept = _id(broker, "kept")
    answer = connection.call(ApiKey.DELETE_TOPICS, 6, {"timeout_ms": timeout_ms, "topics": [
        {"name": "kept", "topic_id": bytes(16)}, {"name": "absent", "topic_id": bytes(16)}, {"name": "other", "topic_id": bytes(16)},
        {"name": "other", "topic_id": bytes(16)}, {"name": None, "topic_id": kept}]})
    assert [(r["name"], r["error_code"], r["error_message"]) for r in answer["responses"]] == [
        (name, ErrorCode.REQUEST_TIMED_OUT, None) for name in ("kept", "absent", "other", "other", None)]
    answer = connection.call(ApiKey.DELETE_TOPICS, 3, {"timeout_ms": timeout_ms, "topic_names": ["kept"]})
    assert [(r["name"], r["error_code"]) for r in answer["responses"]] == [("kept", ErrorCode.REQUEST_TIMED_OUT)]
    assert _id(broker, "kept") == kept


def test_a_passed_deadline_leaves_a_request_its_checks_refused_whole_to_them(broker: ThreadedBroker) -> None:
    """With every entry refused before the controller is asked (a name given twice, an entry
    naming nothing), the reference answered those refusals, not REQUEST_TIMED_OUT."""
    connection = _Connection(broker.bootstrap_servers)
    answer = connection.call(ApiKey.DELETE_TOPICS, 6, {"timeout_ms": 0, "topics": [
        {"name": "kept", "topic_id": bytes(16)}, {"name": "kept", "topic_id": bytes(16)}, {"name": None, "topic_id": bytes(16)}]})
    assert [(r["name"], r["error_code"], r["error_message"]) for r in answer["responses"]] == [
        ("kept", ErrorCode.INVALID_REQUEST, "Duplicate topic name."), (None, ErrorCode.INVALID_REQUEST, "Neither topic name nor id were specified.")]


def test_an_unknown_name_or_id_is_answered_in_kafkas_words(broker: ThreadedBroker) -> None:
    """ControllerApis answers them ApiError(error): Errors' own messages, as the reference did."""
    answer = _Connection(broker.bootstrap_servers).call(ApiKey.DELETE_TOPICS, 6, {"timeout_ms": 5000, "topics": [
        {"name": "absent", "topic_id": bytes(16)}, {"name": None, "topic_id": uuid.uuid4().bytes}]})
    assert [(r["name"], r["error_code"], r["error_message"]) for r in answer["responses"]] == [
        ("absent", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "This server does not host this topic-partition."),
        (None, ErrorCode.UNKNOWN_TOPIC_ID, "This server does not host this topic ID.")]
