"""`python -m compat.connect`: a Kafka Connect 4.4 cluster of two distributed workers on a broker.

The workers are Kafka's own (`connect-runtime`, `connect-json`, `connect-transforms` from Maven
Central) with our connectors of compat/java/connect on their class path: a counter source
(0..N-1 with source offsets, exactly-once capable per KIP-618) and a sink that records each
record it is given, with its offset, in a file. `--build` (run by `python -m compat.install`)
builds them into `.cache/kafka/<version>/connect`.

The scenario `pipeline`: two workers join one Connect group (Connect's own protocol over
JoinGroup/SyncGroup); the config, offset and status topics must be created compacted as Connect
asks; a source -> topic -> sink pipeline is created through the REST API; the worker running the
source task is SIGKILLed mid-stream and the other must take its tasks over. In the end the topic
(read_committed) holds every number exactly once, in order (the source is exactly-once with
`exactly.once.source.support=enabled` and `exactly.once.support=required`), and the sink's file
holds every record (at least once: a redelivered record repeats its offset, never its number at
another offset).

`python -m compat.connect BOOTSTRAP` runs it against a running broker and prints the problems.
"""

from __future__ import annotations

import json
import socket
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from compat import kafka
from compat.streams import (
    JavaProcess,
    Scenario,
    create_topics,
    dynamic_topic_configs,
    end_offset,
    jvm_options,
    list_topics,
    read_topic,
    say,
    scenarios_main,
    wait_until,
)

CONNECT_DIR = kafka.CACHE / "connect"
CONNECT_JAR = CONNECT_DIR / "ottla-connect-plugins.jar"

SOURCE_CLASS = "dev.ottla.compat.connect.CounterSourceConnector"
SINK_CLASS = "dev.ottla.compat.connect.RecordingSinkConnector"

# How many numbers, and how fast: about ten seconds of stream, so a worker dies in its middle.
COUNT = 1000
BATCH = 20
POLL_INTERVAL_MS = 200

