"""A malformed acknowledgement batch is INVALID_REQUEST even on a topic the principal may not
read: KafkaApis.handleAcknowledgements validates every partition's batches
(validateAcknowledgementBatches) before it authorizes their topics, for ShareAcknowledge and
for a ShareFetch carrying acknowledgements alike. The broker is set up as
`python -m compat.fuzz_differential --secured` sets both up (secured_settings: FUZZER on
SASL_PLAINTEXT may read its share groups and only describe the topic).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from compat.differential import _Connection
from compat.fuzz_differential import FUZZER, log_in_as_fuzz_user, secured_settings
from kafka_wire import WireClient
from ottla.server.config import BrokerConfig
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

TOPIC_RESOURCE, GROUP_RESOURCE = 2, 3
LITERAL, PREFIXED = 3, 4
READ, DESCRIBE, ALLOW = 3, 8, 3
GROUP, MEMBER = "share-shape", "shape-member"
ACCEPT = 1


class _Restricted(WireClient):
    def __init__(self, address: str) -> None:
        super().__init__(address, client_id="share-shape-first", timeout=30)
        log_in_as_fuzz_user(self.sock)


@pytest.fixture()
def restricted() -> Iterator[tuple[_Restricted, bytes]]:
    """FUZZER's connection with a share session open on the topic it may only describe, and the topic's id."""
    config = BrokerConfig.from_settings({**secured_settings("127.0.0.1", 0, 0), "data.dir": None, "num.partitions": "1"})
    with running_broker(config=config) as handle:
        assert handle.broker is not None
        admin = _Connection(handle.bootstrap_servers)
        created = admin.call(ApiKey.CREATE_TOPICS, 7, {"timeout_ms": 5000, "validate_only": False, "topics": [
            {"name": "seen", "num_partitions": 1, "replication_factor": 1, "assignments": [], "configs": []}]})
        assert created["topics"][0]["error_code"] == 0
        topic_id = bytes(created["topics"][0]["topic_id"])
        granted = admin.call(ApiKey.CREATE_ACLS, 3, {"creations": [
            {"resource_type": kind, "resource_name": name, "resource_pattern_type": pattern, "principal": f"User:{FUZZER}",
             "host": "*", "operation": operation, "permission_type": ALLOW}
            for kind, name, pattern, operation in ((TOPIC_RESOURCE, "seen", LITERAL, DESCRIBE), (GROUP_RESOURCE, "share-", PREFIXED, READ))]})
        assert not any(r["error_code"] for r in granted["results"]), granted
        connection = _Restricted(f"127.0.0.1:{handle.broker.bound_ports['SASL_PLAINTEXT']}")
        opened = connection.call(ApiKey.SHARE_FETCH, 1, _fetch(topic_id, 0, []))
        assert opened["error_code"] == 0
        yield connection, topic_id
        connection.close()
        admin.close()


def _fetch(topic_id: bytes, epoch: int, batches: list[dict[str, Any]]) -> dict[str, Any]:
    return {"group_id": GROUP, "member_id": MEMBER, "share_session_epoch": epoch, "max_wait_ms": 0, "min_bytes": 1,
            "max_bytes": 1 << 20, "max_records": 500, "batch_size": 500,
            "topics": [{"topic_id": topic_id, "partitions": [{"partition_index": 0, "acknowledgement_batches": batches}]}],
            "forgotten_topics_data": []}


def _acknowledge(topic_id: bytes, epoch: int, batches: list[dict[str, Any]]) -> dict[str, Any]:
    return {"group_id": GROUP, "member_id": MEMBER, "share_session_epoch": epoch,
            "topics": [{"topic_id": topic_id, "partitions": [{"partition_index": 0, "acknowledgement_batches": batches}]}]}


def _batch(first: int, last: int, types: list[int]) -> dict[str, Any]:
    return {"first_offset": first, "last_offset": last, "acknowledge_types": types}


def test_share_acknowledge_checks_the_batches_before_the_topic(restricted: tuple[_Restricted, bytes]) -> None:
    connection, topic_id = restricted
    answers = [connection.call(ApiKey.SHARE_ACKNOWLEDGE, 1, _acknowledge(topic_id, epoch, batches)) for epoch, batches in (
        (1, [_batch(5, 2, [ACCEPT])]), (2, [_batch(0, 3, [ACCEPT, ACCEPT])]), (3, [_batch(0, 0, [9])]), (4, [_batch(0, 0, [ACCEPT])]))]
    assert [[p["error_code"] for t in answer["responses"] for p in t["partitions"]] for answer in answers] == [
        [ErrorCode.INVALID_REQUEST], [ErrorCode.INVALID_REQUEST], [ErrorCode.INVALID_REQUEST], [ErrorCode.TOPIC_AUTHORIZATION_FAILED]]


def test_share_fetch_checks_the_batches_before_the_topic(restricted: tuple[_Restricted, bytes]) -> None:
    connection, topic_id = restricted
    malformed = connection.call(ApiKey.SHARE_FETCH, 1, _fetch(topic_id, 1, [_batch(0, 1, []), _batch(2, 2, [ACCEPT])]))
    well_formed = connection.call(ApiKey.SHARE_FETCH, 1, _fetch(topic_id, 2, [_batch(0, 0, [ACCEPT])]))
    assert [(p["error_code"], p["acknowledge_error_code"]) for t in malformed["responses"] for p in t["partitions"]] == [
        (ErrorCode.TOPIC_AUTHORIZATION_FAILED, ErrorCode.INVALID_REQUEST)]
    assert [(p["error_code"], p["acknowledge_error_code"]) for t in well_formed["responses"] for p in t["partitions"]] == [
        (ErrorCode.TOPIC_AUTHORIZATION_FAILED, ErrorCode.TOPIC_AUTHORIZATION_FAILED)]
