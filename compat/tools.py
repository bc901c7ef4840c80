"""Kafka's own command-line tools against a broker: what an operator types, run from the
reference release's jars through `compat.kafka.run_tool`, each step checked by what it printed.

The steps run in order on one topic and one group (the console consumer commits as that group,
so the lag and reset steps have something to show). Every step runs even when an earlier one
failed, and says why it failed. `compat.differential` runs the same steps against Kafka and
compares the outputs.

    python -m compat.tools --run RUN.json     # every step on a fresh `ottla serve` and a reference Kafka
    python -m compat.tools --table RUN.json   # the tool x step table of a saved run, as Markdown

tests/integration/test_kafka_tools.py saves its run the same way when COMPAT_TOOLS_RUN names a file.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from ottla.wire.api import ApiKey

PASS, FAIL, NOT_INSTALLED, NOT_APPLICABLE = "pass", "FAIL", "not installed", "n/a"

PARTITIONS = 3
FIRST = 10  # keyed records k0..k9 before the group reads
MORE = 5  # k10..k14 after it committed: the lag the group shows
VERIFIABLE = 300  # records the verifiable producer sends and the verifiable consumer must read back
DELETED_BEFORE = 100  # kafka-delete-records moves the verifiable topic's partition 0 start here


@dataclass(frozen=True)
class Names:
    bootstrap: str
    topic: str
    group: str
    # Each step's stdout by step name, filled in as they run: a later step's arguments or check may
    # read an earlier one's (the log dir kafka-log-dirs printed, the offsets the producer acked).
    outputs: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def verifiable_topic(self) -> str:
        return f"{self.topic}-verifiable"

    @property
    def transactional_id(self) -> str:
        return f"{self.topic}-open-txn"


@dataclass(frozen=True)
class Step:
    name: str
    tool: str
    args: Callable[[Names], list[str]]
    check: Callable[[str, Names], str | None]  # stdout -> the problem, or None
    input: str | None = None
    compare_output: bool = True  # False when the output is the whole cluster (shared by other tests) or compared elsewhere
    exit_code: int = 0  # a refusal the tool reports by exiting non-zero; its check then reads stdout and stderr
    prepare: Callable[[Names], None] | None = None  # what the step needs that no Kafka tool makes
    not_applicable: str | None = None  # why this step cannot apply to Ottla yet: reported, not run
    # Whether the broker already shows what the step changed, waited for once it succeeded (see _await_shown).
    shown: Callable[[Names], bool] | None = None


@dataclass(frozen=True)
class ToolResult:
    step: str
    command: str
    status: str
    reason: str = ""
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0


def _bs(n: Names) -> list[str]:
    return ["--bootstrap-server", n.bootstrap]


def _keyed(first: int, last: int) -> str:
    return "".join(f"k{i}:v{i}\n" for i in range(first, last))


def _rows(stdout: str, n: Names) -> list[dict[str, str]]:
    """The rows of kafka-consumer-groups' table for our topic, by column name."""
    lines = [line.split() for line in stdout.splitlines() if line.strip()]
    header = next((cols for cols in lines if cols[:2] == ["GROUP", "TOPIC"]), None)
    if header is None:
        return []
    return [dict(zip(header, cols)) for cols in lines if len(cols) >= 2 and cols[1] == n.topic]


def _sum(rows: list[dict[str, str]], column: str) -> int:
    return sum(int(r[column]) for r in rows if r.get(column, "-").isdigit())


def _expect(ok: bool, problem: str) -> str | None:
    return None if ok else problem


def _check_created(out: str, n: Names) -> str | None:
    return _expect(f"Created topic {n.topic}." in out, "no 'Created topic' line")


def _check_listed(out: str, n: Names) -> str | None:
    return _expect(n.topic in out.split(), f"{n.topic} not listed")


def _check_not_listed(out: str, n: Names) -> str | None:
    return _expect(n.topic not in out.split(), f"{n.topic} still listed after delete")


def _check_described(out: str, n: Names) -> str | None:
    partitions = re.findall(rf"Topic: {re.escape(n.topic)}\tPartition: (\d+)\tLeader: (\d+)\tReplicas: (\d+)\tIsr: (\d+)", out)
    if sorted(int(p) for p, *_ in partitions) != list(range(PARTITIONS)):
        return f"partition lines {partitions}, want {PARTITIONS} with leader, replicas and ISR"
    if f"PartitionCount: {PARTITIONS}\tReplicationFactor: 1" not in out:
        return "no 'PartitionCount: 3, ReplicationFactor: 1'"
    return _expect(re.search(r"Configs: \S*retention\.ms=86400000", out) is not None, "Configs lacks retention.ms=86400000")


