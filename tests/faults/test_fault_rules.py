"""The fault rules without sockets: what a fault matches, when it fires, where its error goes
in each API's response, and what it refuses to be."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from ottla.server.faults import Fault, FaultError, Faults, api_key, error_code
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader
from ottla.wire.protocol import decode_response, encode_response

TOPIC_ID = bytes(range(1, 17))


def _context(node: int = 1) -> Any:
    topics = {TOPIC_ID: SimpleNamespace(name="t")}
    return SimpleNamespace(services=SimpleNamespace(node=SimpleNamespace(node_id=node)), storage=SimpleNamespace(topic_by_id=topics.get))


def _header(api: ApiKey, version: int = 9, client_id: str | None = "c") -> RequestHeader:
    return RequestHeader(api, version, 7, client_id, 2)


def _produce(*partitions: tuple[str, int]) -> dict[str, Any]:
    topics: dict[str, list[int]] = {}
    for topic, partition in partitions:
        topics.setdefault(topic, []).append(partition)
    return {
        "transactional_id": None, "acks": -1, "timeout_ms": 1000,
        "topic_data": [{"name": name, "partition_data": [{"index": p, "records": None} for p in ps]} for name, ps in topics.items()],
    }


def _fire(faults: Faults, api: ApiKey, request: dict[str, Any], node: int = 1, client_id: str | None = "c", version: int = 9) -> Fault | None:
    return faults.firing(_context(node), _header(api, version, client_id), request)


def test_names_of_apis_and_errors_in_kafkas_spellings() -> None:
    assert api_key("produce") is api_key("Produce") is api_key("PRODUCE") is api_key(0) is api_key("0") is ApiKey.PRODUCE
    assert api_key("FindCoordinator") is api_key("find_coordinator") is api_key("find-coordinator") is ApiKey.FIND_COORDINATOR
    assert error_code("NOT_LEADER_OR_FOLLOWER") == error_code("not_leader_for_partition") == error_code(6) == 6
    assert error_code("request_timed_out") == ErrorCode.REQUEST_TIMED_OUT
    with pytest.raises(FaultError, match="unknown API"):
        api_key("produc")
    with pytest.raises(FaultError, match="unknown error"):
        error_code("NOT_A_KAFKA_ERROR")


@pytest.mark.parametrize(
    "arguments, refusal",
    [
        ({"error": "REQUEST_TIMED_OUT"}, "needs an API"),
        ({"api": "describe_configs", "error": "REQUEST_TIMED_OUT"}, "carries one"),
        ({"api": "join_group", "topic": "t"}, "names no topic partitions"),
        ({"api": "produce", "error": "REQUEST_TIMED_OUT", "drop": "after"}, "one of error, drop and throttle_ms"),
        ({"api": "produce", "drop": "later"}, "'before' or 'after'"),
        ({"api": "produce", "every": 0}, "at least"),
        ({"api": "produce", "count": 0}, "at least"),
    ],
)
def test_a_fault_that_cannot_act_as_asked_is_refused(arguments: dict[str, Any], refusal: str) -> None:
    with pytest.raises(FaultError, match=refusal):
        Faults().add(**arguments)


def test_matches_on_topic_partition_node_and_client_id_alone() -> None:
    faults = Faults()
    fault = faults.add("produce", topic="t", partition=1, node=2, client_id="c", error="NOT_LEADER_OR_FOLLOWER")
    assert _fire(faults, ApiKey.PRODUCE, _produce(("t", 0))) is None
    assert _fire(faults, ApiKey.PRODUCE, _produce(("u", 1))) is None
    assert _fire(faults, ApiKey.PRODUCE, _produce(("t", 1)), node=1) is None
    assert _fire(faults, ApiKey.PRODUCE, _produce(("t", 1)), node=2, client_id="d") is None
    assert _fire(faults, ApiKey.FETCH, {"topics": [{"topic": "t", "partitions": [{"partition": 1}]}]}, node=2) is None
    assert _fire(faults, ApiKey.PRODUCE, _produce(("u", 0), ("t", 1)), node=2) is fault
    assert (fault.matched, fault.fired) == (1, 1)


def test_a_fetch_naming_its_topic_by_id_is_matched_by_name() -> None:
    faults = Faults()
    fault = faults.add("fetch", topic="t", partition=0, error="NOT_LEADER_OR_FOLLOWER")
    request = {"topics": [{"topic": "", "topic_id": TOPIC_ID, "partitions": [{"partition": 0}]}]}
    assert _fire(faults, ApiKey.FETCH, request, version=13) is fault


def test_fires_on_every_nth_match_count_times_then_is_gone() -> None:
    faults = Faults()
    dispatcher = SimpleNamespace(faults=None)
    faults.arm(dispatcher)
    assert dispatcher.faults is None  # nothing set: the dispatcher does not ask
    fault = faults.add("produce", drop="after", every=2, count=2)
    assert dispatcher.faults is faults
    fired = [_fire(faults, ApiKey.PRODUCE, _produce(("t", 0))) is fault for _ in range(6)]
    assert fired == [False, True, False, True, False, False]
    assert (fault.matched, fault.fired, fault.active) == (4, 2, False)
    assert faults.list() == [] and dispatcher.faults is None


def test_a_removed_fault_keeps_its_count_and_no_longer_fires() -> None:
    faults = Faults()
    fault = faults.add("heartbeat", error="REBALANCE_IN_PROGRESS")
    assert _fire(faults, ApiKey.HEARTBEAT, {}) is fault
    fault.remove()
    assert _fire(faults, ApiKey.HEARTBEAT, {}) is None
    assert fault.fired == 1 and not fault.active


def test_a_when_test_of_the_request_narrows_the_match() -> None:
    faults = Faults()
    fault = faults.add("produce", drop="after", when=lambda request: request["acks"] == 0)
    assert _fire(faults, ApiKey.PRODUCE, _produce(("t", 0))) is None
    assert fault.matched == 0


def _answer(api: ApiKey, version: int, request: dict[str, Any], error: str = "NOT_LEADER_OR_FOLLOWER") -> dict[str, Any]:
    """The fault's answer, through our encoder and back: what a client would read."""
    body = Faults().add(api, error=error).error_response(_header(api, version), request)
    assert body is not None
    return decode_response(api, version, encode_response(api, version, 7, body)[4:])[1]


