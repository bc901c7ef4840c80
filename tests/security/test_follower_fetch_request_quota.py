"""A follower's Fetch (replica_id >= 0: a broker replicating) is not counted against its
client's request_percentage and answers no throttle, as Kafka 4.4 answers it exempt
(KafkaApis.handleFetchRequest: sendResponseExemptThrottle); a consumer's Fetch is counted."""

from __future__ import annotations

from ottla.server.admin.client import KafkaClient
from ottla.testing import running_broker
from ottla.wire.api import ApiKey


def _fetch(client: KafkaClient, replica_id: int) -> int:
    body = {"replica_id": replica_id, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 1024, "isolation_level": 0, "topics": []}
    return client.call(ApiKey.FETCH, body, highest=4)[1]["throttle_time_ms"]


def test_a_followers_fetch_is_exempt_from_request_percentage() -> None:
    with running_broker() as handle:
        with KafkaClient(handle.bootstrap_servers, client_id="admin") as admin:
            # Any handler time is far over this bound: every counted request is throttled.
            entry = {"entity": [{"entity_type": "client-id", "entity_name": "replica"}], "ops": [{"key": "request_percentage", "value": 1e-6, "remove": False}]}
            assert admin.call(ApiKey.ALTER_CLIENT_QUOTAS, {"entries": [entry], "validate_only": False})[1]["entries"][0]["error_code"] == 0
        with KafkaClient(handle.bootstrap_servers, client_id="replica") as replica:
            assert [_fetch(replica, replica_id=1) for _ in range(3)] == [0, 0, 0]
            assert _fetch(replica, replica_id=-1) > 0
