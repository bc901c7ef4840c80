"""A listener besides the first written with the host 0.0.0.0 is refused with KafkaConfig's own
message when no `advertised.listeners` says what to advertise instead, as Kafka 4.4 refuses
any advertised broker listener at 0.0.0.0 and advertises `listeners` themselves without it."""

from __future__ import annotations

import signal

from tests.server.test_advertised_wildcard import NONROUTABLE, _metadata_broker, _serve

PROTOCOLS = "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,EXTERNAL:PLAINTEXT"


def test_an_extra_listener_at_the_meta_address_is_refused_without_advertised_listeners() -> None:
    process, ready, before = _serve("--set", "listeners=PLAINTEXT://127.0.0.1:0,EXTERNAL://0.0.0.0:0", "--set", PROTOCOLS)
    assert (ready, process.returncode) == ("", 2)
    assert before == [f"ottla: {NONROUTABLE}"]


def test_an_extra_listener_at_the_meta_address_is_served_where_advertised_listeners_name_its_host() -> None:
    process, ready, before = _serve("--set", "listeners=PLAINTEXT://127.0.0.1:0,EXTERNAL://0.0.0.0:0", "--set", PROTOCOLS,
                                    "--set", "advertised.listeners=EXTERNAL://127.0.0.1:0")
    try:
        assert ready, before
        listeners = dict(field.split("=", 1) for field in ready.split()[2:])["listeners"]
        external = next(endpoint for endpoint in listeners.split(",") if endpoint.startswith("EXTERNAL://"))
        port = int(external.rpartition(":")[2])
        assert _metadata_broker(port) == ("127.0.0.1", port)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
