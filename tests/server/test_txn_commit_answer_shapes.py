"""The shape of OffsetCommit, TxnOffsetCommit and AddPartitionsToTxn v0-3 answers, and
InitProducerId's check of a half-named producer, over a real socket; each answer is the one
the reference Kafka 4.4 gave to the same request.

- KafkaApis.handleOffsetCommitRequest and handleTxnOffsetCommitRequest answer a topic refused
  whole (unknown, or an unknown id) through the response builder's addPartitions, which makes
  the topic's entry before adding its partitions: such a topic is answered even when it lists
  none. A known topic reaches the coordinator only with partitions, so with none it is not.
- Their response builders' merge: when something was refused in KafkaApis the coordinator's
  answers merge into those topics, each topic once; when nothing was, the coordinator's answer
  stands as it gave it, one topic per request topic that reached it, repeats included.
- TxnOffsetCommitRequest.getErrorResponse (a refused transactional id or group) answers each
  request topic as it came, repeats and empty ones included.
- AddPartitionsToTxnRequest.errorResponseForTransaction (the coordinator's one answer, or a
  refused transactional id) repeats the request's topics and partitions as listed; errors per
  partition (an unknown topic) come from a map, each partition once, no topic without one.
- KafkaApis.handleInitProducerIdRequest: a producer id and epoch of which exactly one is -1 is
  INVALID_REQUEST, before the coordinator checks the timeout or the transaction.
"""

from __future__ import annotations

import time
from typing import Any

from ottla.server.security.authorizer import STANDARD_AUTHORIZER
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from tests.txn_wire import TxnClient

TOPIC = "shaped"
RETRIED = {ErrorCode.COORDINATOR_NOT_AVAILABLE, ErrorCode.NOT_COORDINATOR, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS}


def _partition(index: int) -> dict[str, Any]:
    return {"partition_index": index, "committed_offset": 5, "committed_leader_epoch": -1, "committed_metadata": ""}


def _commit_shape(answer: dict[str, Any], key: str = "name") -> list[tuple[Any, list[tuple[int, int]]]]:
    return [(topic[key], [(p["partition_index"], p["error_code"]) for p in topic["partitions"]]) for topic in answer["topics"]]


def _added_shape(answer: dict[str, Any]) -> list[tuple[str, list[tuple[int, int]]]]:
    return [(topic["name"], [(p["partition_index"], p["partition_error_code"]) for p in topic["results_by_partition"]])
            for topic in answer["results_by_topic_v3_and_below"]]


def _until_served(call: Any) -> Any:
    """`call()` again while the coordinator is still being made or loaded (a broker just started)."""
    deadline = time.monotonic() + 60
    while True:
        answer = call()
        if answer not in RETRIED or time.monotonic() > deadline:
            return answer
        time.sleep(0.1)


def _offset_commit(client: TxnClient, version: int, topics: list[dict[str, Any]]) -> dict[str, Any]:
    return client.call(ApiKey.OFFSET_COMMIT, version, {"group_id": "shapes", "generation_id_or_member_epoch": -1, "member_id": "",
                                                      "group_instance_id": None, "retention_time_ms": -1, "topics": topics})


def _txn_commit(client: TxnClient, version: int, transactional_id: str, producer: tuple[int, int], topics: list[dict[str, Any]]) -> dict[str, Any]:
    return client.call(ApiKey.TXN_OFFSET_COMMIT, version, {
        "transactional_id": transactional_id, "group_id": "shapes", "producer_id": producer[0], "producer_epoch": producer[1],
        "generation_id": -1, "member_id": "", "group_instance_id": None, "topics": topics})


def _add(client: TxnClient, version: int, transactional_id: str, producer: tuple[int, int], topics: list[dict[str, Any]]) -> dict[str, Any]:
    return client.call(ApiKey.ADD_PARTITIONS_TO_TXN, version, {
        "v3_and_below_transactional_id": transactional_id, "v3_and_below_producer_id": producer[0],
        "v3_and_below_producer_epoch": producer[1], "v3_and_below_topics": topics})


