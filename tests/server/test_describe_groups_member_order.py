"""DescribeGroups lists a classic group's members as Kafka 4.4 does: ClassicGroup.allMembers, the
values of a HashMap keyed by member id, so by the hash buckets of the ids, not by joining order.
(Asked of the reference Kafka 4.4 with 2 and 11 pending members: java_order of the ids each time.)
kafka-consumer-groups --describe --members prints its rows in this order."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator

import pytest

from compat.differential import _Connection
from ottla.server.java_hashing import default_capacity, java_order, string_hash
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.protocol import encode_request

MEMBERS = 9


def _subscription(topic: str) -> bytes:
    """ConsumerProtocolSubscription v0 of one topic, no user data."""
    name = topic.encode()
    return struct.pack(">hih", 0, 1, len(name)) + name + struct.pack(">i", -1)


@pytest.fixture
def bootstrap() -> Iterator[str]:
    with running_broker(data_dir=None, group_initial_rebalance_delay_ms=0) as broker:
        yield broker.bootstrap_servers


def test_members_are_described_in_the_order_of_kafkas_hash_map(bootstrap: str) -> None:
    host, port = bootstrap.rsplit(":", 1)
    joining = []
    try:
        for index in range(MEMBERS):
            # Static members join with their id assigned at once; their answers are never read,
            # so every member stays in the group's rebalance.
            sock = socket.create_connection((host, int(port)))
            body = {"group_id": "described", "session_timeout_ms": 45000, "rebalance_timeout_ms": 60000, "member_id": "",
                    "group_instance_id": f"instance-{index}", "protocol_type": "consumer", "reason": None,
                    "protocols": [{"name": "range", "metadata": _subscription("t")}]}
            sock.sendall(encode_request(ApiKey.JOIN_GROUP, 9, 1, body, client_id=f"client-{index}"))
            joining.append(sock)
        connection = _Connection(bootstrap)
        deadline = time.monotonic() + 10
        while True:
            described = connection.call(ApiKey.DESCRIBE_GROUPS, 5, {"groups": ["described"], "include_authorized_operations": False})["groups"][0]
            if len(described["members"]) == MEMBERS or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        connection.close()
    finally:
        for sock in joining:
            sock.close()
    listed = [member["member_id"] for member in described["members"]]
    by_joining = sorted(listed, key=lambda member_id: int(member_id.split("-")[1]))
    assert len(listed) == MEMBERS
    assert listed == java_order(by_joining, string_hash, default_capacity(MEMBERS))
