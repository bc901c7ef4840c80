"""`ottla serve` stopped at start-up, as a person sees it: one line naming what failed, an exit
status, never a traceback. Real `ottla serve` processes."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ottla.server.admin.commands import PASSWORD_VARIABLE

README = Path(__file__).resolve().parents[2] / "README.md"


def serve(*args: str, env: dict[str, str] | None = None, command: tuple[str, ...] = ("-m", "ottla", "serve")) -> subprocess.CompletedProcess[str]:
    """Run a broker that is expected to stop before it is ready."""
    return subprocess.run(
        [sys.executable, *command, *args], capture_output=True, text=True, timeout=30, env={**os.environ, **(env or {})}
    )


def one_line(result: subprocess.CompletedProcess[str], status: int) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == status, result.stderr
    [line] = result.stderr.splitlines()
    return line


def serve_until_ready(*args: str, env: dict[str, str] | None = None) -> tuple[list[str], str]:
    """Run a broker to its ready line, then stop it with SIGTERM: the lines before the ready
    line, and the ready line."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ottla", "serve", *args], stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}
    )
    assert process.stderr is not None
    before = []
    try:
        for line in process.stderr:
            if line.startswith("ottla ready"):
                return before, line.rstrip("\n")
            before.append(line.rstrip("\n"))
        raise AssertionError(f"no ready line: {before}")
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)


def resolver_error(host: str) -> str:
    try:
        socket.getaddrinfo(host, 0)
    except socket.gaierror as exc:
        return str(exc.strerror)
    pytest.skip(f"{host} resolves here")


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port another process listens on, the one after it free (a cluster's node 2 takes it)."""
    for _ in range(20):
        held = socket.create_server(("127.0.0.1", 0))
        port = held.getsockname()[1]
        try:
            socket.create_server(("127.0.0.1", port - 1)).close()
        except OSError:
            held.close()
            continue
        yield port
        held.close()
        return
    pytest.skip("no free port below a free port")


def test_a_taken_http_port_is_named(held_port):
    line = one_line(serve("--memory", "--port", "0", "--http-port", str(held_port)), 1)
    assert line == f"ottla: cannot listen for HTTP on 127.0.0.1:{held_port}: Address already in use"


def test_a_cluster_nodes_taken_port_is_named(held_port):
    line = one_line(serve("--memory", "--port", str(held_port - 1), "--nodes", "2", "--http-port", "-1"), 1)
    assert line == f"ottla: cannot listen on 127.0.0.1:{held_port}: Address already in use"


@pytest.mark.parametrize(
    "args, message",
    [
        (("--host", "nosuch.invalid", "--port", "0"), "ottla: cannot listen on nosuch.invalid:0: {}"),
        (("--port", "0", "--http-host", "nosuch.invalid", "--http-port", "0"), "ottla: cannot listen for HTTP on nosuch.invalid:0: {}"),
    ],
)
def test_a_host_that_does_not_resolve_is_named_with_the_resolvers_reason(args, message):
    assert one_line(serve("--memory", *args), 1) == message.format(resolver_error("nosuch.invalid"))


def test_a_properties_file_is_read_as_kafka_reads_it(tmp_path):
    # ISO-8859-1 bytes, \\uXXXX and other escapes, a continuation: java.util.Properties.load.
    properties = tmp_path / "server.properties"
    properties.write_bytes(b"# r\xe9glages\nlog.dirs=" + bytes(tmp_path) + b"/caf\xe9-\\u00e9\\u0041\\:\\\n  x\n")
    before, ready = serve_until_ready("--config", str(properties), "--port", "0", "--http-port", "-1")
    assert before == []
    assert f" data={tmp_path}/café-éA:x" in f"{ready} "
    assert (tmp_path / "café-éA:x").is_dir()


def test_a_utf8_properties_file_stays_utf8(tmp_path):
    properties = tmp_path / "server.properties"
    properties.write_text(f"log.dirs={tmp_path}/café\n", encoding="utf-8")
    _, ready = serve_until_ready("--config", str(properties), "--port", "0", "--http-port", "-1")
    assert f" data={tmp_path}/café " in f"{ready} "


def test_a_properties_file_that_cannot_be_read_is_a_config_error(tmp_path):
    properties = tmp_path / "server.properties"
    properties.write_bytes(b"log.dirs=/tmp/x\\u00zz\n")
    assert one_line(serve("--memory", "--config", str(properties)), 2) == f"ottla: cannot read {properties}: malformed \\uxxxx escape in /tmp/x\\u00zz"


@pytest.mark.parametrize(
    "fault, message",
    [
        ('{"apii": "fetch"}', "ottla: cannot set the fault {'apii': 'fetch'}: Faults.add() got an unexpected keyword argument 'apii'"),
        ("[1]", "ottla: a fault is an object of Faults.add's keyword arguments, not [1]"),
        ('{"api": "fetch", "delay_ms": "5"}', "ottla: cannot set the fault {'api': 'fetch', 'delay_ms': '5'}: "),
    ],
)
def test_a_fault_of_the_wrong_shape_is_a_usage_error(fault, message):
    result = serve("serve", "--memory", "--port", "0", "--fault", fault, command=("-m", "ottla.testing"))
    assert one_line(result, 2).startswith(message)


def test_certificates_into_a_file_are_one_line(tmp_path):
    target = tmp_path / "taken"
    target.write_text("")
    result = subprocess.run([sys.executable, "-m", "ottla", "certs", str(target)], capture_output=True, text=True, timeout=60)
    assert one_line(result, 1) == f"ottla: cannot write certificates to {target}: Not a directory"


@pytest.mark.parametrize(
    "args, message",
    [
        (("--port", "65535", "--nodes", "3"), "ottla: --nodes 3 needs ports 65535 to 65537, past 65535: node k listens on the port + k - 1"),
        (("--port", "0", "--nodes", "0"), "ottla: --nodes must be at least 1, not 0"),
        (("--port", "0", "--nodes", "-1"), "ottla: --nodes must be at least 1, not -1"),
    ],
)
def test_nodes_are_checked_before_start(args, message):
    assert one_line(serve("--memory", "--http-port", "-1", *args), 2) == message


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, -signal.SIGTERM)])
def test_a_signal_during_start_up_stops_it_quietly(tmp_path, signum, status):
    # Start-up waits on a --config FIFO that nobody writes: the signal lands inside it.
    fifo = tmp_path / "server.properties"
    os.mkfifo(fifo)
    process = subprocess.Popen([sys.executable, "-m", "ottla", "serve", "--memory", "--config", str(fifo)], stderr=subprocess.PIPE, text=True)
    wchan = Path(f"/proc/{process.pid}/wchan")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (wchan.exists() and "fifo" in wchan.read_text()):
        time.sleep(0.02)
    time.sleep(0.1)
    process.send_signal(signum)
    _, err = process.communicate(timeout=30)
    assert (process.returncode, err) == (status, "")


