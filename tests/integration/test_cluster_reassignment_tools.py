"""Kafka's kafka-reassign-partitions against a 3-node Ottla cluster, as an operator runs it, while
the replica it adds is on a crashed node (registered, so the tool accepts it, but not fetching):
Kafka 4.4's controller keeps such a reassignment in progress until the added replica joins the
ISR (PartitionReassignmentReplicas.maybeCompleteReassignment), so --verify says it is still in
progress, --list and kafka-topics --describe show the replicas being added and removed, and
--cancel reverts it; once the node starts again it completes. Each printed line below is the one
the reference Kafka cluster printed for the same steps (its node ids mapped to these).
--preserve-throttles: clearing throttles asks the crashed node too, which Kafka's tool cannot
reach either."""

from __future__ import annotations

import json
import pathlib
import re

from compat.kafka import run_tool
from ottla.testing import running_broker


def _tool(tool: str, *args: str) -> str:
    done = run_tool(tool, *args)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    return done.stdout


def _partition_line(bootstrap: list[str], topic: str) -> str:
    described = _tool("kafka-topics", *bootstrap, "--describe", "--topic", topic)
    (line,) = [line.strip() for line in described.splitlines() if line.strip().startswith(f"Topic: {topic}\tPartition: 0")]
    return line


def test_a_reassignment_to_a_crashed_node_stays_in_progress_until_cancelled_or_caught_up(tmp_path: pathlib.Path) -> None:
    topic = "moved-while-crashed"
    # A session long enough that the crashed node stays registered (and so a valid target) throughout.
    with running_broker(nodes=3, broker_session_timeout_ms=600_000) as broker:
        broker.create_topic(topic, partitions=1, replication_factor=2)
        first, second = broker.partition_state(topic, 0)["replicas"]
        (spare,) = {1, 2, 3} - {first, second}
        broker.crash_node(spare)
        live = next(address for node, address in enumerate(broker.bootstrap_servers.split(","), 1) if node != spare)
        bootstrap = ["--bootstrap-server", live]
        plan = tmp_path / "plan.json"
        plan.write_text(json.dumps({"version": 1, "partitions": [{"topic": topic, "partition": 0, "replicas": [spare, first]}]}))
        reassign = ("kafka-reassign-partitions", *bootstrap, "--reassignment-json-file", str(plan))

        assert f"Successfully started partition reassignment for {topic}-0" in _tool(*reassign, "--execute")
        assert f"Reassignment of partition {topic}-0 is still in progress." in _tool(*reassign, "--verify", "--preserve-throttles")
        listed = _tool("kafka-reassign-partitions", *bootstrap, "--list")
        assert f"{topic}-0: replicas: {spare},{first},{second}. adding: {spare}. removing: {second}." in listed
        assert re.fullmatch(
            rf"Topic: {topic}\tPartition: 0\tLeader: {first}\tReplicas: {spare},{first},{second}\tIsr: {first},{second}\t"
            rf"Adding Replicas: {spare}\tRemoving Replicas: {second}\tElr: \tLastKnownElr:", _partition_line(bootstrap, topic))

        assert f"Successfully cancelled partition reassignment for: {topic}-0" in _tool(*reassign, "--cancel", "--preserve-throttles")
        assert "No partition reassignments found." in _tool("kafka-reassign-partitions", *bootstrap, "--list")
        assert re.fullmatch(rf"Topic: {topic}\tPartition: 0\tLeader: {first}\tReplicas: {first},{second}\tIsr: {first},{second}\tElr: \tLastKnownElr:",
                            _partition_line(bootstrap, topic))

        _tool(*reassign, "--execute")
        broker.start_node(spare)
        assert f"Reassignment of partition {topic}-0 is completed." in _tool(*reassign, "--verify", "--preserve-throttles")
        # The ISR the added replica joined is in ascending order, as Kafka's leader sends it.
        isr = ",".join(map(str, sorted([spare, first])))
        assert re.fullmatch(rf"Topic: {topic}\tPartition: 0\tLeader: {first}\tReplicas: {spare},{first}\tIsr: {isr}\tElr: \tLastKnownElr:",
                            _partition_line(bootstrap, topic))
        # The new preferred leader takes over on a preferred election.
        elected = _tool("kafka-leader-election", *bootstrap, "--election-type", "preferred", "--topic", topic, "--partition", "0")
        assert f"Successfully completed leader election (PREFERRED) for partitions {topic}-0" in elected
        assert _partition_line(bootstrap, topic).startswith(f"Topic: {topic}\tPartition: 0\tLeader: {spare}\t")


def test_a_grown_replica_set_is_described_with_its_isr_in_ascending_order(tmp_path: pathlib.Path) -> None:
    """Growing a partition to every node completes at once (running nodes are in sync at once),
    and kafka-topics describes the ISR the way Kafka's leader reported it: ascending, whatever
    the replica order (the reference printed `Replicas: 2,1,3	Isr: 1,2,3`)."""
    topic = "grown"
    with running_broker(nodes=3) as broker:
        broker.create_topic(topic, partitions=1, replication_factor=2)
        leader = broker.partition_state(topic, 0)["leader"]
        bootstrap = ["--bootstrap-server", broker.bootstrap_servers.split(",")[0]]
        plan = tmp_path / "plan.json"
        plan.write_text(json.dumps({"version": 1, "partitions": [{"topic": topic, "partition": 0, "replicas": [3, 2, 1]}]}))
        reassign = ("kafka-reassign-partitions", *bootstrap, "--reassignment-json-file", str(plan))
        assert f"Successfully started partition reassignment for {topic}-0" in _tool(*reassign, "--execute")
        assert f"Reassignment of partition {topic}-0 is completed." in _tool(*reassign, "--verify")
        assert re.fullmatch(rf"Topic: {topic}\tPartition: 0\tLeader: {leader}\tReplicas: 3,2,1\tIsr: 1,2,3\tElr: \tLastKnownElr:",
                            _partition_line(bootstrap, topic))
