"""The differential fuzzer's known Kafka 4.4 crashes met on the secured seeds: each needs its
request shape and Kafka's crash answer, so the same request answered normally stays a difference."""

from __future__ import annotations

from compat.fuzz_differential import _UNKNOWN_ID, _ZERO_ID, known_crash
from ottla.wire.api import ApiKey

_KNOWN_ID = bytes.fromhex("c7b485855e904e0786cfa1972e0c7169")


def test_describe_user_scram_credentials_with_null_users_crashes_only_unanswered() -> None:
    assert known_crash(ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS, 0, {"users": None}, "no answer") is not None
    assert known_crash(ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS, 0, {"users": []}, "no answer") is None
    assert known_crash(ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS, 0, {"users": None}, "CLUSTER_AUTHORIZATION_FAILED") is None


def test_share_requests_naming_an_unknown_topic_id_crash_under_an_authorizer() -> None:
    def fetch(topic_id: bytes, forgotten: bytes = _KNOWN_ID) -> dict[str, object]:
        return {"group_id": "g", "topics": [{"topic_id": topic_id, "partitions": []}],
                "forgotten_topics_data": [{"topic_id": forgotten, "partitions": [0]}]}

    for unknown in (_ZERO_ID, _UNKNOWN_ID):
        assert known_crash(ApiKey.SHARE_FETCH, 1, fetch(unknown), "UNKNOWN_SERVER_ERROR", secured=True) is not None
        assert known_crash(ApiKey.SHARE_FETCH, 1, fetch(_KNOWN_ID, forgotten=unknown), "UNKNOWN_SERVER_ERROR", secured=True) is not None
        assert known_crash(ApiKey.SHARE_ACKNOWLEDGE, 2, {"group_id": "g", "topics": [{"topic_id": unknown, "partitions": []}]},
                           "UNKNOWN_SERVER_ERROR", secured=True) is not None
        # Without an authorizer Kafka answers UNKNOWN_TOPIC_ID: an UNKNOWN_SERVER_ERROR there is another matter.
        assert known_crash(ApiKey.SHARE_FETCH, 1, fetch(unknown), "UNKNOWN_SERVER_ERROR") is None
        assert known_crash(ApiKey.SHARE_ACKNOWLEDGE, 2, {"group_id": "g", "topics": [{"topic_id": unknown, "partitions": []}]},
                           "UNKNOWN_SERVER_ERROR") is None
    assert known_crash(ApiKey.SHARE_FETCH, 1, fetch(_KNOWN_ID), "UNKNOWN_SERVER_ERROR", secured=True) is None
    assert known_crash(ApiKey.SHARE_FETCH, 1, fetch(_ZERO_ID), "NONE", secured=True) is None
    assert known_crash(ApiKey.SHARE_ACKNOWLEDGE, 2, {"group_id": "g", "topics": [{"topic_id": _KNOWN_ID, "partitions": []}]},
                       "UNKNOWN_SERVER_ERROR", secured=True) is None
