"""Kafka 4.4's own kafka-features, kafka-metadata-quorum and kafka-cluster against a real `ottla
serve`: what an operator types to read and change finalized features (KIP-584), describe the
metadata quorum and unregister a broker. (compat/tools.py runs the read-only ones against the
reference Kafka too, and compat.differential compares what they print.)"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from compat.harness import OttlaBroker
from compat.tools import installed
from unavailable import unavailable


def _run(tool: str, *args: str) -> tuple[int, str]:
    from compat.kafka import run_tool

    proc = run_tool(tool, *args, timeout=90)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def ottla(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A broker whose data directory was finalized at metadata.version 8 (3.4-IV0), below what
    it supports, so that an upgrade has somewhere to go."""
    missing = installed()
    if missing:
        unavailable(missing)
    work: Path = tmp_path_factory.mktemp("features")
    (work / "data").mkdir()
    (work / "data" / "finalized-features.json").write_text(json.dumps({"epoch": 0, "levels": {"metadata.version": 8}}))
    with OttlaBroker(work) as broker:
        yield broker.bootstrap


def _described(bootstrap: str) -> dict[str, tuple[str, ...]]:
    code, out = _run("kafka-features", "--bootstrap-server", bootstrap, "describe")
    assert code == 0, out
    rows = re.findall(r"^Feature: (\S+)\s+SupportedMinVersion: (\S+)\s+SupportedMaxVersion: (\S+)\s+FinalizedVersionLevel: (\S+)\s+Epoch: (\d+)",
                      out, re.M)
    return {name: tuple(rest) for name, *rest in rows}


def test_kafka_features_upgrades_within_the_supported_levels_and_refuses_the_rest(ottla: str) -> None:
    assert _described(ottla)["metadata.version"] == ("3.3-IV3", "4.4-IV2", "3.4-IV0", "0")

    code, out = _run("kafka-features", "--bootstrap-server", ottla, "upgrade", "--feature", "metadata.version=9")
    assert code == 0 and "metadata.version was upgraded to 9." in out, out
    assert _described(ottla)["metadata.version"] == ("3.3-IV3", "4.4-IV2", "3.5-IV0", "1")

    code, out = _run("kafka-features", "--bootstrap-server", ottla, "upgrade", "--feature", "eligible.leader.replicas.version=1")
    assert code != 0 and "because it depends on metadata.version level 23" in out, out
    # 3.4-IV0 (8) changed metadata, so going below it may lose some (3.5-IV0 did not: 9 -> 8 is taken).
    code, out = _run("kafka-features", "--bootstrap-server", ottla, "downgrade", "--feature", "metadata.version=7")
    assert code != 0 and "Unsupported metadata.version downgrade from 9 to 7" in out, out
    assert _described(ottla)["metadata.version"][2:] == ("3.5-IV0", "1"), "refusals change nothing"


def test_kafka_features_upgrades_an_older_directory_to_transaction_version_2(ottla: str) -> None:
    """A data directory that never finalized transaction.version keeps 0 (as an upgraded Kafka
    cluster does) until an operator raises it; the Java client then runs KIP-890 part 2."""
    before = _described(ottla)
    assert before["transaction.version"][:3] == ("0", "2", "0"), before
    code, out = _run("kafka-features", "--bootstrap-server", ottla, "upgrade", "--feature", "transaction.version=2")
    assert code == 0 and "transaction.version was upgraded to 2." in out, out
    assert _described(ottla)["transaction.version"][2] == "2"


def test_kafka_metadata_quorum_describes_the_one_voter(ottla: str) -> None:
    code, status = _run("kafka-metadata-quorum", "--bootstrap-server", ottla, "describe", "--status")
    assert code == 0, status
    port = ottla.rsplit(":", 1)[1]
    assert re.search(r"^LeaderId:\s+1$", status, re.M) and re.search(r"^LeaderEpoch:\s+1$", status, re.M), status
    assert f'CurrentVoters:          [{{"id": 1, "endpoints": ["PLAINTEXT://127.0.0.1:{port}"]}}]' in status, status
    code, replication = _run("kafka-metadata-quorum", "--bootstrap-server", ottla, "describe", "--replication")
    assert code == 0 and re.search(r"^1\s+AAAAAAAAAAAAAAAAAAAAAA\s+0\s+0\s+\d+\s+\d+\s+Leader\s*$", replication, re.M), replication


def test_kafka_cluster_reads_the_id_and_unregisters_only_this_broker(ottla: str) -> None:
    code, out = _run("kafka-cluster", "cluster-id", "--bootstrap-server", ottla)
    assert code == 0 and "Cluster ID: ottla-cluster-0000000001" in out, out
    code, out = _run("kafka-cluster", "unregister", "--bootstrap-server", ottla, "--id", "1")
    assert code == 0 and "Broker 1 is no longer registered." in out, out
    code, out = _run("kafka-cluster", "unregister", "--bootstrap-server", ottla, "--id", "7")
    assert code != 0 and "Broker ID 7 is not currently registered" in out, out
    code, out = _run("kafka-cluster", "list-endpoints", "--bootstrap-server", ottla)
    assert code == 0 and re.search(r"^1\s+127\.0\.0\.1\s+\d+\s+null\s+unfenced\s+broker", out, re.M), out