def _check_consumed(out: str, n: Names) -> str | None:
    got = re.findall(r"^Partition:(\d+)\tOffset:(\d+)\t(k\d+)\t(v\d+)$", out, re.M)
    keys = sorted(k for *_, k, _ in got)
    if keys != sorted(f"k{i}" for i in range(FIRST)):
        return f"read keys {keys}, want k0..k{FIRST - 1}"
    if any(v != "v" + k[1:] for *_, k, v in got):
        return "a value does not match its key"
    for partition in {p for p, *_ in got}:
        offsets = [int(o) for p, o, *_ in got if p == partition]
        if offsets != list(range(len(offsets))):
            return f"partition {partition} offsets {offsets}, want 0..{len(offsets) - 1}"
    return None


def _check_offsets(out: str, n: Names) -> str | None:
    ends = re.findall(rf"^{re.escape(n.topic)}:(\d+):(\d+)$", out, re.M)
    if sorted(int(p) for p, _ in ends) != list(range(PARTITIONS)):
        return f"partitions {[p for p, _ in ends]}, want 0..{PARTITIONS - 1}"
    total = sum(int(o) for _, o in ends)
    return _expect(total == FIRST + MORE, f"end offsets sum to {total}, want {FIRST + MORE}")


def _check_group_listed(out: str, n: Names) -> str | None:
    return _expect(n.group in out.split(), f"group {n.group} not listed")


def _check_lag(expected_lag: int, expected_current: int) -> Callable[[str, Names], str | None]:
    def check(out: str, n: Names) -> str | None:
        rows = _rows(out, n)
        if sorted(int(r["PARTITION"]) for r in rows) != list(range(PARTITIONS)):
            return f"rows for partitions {[r['PARTITION'] for r in rows]}, want 0..{PARTITIONS - 1}"
        got = (_sum(rows, "CURRENT-OFFSET"), _sum(rows, "LOG-END-OFFSET"), _sum(rows, "LAG"))
        want = (expected_current, FIRST + MORE, expected_lag)
        return _expect(got == want, f"current/log-end/lag sum to {got}, want {want}")
    return check


def _check_reset(out: str, n: Names) -> str | None:
    rows = _rows(out, n)
    new = sorted((int(r["PARTITION"]), r.get("NEW-OFFSET")) for r in rows)
    return _expect(new == [(p, "0") for p in range(PARTITIONS)], f"new offsets {new}, want 0 on every partition")


def _check_configs(out: str, n: Names) -> str | None:
    for setting in ("retention.ms=86400000", "cleanup.policy=compact"):
        if not re.search(rf"^\s+{re.escape(setting)} sensitive=false synonyms=\{{DYNAMIC_TOPIC_CONFIG:{re.escape(setting)}", out, re.M):
            return f"no dynamic topic config line for {setting}"
    return None


def _check_broker_configs(out: str, n: Names) -> str | None:
    for line in (r"log\.retention\.hours=168 sensitive=false synonyms=\{DEFAULT_CONFIG:log\.retention\.hours=168\}",
                 r"listeners=PLAINTEXT://\S+ sensitive=false synonyms=\{STATIC_BROKER_CONFIG:listeners=",
                 r"ssl\.keystore\.password=null sensitive=true synonyms=\{\}", r"num\.io\.threads=8 sensitive=false"):
        if not re.search(rf"^\s+{line}", out, re.M):
            return f"no line like {line}"
    return None


def _check_root_logger(out: str, n: Names) -> str | None:
    return _expect(re.search(r"^\s+root=INFO sensitive=false synonyms=\{\}$", out, re.M) is not None, "no root=INFO line")


def _group_config(*args: str) -> Callable[[Names], list[str]]:
    return lambda n: [*_bs(n), "--alter", "--entity-type", "groups", "--entity-name", n.group, *args]


def _check_group_configs(out: str, n: Names) -> str | None:
    for setting, default in (("consumer.session.timeout.ms=50000", "45000"), ("consumer.heartbeat.interval.ms=6000", "5000")):
        name = setting.split("=")[0]
        line = rf"{re.escape(setting)} sensitive=false synonyms=\{{DYNAMIC_GROUP_CONFIG:{re.escape(setting)}, DEFAULT_CONFIG:group\.{re.escape(name)}={default}\}}"
        if not re.search(rf"^\s+{line}$", out, re.M):
            return f"no dynamic group config line for {setting}"
    return None


def _broker_config(*args: str) -> Callable[[Names], list[str]]:
    return lambda n: [*_bs(n), "--alter", "--entity-type", "brokers", *args]


def _ask(n: Names, api: ApiKey, version: int, body: dict) -> dict:
    from compat.differential import call_once  # compat.differential imports this module

    return call_once(n.bootstrap, api, version, body)


