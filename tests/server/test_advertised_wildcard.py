"""`ottla serve --host 0.0.0.0` listens on every interface and never advertises 0.0.0.0, which
no client elsewhere can connect to: it advertises this machine's canonical host name, as Kafka
does for a listener without a host (ListenerInfo.withWildcardHostnamesResolved), and an
advertised 0.0.0.0 given outright is refused with KafkaConfig's own message."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading

import pytest
from kafka.protocol.metadata.metadata import MetadataRequest, MetadataResponse

from kafka_wire import RawClient, make

NONROUTABLE = "advertised.listeners cannot use the nonroutable meta-address 0.0.0.0. Use a routable IP address."


def _canonical_host_name() -> str:
    """InetAddress.getLocalHost().getCanonicalHostName(), as this machine answers it."""
    address = str(socket.getaddrinfo(socket.gethostname(), None)[0][4][0])
    try:
        return socket.gethostbyaddr(address)[0]
    except OSError:
        return address


def _serve(*args: str) -> tuple[subprocess.Popen, str, list[str]]:
    """`ottla serve` with `args`: the process, its ready line ('' if it exited first) and the
    stderr lines before it."""
    process = subprocess.Popen([sys.executable, "-m", "ottla", "serve", "--memory", "--port", "0", *args], stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    before = []
    for line in process.stderr:
        if line.startswith("ottla ready"):
            threading.Thread(target=process.stderr.read, daemon=True).start()
            return process, line, before
        before.append(line.rstrip("\n"))
    process.wait(timeout=10)
    return process, "", before


def _metadata_broker(port: int) -> tuple[str, int]:
    with RawClient(f"127.0.0.1:{port}") as raw:
        response = raw.call(make(MetadataRequest, dict(topics=[], allow_auto_topic_creation=False)), 9, MetadataResponse)
    [broker] = response.brokers
    return broker.host, broker.port


@pytest.mark.parametrize("args", [["--host", "0.0.0.0"], ["--set", "listeners=PLAINTEXT://:0"]])
def test_every_interface_is_advertised_by_the_machines_name(args):
    process, ready, before = _serve(*args)
    try:
        assert ready, before
        bootstrap = ready.split()[2].split("=", 1)[1]
        host, _, port = bootstrap.rpartition(":")
        assert host == _canonical_host_name() != "0.0.0.0"
        # Bound on every interface: reached through the loopback, it names the machine.
        assert _metadata_broker(int(port)) == (host, int(port))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)


def test_an_advertised_host_is_kept_when_binding_every_interface():
    process, ready, before = _serve("--host", "0.0.0.0", "--advertised-host", "kafka.example")
    try:
        assert ready, before
        port = int(ready.split()[2].rpartition(":")[2])
        assert _metadata_broker(port) == ("kafka.example", port)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)


@pytest.mark.parametrize(
    "args",
    [["--advertised-host", "0.0.0.0"], ["--set", "advertised.host=0.0.0.0"], ["--set", "advertised.listeners=PLAINTEXT://0.0.0.0:9092"]],
)
def test_advertising_the_meta_address_is_refused_with_kafkas_message(args):
    process, ready, before = _serve(*args)
    assert (ready, process.returncode) == ("", 2)
    assert before == [f"ottla: {NONROUTABLE}"]