def test_client_variables_are_not_broker_settings():
    before, _ = serve_until_ready("--memory", "--port", "0", env={PASSWORD_VARIABLE: "secret"})
    assert before == []


def _readme() -> str:
    return " ".join(README.read_text().split())


def test_readme_quotes_start_up_errors_as_printed(tmp_path):
    invalid = one_line(serve("--memory", "--set", "log.retention.ms=abc"), 2)
    assert f"`{invalid}`" in _readme()
    a_file = tmp_path / "afile"
    a_file.write_text("")
    not_a_directory = one_line(serve("--data-dir", str(a_file), "--port", "0"), 1)
    assert f"`{not_a_directory.replace(str(a_file), 'DIR')}`" in _readme()


def test_json_logs_leave_the_ready_line_plain_as_documented():
    assert "the ready line and start-up errors stay plain text" in _readme()
    before, ready = serve_until_ready("--memory", "--port", "0", "--log-format", "json", "--set", "no.such.setting.anywhere=1")
    assert before and all(line.startswith("{") for line in before)
    assert re.fullmatch(r"ottla ready bootstrap=\S+ data=memory", ready)


def test_the_disk_mark_moves_per_test_brokers_and_warns_on_the_session_one(tmp_path):
    (tmp_path / "test_marked.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.ottla_disk\n"
        "def test_per_test(ottla_broker_fn):\n"
        "    assert ottla_broker_fn.broker.data_dir is not None\n\n"
        "@pytest.mark.ottla_disk\n"
        "def test_session(ottla_bootstrap):\n"
        "    pass\n\n"
        "def test_unmarked(ottla_bootstrap):\n"
        "    pass\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(tmp_path)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout
    # The one warning, on the marked test that uses the session broker.
    assert re.findall(r"(test_marked.py:\d+): PytestWarning: ottla_disk does not move the session broker", result.stdout) == ["test_marked.py:7"]