def _partition_count(n: Names) -> int | None:
    """How many partitions Metadata gives the topic; None while it names no such topic."""
    (topic,) = _ask(n, ApiKey.METADATA, 12, {"topics": [{"name": n.topic, "topic_id": bytes(16)}], "allow_auto_topic_creation": False,
                                            "include_topic_authorized_operations": False})["topics"]
    return None if topic["error_code"] else len(topic["partitions"])


def _config(n: Names, resource_type: int, resource_name: str, key: str) -> tuple[str | None, int] | None:
    """A config's (value, config_source) as DescribeConfigs gives it; None while it refuses the resource."""
    (result,) = _ask(n, ApiKey.DESCRIBE_CONFIGS, 4, {"include_synonyms": False, "include_documentation": False, "resources": [
        {"resource_type": resource_type, "resource_name": resource_name, "configuration_keys": [key]}]})["results"]
    return None if result["error_code"] else next(((c["value"], c["config_source"]) for c in result["configs"]), None)


# DescribeConfigs' resource types and config sources.
_TOPIC, _BROKER, _GROUP = 2, 4, 32
_DYNAMIC_BROKER, _DYNAMIC_DEFAULT_BROKER = 2, 3


def _config_value(n: Names, resource_type: int, resource_name: str, key: str) -> str | None:
    return (_config(n, resource_type, resource_name, key) or (None, 0))[0]


def _await_shown(shown: Callable[[Names], bool], n: Names) -> None:
    """Until the broker shows what the step changed, 10 s at most. Kafka answers an alteration once
    its controller has committed the records; its broker serves Metadata, DescribeConfigs and the
    tools' validating reads from a metadata image that applies them a moment later, so the next
    step could still see the state before it. Ottla applies before it answers: this returns at
    once. If the change never shows, the steps that read it fail as they would have."""
    from compat.harness import wait_for

    wait_for(lambda: shown(n))


def _check_api_versions(out: str, n: Names) -> str | None:
    return _expect(re.search(r"Produce\(0\): \d+ to \d+ \[usable: \d+\]", out) is not None, "no usable Produce versions")


def _check_features(out: str, n: Names) -> str | None:
    described = re.findall(r"^Feature: (\S+)\s+SupportedMinVersion: \S+\s+SupportedMaxVersion: \S+\s+FinalizedVersionLevel: \S+\s+Epoch: \d+", out, re.M)
    return _expect("metadata.version" in described, f"features described: {described}, no metadata.version")


def _check_quorum_status(out: str, n: Names) -> str | None:
    return _expect(re.search(r"^LeaderId:\s+\d+$", out, re.M) is not None and "CurrentVoters:" in out, "no LeaderId and CurrentVoters")


def _check_quorum_replication(out: str, n: Names) -> str | None:
    return _expect(re.search(r"^\d+\s+\S+\s+\d+\s+0\s+\d+\s+\d+\s+Leader\s*$", out, re.M) is not None, "no leader row without lag")


def _check_cluster_id(out: str, n: Names) -> str | None:
    return _expect(re.search(r"^Cluster ID: \S+$", out, re.M) is not None, "no 'Cluster ID:' line")


def _check_ok(out: str, n: Names) -> str | None:
    return None


# kafka-python leaves a transaction open: it begins one, writes a record to partition 0 and exits
# without committing or aborting (os._exit skips the producer's abort on close), as a crashed
# producer would. Its timeout outlasts the steps that describe and abort it.
_OPEN_TRANSACTION = """
import os, sys
from kafka import KafkaProducer
producer = KafkaProducer(bootstrap_servers=sys.argv[1], transactional_id=sys.argv[3], transaction_timeout_ms=300000)
producer.init_transactions()
producer.begin_transaction()
producer.send(sys.argv[2], key=b"txn", value=b"open", partition=0).get(timeout=30)
os._exit(0)
"""


def _open_transaction(n: Names) -> None:
    subprocess.run([sys.executable, "-c", _OPEN_TRANSACTION, n.bootstrap, n.topic, n.transactional_id],
                   check=True, capture_output=True, timeout=60)


def _scratch_file(n: Names, name: str, text: str) -> str:
    """A file a tool reads, per broker (both runs use the same topic name at once)."""
    path = Path(tempfile.gettempdir()) / f"{n.topic}-{n.bootstrap.rsplit(':', 1)[-1]}-{name}"
    path.write_text(text)
    return str(path)


def _json_line(out: str, prefix: str = "{") -> dict:
    line = next((line for line in out.splitlines() if line.startswith(prefix)), None)
    if line is None:
        raise LookupError(f"no line starting {prefix!r}")
    return json.loads(line)


def _events(out: str, name: str) -> list[dict]:
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [e for e in events if e.get("name") == name]


def _log_dir(n: Names) -> str:
    """The one log dir kafka-log-dirs reported: where kafka-dump-log finds the segment."""
    (broker,) = _json_line(n.outputs.get("kafka-log-dirs --describe", ""))["brokers"]
    (log_dir,) = broker["logDirs"]
    return log_dir["logDir"]


