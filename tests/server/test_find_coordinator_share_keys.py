"""FindCoordinator key type 2 (KIP-932): where a share partition's state is kept, keyed
"groupId:topicId:partition", over a real socket, each answer the one the reference Kafka 4.4
gave to the same keys (KafkaApis.getCoordinator, SharePartitionKey.getInstance): v6+ only, a
key it cannot parse is INVALID_REQUEST, share.version is not consulted, and without
CLUSTER_ACTION every key is CLUSTER_AUTHORIZATION_FAILED. (Kafka answers its first well-formed
key COORDINATOR_NOT_AVAILABLE while it creates `__share_group_state`; a single node answers
at once, as it does for groups.)"""

from __future__ import annotations

import base64
import uuid

from ottla.server.security.authorizer import STANDARD_AUTHORIZER
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from tests.server.test_features import Client

TOPIC_ID = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
OK, BAD = ErrorCode.NONE, ErrorCode.INVALID_REQUEST
# Each key and Kafka 4.4's answer to it.
KEYS = {
    f"g:{TOPIC_ID}:0": OK,
    f"a:b:{TOPIC_ID}:1": OK,  # the group id is everything before the last two fields
    f"::{TOPIC_ID}:1": OK,
    f"g:{TOPIC_ID}:-1": OK,
    f"g:{TOPIC_ID}:+3": OK,
    f"g:{TOPIC_ID}==:0": OK,  # padded base64
    f"g:{TOPIC_ID}:0:": OK,  # Java's split drops trailing empty fields
    "bad": BAD,
    "": BAD,
    "a:b": BAD,
    f"g:{TOPIC_ID}:": BAD,
    "g:notauuid:0": BAD,
    f"g:{TOPIC_ID}:x": BAD,
    f" :{TOPIC_ID}:0": BAD,  # a blank group id
    f"g:{TOPIC_ID}=:0": BAD,
    f"g:{TOPIC_ID}:2147483648": BAD,
}


def _find(client: Client, version: int, keys: list[str]) -> list[tuple[str, int, int]]:
    answer = client.call(ApiKey.FIND_COORDINATOR, version, {"key_type": 2, "coordinator_keys": keys, "key": keys[0]})
    if version < 4:
        return [(keys[0], answer["error_code"], answer["node_id"])]
    return [(found["key"], found["error_code"], found["node_id"]) for found in answer["coordinators"]]


def test_share_coordinator_keys_are_parsed_as_kafka_parses_them() -> None:
    with running_broker(data_dir=None) as broker:
        client = Client(broker.bootstrap_servers)
        try:
            expected = [(key, error, 1 if error is OK else -1) for key, error in KEYS.items()]
            assert _find(client, 6, list(KEYS)) == expected
            assert _find(client, 5, [f"g:{TOPIC_ID}:0"]) == [(f"g:{TOPIC_ID}:0", BAD, -1)]
            assert _find(client, 3, [f"g:{TOPIC_ID}:0"]) == [(f"g:{TOPIC_ID}:0", BAD, -1)]
            update = client.call(ApiKey.UPDATE_FEATURES, 1, {"timeout_ms": 10_000, "validate_only": False, "feature_updates": [
                {"feature": "share.version", "max_version_level": 0, "upgrade_type": 2}]})
            assert update["error_code"] == ErrorCode.NONE, update
            assert _find(client, 6, [f"g:{TOPIC_ID}:0", "bad"]) == [(f"g:{TOPIC_ID}:0", OK, 1), ("bad", BAD, -1)]
        finally:
            client.close()


def test_share_coordinator_keys_need_cluster_action() -> None:
    with running_broker(data_dir=None, authorizer_class_name=STANDARD_AUTHORIZER) as broker:
        client = Client(broker.bootstrap_servers)
        try:
            refused = ErrorCode.CLUSTER_AUTHORIZATION_FAILED
            assert _find(client, 6, [f"g:{TOPIC_ID}:0", "bad"]) == [(f"g:{TOPIC_ID}:0", refused, -1), ("bad", refused, -1)]
            assert _find(client, 5, [f"g:{TOPIC_ID}:0"]) == [(f"g:{TOPIC_ID}:0", BAD, -1)]  # the version is checked first
        finally:
            client.close()