def test_a_topic_refused_whole_is_answered_even_without_partitions() -> None:
    with running_broker() as broker:
        broker.create_topic(TOPIC, 2)
        with TxnClient(broker.bootstrap_servers, TOPIC) as client:
            warm = _until_served(lambda: _offset_commit(client, 9, [{"name": TOPIC, "partitions": [_partition(1)]}])["topics"][0]["partitions"][0]["error_code"])
            assert warm == ErrorCode.NONE
            for version in (2, 8, 9):
                answer = _offset_commit(client, version, [{"name": TOPIC, "partitions": []}, {"name": "missing", "partitions": []},
                                                          {"name": TOPIC, "partitions": [_partition(0)]}])
                assert _commit_shape(answer) == [("missing", []), (TOPIC, [(0, ErrorCode.NONE)])], version
            unknown_id = bytes(range(1, 17))
            answer = _offset_commit(client, 10, [{"topic_id": unknown_id, "partitions": []}, {"topic_id": bytes(16), "partitions": []}])
            assert _commit_shape(answer, "topic_id") == [(unknown_id, []), (bytes(16), [])]

            producer = client.init("shapes-txn")
            joined = client.call(ApiKey.ADD_OFFSETS_TO_TXN, 3, {"transactional_id": "shapes-txn", "producer_id": producer[0],
                                                               "producer_epoch": producer[1], "group_id": "shapes"})
            assert joined["error_code"] == ErrorCode.NONE
            for version in (0, 3, 4):
                answer = _txn_commit(client, version, "shapes-txn", producer, [
                    {"name": TOPIC, "partitions": []}, {"name": "missing", "partitions": []}, {"name": TOPIC, "partitions": [_partition(0), _partition(9)]}])
                assert _commit_shape(answer) == [("missing", []), (TOPIC, [(9, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION), (0, ErrorCode.NONE)])], version
            # A transaction the producer id does not hold: the refused topic keeps its entry too.
            answer = _txn_commit(client, 3, "shapes-txn", (producer[0] + 1000, producer[1]),
                                 [{"name": TOPIC, "partitions": [_partition(0)]}, {"name": "missing", "partitions": []}])
            assert _commit_shape(answer) == [("missing", []), (TOPIC, [(0, ErrorCode.INVALID_PRODUCER_ID_MAPPING)])]
            answer = _txn_commit(client, 6, "shapes-txn", producer, [{"topic_id": unknown_id, "partitions": []}])
            assert _commit_shape(answer, "topic_id") == [(unknown_id, [])]


def test_repeated_topics_stay_apart_unless_something_was_refused_first() -> None:
    with running_broker() as broker:
        broker.create_topic(TOPIC, 2)
        with TxnClient(broker.bootstrap_servers, TOPIC) as client:
            warm = _until_served(lambda: _offset_commit(client, 9, [{"name": TOPIC, "partitions": [_partition(1)]}])["topics"][0]["partitions"][0]["error_code"])
            assert warm == ErrorCode.NONE
            repeated = [{"name": TOPIC, "partitions": [_partition(0)]}, {"name": TOPIC, "partitions": []}, {"name": TOPIC, "partitions": [_partition(1), _partition(1)]}]
            apart = [(TOPIC, [(0, ErrorCode.NONE)]), (TOPIC, [(1, ErrorCode.NONE), (1, ErrorCode.NONE)])]
            for version in (2, 9):
                assert _commit_shape(_offset_commit(client, version, repeated)) == apart, version
            # The group coordinator's refusal is its answer too: still one topic per request topic.
            answer = client.call(ApiKey.OFFSET_COMMIT, 9, {"group_id": "nobody", "generation_id_or_member_epoch": 3, "member_id": "m",
                                                          "group_instance_id": None, "topics": repeated})
            assert _commit_shape(answer) == [(TOPIC, [(0, ErrorCode.GROUP_ID_NOT_FOUND)]),
                                             (TOPIC, [(1, ErrorCode.GROUP_ID_NOT_FOUND), (1, ErrorCode.GROUP_ID_NOT_FOUND)])]
            refused_first = [{"name": TOPIC, "partitions": [_partition(0)]}, {"name": TOPIC, "partitions": [_partition(9)]}, {"name": TOPIC, "partitions": [_partition(1)]}]
            merged = [(TOPIC, [(9, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION), (0, ErrorCode.NONE), (1, ErrorCode.NONE)])]
            assert _commit_shape(_offset_commit(client, 9, refused_first)) == merged

            producer = client.init("shapes-repeat")
            joined = client.call(ApiKey.ADD_OFFSETS_TO_TXN, 3, {"transactional_id": "shapes-repeat", "producer_id": producer[0],
                                                               "producer_epoch": producer[1], "group_id": "shapes"})
            assert joined["error_code"] == ErrorCode.NONE
            for version in (0, 3):
                assert _commit_shape(_txn_commit(client, version, "shapes-repeat", producer, repeated)) == apart, version
                assert _commit_shape(_txn_commit(client, version, "shapes-repeat", producer, refused_first)) == merged, version
            answer = client.call(ApiKey.TXN_OFFSET_COMMIT, 3, {"transactional_id": "shapes-repeat", "group_id": "", "producer_id": producer[0],
                                                              "producer_epoch": producer[1], "generation_id": -1, "member_id": "",
                                                              "group_instance_id": None, "topics": repeated})
            assert _commit_shape(answer) == [(TOPIC, [(0, ErrorCode.INVALID_GROUP_ID)]),
                                             (TOPIC, [(1, ErrorCode.INVALID_GROUP_ID), (1, ErrorCode.INVALID_GROUP_ID)])]