def _check_log_dirs(out: str, n: Names) -> str | None:
    brokers = _json_line(out)["brokers"]
    dirs = [d for b in brokers for d in b["logDirs"]]
    if len(brokers) != 1 or len(dirs) != 1 or dirs[0]["error"] is not None:
        return f"log dirs {dirs}, want one without error on one broker"
    sizes = {p["partition"]: p["size"] for p in dirs[0]["partitions"]}
    if sorted(sizes) != [f"{n.topic}-{p}" for p in range(PARTITIONS)]:
        return f"partitions {sorted(sizes)}, want {n.topic}-0..{PARTITIONS - 1}"
    return _expect(all(size > 0 for size in sizes.values()), f"sizes {sizes}: every partition holds records")


def _check_already_elected(out: str, n: Names) -> str | None:
    return _expect(f"Valid replica already elected for partitions {n.topic}-0" in out, "no 'Valid replica already elected' line")


def _reassignment_plan(out: str) -> dict:
    lines = out.splitlines()
    return json.loads(lines[lines.index("Proposed partition reassignment configuration") + 1])


def _check_generated(out: str, n: Names) -> str | None:
    proposed = sorted((p["topic"], p["partition"], p["replicas"]) for p in _reassignment_plan(out)["partitions"])
    want = [(n.topic, p, [1]) for p in range(PARTITIONS)]
    return _expect(proposed == want, f"proposed {proposed}, want every partition on broker 1")


def _check_verified(out: str, n: Names) -> str | None:
    done = re.findall(rf"Reassignment of partition {re.escape(n.topic)}-(\d+) is completed", out)
    return _expect(sorted(map(int, done)) == list(range(PARTITIONS)), f"completed partitions {done}, want all {PARTITIONS}")


def _check_transaction_listed(out: str, n: Names) -> str | None:
    return _expect(re.search(rf"^{re.escape(n.transactional_id)}\s+1\s+\d+\s+Ongoing\s*$", out, re.M) is not None,
                   f"no Ongoing row for {n.transactional_id}")


def _check_transaction_described(out: str, n: Names) -> str | None:
    return _expect(re.search(rf"^1\s+{re.escape(n.transactional_id)}\s+\d+\s+\d+\s+Ongoing\s+300000\s+\d+\s+\d+\s+{re.escape(n.topic)}-0\s*$",
                             out, re.M) is not None, f"no Ongoing row on {n.topic}-0 with its 300000 ms timeout")


def _open_transaction_start(out: str) -> int:
    """The start offset of the one open transaction kafka-transactions describe-producers lists."""
    starts = re.findall(r"^\d+\s+\d+\s+-?\d+\s+-?\d+\s+\d+\s+(\d+)\s*$", out, re.M)
    if len(starts) != 1:
        raise LookupError(f"open transactions starting at {starts}, want one")
    return int(starts[0])


def _check_open_producer(out: str, n: Names) -> str | None:
    try:
        _open_transaction_start(out)
    except LookupError as exc:
        return str(exc)
    return None


def _check_no_hanging(out: str, n: Names) -> str | None:
    rows = [line for line in out.splitlines()[1:] if line.strip()]
    return _expect(rows == [], f"hanging: {rows}; the open transaction's coordinator still knows it")


def _abort_args(n: Names) -> list[str]:
    start = _open_transaction_start(n.outputs["kafka-transactions describe-producers (open)"])
    return [*_bs(n), "abort", "--topic", n.topic, "--partition", "0", "--start-offset", str(start)]


def _check_none_open(out: str, n: Names) -> str | None:
    rows = re.findall(r"^\d+\s+\d+\s+-?\d+\s+-?\d+\s+\d+\s+(\S+)\s*$", out, re.M)
    return _expect(rows and all(start == "None" for start in rows), f"transaction start offsets {rows}, want None after the abort")


def _check_dumped(out: str, n: Names) -> str | None:
    offsets = [int(o) for o in re.findall(r"^\| offset: (\d+) ", out, re.M)]
    if not offsets or offsets != list(range(len(offsets))):
        return f"record offsets {offsets}, want 0..n"
    if "isTransactional: true isControl: false" not in out:
        return "no transactional batch (the aborted transaction's record)"
    return _expect(re.search(r"isControl: true .*endTxnMarker: ABORT", out, re.S) is not None, "no ABORT control marker")


def _check_acked(out: str, n: Names) -> str | None:
    acked = _events(out, "producer_send_success")
    values = sorted(int(e["value"]) for e in acked)
    if values != list(range(VERIFIABLE)):
        return f"{len(acked)} records acked, want values 0..{VERIFIABLE - 1} once each"
    positions = {(e["partition"], e["offset"]) for e in acked}
    return _expect(len(positions) == VERIFIABLE, "two acked records share a partition and offset")


