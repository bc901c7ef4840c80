"""Share sessions (KIP-932): the partitions a member's ShareFetches cover, and their epoch.

Kafka's ShareSessionCache: ShareSessionEpoch 0 opens a session (replacing the member's
previous one), each later request must carry the epoch the last one left (then +1), and
-1 closes it. Each Kafka broker has a cache of its own; the nodes of a cluster in one process
share one coordinator, so a session is keyed by (node, group, member): a member fetching from
three partition leaders holds three sessions, each with its own epoch and partitions.
A session that ends (closed, replaced, or its member gone) runs its `on_end` callbacks once:
how a ShareFetch parked on it learns to answer at once rather than at its max wait.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeGuard

from ottla.wire.errors import ErrorCode

INITIAL_EPOCH = 0
FINAL_EPOCH = -1
# KafkaApis.isMemberIdValid: the longest member id a share request may carry (a UUID's text).
_MAX_MEMBER_ID_LENGTH = 36


def member_id_valid(member_id: str | None) -> TypeGuard[str]:
    """KafkaApis.isMemberIdValid, checked by ShareGroupHeartbeat, ShareFetch and
    ShareAcknowledge right after the group's authorization: present, not empty, and no
    longer than a UUID's text (INVALID_REQUEST otherwise)."""
    return member_id is not None and 0 < len(member_id) <= _MAX_MEMBER_ID_LENGTH

# (topic id, partition)
SharePartitionKey = tuple[bytes, int]


@dataclass(slots=True, eq=False)
class ShareSession:
    node_id: int
    group_id: str
    member_id: str
    epoch: int
    # The client connection ("host:port") of the session's latest request: when it closes,
    # the session ends (Kafka 4.4's ShareSessionCache does the same on disconnect).
    connection: str = ""
    partitions: dict[SharePartitionKey, None] = field(default_factory=dict)
    # Partitions added to the session by a request after the first: the next ShareFetch that
    # fetches lists each once, records or not (Kafka's CachedSharePartition.requiresUpdateInResponse).
    unlisted: dict[SharePartitionKey, None] = field(default_factory=dict)
    on_end: list[Callable[[], None]] = field(default_factory=list)

    def end(self) -> None:
        callbacks, self.on_end = self.on_end, []
        for callback in callbacks:
            callback()


class ShareSessionCache:
    """Every node's sessions; `max_sessions` bounds each node's, as Kafka's per broker."""

    def __init__(self, max_sessions: int) -> None:
        self.max_sessions = max_sessions
        self.sessions: dict[tuple[int, str, str], ShareSession] = {}

    def get(self, node_id: int, group_id: str, member_id: str) -> ShareSession | None:
        return self.sessions.get((node_id, group_id, member_id))

    def open(self, node_id: int, group_id: str, member_id: str) -> ShareSession | ErrorCode:
        key = (node_id, group_id, member_id)
        if key not in self.sessions and sum(k[0] == node_id for k in self.sessions) >= self.max_sessions:
            return ErrorCode.SHARE_SESSION_LIMIT_REACHED
        session = ShareSession(node_id, group_id, member_id, 1)
        replaced = self.sessions.get(key)
        self.sessions[key] = session
        if replaced is not None:
            replaced.end()
        return session

    def advance(self, node_id: int, group_id: str, member_id: str, epoch: int) -> ShareSession | ErrorCode:
        """The session a request with `epoch` > 0 continues, its epoch moved on, or why not."""
        session = self.sessions.get((node_id, group_id, member_id))
        if session is None:
            return ErrorCode.SHARE_SESSION_NOT_FOUND
        if session.epoch != epoch:
            return ErrorCode.INVALID_SHARE_SESSION_EPOCH
        session.epoch = epoch + 1 if epoch < 2**31 - 1 else 1
        return session

    def close(self, node_id: int, group_id: str, member_id: str) -> ShareSession | None:
        session = self.sessions.pop((node_id, group_id, member_id), None)
        if session is not None:
            session.end()
        return session

    def of_member(self, group_id: str, member_id: str) -> list[ShareSession]:
        """The member's sessions, on every node."""
        return [session for (_, group, member), session in self.sessions.items() if (group, member) == (group_id, member_id)]

    def on_connection(self, connection: str) -> list[ShareSession]:
        return [session for session in self.sessions.values() if session.connection == connection]
