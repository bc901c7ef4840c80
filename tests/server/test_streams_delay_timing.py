"""When a streams group's initial rebalance delay ends, as Kafka 4.4 answers it (asked of the
reference broker with a 1 s delay): the delay's timer (GroupMetadataManager.computeDelayedTargetAssignment)
computes the target only with the topology a heartbeat configured. The join that creates a group
configures it on an object that replaying the join's records replaces, so when no other heartbeat
came during the delay the timer finds none ("configured topology is not present") and the group
stays Assigning until the next heartbeat computes the target and answers the member its tasks at
the new epoch at once. A heartbeat during the delay configures it, and the timer then computes
the target (tests/server/test_streams_initial_rebalance_delay.py)."""

from __future__ import annotations

import time

from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from tests.server.test_streams_initial_rebalance_delay import DELAYED, _beat, _described


def test_a_group_only_its_creating_join_reached_is_assigned_by_its_next_heartbeat() -> None:
    with running_broker(group_streams_initial_rebalance_delay_ms=1000) as broker:
        connection = _Connection(broker.bootstrap_servers)
        try:
            created = connection.call(ApiKey.CREATE_TOPICS, 5, {"topics": [{"name": name, "num_partitions": 2, "replication_factor": 1,
                                                                            "assignments": [], "configs": []} for name in ("roles", "roles-store-changelog")],
                                                                "timeout_ms": 10_000, "validate_only": False})
            assert [topic["error_code"] for topic in created["topics"]] == [ErrorCode.NONE] * 2
            assert _beat(connection, "solo", "a", 0) == (0, 1, [], DELAYED)
            time.sleep(1.6)  # Kafka 4.4 answered as below at 1.2 s and 2.2 s alike
            assert _described(connection, "solo") == ("Assigning", 2, 1, {"a": (1, [])})
            assert _beat(connection, "solo", "a", 1) == (0, 2, [0, 1], [])
            assert _described(connection, "solo") == ("Stable", 2, 2, {"a": (2, [0, 1])})

            assert _beat(connection, "beaten", "a", 0) == (0, 1, [], DELAYED)
            assert _beat(connection, "beaten", "a", 1) == (0, 1, None, DELAYED)
            time.sleep(1.6)
            assert _described(connection, "beaten") == ("Reconciling", 2, 2, {"a": (1, [0, 1])})
        finally:
            connection.close()