def _check_consumed_acked(out: str, n: Names) -> str | None:
    """Every record the verifiable producer acked is read back, at the offset it was acked at, once."""
    acked = {(e["partition"], e["offset"], e["value"]) for e in _events(n.outputs["kafka-verifiable-producer"], "producer_send_success")}
    read = [(e["partition"], e["offset"], e["value"]) for e in _events(out, "record_data")]
    if len(read) != len(set(read)):
        return f"{len(read) - len(set(read))} records read twice"
    missing, unexpected = acked - set(read), set(read) - acked
    return _expect(not missing and not unexpected, f"{len(missing)} acked records not read, {len(unexpected)} read but never acked")


def _delete_records_args(n: Names) -> list[str]:
    plan = {"partitions": [{"topic": n.verifiable_topic, "partition": 0, "offset": DELETED_BEFORE}], "version": 1}
    return [*_bs(n), "--offset-json-file", _scratch_file(n, "delete-records.json", json.dumps(plan))]


def _check_records_deleted(out: str, n: Names) -> str | None:
    return _expect(re.search(rf"partition: {re.escape(n.verifiable_topic)}-0\s+low_watermark: {DELETED_BEFORE}$", out, re.M) is not None,
                   f"no low_watermark: {DELETED_BEFORE} line")


def _check_earliest(out: str, n: Names) -> str | None:
    return _expect(re.search(rf"^{re.escape(n.verifiable_topic)}:0:{DELETED_BEFORE}$", out, re.M) is not None,
                   f"earliest offset of {n.verifiable_topic}-0 is not {DELETED_BEFORE}")


def _check_latency(out: str, n: Names) -> str | None:
    return _expect(re.search(r"^Avg latency: [\d.]+ ms$", out, re.M) is not None and "Percentiles: 50th" in out, "no latency summary")


def _check_refused(message: str) -> Callable[[str, Names], str | None]:
    return lambda out, n: _expect(message in out, f"no {message!r}")


def _check_endpoint(out: str, n: Names) -> str | None:
    port = n.bootstrap.rsplit(":", 1)[1]
    return _expect(re.search(rf"^1\s+\S+\s+{port}\s+null\s+unfenced\s+broker\s*$", out, re.M) is not None, "no unfenced broker 1 row")


