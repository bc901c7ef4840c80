"""The `ottla` client subcommands end to end: real processes against a live broker, reading what
a person reads (tables, one-line errors, exit status) and what a script reads (--json)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import uuid

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from ottla.server.admin.operations import murmur2, partition_for_key



def ottla(bootstrap: str, *args: str, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ottla", *args, "--bootstrap", bootstrap]
    return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=timeout)


def ok(bootstrap: str, *args: str, stdin: str | None = None) -> str:
    result = ottla(bootstrap, *args, stdin=stdin)
    assert result.returncode == 0, result.stderr
    return result.stdout


def as_json(bootstrap: str, *args: str, stdin: str | None = None):
    return json.loads(ok(bootstrap, *args, "--json", stdin=stdin))


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def bootstrap(ottla_broker_fn) -> str:
    return ottla_broker_fn.bootstrap_servers


def test_topics_create_list_describe_alter_delete(bootstrap):
    topic = _name("cli-topic")
    assert ok(bootstrap, "topics", "create", topic, "--partitions", "2", "--config", "retention.ms=60000") == f"created topic {topic} with 2 partition(s)\n"
    assert {"name": topic, "partitions": 2, "internal": False} in as_json(bootstrap, "topics", "list")
    table = ok(bootstrap, "topics", "list").splitlines()
    assert table[0].split() == ["TOPIC", "PARTITIONS", "INTERNAL"]
    assert [topic, "2", "false"] in [line.split() for line in table[1:]]

    described = ok(bootstrap, "topics", "describe", topic).splitlines()
    assert described[0].startswith(f"Topic: {topic}  TopicId: ") and described[0].endswith("Partitions: 2  Configs: retention.ms=60000")
    assert [line.split() for line in described[1:]] == [["PARTITION", "LEADER", "REPLICAS", "ISR"], ["0", "1", "1", "1"], ["1", "1", "1", "1"]]

    ok(bootstrap, "topics", "alter", topic, "--partitions", "3", "--set", "cleanup.policy=compact", "--delete", "retention.ms")
    (entry,) = as_json(bootstrap, "topics", "describe", topic)
    assert len(entry["partitions"]) == 3
    assert entry["configs"] == [{"name": "cleanup.policy", "value": "compact", "overridden": True}]
    everything = as_json(bootstrap, "topics", "describe", topic, "--all-configs")[0]["configs"]
    assert {c["name"]: c["value"] for c in everything}["retention.ms"] == "604800000"

    assert as_json(bootstrap, "topics", "delete", topic) == {"deleted": [topic]}
    assert topic not in {t["name"] for t in as_json(bootstrap, "topics", "list")}


def test_produce_then_consume_round_trip_with_keys(bootstrap):
    topic = _name("cli-data")
    ok(bootstrap, "topics", "create", topic, "--partitions", "3")
    lines = [f"key-{i}\tvalue {i}" for i in range(20)] + ["no key here"]
    summary = as_json(bootstrap, "produce", topic, stdin="\n".join(lines) + "\n")
    assert summary["records"] == 21
    consumed = ok(bootstrap, "consume", topic, "--from-beginning").splitlines()
    assert sorted(consumed) == sorted(lines)
    records = [json.loads(line) for line in ok(bootstrap, "consume", topic, "--from-beginning", "--json").splitlines()]
    keyed = {r["key"]: r for r in records if r["key"] is not None}
    # Keys land where Kafka's own producer would put them (murmur2 partitioner).
    assert all(r["partition"] == partition_for_key(key.encode(), 3) for key, r in keyed.items())
    # Within a partition, offsets run 0, 1, 2, ... in the order the lines were sent.
    for partition in range(3):
        in_partition = [r for r in records if r["partition"] == partition]
        assert [r["offset"] for r in in_partition] == list(range(len(in_partition)))

    offsets = as_json(bootstrap, "offsets", topic)["partitions"]
    assert sum(p["records"] for p in offsets) == 21 and all(p["earliest"] == 0 for p in offsets)
    # Without --from-beginning a consumer starts at the end: nothing to print.
    assert ok(bootstrap, "consume", topic) == ""


def test_records_from_a_stock_producer_are_printed(bootstrap):
    topic = _name("cli-stock")
    producer = KafkaProducer(bootstrap_servers=bootstrap, compression_type="gzip")
    producer.send(topic, key=b"k", value=b"compressed")
    producer.send(topic, value=b"plain")
    producer.flush(10)
    producer.close()
    assert ok(bootstrap, "consume", topic, "--from-beginning").splitlines() == ["k\tcompressed", "plain"]


def test_consume_with_a_group_resumes_and_reset_offsets_rewinds(bootstrap):
    topic, group = _name("cli-grp"), _name("cli-group")
    ok(bootstrap, "topics", "create", topic, "--partitions", "2")
    ok(bootstrap, "produce", topic, stdin="a\nb\nc\nd\n")
    assert sorted(ok(bootstrap, "consume", topic, "--group", group, "--from-beginning").split()) == ["a", "b", "c", "d"]
    ok(bootstrap, "produce", topic, stdin="e\n")
    # The group's committed offsets win over --from-beginning.
    assert ok(bootstrap, "consume", topic, "--group", group, "--from-beginning").split() == ["e"]

    described = as_json(bootstrap, "groups", "describe", group)
    assert described["state"] == "Empty"
    assert {(o["partition"], o["lag"]) for o in described["offsets"]} == {(0, 0), (1, 0)}
    assert {"group": group, "protocol_type": "", "state": "Empty"} in as_json(bootstrap, "groups", "list")

    reset = as_json(bootstrap, "groups", "reset-offsets", group, "--topic", topic, "--to-earliest")
    assert {(r["partition"], r["offset"]) for r in reset} == {(0, 0), (1, 0)}
    assert sorted(ok(bootstrap, "consume", topic, "--group", group).split()) == ["a", "b", "c", "d", "e"]
    as_json(bootstrap, "groups", "reset-offsets", group, "--topic", topic, "--to-offset", "1")
    assert sum(o["lag"] for o in as_json(bootstrap, "groups", "describe", group)["offsets"]) == 5 - 2

    assert as_json(bootstrap, "groups", "delete", group) == {"deleted": [group]}
    assert group not in {g["group"] for g in as_json(bootstrap, "groups", "list")}


def test_groups_describe_shows_a_live_member_and_its_lag(bootstrap):
    topic, group = _name("cli-live"), _name("cli-live-group")
    ok(bootstrap, "produce", topic, stdin="one\ntwo\nthree\n")
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False)
    try:
        consumed = []
        while len(consumed) < 2:
            for batch in consumer.poll(timeout_ms=1000, max_records=1).values():
                consumed += batch
        consumer.commit()
        described = as_json(bootstrap, "groups", "describe", group)
        assert described["state"] == "Stable" and described["protocol_type"] == "consumer"
        (member,) = described["members"]
        assert member["assignment"] == {topic: [0]}
        (offset,) = described["offsets"]
        assert (offset["committed"], offset["log_end"], offset["lag"], offset["member"]) == (2, 3, 1, member["member_id"])
        table = ok(bootstrap, "groups", "describe", group).splitlines()
        assert table[0].startswith(f"Group: {group}  State: Stable")
        # A group with members refuses a standalone commit, as Kafka does.
        refused = ottla(bootstrap, "groups", "reset-offsets", group, "--topic", topic, "--to-earliest")
        assert refused.returncode == 1 and refused.stderr.startswith("ottla: commit for group")
    finally:
        consumer.close()


def test_follow_prints_records_produced_later(bootstrap):
    topic = _name("cli-follow")
    ok(bootstrap, "produce", topic, stdin="first\n")
    command = [sys.executable, "-m", "ottla", "consume", topic, "--from-beginning", "--follow", "--max-messages", "2", "--bootstrap", bootstrap]
    follower = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Once the old record is out, the follower is waiting at the end of the log.
        assert follower.stdout.readline() == "first\n"
        ok(bootstrap, "produce", topic, stdin="second\n")
        out, err = follower.communicate(timeout=30)
    finally:
        follower.kill()
    assert (follower.returncode, out) == (0, "second\n"), err


@pytest.mark.parametrize(
    "args, stdin, message",
    [
        (("topics", "describe", "no-such-topic"), None, "ottla: topic no-such-topic: UNKNOWN_TOPIC_OR_PARTITION"),
        (("topics", "create", "bad", "--config", "retention.ms=soon"), None, "ottla: cannot create bad: INVALID_CONFIG (Invalid value soon for configuration retention.ms: Not a number of type LONG)"),
        (("topics", "create", "bad name"), None, "ottla: cannot create bad name: INVALID_TOPIC (Topic name is invalid: 'bad name' contains one or more characters"),
        (("topics", "alter", "no-such-topic", "--set", "retention.ms=1"), None, "ottla: cannot alter no-such-topic: UNKNOWN_TOPIC_OR_PARTITION"),
        (("topics", "alter", "x"), None, "ottla: nothing to alter: give --partitions, --set or --delete"),
        (("produce", "no-such-topic", "--partition", "0"), "x\n", "ottla: topic no-such-topic: UNKNOWN_TOPIC_OR_PARTITION"),
        (("groups", "delete", "no-such-group"), None, "ottla: cannot delete group no-such-group: GROUP_ID_NOT_FOUND"),
    ],
)
def test_errors_are_one_line_and_exit_1(ottla_broker_fn, args, stdin, message):
    if args[0] == "produce":
        # auto.create.topics.enable is read-only (static), as in Kafka: a restart is how a running broker takes a new one.
        ottla_broker_fn.broker.static_config = dataclasses.replace(ottla_broker_fn.broker.static_config, auto_create_topics_enable=False)
        ottla_broker_fn.restart()
    result = ottla(ottla_broker_fn.bootstrap_servers, *args, stdin=stdin)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [result.stderr.rstrip("\n")]
    assert result.stderr.startswith(message)


def test_an_unreachable_broker_is_one_line(tmp_path):
    result = ottla("127.0.0.1:1", "topics", "list")
    assert (result.returncode, result.stderr) == (1, "ottla: cannot connect to 127.0.0.1:1: Connection refused\n")


@pytest.mark.parametrize("key", [b"", b"a", b"ab", b"abc", b"abcd", b"order-12345", bytes(range(200))])
def test_murmur2_is_kafkas(key):
    # kafka-python's port of Kafka's Utils.murmur2 as the independent reference.
    assert murmur2(key) == kafka_python_murmur2(key) & 0xFFFFFFFF