def test_a_produce_error_goes_to_every_partition_of_the_request() -> None:
    answer = _answer(ApiKey.PRODUCE, 9, _produce(("t", 0), ("t", 2), ("u", 1)))
    partitions = {(t["name"], p["index"]): (p["error_code"], p["base_offset"]) for t in answer["responses"] for p in t["partition_responses"]}
    assert partitions == {("t", 0): (6, -1), ("t", 2): (6, -1), ("u", 1): (6, -1)}


def test_a_fetch_error_goes_to_its_partitions_and_not_to_the_top() -> None:
    request = {"topics": [{"topic": "t", "topic_id": TOPIC_ID, "partitions": [{"partition": 3}]}]}
    answer = _answer(ApiKey.FETCH, 13, request)
    assert answer["error_code"] == 0
    (topic,) = answer["responses"]
    assert topic["topic_id"] == TOPIC_ID
    assert [(p["partition_index"], p["error_code"], p["high_watermark"]) for p in topic["partitions"]] == [(3, 6, -1)]


def test_list_offsets_offset_commit_and_add_partitions_answer_per_partition() -> None:
    offsets = _answer(ApiKey.LIST_OFFSETS, 7, {"topics": [{"name": "t", "partitions": [{"partition_index": 0}]}]})
    assert [(p["error_code"], p["offset"]) for p in offsets["topics"][0]["partitions"]] == [(6, -1)]
    commit = _answer(ApiKey.OFFSET_COMMIT, 8, {"topics": [{"name": "t", "partitions": [{"partition_index": 4}]}]}, "COORDINATOR_NOT_AVAILABLE")
    assert [(p["partition_index"], p["error_code"]) for p in commit["topics"][0]["partitions"]] == [(4, 15)]
    added = _answer(ApiKey.ADD_PARTITIONS_TO_TXN, 3, {"v3_and_below_topics": [{"name": "t", "partitions": [0, 1]}]}, "CONCURRENT_TRANSACTIONS")
    by_partition = added["results_by_topic_v3_and_below"][0]["results_by_partition"]
    assert [(p["partition_index"], p["partition_error_code"]) for p in by_partition] == [(0, 51), (1, 51)]


def test_find_coordinator_answers_per_key_when_batched_and_at_the_top_before() -> None:
    batched = _answer(ApiKey.FIND_COORDINATOR, 4, {"key_type": 0, "coordinator_keys": ["g1", "g2"]}, "COORDINATOR_NOT_AVAILABLE")
    assert [(c["key"], c["error_code"], c["node_id"]) for c in batched["coordinators"]] == [("g1", 15, -1), ("g2", 15, -1)]
    single = _answer(ApiKey.FIND_COORDINATOR, 3, {"key": "g1", "key_type": 0}, "COORDINATOR_NOT_AVAILABLE")
    assert (single["error_code"], single["node_id"], single["port"]) == (15, -1, -1)


def test_apis_with_one_error_answer_it_at_the_top() -> None:
    answer = _answer(ApiKey.INIT_PRODUCER_ID, 4, {"transactional_id": None, "transaction_timeout_ms": 1}, "COORDINATOR_LOAD_IN_PROGRESS")
    assert (answer["error_code"], answer["producer_id"]) == (14, -1)


def test_a_fault_describes_itself_in_kafkas_names() -> None:
    fault = Faults().add("produce", topic="t", error=6, count=3, name="leader moved")
    described = fault.describe()
    assert described["name"] == "leader moved"
    assert {key: described[key] for key in ("api", "topic", "error", "count", "every", "fired")} == {
        "api": "produce", "topic": "t", "error": "NOT_LEADER_OR_FOLLOWER", "count": 3, "every": 1, "fired": 0,
    }