STEPS: list[Step] = [
    Step("kafka-topics --create", "kafka-topics",
         lambda n: [*_bs(n), "--create", "--topic", n.topic, "--partitions", str(PARTITIONS),
                    "--replication-factor", "1", "--config", "retention.ms=86400000"], _check_created,
         shown=lambda n: _partition_count(n) == PARTITIONS),
    Step("kafka-topics --list", "kafka-topics", lambda n: [*_bs(n), "--list"], _check_listed, compare_output=False),
    Step("kafka-topics --describe", "kafka-topics", lambda n: [*_bs(n), "--describe", "--topic", n.topic], _check_described),
    Step("kafka-console-producer (keyed)", "kafka-console-producer",
         lambda n: [*_bs(n), "--topic", n.topic, "--reader-property", "parse.key=true", "--reader-property", "key.separator=:"],
         _check_ok, input=_keyed(0, FIRST)),
    Step("kafka-console-consumer --group --from-beginning", "kafka-console-consumer",
         lambda n: [*_bs(n), "--topic", n.topic, "--group", n.group, "--from-beginning", "--max-messages", str(FIRST),
                    "--timeout-ms", "30000", "--formatter-property", "print.key=true",
                    "--formatter-property", "print.partition=true", "--formatter-property", "print.offset=true"],
         _check_consumed),
    Step("kafka-console-producer (more)", "kafka-console-producer",
         lambda n: [*_bs(n), "--topic", n.topic, "--reader-property", "parse.key=true", "--reader-property", "key.separator=:"],
         _check_ok, input=_keyed(FIRST, FIRST + MORE)),
    Step("kafka-get-offsets", "kafka-get-offsets", lambda n: [*_bs(n), "--topic", n.topic], _check_offsets),
    Step("kafka-consumer-groups --list", "kafka-consumer-groups", lambda n: [*_bs(n), "--list"], _check_group_listed,
         compare_output=False),
    Step("kafka-consumer-groups --describe (lag)", "kafka-consumer-groups",
         lambda n: [*_bs(n), "--describe", "--group", n.group], _check_lag(MORE, FIRST)),
    Step("kafka-consumer-groups --reset-offsets --to-earliest", "kafka-consumer-groups",
         lambda n: [*_bs(n), "--reset-offsets", "--group", n.group, "--topic", n.topic, "--to-earliest", "--execute"],
         _check_reset),
    Step("kafka-consumer-groups --describe (after reset)", "kafka-consumer-groups",
         lambda n: [*_bs(n), "--describe", "--group", n.group], _check_lag(FIRST + MORE, 0)),
    Step("kafka-configs --alter --add-config", "kafka-configs",
         lambda n: [*_bs(n), "--alter", "--entity-type", "topics", "--entity-name", n.topic, "--add-config", "cleanup.policy=compact"],
         _check_ok, shown=lambda n: _config_value(n, _TOPIC, n.topic, "cleanup.policy") == "compact"),
    Step("kafka-configs --describe", "kafka-configs",
         lambda n: [*_bs(n), "--describe", "--entity-type", "topics", "--entity-name", n.topic], _check_configs),
    # A group's configs (KIP-848's consumer.* ones): set, described (only groups with configs are
    # listed without --all), then deleted again, as the reference is shared with other tests.
    Step("kafka-configs --alter groups --add-config", "kafka-configs",
         _group_config("--add-config", "consumer.session.timeout.ms=50000,consumer.heartbeat.interval.ms=6000"), _check_ok,
         shown=lambda n: _config_value(n, _GROUP, n.group, "consumer.session.timeout.ms") == "50000"
         and _config_value(n, _GROUP, n.group, "consumer.heartbeat.interval.ms") == "6000"),
    Step("kafka-configs --describe groups", "kafka-configs",
         lambda n: [*_bs(n), "--describe", "--entity-type", "groups", "--entity-name", n.group], _check_group_configs),
    Step("kafka-configs --alter groups --delete-config", "kafka-configs",
         _group_config("--delete-config", "consumer.session.timeout.ms,consumer.heartbeat.interval.ms"), _check_ok),
    # Every broker config: ports and paths differ, so it is compared key by key by the request differ.
    Step("kafka-configs --describe brokers --all", "kafka-configs",
         lambda n: [*_bs(n), "--describe", "--entity-type", "brokers", "--entity-name", "1", "--all"], _check_broker_configs,
         compare_output=False),
    # A dynamic broker config, per node and as the cluster default, set to its default and deleted
    # again: the reference is shared with other tests.
    Step("kafka-configs --alter brokers --add-config", "kafka-configs",
         _broker_config("--entity-name", "1", "--add-config", "log.cleaner.backoff.ms=15000"), _check_ok,
         shown=lambda n: _config(n, _BROKER, "1", "log.cleaner.backoff.ms") == ("15000", _DYNAMIC_BROKER)),
    Step("kafka-configs --alter brokers --entity-default --add-config", "kafka-configs",
         _broker_config("--entity-default", "--add-config", "log.cleaner.backoff.ms=15000"), _check_ok,
         shown=lambda n: _config(n, _BROKER, "", "log.cleaner.backoff.ms") == ("15000", _DYNAMIC_DEFAULT_BROKER)),
    Step("kafka-configs --alter brokers --delete-config", "kafka-configs",
         _broker_config("--entity-name", "1", "--delete-config", "log.cleaner.backoff.ms"), _check_ok),
    Step("kafka-configs --alter brokers --entity-default --delete-config", "kafka-configs",
         _broker_config("--entity-default", "--delete-config", "log.cleaner.backoff.ms"), _check_ok),
    Step("kafka-configs --alter broker-loggers --add-config", "kafka-configs",
         lambda n: [*_bs(n), "--alter", "--entity-type", "broker-loggers", "--entity-name", "1", "--add-config", "root=INFO"], _check_ok),
    # Each broker lists its own loggers (kafka.* there, ottla.* here).
    Step("kafka-configs --describe broker-loggers", "kafka-configs",
         lambda n: [*_bs(n), "--describe", "--entity-type", "broker-loggers", "--entity-name", "1"], _check_root_logger,
         compare_output=False),
    # Its output is the advertised version table: compared request by request, not as text.
    Step("kafka-broker-api-versions", "kafka-broker-api-versions", _bs, _check_api_versions, compare_output=False),
    Step("kafka-features describe", "kafka-features", lambda n: [*_bs(n), "describe"], _check_features),
    Step("kafka-metadata-quorum describe --status", "kafka-metadata-quorum", lambda n: [*_bs(n), "describe", "--status"],
         _check_quorum_status),
    Step("kafka-metadata-quorum describe --replication", "kafka-metadata-quorum", lambda n: [*_bs(n), "describe", "--replication"],
         _check_quorum_replication),
    Step("kafka-cluster cluster-id", "kafka-cluster", lambda n: ["cluster-id", *_bs(n)], _check_cluster_id),
    # Paths and sizes differ by broker; the check reads them.
    Step("kafka-log-dirs --describe", "kafka-log-dirs", lambda n: [*_bs(n), "--describe", "--topic-list", n.topic], _check_log_dirs,
         compare_output=False),
    # A single node's preferred leader is always elected: nothing to print for all, "already" for one.
    Step("kafka-leader-election --all-topic-partitions", "kafka-leader-election",
         lambda n: [*_bs(n), "--election-type", "PREFERRED", "--all-topic-partitions"], _check_ok),
    Step("kafka-leader-election --topic --partition", "kafka-leader-election",
         lambda n: [*_bs(n), "--election-type", "PREFERRED", "--topic", n.topic, "--partition", "0"], _check_already_elected),
    # The current assignment names each broker's own log dir.
    Step("kafka-reassign-partitions --generate", "kafka-reassign-partitions",
         lambda n: [*_bs(n), "--generate", "--broker-list", "1", "--topics-to-move-json-file",
                    _scratch_file(n, "move.json", json.dumps({"topics": [{"topic": n.topic}], "version": 1}))],
         _check_generated, compare_output=False),
    Step("kafka-reassign-partitions --verify", "kafka-reassign-partitions",
         lambda n: [*_bs(n), "--verify", "--reassignment-json-file",
                    _scratch_file(n, "plan.json", json.dumps(_reassignment_plan(n.outputs["kafka-reassign-partitions --generate"])))],
         _check_verified),
    Step("kafka-reassign-partitions --execute between log dirs", "kafka-reassign-partitions", _bs, _check_ok,
         not_applicable="these runs' brokers (Ottla and the shared reference) have one log dir each; "
                        "tests/integration/test_log_dirs_tools.py moves a partition between an Ottla's two with this tool"),
    # An open transaction (see _OPEN_TRANSACTION) on partition 0, found and aborted by an operator.
    Step("kafka-transactions list", "kafka-transactions", lambda n: [*_bs(n), "list"], _check_transaction_listed,
         prepare=_open_transaction, compare_output=False),
    Step("kafka-transactions describe", "kafka-transactions",
         lambda n: [*_bs(n), "describe", "--transactional-id", n.transactional_id], _check_transaction_described, compare_output=False),
    Step("kafka-transactions describe-producers (open)", "kafka-transactions",
         lambda n: [*_bs(n), "describe-producers", "--topic", n.topic, "--partition", "0"], _check_open_producer),
    # Open but not hanging: its coordinator still has it Ongoing.
    Step("kafka-transactions find-hanging", "kafka-transactions",
         lambda n: [*_bs(n), "find-hanging", "--broker-id", "1", "--max-transaction-timeout", "0"], _check_no_hanging),
    Step("kafka-transactions abort", "kafka-transactions", _abort_args, _check_ok),
    Step("kafka-transactions describe-producers (aborted)", "kafka-transactions",
         lambda n: [*_bs(n), "describe-producers", "--topic", n.topic, "--partition", "0"], _check_none_open),
    # The broker's own segment file, in Kafka's on-disk format: the keyed records, the aborted
    # transaction's record and its ABORT marker. Positions, times and CRCs differ by broker.
    Step("kafka-dump-log --print-data-log", "kafka-dump-log",
         lambda n: ["--files", str(Path(_log_dir(n)) / f"{n.topic}-0" / "00000000000000000000.log"), "--print-data-log"],
         _check_dumped, compare_output=False),
    # Their JSON event streams carry times and the partitioner's choices: checked, not compared.
    Step("kafka-verifiable-producer", "kafka-verifiable-producer",
         lambda n: [*_bs(n), "--topic", n.verifiable_topic, "--max-messages", str(VERIFIABLE)], _check_acked, compare_output=False),
    Step("kafka-verifiable-consumer", "kafka-verifiable-consumer",
         lambda n: [*_bs(n), "--topic", n.verifiable_topic, "--group-id", f"{n.group}-verifiable", "--max-messages", str(VERIFIABLE),
                    "--reset-policy", "earliest", "--verbose"], _check_consumed_acked, compare_output=False),
    Step("kafka-delete-records", "kafka-delete-records", _delete_records_args, _check_records_deleted),
    Step("kafka-get-offsets --time earliest (after delete-records)", "kafka-get-offsets",
         lambda n: [*_bs(n), "--topic", n.verifiable_topic, "--time", "earliest"], _check_earliest),
    Step("kafka-e2e-latency", "kafka-e2e-latency",
         lambda n: [*_bs(n), "--topic", f"{n.topic}-e2e", "--num-records", "50", "--producer-acks", "all", "--record-size", "100"],
         _check_latency, compare_output=False),
    # Neither broker runs an authorizer here: both refuse to list ACLs.
    Step("kafka-acls --list (no authorizer)", "kafka-acls", lambda n: [*_bs(n), "--list"],
         _check_refused("SecurityDisabledException: No Authorizer is configured on the broker"), exit_code=1),
    Step("kafka-client-metrics --list", "kafka-client-metrics", lambda n: [*_bs(n), "--list"], _check_ok),
    Step("kafka-groups --list", "kafka-groups", lambda n: [*_bs(n), "--list"], _check_group_listed, compare_output=False),
    Step("kafka-share-groups --list", "kafka-share-groups", lambda n: [*_bs(n), "--list"], _check_ok, compare_output=False),
    Step("kafka-streams-groups --list", "kafka-streams-groups", lambda n: [*_bs(n), "--list"], _check_ok, compare_output=False),
    Step("kafka-cluster list-endpoints", "kafka-cluster", lambda n: ["list-endpoints", *_bs(n)], _check_endpoint,
         compare_output=False),
    Step("kafka-topics --delete", "kafka-topics", lambda n: [*_bs(n), "--delete", "--topic", n.topic], _check_ok,
         shown=lambda n: _partition_count(n) is None),
    Step("kafka-topics --list (after delete)", "kafka-topics", lambda n: [*_bs(n), "--list"], _check_not_listed,
         compare_output=False),
]


