"""A Metadata answer kept for a request that comes again (server/handlers/metadata.py `_keep`)
is never given once the topics it names changed: new partitions, a topic deleted and created
again, a topic that did not exist yet. Raw Metadata v12 frames over a real socket, the changes
made by a stock admin client."""

from __future__ import annotations

import socket
import time
from typing import Any

from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from compat.sockets import read_frame
from ottla.wire.protocol import decode_response, encode_request

METADATA, VERSION = 3, 12


class _MetadataClient:
    def __init__(self, bootstrap: str) -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.correlation_id = 0

    def ask(self, *names: str, topic_operations: bool = False) -> dict[str, Any]:
        self.correlation_id += 1
        body = {
            "topics": [{"topic_id": bytes(16), "name": name} for name in names],
            "allow_auto_topic_creation": False,
            "include_topic_authorized_operations": topic_operations,
        }
        self.sock.sendall(encode_request(METADATA, VERSION, self.correlation_id, body, client_id="metadata-answers"))
        frame = read_frame(self.sock)
        assert frame is not None
        correlation_id, answer = decode_response(METADATA, VERSION, frame)
        assert correlation_id == self.correlation_id
        return answer

    def close(self) -> None:
        self.sock.close()


def _topics(answer: dict[str, Any]) -> dict[str, tuple[int, bytes, int]]:
    return {t["name"]: (t["error_code"], t["topic_id"], len(t["partitions"])) for t in answer["topics"]}


def _admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def _until(condition: Any) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "the change never showed"
        time.sleep(0.05)


def test_a_kept_answer_follows_new_partitions_and_a_topic_made_again(ottla_broker_fn: Any) -> None:
    bootstrap = ottla_broker_fn.bootstrap_servers
    admin = _admin(bootstrap)
    client = _MetadataClient(bootstrap)
    try:
        first = client.ask("kept", "kept-other")
        assert _topics(first) == {"kept": (3, bytes(16), 0), "kept-other": (3, bytes(16), 0)}  # UNKNOWN_TOPIC_OR_PARTITION
        for future in admin.create_topics([NewTopic("kept", 1), NewTopic("kept-other", 2)]).values():
            future.result(30)
        made = client.ask("kept", "kept-other")
        assert [(code, count) for code, _, count in _topics(made).values()] == [(0, 1), (0, 2)]
        again = client.ask("kept", "kept-other")
        assert again == made
        assert client.ask("kept", "kept-other", topic_operations=True)["topics"][0]["topic_authorized_operations"] > 0
        assert client.ask("kept", "kept-other") == made

        for future in admin.create_partitions([NewPartitions("kept", 3)]).values():
            future.result(30)
        grown = client.ask("kept", "kept-other")
        assert _topics(grown)["kept"] == (0, _topics(made)["kept"][1], 3)
        assert [p["partition_index"] for p in grown["topics"][0]["partitions"]] == [0, 1, 2]

        for future in admin.delete_topics(["kept"]).values():
            future.result(30)
        _until(lambda: _topics(client.ask("kept", "kept-other"))["kept"][0] == 3)
        for future in admin.create_topics([NewTopic("kept", 1)]).values():
            future.result(30)
        remade = _topics(client.ask("kept", "kept-other"))
        assert remade["kept"][0] == 0 and remade["kept"][2] == 1
        assert remade["kept"][1] not in (bytes(16), _topics(made)["kept"][1])
        assert remade["kept-other"] == _topics(made)["kept-other"]
    finally:
        client.close()
