"""ElectLeaders and AlterPartitionReassignments at their edges, over a real socket, answered
as Kafka 4.4's controller answers them (each answer checked against the reference broker):
deadlines already passed, the empty request, the order of the replica-list checks, and in a
cluster the reassignment of replicas among registered nodes."""

from __future__ import annotations

from typing import Any

from ottla.server.admin.client import Connection
from ottla.server.security.authorizer import STANDARD_AUTHORIZER
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode


def _ask(broker: ThreadedBroker, api: ApiKey, version: int, body: dict[str, Any], node: int = 1) -> dict[str, Any]:
    host, port = broker.bootstrap_servers.split(",")[node - 1].rsplit(":", 1)
    connection = Connection(host, int(port), 10.0, "cluster-admin-edges")
    try:
        return connection.request(api, version, body)
    finally:
        connection.close()


def _elect(broker: ThreadedBroker, timeout_ms: int, partitions: list[dict[str, Any]] | None) -> dict[str, Any]:
    return _ask(broker, ApiKey.ELECT_LEADERS, 2, {"election_type": 0, "timeout_ms": timeout_ms, "topic_partitions": partitions})


def _reassign(broker: ThreadedBroker, moves: list[tuple[str, int, list[int] | None]], version: int = 0, timeout_ms: int = 5000,
              **extra: Any) -> dict[str, Any]:
    topics: dict[str, list[dict[str, Any]]] = {}
    for name, index, replicas in moves:
        topics.setdefault(name, []).append({"partition_index": index, "replicas": replicas})
    body = {"timeout_ms": timeout_ms, "topics": [{"name": name, "partitions": parts} for name, parts in topics.items()], **extra}
    return _ask(broker, ApiKey.ALTER_PARTITION_REASSIGNMENTS, version, body)


def _results(answer: dict[str, Any]) -> list[tuple[str, int, int, str | None]]:
    return [(t["name"], p["partition_index"], p["error_code"], p["error_message"]) for t in answer["responses"] for p in t["partitions"]]


def test_a_deadline_already_passed_times_out_every_election_but_the_empty_list() -> None:
    with running_broker() as broker:
        broker.create_topic("elected", partitions=1)
        for timeout_ms in (0, -1):
            answer = _elect(broker, timeout_ms, [{"topic": "elected", "partitions": [0]}])
            assert answer["error_code"] == ErrorCode.REQUEST_TIMED_OUT
            assert answer["replica_election_results"] == [
                {"topic": "elected", "partition_result": [{"partition_id": 0, "error_code": ErrorCode.REQUEST_TIMED_OUT, "error_message": None}]}]
            every = _elect(broker, timeout_ms, None)
            assert (every["error_code"], every["replica_election_results"]) == (ErrorCode.REQUEST_TIMED_OUT, [])
            assert _elect(broker, timeout_ms, [])["error_code"] == ErrorCode.NONE
        answer = _elect(broker, 1000, [{"topic": "elected", "partitions": [0]}])
        assert answer["replica_election_results"][0]["partition_result"][0]["error_code"] == ErrorCode.ELECTION_NOT_NEEDED


def test_a_reassignment_past_its_deadline_or_empty_is_answered_as_kafkas_controller() -> None:
    with running_broker() as broker:
        broker.create_topic("moved", partitions=1)
        late = _reassign(broker, [("moved", 0, [1])], version=1, timeout_ms=0, allow_replication_factor_change=False)
        assert (late["error_code"], late["error_message"], late["allow_replication_factor_change"]) == (ErrorCode.REQUEST_TIMED_OUT, None, True)
        assert _results(late) == [("moved", 0, ErrorCode.REQUEST_TIMED_OUT, None)]
        # An empty request is answered with a default response: an empty message, the flag at true.
        empty = _reassign(broker, [], version=1, timeout_ms=0, allow_replication_factor_change=False)
        assert (empty["error_code"], empty["error_message"], empty["allow_replication_factor_change"], empty["responses"]) == (
            ErrorCode.NONE, "", True, [])
        done = _reassign(broker, [("moved", 0, [1])], version=1, allow_replication_factor_change=False)
        assert (done["error_message"], done["allow_replication_factor_change"], _results(done)) == (None, False, [("moved", 0, ErrorCode.NONE, None)])