# Connect's internal topics, by the suffix we name them with; Connect creates each compacted.
INTERNAL_TOPICS = ("configs", "offsets", "status")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Worker(JavaProcess):
    """One distributed worker (ConnectDistributed) with its REST listener on a free port."""

    def __init__(self, bootstrap: str, group: str, work_dir: Path, name: str, *, exactly_once: bool) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.name = name
        properties = {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "config.storage.topic": f"{group}-configs",
            "offset.storage.topic": f"{group}-offsets",
            "status.storage.topic": f"{group}-status",
            # One node: Connect's default of 3 replicas cannot be met.
            "config.storage.replication.factor": "1",
            "offset.storage.replication.factor": "1",
            "status.storage.replication.factor": "1",
            "key.converter": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter",
            "key.converter.schemas.enable": "false",
            "value.converter.schemas.enable": "false",
            "listeners": self.url,
            "rest.advertised.host.name": "127.0.0.1",
            "rest.advertised.port": str(self.port),
            # Plugins come from the class path's service manifests: no scan of every jar.
            "plugin.discovery": "service_load",
            "offset.flush.interval.ms": "1000",
            # A dead worker's tasks go to the others after this delay (incremental cooperative
            # rebalancing waits 5 minutes by default for it to come back).
            "scheduled.rebalance.max.delay.ms": "2000",
            "session.timeout.ms": "6000",
            "heartbeat.interval.ms": "1000",
            "exactly.once.source.support": "enabled" if exactly_once else "disabled",
        }
        config_path = work_dir / f"{name}.properties"
        config_path.write_text("".join(f"{k}={v}\n" for k, v in properties.items()))
        super().__init__([*jvm_options(), "-jar", str(CONNECT_JAR), str(config_path)], work_dir / f"{name}.log")

    def wait_ready(self, timeout: float = 120) -> None:
        """Until the REST API answers and the worker has joined the group (it lists connectors)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"worker {self.name} exited:\n{self.log_tail()}")
            try:
                self.get("/connectors")
                return
            except (OSError, urllib.error.HTTPError):
                time.sleep(0.5)
        raise TimeoutError(f"worker {self.name} not ready in {timeout:.0f}s:\n{self.log_tail()}")

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return json.load(response)

    def post(self, path: str) -> None:
        request = urllib.request.Request(self.url + path, data=b"", method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30):
            pass

    def put(self, path: str, body: dict[str, Any], timeout: float = 60) -> Any:
        """PUT, retried while the worker answers 409 or 5xx (rebalancing, or not yet a member)."""
        request = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method="PUT",
                                         headers={"Content-Type": "application/json"})
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return json.load(response)
            except urllib.error.HTTPError as exc:
                if (exc.code != 409 and exc.code < 500) or time.monotonic() > deadline:
                    raise RuntimeError(f"PUT {path}: {exc.code} {exc.read().decode(errors='replace')}") from exc
            time.sleep(0.5)


def _status(worker: Worker, connector: str) -> dict[str, Any]:
    try:
        status: dict[str, Any] = worker.get(f"/connectors/{connector}/status")
        return status
    except (OSError, urllib.error.HTTPError):
        return {}


def _restart_failed_tasks(worker: Worker, connector: str, progress: Callable[[str], None]) -> None:
    """Restart the connector's FAILED tasks, as an operator would.

    Connect 4.4's ExactlyOnceWorkerSourceTask can fail a task just taken over with "OffsetStorageWriter
    is already flushing" (seen on the reference Kafka on a loaded machine): a framework race, not the
    broker's. A restarted task resumes from its committed offsets, so exactly-once must still hold.
    """
    tasks = _status(worker, connector).get("tasks", [])
    if any(task["state"] == "FAILED" for task in tasks):
        progress(f"restarting {connector}'s failed tasks: {[t.get('trace', '').splitlines()[:1] for t in tasks]}")
        worker.post(f"/connectors/{connector}/restart?includeTasks=true&onlyFailed=true")


def _running_on(status: dict[str, Any]) -> set[str]:
    """The worker ids (host:port) running the connector's tasks, when they all run."""
    tasks = status.get("tasks", [])
    if not tasks or any(task["state"] != "RUNNING" for task in tasks):
        return set()
    return {task["worker_id"] for task in tasks}


