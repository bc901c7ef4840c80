"""Kafka tools' conventions on the `ottla` command line, checked on real `ottla` processes:
`--version`, Kafka's `--bootstrap-server` and kcat's `-b`, start-up errors that name their real
cause, and one rule for a key whichever of the three configuration sources gives it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from importlib import metadata
from pathlib import Path

import pytest

from ottla.testing import running_broker


def _ottla(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ottla", *args], capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}
    )


def _serve(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], list[str]]:
    """Start `ottla serve --port 0`; the process and its stderr lines up to and including the
    ready line (or all of them, when it exits first)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ottla", "serve", "--port", "0", *args],
        stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})},
    )
    assert process.stderr is not None
    lines = []
    for line in process.stderr:
        lines.append(line.rstrip("\n"))
        if line.startswith("ottla ready"):
            # Keep draining: a broker blocked on a full stderr pipe stops answering.
            threading.Thread(target=process.stderr.read, daemon=True).start()
            return process, lines
    process.wait(timeout=10)
    return process, lines


def _stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0


def test_version_prints_the_package_version():
    done = _ottla("--version")
    assert (done.returncode, done.stdout.strip()) == (0, f"ottla {metadata.version('ottla')}")


@pytest.mark.parametrize("flag", ["--bootstrap", "--bootstrap-server", "-b"])
def test_client_commands_take_kafkas_and_kcats_bootstrap_flags(flag):
    with running_broker(data_dir=None) as broker:
        broker.create_topic("flagged")
        done = _ottla("topics", "list", flag, broker.bootstrap_servers, "--json")
        assert done.returncode == 0, done.stderr
        assert "flagged" in json.dumps(json.loads(done.stdout))


def test_a_data_dir_that_cannot_be_created_is_named(tmp_path: Path):
    occupied = tmp_path / "a-file"
    occupied.write_text("")
    process, lines = _serve("--data-dir", str(occupied / "data"))
    assert process.returncode == 1
    assert lines == [f"ottla: cannot use data directory {occupied / 'data'}: Not a directory"]


def test_a_port_in_use_is_named():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process, lines = _serve("--memory", "--port", str(port))
    assert process.returncode == 1
    assert lines == [f"ottla: cannot listen on 127.0.0.1:{port}: Address already in use"]


def _as_env(name: str) -> str:
    return "OTTLA_" + name.replace(".", "_").upper()


@pytest.mark.parametrize("source", ["file", "environment", "set"])
def test_the_three_sources_judge_a_key_alike(tmp_path: Path, source: str):
    """A Kafka key Ottla does not act on is warned about and kept; a key nobody knows is
    warned about and ignored (Kafka logs and ignores it); the broker starts either way."""
    settings = {"offsets.commit.timeout.ms": "6000", "zookeeper.connect": "localhost:2181"}
    args: list[str] = ["--memory"]
    env: dict[str, str] = {}
    if source == "file":
        properties = tmp_path / "server.properties"
        properties.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        args += ["--config", str(properties)]
        spell = str
    elif source == "environment":
        env = {_as_env(k): v for k, v in settings.items()}
        spell = _as_env
    else:
        args += [item for k, v in settings.items() for item in ("--set", f"{k}={v}")]
        spell = str
    process, lines = _serve(*args, env=env)
    try:
        assert lines[-1].startswith("ottla ready"), lines
        warnings = lines[:-1]
        assert len(warnings) == 2, warnings
        assert f"setting {spell('offsets.commit.timeout.ms')} " in warnings[0] and "has no effect" in warnings[0]
        assert f"ignoring setting {spell('zookeeper.connect')} " in warnings[1]
        assert "neither Ottla nor Kafka 4.4 knows it" in warnings[1]
    finally:
        _stop(process)


@pytest.mark.parametrize("source", ["file", "environment", "set"])
def test_a_typo_of_an_ottla_setting_stops_start_up_in_every_source(tmp_path: Path, source: str):
    args: list[str] = ["--memory"]
    env: dict[str, str] = {}
    typo, meant = "auto.create.topic.enable", "auto.create.topics.enable"
    if source == "file":
        properties = tmp_path / "server.properties"
        properties.write_text(f"{typo}=false\n")
        args += ["--config", str(properties)]
        where = f"from {properties}"
    elif source == "environment":
        env = {_as_env(typo): "false"}
        typo, meant, where = _as_env(typo), _as_env(meant), "in the environment"
    else:
        args += ["--set", f"{typo}=false"]
        where = "given with --set"
    process, lines = _serve(*args, env=env)
    assert process.returncode == 2
    assert lines == [f"ottla: unknown setting {typo} {where}: did you mean {meant}?"]
