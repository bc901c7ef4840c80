"""Kafka's own command-line tools against a broker: what an operator types, run from the
reference release's jars through `compat.kafka.run_tool`, each step checked by what it printed.

The steps run in order on one topic and one group (the console consumer commits as that group,
so the lag and reset steps have something to show). Every step runs even when an earlier one
failed, and says why it failed. `compat.differential` runs the same steps against Kafka and
compares the outputs.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from typing import Callable

PASS, FAIL, NOT_INSTALLED = "pass", "FAIL", "not installed"

PARTITIONS = 3
FIRST = 10  # keyed records k0..k9 before the group reads
MORE = 5  # k10..k14 after it committed: the lag the group shows


@dataclass(frozen=True)
class Names:
    bootstrap: str
    topic: str
    group: str


@dataclass(frozen=True)
class Step:
    name: str
    tool: str
    args: Callable[[Names], list[str]]
    check: Callable[[str, Names], str | None]  # stdout -> the problem, or None
    input: str | None = None
    compare_output: bool = True  # False when the output is the whole cluster (shared by other tests) or compared elsewhere


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


STEPS: list[Step] = [
    Step("kafka-topics --create", "kafka-topics",
         lambda n: [*_bs(n), "--create", "--topic", n.topic, "--partitions", str(PARTITIONS),
                    "--replication-factor", "1", "--config", "retention.ms=86400000"], _check_created),
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
         _check_ok),
    Step("kafka-configs --describe", "kafka-configs",
         lambda n: [*_bs(n), "--describe", "--entity-type", "topics", "--entity-name", n.topic], _check_configs),
    # A group's configs (KIP-848's consumer.* ones): set, described (only groups with configs are
    # listed without --all), then deleted again, as the reference is shared with other tests.
    Step("kafka-configs --alter groups --add-config", "kafka-configs",
         _group_config("--add-config", "consumer.session.timeout.ms=50000,consumer.heartbeat.interval.ms=6000"), _check_ok),
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
         _broker_config("--entity-name", "1", "--add-config", "log.cleaner.backoff.ms=15000"), _check_ok),
    Step("kafka-configs --alter brokers --entity-default --add-config", "kafka-configs",
         _broker_config("--entity-default", "--add-config", "log.cleaner.backoff.ms=15000"), _check_ok),
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
    Step("kafka-topics --delete", "kafka-topics", lambda n: [*_bs(n), "--delete", "--topic", n.topic], _check_ok),
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
        args = step.args(names)
        began = time.monotonic()
        try:
            proc = run_tool(step.tool, *args, input=step.input, timeout=90)
        except subprocess.TimeoutExpired:
            result = ToolResult(step.name, step.tool, FAIL, "hung for 90s", seconds=time.monotonic() - began)
        else:
            problem = f"exit {proc.returncode}: {_last_line(proc.stderr)}" if proc.returncode else step.check(proc.stdout, names)
            result = ToolResult(step.name, step.tool, FAIL if problem else PASS, problem or "", proc.stdout, proc.stderr,
                                time.monotonic() - began)
        results.append(result)
        progress(result)
    return results


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("\tat ")]
    return lines[-1][:200] if lines else "(no output)"
