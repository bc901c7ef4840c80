"""`compat.kafka.run_tool` runs Kafka's tools in a shared JVM (compat/java/toolserver): a caller
must get what the tool's own JVM gives (exit code, stdout, stdin fed through), and a tool that
outlasts its timeout must raise TimeoutExpired without taking the next run down with it."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from compat import kafka
from compat.kafka import run_tool
from tests.integration.conftest import unavailable


def test_a_tool_in_the_shared_jvm_answers_as_in_its_own_and_a_hung_one_times_out(ottla_bootstrap: str) -> None:
    if not kafka.is_fetched():
        unavailable(f"reference Kafka {kafka.KAFKA_VERSION} not fetched: run `python -m compat.kafka --fetch`")
    bootstrap = ["--bootstrap-server", ottla_bootstrap]
    topic = f"tool-server-{uuid.uuid4().hex[:8]}"

    shared = run_tool("kafka-topics", *bootstrap, "--describe", "--topic", topic)
    own = subprocess.run(kafka._jvm(kafka.TOOLS["kafka-topics"], *bootstrap, "--describe", "--topic", topic, heap="512m",
                                    log_level="WARN", log_target="SYSTEM_ERR"), capture_output=True, text=True, timeout=120)
    assert (shared.returncode, shared.stdout) == (own.returncode, own.stdout) == (1, own.stdout)
    assert f"Topic '{topic}' does not exist as expected" in shared.stdout
    assert "IllegalArgumentException" in shared.stderr, "its log line goes to its own stderr"

    produced = run_tool("kafka-console-producer", *bootstrap, "--topic", topic, input="a\nb\n")
    assert produced.returncode == 0, produced.stderr[-2000:]
    consumed = run_tool("kafka-console-consumer", *bootstrap, "--topic", topic, "--from-beginning", "--max-messages", "2",
                        "--timeout-ms", "30000")
    assert (consumed.returncode, consumed.stdout.split()) == (0, ["a", "b"]), consumed.stderr[-2000:]

    with pytest.raises(subprocess.TimeoutExpired):
        run_tool("kafka-console-consumer", *bootstrap, "--topic", topic, timeout=5)
    listed = run_tool("kafka-topics", *bootstrap, "--list")
    assert topic in listed.stdout.split()
