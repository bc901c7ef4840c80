"""min.insync.replicas as the cluster's alone while eligible.leader.replicas.version is on
(KIP-966), over a real socket to a real broker. Every expected answer is the reference Kafka
4.4's to the same raw requests: a new cluster (formatted at ELR 1) has the cluster default
min.insync.replicas=1 (ActivationRecordsGenerator.recordsForEmptyLog), UpdateFeatures asking
for ELR on writes it again and drops a node's own value (ConfigurationControlManager
.maybeGenerateElrSafetyRecords), and while ELR is on a node's value cannot be written nor the
cluster's removed (ConfigurationControlManager.validateAlterConfig)."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from compat.sockets import read_frame
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.protocol import decode_response, encode_request

BROKER, TOPIC = 4, 2
SET, DELETE = 0, 1
CLUSTER_REMOVED = (ErrorCode.INVALID_CONFIG, "Cluster-level min.insync.replicas cannot be removed while ELR is enabled.")
NODE_ALTERED = (ErrorCode.INVALID_CONFIG, "Broker-level min.insync.replicas cannot be altered while ELR is enabled.")
OK = (ErrorCode.NONE, None)


def _call(sock: socket.socket, api: ApiKey, version: int, body: dict[str, Any]) -> dict[str, Any]:
    sock.sendall(encode_request(api, version, 1, body, client_id="elr-min-isr"))
    frame = read_frame(sock)
    assert frame is not None
    answer: dict[str, Any] = decode_response(api, version, frame)[1]
    return answer


def _min_isr(sock: socket.socket, kind: int, name: str) -> list[tuple[str, int, list[tuple[str, int]]]]:
    """The min.insync.replicas entries a resource describes: value, source, synonyms."""
    answer = _call(sock, ApiKey.DESCRIBE_CONFIGS, 4, {"resources": [{"resource_type": kind, "resource_name": name, "configuration_keys": None}],
                                                      "include_synonyms": True, "include_documentation": False})
    return [(c["value"], c["config_source"], [(s["value"], s["source"]) for s in c["synonyms"]])
            for c in answer["results"][0]["configs"] if c["name"] == "min.insync.replicas"]


def _incremental(sock: socket.socket, name: str, ops: list[tuple[str, int, str | None]], validate_only: bool = True) -> tuple[int, str | None]:
    answer = _call(sock, ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {"resources": [{"resource_type": BROKER, "resource_name": name, "configs": [
        {"name": n, "config_operation": op, "value": v} for n, op, v in ops]}], "validate_only": validate_only})
    result = answer["responses"][0]
    return result["error_code"], result["error_message"]


def _legacy(sock: socket.socket, name: str, configs: dict[str, str]) -> tuple[int, str | None]:
    answer = _call(sock, ApiKey.ALTER_CONFIGS, 2, {"resources": [{"resource_type": BROKER, "resource_name": name, "configs": [
        {"name": n, "value": v} for n, v in configs.items()]}], "validate_only": True})
    result = answer["responses"][0]
    return result["error_code"], result["error_message"]


def _elr(sock: socket.socket, level: int) -> None:
    answer = _call(sock, ApiKey.UPDATE_FEATURES, 1, {"timeout_ms": 5000, "validate_only": False, "feature_updates": [
        {"feature": "eligible.leader.replicas.version", "max_version_level": level, "upgrade_type": 1 if level else 2}]})
    assert answer["error_code"] == ErrorCode.NONE, answer


@contextlib.contextmanager
def _connected(data: Path) -> Iterator[socket.socket]:
    with running_broker(data_dir=str(data)) as broker:
        host, port = broker.bootstrap_servers.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            yield sock


def test_a_new_data_directory_keeps_min_insync_replicas_as_the_cluster_default(tmp_path: Path) -> None:
    with _connected(tmp_path / "data") as sock:
        created = _call(sock, ApiKey.CREATE_TOPICS, 7, {"topics": [{"name": "t1", "num_partitions": 1, "replication_factor": 1, "assignments": [],
                                                                     "configs": []}], "timeout_ms": 10000, "validate_only": False})
        assert created["topics"][0]["error_code"] == ErrorCode.NONE
        assert _min_isr(sock, TOPIC, "t1") == [("1", 3, [("1", 3), ("1", 5)])]
        assert _min_isr(sock, BROKER, "1") == [("1", 3, [("1", 3), ("1", 5)])]
        # The cluster default lists its own synonym only (ConfigHelper.createBrokerConfigEntry).
        assert _min_isr(sock, BROKER, "") == [("1", 3, [("1", 3)])]
        assert _legacy(sock, "", {}) == CLUSTER_REMOVED
        assert _legacy(sock, "", {"log.retention.ms": "1000"}) == CLUSTER_REMOVED
        assert _legacy(sock, "", {"min.insync.replicas": "2"}) == OK
        assert _incremental(sock, "", [("min.insync.replicas", DELETE, None)]) == CLUSTER_REMOVED
        assert _incremental(sock, "", [("min.insync.replicas", DELETE, None)], validate_only=False) == CLUSTER_REMOVED
        assert _incremental(sock, "", [("min.insync.replicas", SET, "2")]) == OK
        assert _incremental(sock, "", [("log.retention.ms", DELETE, None)]) == OK
        assert _incremental(sock, "1", [("min.insync.replicas", SET, "2")]) == NODE_ALTERED
        assert _incremental(sock, "1", [("min.insync.replicas", DELETE, None)]) == NODE_ALTERED
        assert _legacy(sock, "1", {"min.insync.replicas": "2"}) == NODE_ALTERED
        assert _legacy(sock, "1", {}) == OK
        # The broker's own checks of the value come first.
        assert _incremental(sock, "1", [("min.insync.replicas", SET, "x")]) == (
            ErrorCode.INVALID_REQUEST, "Invalid value x for configuration min.insync.replicas: Not a number of type INT")


def test_turning_elr_on_makes_min_insync_replicas_the_clusters_again(tmp_path: Path) -> None:
    with _connected(tmp_path / "data") as sock:
        _elr(sock, 0)
        assert _incremental(sock, "1", [("min.insync.replicas", SET, "2")], validate_only=False) == OK
        assert _incremental(sock, "", [("min.insync.replicas", DELETE, None)], validate_only=False) == OK
        assert _min_isr(sock, BROKER, "") == []
        assert _legacy(sock, "", {}) == OK
        _elr(sock, 1)
        assert _min_isr(sock, BROKER, "") == [("1", 3, [("1", 3)])]
        assert _min_isr(sock, BROKER, "1") == [("1", 3, [("1", 3), ("1", 5)])]
        # Asked again with a value of its own in place, the cluster default is kept.
        assert _incremental(sock, "", [("min.insync.replicas", SET, "2")], validate_only=False) == OK
        _elr(sock, 1)
        assert _min_isr(sock, BROKER, "") == [("2", 3, [("2", 3)])]
    with _connected(tmp_path / "data") as sock:
        assert _min_isr(sock, BROKER, "") == [("2", 3, [("2", 3)])]


def test_an_existing_data_directory_gets_no_cluster_default_at_start(tmp_path: Path) -> None:
    """As Kafka's activation on a non-empty metadata log writes none (recordsForNonEmptyLog)."""
    data = tmp_path / "data"
    data.mkdir()
    levels = {"metadata.version": 33, "eligible.leader.replicas.version": 1}
    (data / "finalized-features.json").write_text(json.dumps({"epoch": 3, "levels": levels}))
    with _connected(data) as sock:
        assert _min_isr(sock, BROKER, "") == []
        _elr(sock, 1)
        assert _min_isr(sock, BROKER, "") == [("1", 3, [("1", 3)])]
