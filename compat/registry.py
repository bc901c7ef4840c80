"""`python -m compat.registry`: a schema registry that keeps its state in Kafka, on a broker.

The registry is Apicurio Registry 3 (`io.apicurio:apicurio-registry-app`, the built Quarkus
application its project publishes on Maven Central as the `all` tar.gz) with its KafkaSQL storage:
every write is a record in a journal topic, and a starting registry replays that topic into its
in-memory database. compat/java/registry unpacks it into `.cache/kafka/<version>/registry`
(`--build`, run by `python -m compat.install`); Registry 3 needs Java 21+ (`java_home`).

`Registry(bootstrap, work_dir)` is the small API tests use: `start()` (waits until ready), `url`
(the registry's root), `ccompat_url` (its Confluent-compatible API, for confluent-kafka's
`SchemaRegistryClient`; `client()` makes one), `stop()`; a context manager does both.

The scenario `schemas`: a registry on the broker; Avro, JSON Schema and Protobuf values produced
through confluent-kafka's serializers, which register their schemas through the Confluent-compatible
API (/apis/ccompat/v7); the journal and snapshot topics must carry the configs Apicurio asks for (and
checks at start-up through DescribeConfigs); the records are read back through the deserializers,
which fetch each schema by id. Then the registry is stopped and a new one started on the same
topics: it must list the same subjects with the same ids, and fresh deserializers (an empty schema
cache) must read every record again.

`python -m compat.registry BOOTSTRAP` runs it against a running broker and prints the problems.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient, topic_subject_name_strategy
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

from compat import kafka
from compat.streams import (
    JavaProcess,
    Scenario,
    build_java_module,
    dynamic_topic_configs,
    module_built,
    read_topic,
    say,
    scenarios_main,
)

REGISTRY_DIR = kafka.CACHE / "registry"
RUN_JAR = REGISTRY_DIR / "quarkus-run.jar"

# Registry 3 is compiled with maven.compiler.release=21 (its app pom).
MIN_JAVA = 21

# What Apicurio asks of its journal and snapshot topics (KafkaSqlConfiguration), and verifies on
# start-up: nothing of the journal may ever be deleted.
JOURNAL_CONFIGS = {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}

RECORDS = 20

AVRO_SCHEMA = json.dumps({
    "type": "record", "name": "Reading", "namespace": "dev.ottla.compat",
    "fields": [{"name": "sensor", "type": "string"}, {"name": "value", "type": "long"}],
})
JSON_SCHEMA = json.dumps({
    "$schema": "http://json-schema.org/draft-07/schema#", "title": "Reading", "type": "object",
    "properties": {"sensor": {"type": "string"}, "value": {"type": "integer"}},
    "required": ["sensor", "value"], "additionalProperties": False,
})


def _reading_message_class() -> type[Message]:
    """`message Reading { string sensor = 1; int64 value = 2; }`, built from its descriptor (no protoc here)."""
    file = descriptor_pb2.FileDescriptorProto(name="ottla_compat_reading.proto", package="dev.ottla.compat", syntax="proto3")
    message = file.message_type.add(name="Reading")
    message.field.add(name="sensor", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                      label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    message.field.add(name="value", number=2, type=descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
                      label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("dev.ottla.compat.Reading"))


Reading = _reading_message_class()


def build() -> Path:
    """Unpack the pinned registry into the cache; a no-op when done (its run jar there, its stamp current)."""
    if not RUN_JAR.exists():
        (REGISTRY_DIR / ".built").unlink(missing_ok=True)
    return build_java_module("registry")


def is_built() -> bool:
    return module_built("registry") and RUN_JAR.exists()


def java_home() -> Path:
    """A JDK of release MIN_JAVA or newer: JAVA_HOME's if it is one, else the newest in /usr/lib/jvm."""
    candidates = [Path(os.environ["JAVA_HOME"])] if os.environ.get("JAVA_HOME") else []
    jvms = Path("/usr/lib/jvm")
    candidates += sorted((p for p in jvms.iterdir() if p.is_dir()), key=_java_release, reverse=True) if jvms.is_dir() else []
    for home in candidates:
        if _java_release(home) >= MIN_JAVA and (home / "bin" / "java").exists():
            return home
    raise RuntimeError(f"no JDK {MIN_JAVA}+ in JAVA_HOME or /usr/lib/jvm: Apicurio Registry 3 needs one")


