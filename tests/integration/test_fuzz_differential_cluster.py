"""The differential fuzzer's --cluster mode (compat/fuzz_differential.py): how an input is
routed to a node of each cluster, how set-up topics are placed alike, and what is masked."""

from __future__ import annotations

from collections import Counter

import pytest

from compat.fuzz_differential import CLUSTER_PLACEMENT, Names, Peer, _creation, differences, main, mask_message, node_of, skeleton
from ottla.wire.api import ApiKey


def test_a_cluster_bootstrap_names_nodes_one_to_three_in_order_and_a_broker_has_none() -> None:
    cluster = Peer.of("Kafka", "127.0.0.1:9001,127.0.0.1:9002,127.0.0.1:9003")
    assert cluster.bootstrap == "127.0.0.1:9001" and cluster.nodes == {1: "127.0.0.1:9001", 2: "127.0.0.1:9002", 3: "127.0.0.1:9003"}
    single = Peer.of("Kafka", "127.0.0.1:9001")
    assert single.bootstrap == "127.0.0.1:9001" and single.nodes == {}


def test_the_node_an_input_goes_to_depends_on_seed_and_index_alone_and_a_single_broker_is_node_one() -> None:
    assert all(node_of(seed, index, 0) == 1 for seed in (1, 2) for index in range(50))
    drawn = [node_of(1, index, 3) for index in range(300)]
    assert drawn == [node_of(1, index, 3) for index in range(300)]
    assert set(Counter(drawn)) == {1, 2, 3} and min(Counter(drawn).values()) > 50
    assert drawn != [node_of(2, index, 3) for index in range(300)]


def test_aiming_at_another_node_drops_the_connection_to_the_last() -> None:
    peer = Peer.of("Ottla", "127.0.0.1:9001,127.0.0.1:9002,127.0.0.1:9003")

    class Closed:
        closed = False

        def close(self) -> None:
            self.closed = True

    sock = Closed()
    peer.sock = sock  # type: ignore[assignment]
    peer.aim(1)
    assert peer.sock is sock and not sock.closed
    peer.aim(3)
    assert peer.sock is None and sock.closed and peer.node == 3


def test_set_up_topics_are_placed_alike_with_leaders_on_every_node() -> None:
    leaders = {replicas[0] for partitions in CLUSTER_PLACEMENT.values() for replicas in partitions}
    assert leaders == {1, 2, 3}
    assert {len(partitions[0]) for partitions in CLUSTER_PLACEMENT.values()} == {1, 2, 3}
    for partitions in CLUSTER_PLACEMENT.values():  # Kafka takes one replication factor per topic
        assert len({len(replicas) for replicas in partitions}) == 1
    entry = _creation("t", 3, CLUSTER_PLACEMENT["topic"])
    assert (entry["num_partitions"], entry["replication_factor"]) == (-1, -1)
    assert [a["broker_ids"] for a in entry["assignments"]] == CLUSTER_PLACEMENT["topic"]
    assert _creation("a", 1, CLUSTER_PLACEMENT["a"])["configs"] == [{"name": "min.insync.replicas", "value": "1"}]
    assert _creation("t", 3, None) == {"name": "t", "num_partitions": 3, "replication_factor": 1, "assignments": [], "configs": []}


def test_every_nodes_address_is_masked_in_messages() -> None:
    names = Names("t")
    ottla = Peer.of("Ottla", "127.0.0.1:41001,127.0.0.1:41002,127.0.0.1:41003")
    kafka = Peer.of("Kafka", "127.0.0.1:52001,127.0.0.1:52002,127.0.0.1:52003")
    assert mask_message("leader is 127.0.0.1:41003 (port 41002)", ottla, names) == \
        mask_message("leader is 127.0.0.1:52003 (port 52002)", kafka, names) == "leader is <host:port> (port <port>)"


def test_node_hints_compare_by_node_id_once_leaders_sit_alike() -> None:
    """Leaders and coordinators are placed alike on both clusters, so a NOT_LEADER_OR_FOLLOWER
    hint's node endpoints compare by node id (hosts and ports aside)."""
    names = Names("t")
    ottla = Peer.of("Ottla", "127.0.0.1:41001,127.0.0.1:41002,127.0.0.1:41003")
    kafka = Peer.of("Kafka", "127.0.0.1:52001,127.0.0.1:52002,127.0.0.1:52003")
    body: dict[str, object] = {"topic_data": [{"name": "fzt-topic"}]}

    def answer(port: int, hinted: list[int]) -> dict[str, object]:
        return {"responses": [{"name": "fzt-topic", "partition_responses": [
            {"index": 1, "error_code": 6, "current_leader": {"leader_id": 2, "leader_epoch": 0}}]}],
            "node_endpoints": [{"node_id": n, "host": "127.0.0.1", "port": port + n, "rack": None} for n in hinted]}

    same = skeleton(ApiKey.PRODUCE, body, answer(41000, [2]), ottla, names), skeleton(ApiKey.PRODUCE, body, answer(52000, [2]), kafka, names)
    assert differences(*same) == []
    other = skeleton(ApiKey.PRODUCE, body, answer(41000, [3]), ottla, names), skeleton(ApiKey.PRODUCE, body, answer(52000, [2]), kafka, names)
    assert differences(*other) != []


def test_cluster_takes_no_given_brokers() -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--cluster", "--brokers", "a:1", "b:2"])
    assert exit_.value.code == 2