def installed() -> str | None:
    """Why the tools cannot run here, or None when they can."""
    from compat import kafka

    return None if kafka.is_fetched() else f"Kafka {kafka.KAFKA_VERSION}'s jars are not fetched (python -m compat.kafka --fetch)"


def run_tools(names: Names, progress: Callable[[ToolResult], None] = lambda _: None) -> list[ToolResult]:
    """Every step against `names.bootstrap`; a tool not installed is reported as such, never run."""
    missing = installed()
    if missing:
        return [ToolResult(s.name, s.tool, NOT_INSTALLED, missing) for s in STEPS]
    from compat.kafka import run_tool

    results = []
    for step in STEPS:
        if step.not_applicable:
            results.append(ToolResult(step.name, step.tool, NOT_APPLICABLE, step.not_applicable))
            progress(results[-1])
            continue
        began = time.monotonic()
        try:
            if step.prepare:
                step.prepare(names)
            proc = run_tool(step.tool, *step.args(names), input=step.input, timeout=90)
        except subprocess.TimeoutExpired:
            result = ToolResult(step.name, step.tool, FAIL, "hung for 90s", seconds=time.monotonic() - began)
        except (subprocess.CalledProcessError, LookupError, ValueError) as exc:
            result = ToolResult(step.name, step.tool, FAIL, f"could not set up: {exc}", seconds=time.monotonic() - began)
        else:
            names.outputs[step.name] = proc.stdout
            if proc.returncode != step.exit_code:
                problem: str | None = f"exit {proc.returncode}: {_last_line(proc.stderr)}"
            else:
                problem = step.check(proc.stdout if step.exit_code == 0 else proc.stdout + proc.stderr, names)
            if step.shown and not problem:
                _await_shown(step.shown, names)
            result = ToolResult(step.name, step.tool, FAIL if problem else PASS, problem or "", proc.stdout, proc.stderr,
                                time.monotonic() - began)
        results.append(result)
        progress(result)
    return results


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("\tat ")]
    return lines[-1][:200] if lines else "(no output)"


