"""Kafka's own tools move a partition between an Ottla broker's two log directories:
`kafka-reassign-partitions --execute` with `log_dirs`, `--verify` until it says the replica's
move completed, and `kafka-log-dirs --describe` showing the partition in its new directory."""

from __future__ import annotations

import json
import pathlib
import time
import uuid

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from compat.kafka import run_tool
from ottla.testing import running_broker


def test_kafka_tools_move_a_partition_between_log_dirs(tmp_path: pathlib.Path) -> None:
    dirs = [(tmp_path / name).resolve() for name in ("d0", "d1")]
    topic = f"tools-jbod-{uuid.uuid4().hex[:8]}"
    with running_broker(data_dir=",".join(map(str, dirs))) as broker:
        bootstrap = ["--bootstrap-server", broker.bootstrap_servers]
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        admin.create_topics([NewTopic(topic, 2, 1)])
        admin.close()
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)
        for _ in range(500):
            producer.send(topic, b"x" * 200, partition=0)
        producer.flush(10)
        producer.close()

        source = str(next(path for path, held in describe(bootstrap, topic).items() if (f"{topic}-0", False) in held))
        destination = next(str(path) for path in dirs if str(path) != source)
        plan = tmp_path / "plan.json"
        plan.write_text(json.dumps({"version": 1, "partitions": [{"topic": topic, "partition": 0, "replicas": [1], "log_dirs": [destination]}]}))
        executed = run_tool("kafka-reassign-partitions", *bootstrap, "--execute", "--reassignment-json-file", str(plan))
        assert executed.returncode == 0, executed.stderr[-2000:]
        assert f"Successfully started moving log directory to {destination} for replica {topic}-0 with broker 1" in executed.stdout
        assert f'"log_dirs":["{source}"]' in executed.stdout, "the rollback plan names where it was"

        deadline = time.monotonic() + 60
        while True:
            verified = run_tool("kafka-reassign-partitions", *bootstrap, "--verify", "--reassignment-json-file", str(plan))
            if f"Reassignment of replica {topic}-0-1 completed successfully." in verified.stdout:
                break
            assert time.monotonic() < deadline, verified.stdout + verified.stderr[-2000:]
            time.sleep(1)

        held = describe(bootstrap, topic)
        assert (f"{topic}-0", False) in held[destination] and not [p for p in held[source] if p[0] == f"{topic}-0"]


def describe(bootstrap: list[str], topic: str) -> dict[str, list[tuple[str, bool]]]:
    """kafka-log-dirs --describe: each log dir -> its (partition, is future) entries; partition 0's
    size, wherever it is, holds the records produced."""
    described = run_tool("kafka-log-dirs", *bootstrap, "--describe", "--topic-list", topic)
    assert described.returncode == 0, described.stderr[-2000:]
    line = next(line for line in described.stdout.splitlines() if line.startswith("{"))
    (entry,) = json.loads(line)["brokers"]
    sizes = {p["partition"]: p["size"] for d in entry["logDirs"] for p in d["partitions"]}
    assert sizes[f"{topic}-0"] > 500 * 200
    return {d["logDir"]: [(p["partition"], p["isFuture"]) for p in d["partitions"]] for d in entry["logDirs"]}
