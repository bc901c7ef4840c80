"""The node controls from outside the process: `ottla serve --nodes 3`, and `ottla cluster ...`
over the HTTP control channel that `ottla faults` uses, found through `--bootstrap`."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from ottla.testing import ThreadedBroker, running_broker


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def cluster() -> Iterator[ThreadedBroker]:
    with running_broker(nodes=3, data_dir=None, http_port=_free_port()) as broker:
        yield broker


def _ottla(bootstrap: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ottla", "cluster", *args, "--bootstrap", bootstrap.split(",")[0], "--json"]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_ottla_cluster_stops_starts_and_moves_leaders(cluster: ThreadedBroker) -> None:
    cluster.create_topic("t", partitions=1, replication_factor=3)
    leader = cluster.leader_of("t", 0)
    stopped = _ottla(cluster.bootstrap_servers, "stop-node", str(leader))
    assert stopped.returncode == 0, stopped.stderr
    assert {node["node_id"]: node["state"] for node in json.loads(stopped.stdout)}[leader] == "stopped"
    assert cluster.leader_of("t", 0) != leader
    # The first node may be the one stopped: ask through a node that still runs.
    running = ",".join(address for node, address in enumerate(cluster.bootstrap_servers.split(","), 1) if node != leader)
    assert _ottla(running, "start-node", str(leader)).returncode == 0
    moved = _ottla(running, "move-leader", "t", "0", str(leader))
    assert moved.returncode == 0, moved.stderr
    assert json.loads(moved.stdout)["leader"] == leader == cluster.leader_of("t", 0)
    refused = _ottla(running, "move-leader", "t", "0", "9")
    assert refused.returncode == 1 and "no node 9" in refused.stderr


def test_a_single_node_has_no_node_controls() -> None:
    with running_broker(data_dir=None, http_port=_free_port()) as broker:
        refused = _ottla(broker.bootstrap_servers, "stop-node", "1")
    assert refused.returncode == 1 and "single node" in refused.stderr


def test_ottla_serve_nodes_lists_every_node_in_its_ready_line() -> None:
    command = [sys.executable, "-m", "ottla", "serve", "--port", "0", "--memory", "--nodes", "3", "--racks", "a,b,c", "--http-port", "0"]
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True) as serve:
        try:
            assert serve.stderr is not None
            ready = serve.stderr.readline()
            fields = dict(field.split("=", 1) for field in ready.split()[2:])
            assert len(fields["bootstrap"].split(",")) == 3
            nodes = subprocess.run(
                [sys.executable, "-m", "ottla", "cluster", "nodes", "--http", fields["http"], "--json"], capture_output=True, text=True, timeout=60
            )
            assert nodes.returncode == 0, nodes.stderr
            answered = json.loads(nodes.stdout)
            assert [(n["node_id"], n["rack"], n["state"]) for n in answered] == [(1, "a", "running"), (2, "b", "running"), (3, "c", "running")]
            assert ",".join(f"{n['host']}:{n['port']}" for n in answered) == fields["bootstrap"]
        finally:
            serve.terminate()
