"""Cluster mode over real sockets: a request naming several groups, or partitions some of which
never reach the coordinator, is answered part by part as Kafka 4.4 answers it. OffsetFetch v8+
routes each group to its own coordinator (KafkaApis.handleOffsetFetchRequest), so a node answers
its own groups in full and another node's NOT_COORDINATOR, after the group's authorization;
OffsetCommit and TxnOffsetCommit answer unknown topics themselves and merge the coordinator's
NOT_COORDINATOR for the rest (OffsetCommitResponse.Builder.merge)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ottla.server.admin.client import Connection
from ottla.server.security.authorizer import STANDARD_AUTHORIZER
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

GROUP_RESOURCE, LITERAL, DESCRIBE, DENY = 3, 3, 8, 2


@contextmanager
def _connected(cluster: ThreadedBroker, node: int) -> Iterator[Connection]:
    """A connection to node `node` (1-based, in bootstrap order)."""
    host, port = cluster.bootstrap_servers.split(",")[node - 1].rsplit(":", 1)
    connection = Connection(host, int(port), 10.0, "coordinator-merges")
    try:
        yield connection
    finally:
        connection.close()


def _groups_of(connection: Connection, nodes: tuple[int, ...]) -> dict[int, str]:
    """A group id coordinated by each of `nodes`."""
    candidates = [f"merged-{index}" for index in range(64)]
    found = connection.request(ApiKey.FIND_COORDINATOR, 4, {"key_type": 0, "coordinator_keys": candidates})["coordinators"]
    chosen: dict[int, str] = {}
    for coordinator in found:
        chosen.setdefault(coordinator["node_id"], coordinator["key"])
    assert set(nodes) <= chosen.keys(), chosen
    return {node: chosen[node] for node in nodes}


def _commit(group: str, *topics: tuple[str, list[int]]) -> dict[str, Any]:
    return {"group_id": group, "generation_id_or_member_epoch": -1, "member_id": "", "group_instance_id": None,
            "topics": [{"name": name, "partitions": [{"partition_index": index, "committed_offset": 7, "committed_leader_epoch": -1,
                                                      "committed_metadata": ""} for index in indexes]} for name, indexes in topics]}


def _listed(answer: dict[str, Any]) -> list[tuple[str, list[tuple[int, int]]]]:
    """A commit's answer as listed: each topic with its partitions' (index, error)."""
    return [(topic["name"], [(partition["partition_index"], partition["error_code"]) for partition in topic["partitions"]]) for topic in answer["topics"]]


def _fetched(answer: dict[str, Any]) -> list[tuple[str, int, list[tuple[str, int, int, int]]]]:
    """Each group of an OffsetFetch v8+ answer: its id, error and (topic, partition, offset, error)."""
    return [(group["group_id"], group["error_code"], [(topic["name"], partition["partition_index"], partition["committed_offset"],
                                                      partition["error_code"]) for topic in group["topics"] for partition in topic["partitions"]])
            for group in answer["groups"]]


def test_offset_fetch_answers_each_group_by_its_own_coordinator() -> None:
    """Sent to node 1: its own group has its offsets, node 2's and node 3's groups are
    NOT_COORDINATOR with no topics, and a group the principal may not DESCRIBE is
    GROUP_AUTHORIZATION_FAILED wherever it is coordinated, whichever group comes first."""
    with running_broker(nodes=3, authorizer_class_name=STANDARD_AUTHORIZER, allow_everyone_if_no_acl_found=True) as cluster:
        cluster.create_topic("fetched", partitions=1, replication_factor=1)
        with _connected(cluster, 1) as connection:
            groups = _groups_of(connection, (1, 2, 3))
            here, there, hidden = groups[1], groups[2], groups[3]
            deny = {"resource_type": GROUP_RESOURCE, "resource_name": hidden, "resource_pattern_type": LITERAL,
                    "principal": "User:ANONYMOUS", "host": "*", "operation": DESCRIBE, "permission_type": DENY}
            assert connection.request(ApiKey.CREATE_ACLS, 3, {"creations": [deny]})["results"][0]["error_code"] == ErrorCode.NONE
            assert _listed(connection.request(ApiKey.OFFSET_COMMIT, 8, _commit(here, ("fetched", [0])))) == [("fetched", [(0, ErrorCode.NONE)])]
            asked = [{"name": "fetched", "partition_indexes": [0]}]

            def fetch(*order: str) -> list[tuple[str, int, list[tuple[str, int, int, int]]]]:
                body = {"groups": [{"group_id": group, "topics": asked} for group in order], "require_stable": False}
                return _fetched(connection.request(ApiKey.OFFSET_FETCH, 8, body))

            answers = [fetch(there, here, hidden), fetch(hidden, here, there), fetch(here, there)]
    own = (here, ErrorCode.NONE, [("fetched", 0, 7, ErrorCode.NONE)])
    elsewhere = (there, ErrorCode.NOT_COORDINATOR, [])
    refused = (hidden, ErrorCode.GROUP_AUTHORIZATION_FAILED, [])
    assert answers == [[elsewhere, own, refused], [refused, own, elsewhere], [own, elsewhere]]


def test_offset_commit_answers_unknown_topics_and_leaves_the_rest_to_the_coordinator() -> None:
    """Sent to a node that does not coordinate the group: the partitions of an unknown topic, and
    a partition the topic lacks, are UNKNOWN_TOPIC_OR_PARTITION, the others NOT_COORDINATOR,
    listed after them as Kafka's response builder merges the coordinator's answer."""
    with running_broker(nodes=3) as cluster:
        cluster.create_topic("known", partitions=1, replication_factor=1)
        with _connected(cluster, 1) as connection:
            group = _groups_of(connection, (2,))[2]
            committed = connection.request(ApiKey.OFFSET_COMMIT, 8, _commit(group, ("known", [0, 5]), ("missing", [0])))
    unknown = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert _listed(committed) == [("known", [(5, unknown), (0, ErrorCode.NOT_COORDINATOR)]), ("missing", [(0, unknown)])]


def test_txn_offset_commit_answers_unknown_topics_first_and_leaves_the_rest_to_the_coordinator() -> None:
    """As OffsetCommit, the transaction never looked at (there is none): the topics answered
    without the coordinator come first, as Kafka's response builder lists them."""
    with running_broker(nodes=3) as cluster:
        cluster.create_topic("known", partitions=1, replication_factor=1)
        with _connected(cluster, 1) as connection:
            group = _groups_of(connection, (2,))[2]
            body = {"transactional_id": "merged-txn", "group_id": group, "producer_id": 4242, "producer_epoch": 0, "generation_id": -1,
                    "member_id": "", "group_instance_id": None,
                    "topics": [{"name": name, "partitions": [{"partition_index": index, "committed_offset": 7, "committed_leader_epoch": -1,
                                                              "committed_metadata": ""} for index in indexes]}
                               for name, indexes in (("known", [0]), ("missing", [0, 1]))]}
            committed = connection.request(ApiKey.TXN_OFFSET_COMMIT, 3, body)
    unknown = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert _listed(committed) == [("missing", [(0, unknown), (1, unknown)]), ("known", [(0, ErrorCode.NOT_COORDINATOR)])]

