"""Finalized features (KIP-584) and the KRaft-facing admin answers of a single Ottla node.

The feature rules are pinned without sockets on `FinalizedFeatures`; the rest goes over a real
socket to a real broker, every answer the one the reference Kafka 4.4 gives (Kafka's tools
show them in tests/integration/test_kafka_tools.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kafka_wire import WireClient
from ottla.server.features import FEATURES, FinalizedFeatures, UpgradeType
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, KafkaError

NODE = 1
MAX = {f.name: f.supported_max for f in FEATURES}


class Client(WireClient):
    def __init__(self, bootstrap: str) -> None:
        super().__init__(bootstrap, client_id="features-test")


def _api_versions(client: Client, version: int, **fields: Any) -> dict[str, Any]:
    return client.call(ApiKey.API_VERSIONS, version, {"client_software_name": "ottla-tests", "client_software_version": "1", **fields})


def _update(client: Client, version: int, updates: list[tuple[str, int, int]], validate_only: bool = False) -> dict[str, Any]:
    body = {"timeout_ms": 5000, "validate_only": validate_only, "feature_updates": [
        {"feature": name, "max_version_level": level, "upgrade_type": kind, "allow_downgrade": kind != UpgradeType.UPGRADE}
        for name, level, kind in updates]}
    return client.call(ApiKey.UPDATE_FEATURES, version, body)


def _write_levels(data_dir: Path, levels: dict[str, int], epoch: int) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "finalized-features.json").write_text(json.dumps({"epoch": epoch, "levels": levels}))


# --- the rules, without sockets ---------------------------------------------------------------


def test_a_new_directory_finalizes_every_feature_at_its_highest_supported_level(tmp_path: Path) -> None:
    features = FinalizedFeatures.open(tmp_path)
    assert features.levels == MAX and features.epoch == 0
    assert FinalizedFeatures.open(tmp_path).levels == MAX


def test_only_features_above_level_zero_are_finalized() -> None:
    features = FinalizedFeatures(None, {"metadata.version": 10, "group.version": 0}, 3)
    assert features.finalized() == [{"name": "metadata.version", "max_version_level": 10, "min_version_level": 10}]


def test_an_update_applies_all_or_nothing_and_persists_with_a_new_epoch(tmp_path: Path) -> None:
    _write_levels(tmp_path, {"metadata.version": 8}, epoch=4)
    features = FinalizedFeatures.open(tmp_path)
    assert features.level("metadata.version") == 8 and features.level("eligible.leader.replicas.version") == 0
    with pytest.raises(KafkaError) as refused:
        features.update([("metadata.version", 9, UpgradeType.UPGRADE), ("eligible.leader.replicas.version", 1, UpgradeType.UPGRADE)], False, NODE)
    assert refused.value.code == ErrorCode.INVALID_UPDATE_VERSION
    assert refused.value.message == ("The update failed for all features since the following feature had an error: "
                                     "Invalid update version 1 for feature eligible.leader.replicas.version. "
                                     "eligible.leader.replicas.version could not be set to 1 because it depends on metadata.version level 23")
    features.update([("metadata.version", 9, UpgradeType.UPGRADE)], True, NODE)
    assert (features.level("metadata.version"), features.epoch) == (8, 4), "validate-only changes nothing"
    features.update([("metadata.version", 9, UpgradeType.UPGRADE)], False, NODE)
    reopened = FinalizedFeatures.open(tmp_path)
    assert (reopened.level("metadata.version"), reopened.epoch) == (9, 5)
    features.update([("metadata.version", 9, UpgradeType.UPGRADE)], False, NODE)
    assert features.epoch == 5, "an update that changes nothing keeps the epoch"


@pytest.mark.parametrize("name, level, kind, reason", [
    ("group.version", 0, UpgradeType.UNKNOWN, "Invalid update version 0 for feature group.version. The controller does not support the given upgrade type."),
    ("group.version", -1, UpgradeType.SAFE_DOWNGRADE, "Invalid update version -1 for feature group.version. A feature version cannot be less than 0."),
    ("no.such", 1, UpgradeType.UPGRADE, "Invalid update version 1 for feature no.such. Local controller 1 does not support this feature."),
    ("no.such", 0, UpgradeType.SAFE_DOWNGRADE, "Invalid update version 0 for feature no.such. Feature no.such not found."),
    ("metadata.version", 6, UpgradeType.SAFE_DOWNGRADE, "Invalid update version 6 for feature metadata.version. Local controller 1 only supports versions 7-33"),
    ("metadata.version", 8, UpgradeType.UPGRADE, "Invalid update version 8 for feature metadata.version. Can't downgrade the version of this feature "
                                                 "without setting the upgrade type to either safe or unsafe downgrade."),
    ("metadata.version", 8, UpgradeType.SAFE_DOWNGRADE, "Unsupported metadata.version downgrade from 33 to 8. Refusing to perform the requested "
                                                        "downgrade because it might delete metadata information."),
    ("metadata.version", 8, UpgradeType.UNSAFE_DOWNGRADE, "Unsupported metadata.version downgrade from 33 to 8. Unsafe metadata downgrade is not "
                                                          "supported in this version."),
])
def test_refusals_are_worded_as_kafka_4_4_words_them(name: str, level: int, kind: UpgradeType, reason: str) -> None:
    features = FinalizedFeatures(None, dict(MAX), 0)
    with pytest.raises(KafkaError) as refused:
        features.update([(name, level, kind)], False, NODE)
    assert refused.value.message == f"The update failed for all features since the following feature had an error: {reason}"


def test_a_level_beyond_what_this_code_supports_is_clamped_at_load(tmp_path: Path) -> None:
    _write_levels(tmp_path, {"transaction.version": 99, "metadata.version": 1}, epoch=2)
    features = FinalizedFeatures.open(tmp_path)
    assert features.level("transaction.version") == MAX["transaction.version"]
    assert features.level("metadata.version") == 7


# --- over a socket ----------------------------------------------------------------------------


def test_api_versions_reports_features_as_kafka_4_4_does() -> None:
    with running_broker(data_dir=None) as broker:
        client = Client(broker.bootstrap_servers)
        try:
            v4 = _api_versions(client, 4)
            assert {f["name"]: (f["min_version"], f["max_version"]) for f in v4["supported_features"]} == {
                f.name: (f.supported_min, f.supported_max) for f in FEATURES}
            assert v4["finalized_features"][:3] == [{"name": "metadata.version", "max_version_level": 33, "min_version_level": 33},
                                                    {"name": "transaction.version", "max_version_level": 2, "min_version_level": 2},
                                                    {"name": "group.version", "max_version_level": 1, "min_version_level": 1}]
            assert v4["finalized_features_epoch"] == 0
            # Before v4 a feature whose minimum is 0 is left out (KAFKA-17011).
            assert [f["name"] for f in _api_versions(client, 3)["supported_features"]] == ["metadata.version"]
            assert "supported_features" not in _api_versions(client, 2)
        finally:
            client.close()


@pytest.mark.parametrize("cluster_id, node_id, error", [
    (None, -1, ErrorCode.NONE),
    ("ottla-cluster-0000000001", NODE, ErrorCode.NONE),
    ("ottla-cluster-0000000001", 7, ErrorCode.REBOOTSTRAP_REQUIRED),
    ("another-cluster", NODE, ErrorCode.REBOOTSTRAP_REQUIRED),
    ("ottla-cluster-0000000001", -1, ErrorCode.INVALID_REQUEST),
    (None, NODE, ErrorCode.INVALID_REQUEST),
])
def test_api_versions_v5_checks_the_cluster_and_node_the_client_means(cluster_id: str | None, node_id: int, error: ErrorCode) -> None:
    with running_broker(data_dir=None) as broker:
        client = Client(broker.bootstrap_servers)
        try:
            answer = _api_versions(client, 5, cluster_id=cluster_id, node_id=node_id)
        finally:
            client.close()
    assert answer["error_code"] == error
    assert bool(answer["api_keys"]) == (error == ErrorCode.NONE)


def test_update_features_upgrades_and_survives_a_restart(tmp_path: Path) -> None:
    _write_levels(tmp_path / "data", {"metadata.version": 8}, epoch=0)  # a directory finalized at an older level
    with running_broker(data_dir=str(tmp_path / "data")) as broker:
        client = Client(broker.bootstrap_servers)
        try:
            checked = _update(client, 1, [("metadata.version", 9, UpgradeType.UPGRADE)], validate_only=True)
            assert checked["results"] == [{"feature": "metadata.version", "error_code": 0, "error_message": "NONE"}]
            assert _api_versions(client, 4)["finalized_features"][0]["max_version_level"] == 8
            assert _update(client, 2, [("metadata.version", 9, UpgradeType.UPGRADE)]) == {
                "throttle_time_ms": 0, "error_code": 0, "error_message": None}
            refused = _update(client, 0, [("eligible.leader.replicas.version", 1, UpgradeType.UPGRADE)])
            assert (refused["error_code"], refused["results"]) == (ErrorCode.INVALID_UPDATE_VERSION, [])
        finally:
            client.close()
        broker.restart()
        client = Client(broker.bootstrap_servers)
        try:
            answer = _api_versions(client, 4)
        finally:
            client.close()
    assert answer["finalized_features"] == [{"name": "metadata.version", "max_version_level": 9, "min_version_level": 9}]
    assert answer["finalized_features_epoch"] == 1


def test_the_kraft_facing_answers_of_a_single_static_voter() -> None:
    with running_broker(data_dir=None) as broker:
        client = Client(broker.bootstrap_servers)
        port = int(broker.bootstrap_servers.rsplit(":", 1)[1])
        try:
            quorum = client.call(ApiKey.DESCRIBE_QUORUM, 2, {"topics": [{"topic_name": "__cluster_metadata", "partitions": [{"partition_index": 0}]}]})
            # Kafka answers a request for exactly the metadata partition, and refuses any other shape whole.
            two = client.call(ApiKey.DESCRIBE_QUORUM, 2, {"topics": [
                {"topic_name": "__cluster_metadata", "partitions": [{"partition_index": 0}, {"partition_index": 1}]}]})
            add = client.call(ApiKey.ADD_RAFT_VOTER, 1, {"cluster_id": None, "timeout_ms": 1000, "voter_id": 2, "voter_directory_id": b"\x01" * 16,
                                                         "listeners": [{"name": "PLAINTEXT", "host": "127.0.0.1", "port": 1}], "ack_when_committed": True})
            remove = client.call(ApiKey.REMOVE_RAFT_VOTER, 0, {"cluster_id": "another", "voter_id": NODE, "voter_directory_id": bytes(16)})
            unregister_self = client.call(ApiKey.UNREGISTER_BROKER, 0, {"broker_id": NODE})
            unregister_other = client.call(ApiKey.UNREGISTER_BROKER, 0, {"broker_id": 7})
            unregister_controller = client.call(ApiKey.UNREGISTER_CONTROLLER, 0, {"controller_id": NODE})
            unregister_other_controller = client.call(ApiKey.UNREGISTER_CONTROLLER, 0, {"controller_id": 7})
            cluster = client.call(ApiKey.DESCRIBE_CLUSTER, 2, {"include_cluster_authorized_operations": False, "endpoint_type": 1,
                                                               "include_fenced_brokers": True})
        finally:
            client.close()
    [leader] = quorum["topics"][0]["partitions"]
    assert (leader["error_code"], leader["leader_id"], leader["leader_epoch"]) == (0, NODE, 1)
    assert [(v["replica_id"], v["replica_directory_id"]) for v in leader["current_voters"]] == [(NODE, bytes(16))]
    assert quorum["nodes"] == [{"node_id": NODE, "listeners": [{"name": "PLAINTEXT", "host": "127.0.0.1", "port": port}]}]
    assert [(p["partition_index"], p["error_code"], p["current_voters"]) for p in two["topics"][0]["partitions"]] == [
        (0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, []), (1, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, [])]
    assert two["nodes"] == []
    assert (add["error_code"], add["error_message"]) == (
        ErrorCode.UNSUPPORTED_VERSION, "Cluster doesn't support adding voter because the kraft.version feature is 0")
    assert remove["error_code"] == ErrorCode.INCONSISTENT_CLUSTER_ID
    assert (unregister_self["error_code"], unregister_other["error_code"]) == (ErrorCode.NONE, ErrorCode.BROKER_ID_NOT_REGISTERED)
    # The active controller may not unregister itself; no other controller is registered.
    assert (unregister_controller["error_code"], unregister_controller["error_message"]) == (
        ErrorCode.INVALID_REQUEST, "Controller cannot unregister itself while it is active.")
    assert unregister_other_controller["error_code"] == ErrorCode.CONTROLLER_ID_NOT_REGISTERED
    assert [b["is_fenced"] for b in cluster["brokers"]] == [False]


def test_list_config_resources_lists_the_asked_types() -> None:
    with running_broker(data_dir=None) as broker:
        broker.create_topic("configured", 1)
        client = Client(broker.bootstrap_servers)
        try:
            def listed(version: int, types: list[int]) -> tuple[int, list[tuple[int, str]]]:
                answer = client.call(ApiKey.LIST_CONFIG_RESOURCES, version, {"resource_types": types})
                return answer["error_code"], sorted((r.get("resource_type", 16), r["resource_name"]) for r in answer["config_resources"])

            assert listed(0, []) == (0, [])  # v0: client metrics resources only, and Ottla has none
            assert (2, "configured") in listed(1, [2])[1]
            assert listed(1, [4, 8, 16, 32]) == (0, [(4, "1"), (8, "1")])
            answer = client.call(ApiKey.LIST_CONFIG_RESOURCES, 1, {"resource_types": [2, 4, 8]})
            assert [r["resource_type"] for r in answer["config_resources"]][:2] == [8, 4], "broker loggers, brokers, then topics, as Kafka lists them"
            code, everything = listed(1, [])
            assert code == 0 and {(4, "1"), (8, "1"), (2, "configured")} <= set(everything)
            assert listed(1, [2, 99]) == (ErrorCode.UNSUPPORTED_VERSION, [])
        finally:
            client.close()
