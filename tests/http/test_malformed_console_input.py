"""Malformed console input is answered with a 4xx, never a 500 nor a traceback in the log, and a
stored record no parser can take is shown as it is."""

from __future__ import annotations

import json
import logging
import socket
import urllib.error
import urllib.request
from typing import Any

import pytest

from ottla.testing import running_broker


def test_malformed_input_is_refused_with_a_4xx_and_logs_no_error(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    with running_broker(data_dir=None, http_port=0) as broker:
        broker.create_topic("t")
        assert broker.broker is not None and broker.broker.http is not None
        url = broker.broker.http.url
        with urllib.request.urlopen(url + "/api/csrf", timeout=30) as answer:
            token = json.load(answer)["token"]

        def call(method: str, path: str, raw: bytes | None = None, body: Any = None) -> tuple[int, Any]:
            data = raw if raw is not None else None if body is None else json.dumps(body).encode()
            request = urllib.request.Request(url + path, data=data, method=method, headers={"X-CSRF-Token": token, "Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:
                    return answer.status, json.load(answer)
            except urllib.error.HTTPError as error:
                return error.code, json.load(error)

        deep = b"[" * 100_000
        assert call("POST", "/api/topics", deep)[0] == 400
        assert call("POST", "/api/faults", deep)[0] == 400
        for timestamp in (1 << 63, 10**30, -5):
            assert call("POST", "/api/topics/t/messages", body={"value": "v", "timestamp": timestamp})[0] == 400
        for body in (b'{"value": "\\ud800"}', b'{"key": "\\udfff", "value": "v"}', b'{"value": "v", "headers": {"h": "\\ud800"}}', b'{"value": "v", "headers": {"\\ud800": "x"}}'):
            status, answer = call("POST", "/api/topics/t/messages", body)
            assert status == 400 and "surrogate" in answer["error"], body
        assert call("DELETE", "/api/faults/%C2%B2")[0] == 404

        host, port = url.removeprefix("http://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=30) as conn:
            conn.sendall(
                b"POST /api/topics HTTP/1.1\r\nHost: localhost\r\nX-CSRF-Token: " + token.encode()
                + b"\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\nConnection: close\r\n\r\nabcd"
            )
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 400"), answer[:200]

        poison = "[" * 60_000  # under the shown size: parsed as JSON when read with encoding=json
        assert call("POST", "/api/topics/t/messages", body={"value": poison, "partition": 0})[0] == 200
        assert call("POST", "/api/topics/t/messages", body={"value": '{"ok": 1}', "partition": 0})[0] == 200
        status, read = call("GET", "/api/topics/t/messages?newest=10&encoding=json")
        assert status == 200 and [message["value"] for message in read["messages"]] == [poison, {"ok": 1}]
        assert call("GET", "/api/topics/t")[1]["partitions"][0]["log_end_offset"] == 2  # nothing refused was written
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR] == []


def test_a_node_id_that_is_not_ascii_digits_is_no_node() -> None:
    """"²".isdigit() is true and int() refuses it: the node controls answer 404, not 500."""
    with running_broker(data_dir=None, http_port=0, nodes=2) as broker:
        assert broker.broker is not None and broker.broker.http is not None
        url = broker.broker.http.url
        with urllib.request.urlopen(url + "/api/csrf", timeout=30) as answer:
            token = json.load(answer)["token"]
        request = urllib.request.Request(url + "/api/cluster/nodes/%C2%B2/stop", data=b"", method="POST", headers={"X-CSRF-Token": token})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 404