def pipeline(bootstrap: str, work_dir: Path, prefix: str = "connect", *, exactly_once: bool = True,
             progress: Callable[[str], None] = lambda _: None) -> list[str]:
    """The two-worker pipeline with a worker SIGKILLed mid-stream; see the module docstring."""
    group = f"{prefix}-{uuid.uuid4().hex[:8]}"
    topic, sink_file = f"{group}-numbers", work_dir / f"{group}-sink.txt"
    sink_file.touch()
    workers = [Worker(bootstrap, group, work_dir, f"{group}-worker{i}", exactly_once=exactly_once) for i in (1, 2)]
    problems: list[str] = []
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.wait_ready()
        # The REST API answers before the herder has created the internal topics and joined.
        internal = {f"{group}-{suffix}" for suffix in INTERNAL_TOPICS}
        problem = wait_until(lambda: None if internal <= list_topics(bootstrap) else "internal topics not all created", 60, 0.5)
        if problem:
            return [f"{problem}:\n{workers[0].log_tail()}"]
        for suffix in INTERNAL_TOPICS:
            name = f"{group}-{suffix}"
            configs = dynamic_topic_configs(bootstrap, name)
            if configs.get("cleanup.policy") != "compact":
                problems.append(f"{name} configs {configs}, Connect asks cleanup.policy=compact")
        source_config = {"connector.class": SOURCE_CLASS, "tasks.max": "1", "topic": topic, "count": str(COUNT),
                         "batch.records": str(BATCH), "poll.interval.ms": str(POLL_INTERVAL_MS)}
        if exactly_once:
            source_config |= {"exactly.once.support": "required", "transaction.boundary": "connector"}
        sink_config = {"connector.class": SINK_CLASS, "tasks.max": "1", "topics": topic, "file": str(sink_file)}
        create_topics(bootstrap, {topic: 1})
        # The sink first, so the source's numbers flow on from the moment it starts.
        for name, config in (("sink", sink_config), ("source", source_config)):
            workers[0].put(f"/connectors/{name}/config", config)
            problem = wait_until(lambda: None if _running_on(_status(workers[0], name)) else f"{name} task not running", 60, 0.5)
            if problem:
                return [f"{problem}: {_status(workers[0], name)}\n{workers[0].log_tail()}"]

        # Kill the worker running the source task once a fifth of the numbers are in the topic.
        source_worker = next(iter(_running_on(_status(workers[0], "source"))))
        victim = next(w for w in workers if source_worker.endswith(f":{w.port}"))
        survivor = next(w for w in workers if w is not victim)
        # The end offset counts transaction markers too: about a fifth of the numbers are written.
        wait_until(lambda: None if end_offset(bootstrap, topic) >= COUNT // 5 else "few yet", 60, 0.2)
        victim.kill()
        progress(f"killed {victim.name} at end offset {end_offset(bootstrap, topic)} of {topic}, {COUNT} numbers to go there")

        def taken_over() -> str | None:
            for connector in ("source", "sink"):
                _restart_failed_tasks(survivor, connector, progress)
                where = _running_on(_status(survivor, connector))
                if where != {f"127.0.0.1:{survivor.port}"}:
                    return f"{connector} tasks on {where or 'no running worker'}"
            return None

        problem = wait_until(taken_over, 90, 0.5)
        if problem:
            problems.append(f"after the kill: {problem}")

        def numbers_complete() -> str | None:
            _restart_failed_tasks(survivor, "source", progress)
            values = [int(value) for _, value in read_topic(bootstrap, topic)]
            if values == list(range(COUNT)) or (not exactly_once and set(values) == set(range(COUNT))):
                return None
            want = "once each in order" if exactly_once else "each at least once"
            return f"topic holds {len(values)} numbers, {len(set(values))} distinct, want 0..{COUNT - 1} {want}"

        problem = wait_until(numbers_complete, 120)
        if problem:
            problems.append(problem)

        def sink_complete() -> str | None:
            by_offset: dict[tuple[str, str], set[str]] = {}
            for line in sink_file.read_text().splitlines():
                _, partition, offset, _, value = line.split(" ")
                by_offset.setdefault((partition, offset), set()).add(value)
            if any(len(values) > 1 for values in by_offset.values()):
                return "the sink saw different numbers at one offset"
            seen = {int(next(iter(values))) for values in by_offset.values()}
            missing = set(range(COUNT)) - seen
            return f"the sink lacks {len(missing)} numbers (e.g. {sorted(missing)[:5]})" if missing else None

        problem = wait_until(sink_complete, 60)
        if problem:
            problems.append(problem)
        progress(f"sink file: {len(sink_file.read_text().splitlines())} lines for {COUNT} numbers")
    finally:
        for worker in workers:
            worker.stop()
    return problems


REPORT_TITLE = "## Kafka Connect"
REPORT_INTRO = (
    f"Kafka Connect {kafka.KAFKA_VERSION} in distributed mode (`python -m compat.connect --report`;"
    " `tests/integration/test_connect.py` runs the same): two workers in one group, config/offset/status topics"
    " checked `cleanup.policy=compact`, our counter source (KIP-618 exactly-once, `transaction.boundary=connector`,"
    " workers with `exactly.once.source.support=enabled`) and recording sink of `compat/java/connect` created"
    " through the REST API; the source's worker SIGKILLed mid-stream; the survivor takes both tasks over, the topic"
    f" (read_committed) holds 0..{COUNT - 1} once each in order and the sink saw every number."
    " MirrorMaker 2 has a section of its own below (`python -m compat.mirror --report`)."
)


def main(argv: list[str] | None = None) -> int:
    scenarios: dict[str, Scenario] = {"pipeline": lambda bootstrap, work, prefix: pipeline(bootstrap, work, prefix, progress=say)}
    return scenarios_main(argv, module="connect", description=__doc__.splitlines()[0], scenarios=scenarios,
                          report_title=REPORT_TITLE, report_intro=REPORT_INTRO)

if __name__ == "__main__":
    sys.exit(main())