def _java_release(home: Path) -> int:
    """The feature release of the JDK at `home`, from its `release` file; 0 when unknown."""
    try:
        found = re.search(r'^JAVA_VERSION="(\d+)', (home / "release").read_text(), re.MULTILINE)
    except OSError:
        return 0
    return int(found.group(1)) if found else 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Registry(JavaProcess):
    """One Apicurio Registry with KafkaSQL storage on `bootstrap`, its state in the topics named by `topic_prefix`.

    Two registries with one prefix share their state (Apicurio's way of scaling out); a new one
    with the prefix of a stopped one reloads the stopped one's state from the journal.
    """

    def __init__(self, bootstrap: str, work_dir: Path, topic_prefix: str = "kafkasql", *, name: str = "registry") -> None:
        self.port, self.management_port = _free_port(), _free_port()
        self.journal_topic, self.snapshots_topic = f"{topic_prefix}-journal", f"{topic_prefix}-snapshots"
        properties = {
            "apicurio.storage.kind": "kafkasql",
            "apicurio.kafkasql.bootstrap.servers": bootstrap,
            "apicurio.kafkasql.topic": self.journal_topic,
            "apicurio.kafkasql.snapshots.topic": self.snapshots_topic,
            "apicurio.events.kafka.topic": f"{topic_prefix}-events",
            "quarkus.http.host": "127.0.0.1",
            "quarkus.http.port": str(self.port),
            # Health checks listen apart from the API, on 0.0.0.0:9000 unless told otherwise.
            "quarkus.management.host": "127.0.0.1",
            "quarkus.management.port": str(self.management_port),
            'quarkus.log.category."org.apache.kafka".level': "WARN",
        }
        java = java_home() / "bin" / "java"
        # A small heap and C1 only, as for the other JVMs of compat (CI is two cores for everything).
        command = [str(java), "-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                   *(f"-D{key}={value}" for key, value in properties.items()), "-jar", str(RUN_JAR)]
        work_dir.mkdir(parents=True, exist_ok=True)
        super().__init__(command, work_dir / f"{name}-{self.port}.log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ccompat_url(self) -> str:
        """The Confluent-compatible API's root, what confluent-kafka's SchemaRegistryClient takes as `url`."""
        return f"{self.url}/apis/ccompat/v7"

    def start(self, timeout: float = 180) -> None:
        """Start, and wait until the registry reports itself ready: its storage has replayed the journal."""
        if not RUN_JAR.exists():
            raise RuntimeError(f"{RUN_JAR} missing: run `python -m compat.registry --build`")
        super().start()
        deadline = time.monotonic() + timeout
        while not self._ready():
            if not self.running:
                raise RuntimeError(f"registry exited:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"registry not ready in {timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(0.5)

    def client(self) -> SchemaRegistryClient:
        """confluent-kafka's client of the Confluent-compatible API. With a timeout: a response the
        registry loses (seen once, a 404 it logged as sent) fails the request, never hangs it."""
        return SchemaRegistryClient({"url": self.ccompat_url, "timeout": 30})

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.management_port}/health/ready", timeout=5) as response:
                return bool(json.load(response).get("status") == "UP")
        except (OSError, ValueError, urllib.error.HTTPError):
            return False

    def __enter__(self) -> Registry:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


# ---------------------------------------------------------------------------------------------
# The scenario


def _readings() -> list[dict[str, Any]]:
    return [{"sensor": f"s{i % 3}", "value": i * 7} for i in range(RECORDS)]


def _formats(client: SchemaRegistryClient) -> dict[str, tuple[Callable[[Any, SerializationContext], bytes | None],
                                                             Callable[[bytes, SerializationContext], Any]]]:
    """Per format, a serializer of a reading (a dict) and a deserializer back to a dict.

    The serializers name subjects `<topic>-value` without asking first: confluent-kafka 2.16's
    default strategy looks the topic up in Confluent's associations API, which Apicurio answers 404.
    """
    naming = {"subject.name.strategy": topic_subject_name_strategy}
    protobuf_conf = {"use.deprecated.format": False}
    avro_out, json_out = AvroSerializer(client, AVRO_SCHEMA, conf=naming), JSONSerializer(JSON_SCHEMA, client, conf=naming)
    proto_out = ProtobufSerializer(Reading, client, protobuf_conf | naming)
    avro_in, json_in = AvroDeserializer(client), JSONDeserializer(None, schema_registry_client=client)
    proto_in = ProtobufDeserializer(Reading, protobuf_conf)
    return {
        "avro": (avro_out, avro_in),
        "json": (json_out, json_in),
        "protobuf": (lambda reading, ctx: proto_out(Reading(**reading), ctx),
                     lambda data, ctx: {"sensor": (m := proto_in(data, ctx)).sensor, "value": m.value}),
    }


def _read_back_problem(bootstrap: str, topic: str, deserialize: Callable[[bytes, SerializationContext], Any]) -> str | None:
    """What is wrong with `topic`'s records read back through `deserialize` (None: every reading, in order)."""
    context = SerializationContext(topic, MessageField.VALUE)
    try:
        got = [deserialize(value, context) for _, value in read_topic(bootstrap, topic, committed_only=False)]
    except SchemaRegistryError as exc:
        return f"{topic}: the registry cannot give a record's schema: {exc}"
    return None if got == _readings() else f"{topic}: read back {got[:3]}..., want {_readings()[:3]}..."


def _check_topic_configs(bootstrap: str, registry: Registry) -> list[str]:
    problems = []
    for topic in (registry.journal_topic, registry.snapshots_topic):
        configs = dynamic_topic_configs(bootstrap, topic)
        wrong = {key: configs.get(key) for key, value in JOURNAL_CONFIGS.items() if configs.get(key) != value}
        if wrong:
            problems.append(f"{topic} has {wrong}, Apicurio asks {JOURNAL_CONFIGS}")
    return problems


def schemas(bootstrap: str, work_dir: Path, prefix: str = "registry", *, restart: bool = True,
            progress: Callable[[str], None] = lambda _: None) -> list[str]:
    """Register, produce and consume in three formats; restart the registry (unless not `restart`)
    and see it reload. See the module docstring."""
    topic_prefix = f"{prefix}-{uuid.uuid4().hex[:8]}"
    topics = {fmt: f"{topic_prefix}-{fmt}" for fmt in ("avro", "json", "protobuf")}
    problems: list[str] = []
    began = time.monotonic()
    with Registry(bootstrap, work_dir, topic_prefix) as registry:
        progress(f"registry ready on {registry.url} in {time.monotonic() - began:.0f}s")
        problems += _check_topic_configs(bootstrap, registry)
        client = registry.client()
        producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
        for fmt, (serialize, _) in _formats(client).items():
            context = SerializationContext(topics[fmt], MessageField.VALUE)
            for reading in _readings():
                producer.produce(topics[fmt], value=serialize(reading, context))
        if producer.flush(30):
            return problems + ["records not delivered in 30s"]
        for fmt, (_, deserialize) in _formats(client).items():
            if problem := _read_back_problem(bootstrap, topics[fmt], deserialize):
                problems.append(problem)
        registered = {subject: client.get_latest_version(subject) for subject in client.get_subjects()}
        want_subjects = {f"{topic}-value" for topic in topics.values()}
        if set(registered) != want_subjects:
            problems.append(f"subjects {sorted(registered)}, want {sorted(want_subjects)}")
        kinds = {subject: version.schema.schema_type for subject, version in registered.items()}
        want_kinds = {f"{topics[fmt]}-value": kind for fmt, kind in (("avro", "AVRO"), ("json", "JSON"), ("protobuf", "PROTOBUF"))}
        if kinds != want_kinds:
            problems.append(f"schema types {kinds}, want {want_kinds}")
    progress(f"registered {sorted((s, v.schema_id) for s, v in registered.items())}")
    if not restart:
        return problems

    began = time.monotonic()
    with Registry(bootstrap, work_dir, topic_prefix, name="registry-restarted") as registry:
        progress(f"restarted registry ready in {time.monotonic() - began:.0f}s")
        client = registry.client()
        reloaded = {subject: client.get_latest_version(subject) for subject in client.get_subjects()}
        before = {subject: (v.schema_id, v.version) for subject, v in registered.items()}
        after = {subject: (v.schema_id, v.version) for subject, v in reloaded.items()}
        if after != before:
            problems.append(f"after a restart the registry has (id, version) {after}, before {before}")
        for fmt, (_, deserialize) in _formats(client).items():
            if problem := _read_back_problem(bootstrap, topics[fmt], deserialize):
                problems.append(f"after a restart, {problem}")
    return problems


REPORT_TITLE = "## Schema registry"
REPORT_INTRO = (
    "Apicurio Registry 3.3.3 (`io.apicurio:apicurio-registry-app`, the Quarkus application as published, on Java 21+)"
    " with its KafkaSQL storage (`python -m compat.registry --report`; `tests/integration/test_schema_registry.py` runs"
    " the same). `schemas`: confluent-kafka's Avro, JSON Schema and Protobuf serializers register their schemas"
    f" through the registry's Confluent-compatible API (/apis/ccompat/v7) and produce {RECORDS} records each; the"
    " journal and snapshot topics carry `cleanup.policy=delete`, `retention.ms=-1`, `retention.bytes=-1` as Apicurio"
    " asks (and verifies at start-up); the deserializers read every record back. The registry is then stopped and a"
    " new one started on the same topics: it replays the journal and lists the same subjects with the same ids, and"
    " fresh deserializers read every record again."
)


def main(argv: list[str] | None = None) -> int:
    scenarios: dict[str, Scenario] = {"schemas": lambda bootstrap, work, prefix: schemas(bootstrap, work, prefix, progress=say)}
    return scenarios_main(argv, module="registry", description=__doc__.splitlines()[0], scenarios=scenarios,
                          report_title=REPORT_TITLE, report_intro=REPORT_INTRO)


if __name__ == "__main__":
    sys.exit(main())
