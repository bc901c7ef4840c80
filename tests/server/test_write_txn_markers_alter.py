"""WriteTxnMarkers under an authorizer, as Kafka 4.4's KafkaApis.handleWriteTxnMarkersRequest
decides (KIP-664, read in kafka_2.13-4.4.0.jar): ALTER on the cluster is enough (an admin
aborting a hanging transaction), else CLUSTER_ACTION is required and every partition answers
CLUSTER_AUTHORIZATION_FAILED without it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ottla.server.admin.client import KafkaClient
from ottla.server.security.authorizer import STANDARD_AUTHORIZER
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

_MARKER = {"producer_id": 1, "producer_epoch": 0, "transaction_result": False, "coordinator_epoch": 0,
           "topics": [{"name": "no-such-topic", "partition_indexes": [0]}]}
_CLUSTER, _LITERAL, _ALLOW = 4, 3, 3
_OPERATIONS = {"ALTER": 7, "CLUSTER_ACTION": 9, "DESCRIBE": 8}


@pytest.mark.parametrize("granted, expected", [
    ("ALTER", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION),
    ("CLUSTER_ACTION", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION),
    ("DESCRIBE", ErrorCode.CLUSTER_AUTHORIZATION_FAILED),
])
def test_alter_or_cluster_action_on_the_cluster_may_write_markers(tmp_path: Path, granted: str, expected: ErrorCode) -> None:
    settings = {"data_dir": tmp_path, "authorizer_class_name": STANDARD_AUTHORIZER}
    with running_broker(super_users="User:ANONYMOUS", **settings) as broker, KafkaClient(broker.bootstrap_servers) as admin:
        created = admin.call(ApiKey.CREATE_ACLS, {"creations": [{
            "resource_type": _CLUSTER, "resource_name": "kafka-cluster", "resource_pattern_type": _LITERAL,
            "principal": "User:ANONYMOUS", "host": "*", "operation": _OPERATIONS[granted], "permission_type": _ALLOW}]})[1]
        assert created["results"][0]["error_code"] == ErrorCode.NONE
    with running_broker(**settings) as broker, KafkaClient(broker.bootstrap_servers) as client:
        answer = client.call(ApiKey.WRITE_TXN_MARKERS, {"markers": [_MARKER]})[1]
        assert answer["markers"][0]["topics"][0]["partitions"][0]["error_code"] == expected
