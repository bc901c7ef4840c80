"""The ids of ShareFetch, ShareAcknowledge and ShareGroupHeartbeat requests, checked as Kafka
4.4's KafkaApis checks them: a null group id is INVALID_REQUEST but an empty one is a group
like any other (its session is then looked up), and a member id must be present, non-empty and
at most 36 characters (isMemberIdValid). Raw requests to a real broker; every answer here is
the reference Kafka 4.4's."""

from __future__ import annotations

from typing import Any


from raw_broker import connection  # noqa: F401 (the fixture)
from compat.differential import _Connection
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode


def _fetch(connection: _Connection, group_id: str | None, member_id: str | None, epoch: int) -> Any:
    answer = connection.call(ApiKey.SHARE_FETCH, 1, {
        "group_id": group_id, "member_id": member_id, "share_session_epoch": epoch, "max_wait_ms": 0, "min_bytes": 1,
        "max_bytes": 1 << 20, "max_records": 10, "batch_size": 10, "topics": [], "forgotten_topics_data": []})
    return answer["error_code"], answer["acquisition_lock_timeout_ms"]


def _acknowledge(connection: _Connection, group_id: str | None, member_id: str | None, epoch: int) -> Any:
    answer = connection.call(ApiKey.SHARE_ACKNOWLEDGE, 1, {
        "group_id": group_id, "member_id": member_id, "share_session_epoch": epoch, "topics": []})
    return answer["error_code"]


def test_share_fetch_with_an_empty_group_id_opens_continues_and_closes_a_session(connection: _Connection) -> None:
    assert _fetch(connection, None, "m", 0) == (ErrorCode.INVALID_REQUEST, 0)
    assert _fetch(connection, "", "m", 0) == (ErrorCode.NONE, 30_000)
    assert _fetch(connection, "", "m", 1) == (ErrorCode.NONE, 30_000)
    assert _fetch(connection, "", "m", -1) == (ErrorCode.NONE, 30_000)


def test_share_acknowledge_with_an_empty_group_id_meets_the_session_checks(connection: _Connection) -> None:
    assert _acknowledge(connection, None, "m", 1) == ErrorCode.INVALID_REQUEST
    assert _acknowledge(connection, "", "m", 1) == ErrorCode.SHARE_SESSION_NOT_FOUND
    assert _acknowledge(connection, "", "m", 0) == ErrorCode.INVALID_SHARE_SESSION_EPOCH
    assert _acknowledge(connection, "", "m", -1) == ErrorCode.SHARE_SESSION_NOT_FOUND


def test_member_ids_longer_than_36_characters_are_refused(connection: _Connection) -> None:
    for member_id in (None, "", "m" * 37):
        assert _fetch(connection, "g", member_id, 0) == (ErrorCode.INVALID_REQUEST, 0)
        assert _acknowledge(connection, "g", member_id, 1) == ErrorCode.INVALID_REQUEST
    assert _fetch(connection, "g", "m" * 36, 0) == (ErrorCode.NONE, 30_000)
    assert _acknowledge(connection, "g", "x" * 36, 5) == ErrorCode.SHARE_SESSION_NOT_FOUND


def test_share_heartbeat_member_ids_are_checked_before_the_coordinator(connection: _Connection) -> None:
    """KafkaApis answers these itself, with no message; a blank id passes it, for the coordinator."""
    def heartbeat(group_id: str, member_id: str) -> Any:
        answer = connection.call(ApiKey.SHARE_GROUP_HEARTBEAT, 1, {
            "group_id": group_id, "member_id": member_id, "member_epoch": 0, "rack_id": None, "subscribed_topic_names": ["t"]})
        return answer["error_code"], answer["error_message"]

    assert heartbeat("g", "y" * 37) == (ErrorCode.INVALID_REQUEST, None)
    assert heartbeat("", "") == (ErrorCode.INVALID_REQUEST, None)
    assert heartbeat("g", " ") == (ErrorCode.INVALID_REQUEST, "MemberId can't be empty.")