def save_run(path: Path, ottla: list[ToolResult], kafka: list[ToolResult]) -> None:
    """One run's results on both brokers, outputs included, for `--table` to print later."""
    path.write_text(json.dumps({"ottla": [asdict(r) for r in ottla], "kafka": [asdict(r) for r in kafka]}, indent=1))


def load_run(path: Path) -> tuple[list[ToolResult], list[ToolResult]]:
    raw = json.loads(path.read_text())
    return [ToolResult(**r) for r in raw["ottla"]], [ToolResult(**r) for r in raw["kafka"]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compat.tools", description="Kafka's tools, step by step, against Ottla and the reference Kafka.")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--run", type=Path, metavar="RUN.json", help="run every step on both brokers, save the run, print its table")
    action.add_argument("--table", type=Path, metavar="RUN.json", help="print the tool x step table of a saved run")
    args = parser.parse_args(argv)
    from compat.differential import both_brokers, tools_table

    if args.run:
        tag = uuid.uuid4().hex[:8]
        with both_brokers() as (ottla, kafka), ThreadPoolExecutor(2) as pool:
            runs = [pool.submit(run_tools, Names(bootstrap, f"tools-{tag}", f"tools-{tag}")) for bootstrap in (ottla, kafka)]
            save_run(args.run, runs[0].result(), runs[1].result())
    ottla_results, kafka_results = load_run(args.run or args.table)
    print("\n".join(tools_table(ottla_results, kafka_results)))
    failed = [r.step for r in ottla_results if r.status not in (PASS, NOT_APPLICABLE)]
    if failed:
        print(f"\n{len(failed)} of {len(ottla_results)} steps did not pass on Ottla: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