def test_a_refused_reassignment_leaves_the_replication_factor_flag_at_its_default() -> None:
    with running_broker(authorizer_class_name=STANDARD_AUTHORIZER) as broker:
        answer = _reassign(broker, [("any", 0, [1])], version=1, allow_replication_factor_change=False)
        assert (answer["error_code"], answer["allow_replication_factor_change"]) == (ErrorCode.CLUSTER_AUTHORIZATION_FAILED, True)
        ((name, index, error, message),) = _results(answer)
        assert (name, index, error) == ("any", 0, ErrorCode.CLUSTER_AUTHORIZATION_FAILED)
        assert message is not None and message.endswith(" needs ALTER permission."), message


def test_target_replicas_are_checked_in_ascending_broker_order() -> None:
    with running_broker() as broker:
        broker.create_topic("checked", partitions=1)
        answer = _reassign(broker, [("checked", 0, [2, 1, 1])])
        assert _results(answer) == [("checked", 0, ErrorCode.INVALID_REPLICATION_ASSIGNMENT,
                                     "The manual partition assignment includes the broker 1 more than once.")]


def test_a_cluster_reassigns_replicas_among_its_registered_nodes() -> None:
    with running_broker(nodes=3) as broker:
        broker.create_topic("spread", partitions=1, replication_factor=2)
        before = broker.partition_state("spread", 0)
        replicas, leader, epoch = list(before["replicas"]), before["leader"], before["leader_epoch"]
        assert _results(_reassign(broker, [("spread", 0, replicas)])) == [("spread", 0, ErrorCode.NONE, None)]
        assert broker.partition_state("spread", 0)["leader_epoch"] == epoch
        (spare,) = {1, 2, 3} - set(replicas)
        # A stopped node is still registered; one never started is not.
        broker.stop_node(spare)
        assert _results(_reassign(broker, [("spread", 0, [9, leader])])) == [
            ("spread", 0, ErrorCode.INVALID_REPLICATION_ASSIGNMENT, "The manual partition assignment includes broker 9, but no such broker is registered.")]
        refused = _reassign(broker, [("spread", 0, [leader])], version=1, allow_replication_factor_change=False)
        assert _results(refused) == [("spread", 0, ErrorCode.INVALID_REPLICATION_FACTOR, "The replication factor is changed from 2 to 1")]
        broker.start_node(spare)
        # Adding a running node: it is caught up at once and the leader stays.
        assert _results(_reassign(broker, [("spread", 0, [*replicas, spare])])) == [("spread", 0, ErrorCode.NONE, None)]
        grown = broker.partition_state("spread", 0)
        assert (list(grown["replicas"]), sorted(grown["isr"]), grown["leader"], grown["leader_epoch"]) == (
            [*replicas, spare], [1, 2, 3], leader, epoch)
        # Dropping the leader: the first replica left in the ISR leads, in a new epoch.
        rest = [node for node in (spare, *replicas) if node != leader]
        assert _results(_reassign(broker, [("spread", 0, rest)], version=1, allow_replication_factor_change=True)) == [
            ("spread", 0, ErrorCode.NONE, None)]
        moved = broker.partition_state("spread", 0)
        assert (list(moved["replicas"]), sorted(moved["isr"]), moved["leader"], moved["leader_epoch"]) == (rest, sorted(rest), rest[0], epoch + 1)
        metadata = _ask(broker, ApiKey.METADATA, 12, {"topics": [{"name": "spread", "topic_id": bytes(16)}], "allow_auto_topic_creation": False,
                                                      "include_topic_authorized_operations": False}, node=rest[0])
        (partition,) = metadata["topics"][0]["partitions"]
        assert (partition["leader_id"], partition["replica_nodes"]) == (rest[0], rest)
