"""A share group member over one raw connection, speaking Ottla's own codec: shared by the
tests that need a member assigned before they act."""

from __future__ import annotations

import base64
import socket
import time
import uuid
from typing import Any

from compat.sockets import read_frame
from ottla.testing import ThreadedBroker
from ottla.wire.api import ApiKey
from ottla.wire.protocol import decode_response, encode_request


class ShareMember:
    def __init__(self, broker: ThreadedBroker) -> None:
        host, port = broker.bootstrap_servers.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        self.correlation = 0
        self.member_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")

    def close(self) -> None:
        self.sock.close()

    def call(self, api: ApiKey, version: int, body: dict[str, Any]) -> dict[str, Any]:
        self.correlation += 1
        self.sock.sendall(encode_request(api, version, self.correlation, body))
        frame = read_frame(self.sock)
        assert frame is not None
        return decode_response(api, version, frame)[1]

    def heartbeat(self, group: str, member_epoch: int, topics: list[str]) -> dict[str, Any]:
        """One ShareGroupHeartbeat v1; the subscription is sent only when joining (epoch 0)."""
        return self.call(ApiKey.SHARE_GROUP_HEARTBEAT, 1, {"group_id": group, "member_id": self.member_id, "member_epoch": member_epoch,
                                                           "rack_id": None, "subscribed_topic_names": topics if member_epoch == 0 else None})

    def join_until_assigned(self, group: str, topics: list[str]) -> list[Any]:
        """Heartbeats until the member is assigned partitions, which happens once the
        share-partitions' state is initialized: the assignment's topic partitions."""
        member_epoch, assigned = 0, []
        for attempt in range(300):
            time.sleep(0.1 if attempt else 0)
            beat = self.heartbeat(group, member_epoch, topics)
            assert beat["error_code"] == 0
            member_epoch = beat["member_epoch"]
            assigned = (beat["assignment"] or {}).get("topic_partitions") or assigned
            if assigned:
                break
        return assigned
