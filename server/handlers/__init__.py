"""The handler table: API key -> (handle, lowest, highest version served).

Ranges start at 0 (as Kafka <= 3.9 did) because kafkajs ignores the broker's minimum,
and reach Kafka 4.4's maxima.

The versions live here, apart from the handlers, so that ApiVersions advertises every API
from the start while a handler's module (and the room behind it: share groups, SASL,
telemetry...) is imported only when a client first calls its API: a broker pays at start
only for what it serves. Each API's handler is the module named as its key
(`ApiKey.SHARE_FETCH` -> `share_fetch.py`), whose own API and VERSIONS must agree with this
table (tests/server/test_startup_imports.py checks).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Callable

from ottla.wire.api import ApiKey

if TYPE_CHECKING:
    from ottla.server.context import RequestContext
    from ottla.wire.header import RequestHeader

Handle = Callable[["RequestContext", "RequestHeader", Any], Any]

# API -> (lowest, highest version served): exactly what ApiVersions advertises.
SERVED: dict[ApiKey, tuple[int, int]] = {
    ApiKey.API_VERSIONS: (0, 5),
    ApiKey.METADATA: (0, 13),
    ApiKey.PRODUCE: (0, 13),
    ApiKey.FETCH: (0, 18),
    ApiKey.LIST_OFFSETS: (0, 11),
    ApiKey.CREATE_TOPICS: (0, 7),
    ApiKey.DELETE_TOPICS: (0, 6),
    ApiKey.INIT_PRODUCER_ID: (0, 5),
    ApiKey.DESCRIBE_CONFIGS: (0, 4),
    ApiKey.ALTER_CONFIGS: (0, 2),
    ApiKey.INCREMENTAL_ALTER_CONFIGS: (0, 1),
    ApiKey.CREATE_PARTITIONS: (0, 3),
    ApiKey.DELETE_RECORDS: (0, 2),
    ApiKey.DESCRIBE_CLUSTER: (0, 2),
    ApiKey.DESCRIBE_LOG_DIRS: (0, 5),
    ApiKey.ALTER_REPLICA_LOG_DIRS: (0, 2),
    ApiKey.OFFSET_FOR_LEADER_EPOCH: (0, 4),
    ApiKey.ELECT_LEADERS: (0, 2),
    ApiKey.LIST_PARTITION_REASSIGNMENTS: (0, 0),
    ApiKey.ALTER_PARTITION_REASSIGNMENTS: (0, 1),
    ApiKey.DESCRIBE_TOPIC_PARTITIONS: (0, 0),
    # Finalized features and the KRaft-facing admin APIs.
    ApiKey.UPDATE_FEATURES: (0, 2),
    ApiKey.DESCRIBE_QUORUM: (0, 2),
    ApiKey.ADD_RAFT_VOTER: (0, 1),
    ApiKey.REMOVE_RAFT_VOTER: (0, 0),
    ApiKey.UNREGISTER_BROKER: (0, 0),
    ApiKey.UNREGISTER_CONTROLLER: (0, 0),
    ApiKey.LIST_CONFIG_RESOURCES: (0, 1),
    # Client telemetry (KIP-714).
    ApiKey.GET_TELEMETRY_SUBSCRIPTIONS: (0, 0),
    ApiKey.PUSH_TELEMETRY: (0, 0),
    # Consumer groups.
    ApiKey.FIND_COORDINATOR: (0, 6),
    ApiKey.JOIN_GROUP: (0, 9),
    ApiKey.SYNC_GROUP: (0, 5),
    ApiKey.HEARTBEAT: (0, 4),
    ApiKey.LEAVE_GROUP: (0, 5),
    ApiKey.OFFSET_COMMIT: (0, 10),
    ApiKey.OFFSET_FETCH: (0, 10),
    ApiKey.LIST_GROUPS: (0, 5),
    ApiKey.DESCRIBE_GROUPS: (0, 6),
    ApiKey.DELETE_GROUPS: (0, 3),
    ApiKey.OFFSET_DELETE: (0, 0),
    # KIP-848 consumer groups.
    ApiKey.CONSUMER_GROUP_HEARTBEAT: (0, 1),
    ApiKey.CONSUMER_GROUP_DESCRIBE: (0, 1),
    # Share groups (KIP-932).
    ApiKey.SHARE_GROUP_HEARTBEAT: (1, 1),
    ApiKey.SHARE_GROUP_DESCRIBE: (1, 1),
    ApiKey.SHARE_FETCH: (1, 2),
    ApiKey.SHARE_ACKNOWLEDGE: (1, 2),
    ApiKey.DESCRIBE_SHARE_GROUP_OFFSETS: (0, 1),
    ApiKey.ALTER_SHARE_GROUP_OFFSETS: (0, 0),
    ApiKey.DELETE_SHARE_GROUP_OFFSETS: (0, 0),
    # Streams groups (KIP-1071).
    ApiKey.STREAMS_GROUP_HEARTBEAT: (0, 1),
    ApiKey.STREAMS_GROUP_DESCRIBE: (0, 1),
    ApiKey.STREAMS_GROUP_TOPOLOGY_DESCRIPTION_UPDATE: (0, 0),
    # Idempotence and transactions.
    ApiKey.ADD_PARTITIONS_TO_TXN: (0, 5),
    ApiKey.ADD_OFFSETS_TO_TXN: (0, 4),
    ApiKey.END_TXN: (0, 5),
    ApiKey.TXN_OFFSET_COMMIT: (0, 6),
    ApiKey.DESCRIBE_TRANSACTIONS: (0, 0),
    ApiKey.LIST_TRANSACTIONS: (0, 2),
    ApiKey.DESCRIBE_PRODUCERS: (0, 0),
    ApiKey.WRITE_TXN_MARKERS: (1, 2),
    # ACLs (StandardAuthorizer semantics).
    ApiKey.DESCRIBE_ACLS: (1, 3),
    ApiKey.CREATE_ACLS: (1, 3),
    ApiKey.DELETE_ACLS: (1, 3),
    # Authentication (SASL, SCRAM credentials).
    ApiKey.SASL_HANDSHAKE: (0, 1),
    ApiKey.SASL_AUTHENTICATE: (0, 2),
    ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS: (0, 0),
    ApiKey.ALTER_USER_SCRAM_CREDENTIALS: (0, 0),
    # Client quotas.
    ApiKey.DESCRIBE_CLIENT_QUOTAS: (0, 1),
    ApiKey.ALTER_CLIENT_QUOTAS: (0, 1),
    # Delegation tokens (KIP-48).
    ApiKey.CREATE_DELEGATION_TOKEN: (1, 3),
    ApiKey.RENEW_DELEGATION_TOKEN: (1, 2),
    ApiKey.EXPIRE_DELEGATION_TOKEN: (1, 2),
    ApiKey.DESCRIBE_DELEGATION_TOKEN: (1, 3),
}


def module_name(api: ApiKey) -> str:
    """The module that serves `api`."""
    return f"{__name__}.{api.name.lower()}"


def load(api: ApiKey) -> Handle:
    """`api`'s handle, its module imported now if it was not yet."""
    handle: Handle = importlib.import_module(module_name(api)).handle
    return handle


class _FirstCall:
    """An API's handle until its first request: imports the handler's module then, puts the
    real handle in the table in its own place (later requests call it directly) and
    forwards. A copy of the table (`gated` in cluster mode) keeps calling through this,
    which forwards to the loaded handle."""

    __slots__ = ("api", "_handle")

    def __init__(self, api: ApiKey) -> None:
        self.api = api
        self._handle: Handle | None = None

    def __call__(self, context: RequestContext, header: RequestHeader, request: Any) -> Any:
        handle = self._handle
        if handle is None:
            handle = self._handle = load(self.api)
            entry = HANDLERS.get(self.api)
            if entry is not None and entry[0] is self:
                HANDLERS[self.api] = (handle, entry[1], entry[2])
        return handle(context, header, request)


HANDLERS: dict[int, tuple[Handle, int, int]] = {api: (_FirstCall(api), lowest, highest) for api, (lowest, highest) in SERVED.items()}
