"""A schema registry URL's credentials never reach a console answer: a registry that says no,
or one that does not answer, is named without its userinfo."""

from __future__ import annotations

import base64
import json
import socket
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ottla.testing import running_broker

SECRET = "hunter2-registry-password"


class _Missing(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _schema_error(registry_url: str) -> str:
    with running_broker(data_dir=None, http_port=0, console_schema_registry_url=registry_url) as broker:
        broker.create_topic("framed")
        assert broker.broker is not None and broker.broker.http is not None
        url = broker.broker.http.url
        with urllib.request.urlopen(url + "/api/csrf", timeout=30) as answer:
            token = json.load(answer)["token"]
        value = base64.b64encode(b"\x00\x00\x00\x00\x07payload").decode()
        produce = urllib.request.Request(
            url + "/api/topics/framed/messages",
            data=json.dumps({"value": value, "encoding": "base64"}).encode(),
            method="POST",
            headers={"X-CSRF-Token": token, "Content-Type": "application/json"},
        )
        urllib.request.urlopen(produce, timeout=30).close()
        with urllib.request.urlopen(url + "/api/topics/framed/messages?newest=1", timeout=30) as answer:
            text = answer.read().decode()
    assert SECRET not in text and "reader:" not in text, text
    return str(json.loads(text)["messages"][0]["value_schema"]["error"])


def test_registry_errors_name_the_url_without_its_credentials() -> None:
    registry = ThreadingHTTPServer(("127.0.0.1", 0), _Missing)
    threading.Thread(target=registry.serve_forever, daemon=True).start()
    try:
        port = registry.server_address[1]
        assert _schema_error(f"http://reader:{SECRET}@127.0.0.1:{port}") == f"schema 7 is not in the registry at http://127.0.0.1:{port}"
    finally:
        registry.shutdown()
        registry.server_close()
    closed = _free_port()
    assert _schema_error(f"http://reader:{SECRET}@127.0.0.1:{closed}/").startswith(f"the registry at http://127.0.0.1:{closed} did not answer for schema 7")


def test_the_registry_url_is_described_as_sensitive() -> None:
    """It may carry a user and password: DescribeConfigs and the console's broker configs
    show it as Kafka shows a password, without its value."""
    from compat.differential import _Connection
    from ottla.wire.api import ApiKey

    with running_broker(data_dir=None, http_port=0, console_schema_registry_url=f"http://reader:{SECRET}@127.0.0.1:1") as broker:
        connection = _Connection(broker.bootstrap_servers)
        try:
            described = connection.call(ApiKey.DESCRIBE_CONFIGS, 4, {"resources": [
                {"resource_type": 4, "resource_name": "1", "configuration_keys": ["console.schema.registry.url"]}],
                "include_synonyms": False, "include_documentation": False})
        finally:
            connection.close()
        [entry] = described["results"][0]["configs"]
        assert (entry["value"], entry["is_sensitive"]) == (None, True)
        assert broker.broker is not None and broker.broker.http is not None
        with urllib.request.urlopen(broker.broker.http.url + "/api/broker/configs", timeout=30) as answer:
            assert SECRET not in answer.read().decode()
