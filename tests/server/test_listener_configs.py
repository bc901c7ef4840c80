"""With several listeners, DescribeConfigs shows every one of them in `listeners` and
`advertised.listeners`, as Kafka does, and the ready line names them all for the harness."""

from __future__ import annotations

from compat.harness import READY_RE, OttlaBroker
from ottla.server.admin.client import KafkaClient
from ottla.server.config import BrokerConfig
from ottla.testing import running_broker
from ottla.wire.api import ApiKey

SETTINGS = {
    "listeners": "PLAINTEXT://127.0.0.1:0,INTERNAL://127.0.0.1:0",
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT",
}


def _described(bootstrap: str) -> dict[str, str | None]:
    body = {
        "resources": [{"resource_type": 4, "resource_name": "1", "configuration_keys": ["listeners", "advertised.listeners"]}],
        "include_synonyms": False,
        "include_documentation": False,
    }
    with KafkaClient(bootstrap, timeout=10) as client:
        response = client.call(ApiKey.DESCRIBE_CONFIGS, body)[1]
    return {entry["name"]: entry["value"] for entry in response["results"][0]["configs"]}


def test_describe_configs_shows_every_listener() -> None:
    config = BrokerConfig.from_settings({**SETTINGS, "advertised.listeners": "INTERNAL://internal.example:9999", "data.dir": None})
    with running_broker(config=config) as broker:
        assert broker.broker is not None
        ports = broker.broker.bound_ports
        described = _described(f"127.0.0.1:{ports['INTERNAL']}")
    first = f"PLAINTEXT://127.0.0.1:{ports['PLAINTEXT']}"
    # INTERNAL is advertised at another port than it is bound to: its configured 0 stays, as in Kafka.
    assert described == {"listeners": f"{first},INTERNAL://127.0.0.1:0", "advertised.listeners": f"{first},INTERNAL://internal.example:9999"}


def test_the_ready_line_names_every_listener() -> None:
    line = b"ottla ready bootstrap=127.0.0.1:9092 data=memory http=http://127.0.0.1:8080 listeners=PLAINTEXT://127.0.0.1:9092,SSL://localhost:9093\n"
    match = READY_RE.search(line)
    assert match is not None and (match["port"], match["listeners"]) == (b"9092", b"PLAINTEXT://127.0.0.1:9092,SSL://localhost:9093")
    with OttlaBroker(settings=SETTINGS) as broker:
        assert set(broker.listeners) == {"PLAINTEXT", "INTERNAL"}
        assert broker.listeners["PLAINTEXT"] == broker.bootstrap
        assert _described(broker.listeners["INTERNAL"])["advertised.listeners"] == ",".join(f"{name}://{address}" for name, address in broker.listeners.items())
