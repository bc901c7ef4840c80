"""Every listener of `ottla serve` that binds every interface is advertised by this machine's
canonical host name, never 0.0.0.0, as Kafka advertises any listener without a host
(ListenerInfo.withWildcardHostnamesResolved): the extra listeners of `listeners=` as the first."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

from kafka.protocol.metadata.metadata import MetadataRequest, MetadataResponse

from kafka_wire import RawClient, make
from tests.server.test_advertised_wildcard import _canonical_host_name

PROTOCOLS = "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,EXTERNAL:PLAINTEXT"


def _advertised(*settings: str) -> dict[str, tuple[str, int]]:
    """Each listener of `ottla serve --set <settings>` by name: the host and port Metadata,
    asked on that listener, gives for the broker."""
    args = [arg for setting in settings for arg in ("--set", setting)]
    process = subprocess.Popen([sys.executable, "-m", "ottla", "serve", "--memory", *args], stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    try:
        before = []
        for line in process.stderr:
            if line.startswith("ottla ready"):
                threading.Thread(target=process.stderr.read, daemon=True).start()
                break
            before.append(line)
        else:
            raise AssertionError(f"ottla serve stopped: {before}")
        listeners = dict(field.split("=", 1) for field in line.split()[2:])["listeners"]
        answers = {}
        for endpoint in listeners.split(","):
            name, _, address = endpoint.partition("://")
            port = int(address.rpartition(":")[2])
            with RawClient(f"127.0.0.1:{port}") as raw:
                response = raw.call(make(MetadataRequest, dict(topics=[], allow_auto_topic_creation=False)), 9, MetadataResponse)
            [broker] = response.brokers
            answers[name] = (broker.host, broker.port)
        return answers
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)


def test_a_second_listener_without_a_host_is_advertised_by_the_machines_name():
    answers = _advertised("listeners=PLAINTEXT://:0,EXTERNAL://:0", PROTOCOLS)
    canonical = _canonical_host_name()
    assert canonical != "0.0.0.0"
    assert {name: host for name, (host, _) in answers.items()} == {"PLAINTEXT": canonical, "EXTERNAL": canonical}


def test_an_advertised_listener_without_a_host_takes_the_machines_name():
    answers = _advertised("listeners=PLAINTEXT://127.0.0.1:0,EXTERNAL://127.0.0.1:0", PROTOCOLS, "advertised.listeners=EXTERNAL://:0")
    assert answers["EXTERNAL"][0] == _canonical_host_name()
    assert answers["PLAINTEXT"][0] == "127.0.0.1"


def test_a_second_listener_with_a_host_keeps_it():
    answers = _advertised("listeners=PLAINTEXT://:0,EXTERNAL://127.0.0.1:0", PROTOCOLS)
    assert answers["EXTERNAL"][0] == "127.0.0.1"
