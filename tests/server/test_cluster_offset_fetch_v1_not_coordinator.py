"""Cluster mode over real sockets: OffsetFetch v0 and v1, which have no group-level error
code, sent to a node that does not coordinate the group. Kafka 4.4 answers each requested
partition NOT_COORDINATOR with offset -1 and no metadata (OffsetFetchResponse.groupError
below v2), so a client looks the coordinator up again instead of reading "no offset" from a
node that holds none of the group's state."""

from __future__ import annotations

from typing import Any

from ottla.server.admin.client import Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

TOPIC = "fetched"
GROUP = "fetching"


def _ask(address: str, api: ApiKey, version: int, body: dict[str, Any]) -> dict[str, Any]:
    host, port = address.rsplit(":", 1)
    connection = Connection(host, int(port), 10.0, "offset-fetch-v1")
    try:
        return connection.request(api, version, body)
    finally:
        connection.close()


def test_offset_fetch_below_v2_answers_each_partition_not_coordinator_off_the_coordinator() -> None:
    request = {"group_id": GROUP, "topics": [{"name": TOPIC, "partition_indexes": [0, 1]}, {"name": "no-such-topic", "partition_indexes": [0]}]}
    with running_broker(nodes=3, data_dir=None) as cluster:
        cluster.create_topic(TOPIC, partitions=2, replication_factor=3)
        nodes = dict(enumerate(cluster.bootstrap_servers.split(","), start=1))
        found = _ask(nodes[1], ApiKey.FIND_COORDINATOR, 3, {"key": GROUP, "key_type": 0})
        assert found["error_code"] == ErrorCode.NONE
        coordinator = found["node_id"]
        answers = {(node, version): _ask(address, ApiKey.OFFSET_FETCH, version, request)
                   for node, address in nodes.items() for version in (0, 1)}
    for (node, version), answer in answers.items():
        partitions = [(t["name"], p["partition_index"], p["error_code"], p["committed_offset"], p["metadata"])
                      for t in answer["topics"] for p in t["partitions"]]
        code = ErrorCode.NONE if node == coordinator else ErrorCode.NOT_COORDINATOR
        if node == coordinator:
            assert ErrorCode.NOT_COORDINATOR not in [p[2] for p in partitions], (node, version, answer)
        else:
            assert partitions == [(TOPIC, 0, code, -1, ""), (TOPIC, 1, code, -1, ""), ("no-such-topic", 0, code, -1, "")], (node, version)
