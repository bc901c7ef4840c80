"""DescribeTransactions and ListConfigResources answers as the reference Kafka 4.4 gives them,
over a real socket to a real broker (probed side by side with Kafka 4.4's, then read in its
KafkaApis and TransactionCoordinator)."""

from __future__ import annotations

import socket
import time
from typing import Any

from compat.sockets import read_frame
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.protocol import decode_response, encode_request

TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP = 2, 4, 8, 16, 32


def call(bootstrap: str, api: ApiKey, version: int, body: dict[str, Any]) -> dict[str, Any]:
    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(encode_request(api, version, 1, body, client_id="describe-list-test"))
        frame = read_frame(sock)
        assert frame is not None, f"{api.name} v{version}: the broker closed the connection"
        return decode_response(api, version, frame)[1]


def test_a_transaction_error_entry_carries_the_message_defaults() -> None:
    """TransactionCoordinator.handleDescribeTransactions sets only the id and the error of an
    entry it refuses: every other field keeps DescribeTransactionsResponse.json's default, and
    ProducerId has none, so 0."""
    with running_broker() as broker:
        deadline = time.monotonic() + 30
        while True:
            states = call(broker.bootstrap_servers, ApiKey.DESCRIBE_TRANSACTIONS, 0, {"transactional_ids": ["unknown-txn", ""]})["transaction_states"]
            if states[0]["error_code"] != ErrorCode.COORDINATOR_LOAD_IN_PROGRESS or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert [(s["transactional_id"], s["error_code"]) for s in states] == [
        ("unknown-txn", ErrorCode.TRANSACTIONAL_ID_NOT_FOUND), ("", ErrorCode.INVALID_REQUEST)]
    for state in states:
        assert (state["transaction_state"], state["transaction_timeout_ms"], state["transaction_start_time_ms"], state["producer_id"],
                state["producer_epoch"], state["topics"]) == ("", 0, 0, 0, 0, [])


def test_config_resources_are_listed_groups_first_then_client_metrics_brokers_and_topics() -> None:
    """KafkaApis.handleListConfigResources appends groups, client metrics, broker loggers,
    brokers, then topics, whatever order the request names the types in."""
    with running_broker() as broker:
        broker.create_topic("listed", 1)
        altered = call(broker.bootstrap_servers, ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {"validate_only": False, "resources": [
            {"resource_type": GROUP, "resource_name": "configured-group",
             "configs": [{"name": "consumer.session.timeout.ms", "config_operation": 0, "value": "50000"}]},
            {"resource_type": CLIENT_METRICS, "resource_name": "subscription",
             "configs": [{"name": "interval.ms", "config_operation": 0, "value": "60000"}]}]})
        assert [r["error_code"] for r in altered["responses"]] == [0, 0], altered

        def listed(types: list[int]) -> list[tuple[int, str]]:
            answer = call(broker.bootstrap_servers, ApiKey.LIST_CONFIG_RESOURCES, 1, {"resource_types": types})
            assert answer["error_code"] == ErrorCode.NONE, answer
            return [(r["resource_type"], r["resource_name"]) for r in answer["config_resources"]]

        everything = listed([])
        assert everything[:4] == [(GROUP, "configured-group"), (CLIENT_METRICS, "subscription"), (BROKER_LOGGER, "1"), (BROKER, "1")]
        assert (TOPIC, "listed") in everything[4:] and {kind for kind, _ in everything[4:]} == {TOPIC}
        assert listed([TOPIC, BROKER, GROUP])[:2] == [(GROUP, "configured-group"), (BROKER, "1")]


def test_every_broker_of_a_cluster_is_listed_a_stopped_one_too() -> None:
    """MetadataCache.getBrokerNodes: every registered broker, fenced or not, by id."""
    with running_broker(nodes=3) as cluster:
        cluster.stop_node(3)
        answer = call(cluster.bootstrap_servers.split(",")[0], ApiKey.LIST_CONFIG_RESOURCES, 1, {"resource_types": [BROKER, BROKER_LOGGER]})
    assert [(r["resource_type"], r["resource_name"]) for r in answer["config_resources"]] == [
        (BROKER_LOGGER, "1"), (BROKER_LOGGER, "2"), (BROKER_LOGGER, "3"), (BROKER, "1"), (BROKER, "2"), (BROKER, "3")]