def test_add_partitions_answers_one_error_in_the_requests_shape() -> None:
    with running_broker() as broker:
        broker.create_topic(TOPIC, 2)
        with TxnClient(broker.bootstrap_servers, TOPIC) as client:
            for version in (0, 3):
                transactional_id = f"shapes-add-{version}"
                producer = client.init(transactional_id)
                asked = [{"name": TOPIC, "partitions": [0, 0, 1]}, {"name": TOPIC, "partitions": [1]}, {"name": "other", "partitions": []}]
                # "other" exists nowhere, but with no partitions it asks for nothing: the add goes through.
                assert _added_shape(_add(client, version, transactional_id, producer, asked)) == [
                    (TOPIC, [(0, ErrorCode.NONE), (0, ErrorCode.NONE), (1, ErrorCode.NONE)]), (TOPIC, [(1, ErrorCode.NONE)]), ("other", [])]
                stranger = (producer[0] + 1000, producer[1])
                assert _added_shape(_add(client, version, transactional_id, stranger, [{"name": TOPIC, "partitions": []}, {"name": TOPIC, "partitions": [0]}])) == [
                    (TOPIC, []), (TOPIC, [(0, ErrorCode.INVALID_PRODUCER_ID_MAPPING)])]
                # An unknown topic's partition: errors per partition, from a map, so no empty topic.
                assert _added_shape(_add(client, version, transactional_id, producer, [{"name": TOPIC, "partitions": []}, {"name": "missing", "partitions": [0]}])) == [
                    ("missing", [(0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)])]


def test_a_refused_transactional_id_answers_the_request_topics_as_they_came() -> None:
    """No ACLs, so the anonymous caller may write no transactional id."""
    with running_broker(authorizer_class_name=STANDARD_AUTHORIZER) as broker:
        broker.create_topic(TOPIC, 2)
        refused = ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        with TxnClient(broker.bootstrap_servers, TOPIC) as client:
            asked = [{"name": TOPIC, "partitions": [_partition(0)]}, {"name": "missing", "partitions": []}, {"name": TOPIC, "partitions": [_partition(0)]}]
            assert _commit_shape(_txn_commit(client, 3, "hidden", (7, 0), asked)) == [
                (TOPIC, [(0, refused)]), ("missing", []), (TOPIC, [(0, refused)])]
            assert _added_shape(_add(client, 3, "hidden", (7, 0), [{"name": TOPIC, "partitions": [0, 0]}, {"name": "missing", "partitions": []}])) == [
                (TOPIC, [(0, refused), (0, refused)]), ("missing", [])]


def test_init_producer_id_with_half_a_producer_is_an_invalid_request() -> None:
    with running_broker() as broker:
        with TxnClient(broker.bootstrap_servers, TOPIC) as client:
            def init(version: int, transactional_id: str | None, producer_id: int, epoch: int, timeout_ms: int = 60000) -> dict[str, Any]:
                body = {"transactional_id": transactional_id, "transaction_timeout_ms": timeout_ms, "producer_id": producer_id, "producer_epoch": epoch}
                answer: dict[str, Any] = {}

                def call() -> int:
                    answer.update(client.call(ApiKey.INIT_PRODUCER_ID, version, body))
                    code: int = answer["error_code"]
                    return code

                _until_served(call)
                return answer

            for version in (3, 4, 5):
                for transactional_id in (None, "half"):
                    # Checked before the timeout, which the coordinator checks first.
                    for producer_id, epoch, timeout_ms in ((-1, 0, 60000), (5, -1, 60000), (-1, 3, -5), (7, -1, 0)):
                        answer = init(version, transactional_id, producer_id, epoch, timeout_ms)
                        assert (answer["error_code"], answer["producer_id"], answer["producer_epoch"]) == (ErrorCode.INVALID_REQUEST, -1, -1)
                    assert init(version, transactional_id, -1, -1)["error_code"] == ErrorCode.NONE
                assert init(version, "half", -1, -1, -5)["error_code"] == ErrorCode.INVALID_TRANSACTION_TIMEOUT
