"""KIP-848 consumer groups with the Java client (kafka-clients 4.4 through Kafka's own tools),
on Ottla and on the reference Kafka 4.4, compared.

kafka-console-consumer with `group.protocol=consumer` reads a keyed topic as a member of a
consumer group and commits; kafka-consumer-groups then lists the group by type and describes
its offsets and state. Both brokers must show the same records read and the same committed
offsets, the same group type, assignor and state.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest

from compat.harness import OttlaBroker
from compat.tools import installed
from unavailable import unavailable

PARTITIONS = 3
RECORDS = 12

pytestmark = pytest.mark.slow


def _run(tool: str, *args: str, input: str | None = None) -> str:
    from compat.kafka import run_tool

    proc = run_tool(tool, *args, input=input, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def ottla(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    missing = installed()
    if missing:
        unavailable(missing)
    with OttlaBroker(tmp_path_factory.mktemp("kip848"), settings={"group.consumer.heartbeat.interval.ms": "500"}) as broker:
        yield broker.bootstrap


def _scenario(bootstrap: str) -> dict[str, object]:
    """What a consumer-protocol member read and what the tools then show of its group."""
    topic, group = f"kip848-{uuid.uuid4().hex[:8]}", f"kip848-group-{uuid.uuid4().hex[:8]}"
    bs = ["--bootstrap-server", bootstrap]
    _run("kafka-topics", *bs, "--create", "--topic", topic, "--partitions", str(PARTITIONS), "--replication-factor", "1")
    keyed = "".join(f"k{i}:v{i}\n" for i in range(RECORDS))
    _run("kafka-console-producer", *bs, "--topic", topic, "--reader-property", "parse.key=true", "--reader-property", "key.separator=:", input=keyed)
    consumed = _run(
        "kafka-console-consumer", *bs, "--topic", topic, "--group", group, "--from-beginning", "--max-messages", str(RECORDS),
        "--timeout-ms", "60000", "--consumer-property", "group.protocol=consumer",
        "--formatter-property", "print.key=true", "--formatter-property", "print.partition=true",
    )
    read = sorted(re.findall(r"Partition:(\d+)\s+(k\d+)\s+(v\d+)", consumed))
    listed = _run("kafka-consumer-groups", *bs, "--list", "--type", "consumer")
    classic = _run("kafka-consumer-groups", *bs, "--list", "--type", "classic")
    offsets = _run("kafka-consumer-groups", *bs, "--describe", "--group", group)
    state = _run("kafka-consumer-groups", *bs, "--describe", "--group", group, "--state")
    rows = sorted(
        (cols[2], cols[3], cols[4], cols[5])  # partition, current offset, log end offset, lag
        for cols in (line.split() for line in offsets.splitlines())
        if len(cols) >= 6 and cols[0] == group and cols[1] == topic
    )
    state_row = next(line.split() for line in state.splitlines() if line.startswith(group))
    return {
        "read": read,
        "listed": group in listed.split(),
        "listed_as_classic": group in classic.split(),
        "offsets": rows,
        # GROUP COORDINATOR(ID) ASSIGNMENT-STRATEGY STATE #MEMBERS: the coordinator differs.
        "state": state_row[-3:],
    }


def test_a_java_consumer_protocol_member_reads_and_commits_on_ottla(ottla: str) -> None:
    seen = _scenario(ottla)
    assert len(seen["read"]) == RECORDS and {key for _, key, _ in seen["read"]} == {f"k{i}" for i in range(RECORDS)}  # type: ignore[union-attr]
    assert seen["listed"] and not seen["listed_as_classic"]
    assert sum(int(current) for _, current, _, _ in seen["offsets"]) == RECORDS  # type: ignore[union-attr]
    assert all(lag == "0" for *_, lag in seen["offsets"])  # type: ignore[union-attr]
    assert seen["state"] == ["uniform", "Empty", "0"]


@pytest.mark.external
def test_ottla_answers_the_java_consumer_protocol_as_kafka_does(ottla: str, reference_kafka: str) -> None:
    assert _scenario(ottla) == _scenario(reference_kafka)
