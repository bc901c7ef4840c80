"""The reference Apache Kafka that the differential tests stand on: it starts, the Java client
driver produces and consumes through it, Kafka's tools reach it, and restart() keeps its data.

Needs `python -m compat.kafka --fetch` (the README's test command runs it): without the cache
these tests fail under CI=true, so a broken fetch cannot pass as green, and skip elsewhere.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator

import pytest

from compat import kafka as reference
from unavailable import unavailable


def _require_fetched() -> None:
    if not reference.is_fetched():
        why = f"reference Kafka {reference.KAFKA_VERSION} not fetched: run `python -m compat.kafka --fetch`"
        unavailable(why)


@pytest.fixture(scope="module")
def kafka() -> Iterator[reference.ReferenceKafka]:
    _require_fetched()
    with reference.ReferenceKafka() as broker:
        yield broker


def test_every_tool_main_class_is_in_the_jars() -> None:
    """Kafka moves tools between packages across releases; a version bump must fail here first."""
    _require_fetched()
    classes: set[str] = set()
    for jar in reference.LIB.glob("*.jar"):
        with zipfile.ZipFile(jar) as z:
            classes.update(name[: -len(".class")].replace("/", ".") for name in z.namelist() if name.endswith(".class"))
    assert {tool: main for tool, main in reference.TOOLS.items() if main not in classes} == {}


def test_java_driver_produces_and_consumes_by_assignment(kafka: reference.ReferenceKafka) -> None:
    created = reference.run_driver(kafka.bootstrap_servers, "driver-roundtrip", "create-topic", partitions=3)
    assert created["ok"], created

    produced = reference.run_driver(kafka.bootstrap_servers, "driver-roundtrip", "produce", count=30)
    assert produced["ok"], produced
    consumed = reference.run_driver(kafka.bootstrap_servers, "driver-roundtrip", "consume")
    assert consumed["ok"], consumed

    records = consumed["records"]
    assert sorted(r["key"] for r in records) == sorted(f"k{i}" for i in range(30))
    assert all(r["value"] == "v" + r["key"][1:] for r in records)
    # What the producer was told is exactly where the consumer finds each record.
    placed = {r["key"]: (r["partition"], r["offset"]) for r in produced["records"]}
    assert {r["key"]: (r["partition"], r["offset"]) for r in records} == placed
    for partition in {p for p, _ in placed.values()}:
        offsets = [r["offset"] for r in records if r["partition"] == partition]
        assert offsets == list(range(len(offsets)))
    assert {r["partition"] for r in records} == {0, 1, 2}, "30 keys should hash to all 3 partitions"


def test_java_driver_reports_a_refusal_as_the_kafka_exception(kafka: reference.ReferenceKafka) -> None:
    assert reference.run_driver(kafka.bootstrap_servers, "driver-twice", "create-topic")["ok"]
    again = reference.run_driver(kafka.bootstrap_servers, "driver-twice", "create-topic")
    assert (again["ok"], again["error"]) == (False, "TopicExistsException")


def test_kafka_topics_lists_topics(kafka: reference.ReferenceKafka) -> None:
    assert reference.run_driver(kafka.bootstrap_servers, "listed-by-tool", "create-topic", partitions=2)["ok"]
    listed = reference.run_tool("kafka-topics", "--bootstrap-server", kafka.bootstrap_servers, "--list")
    assert listed.returncode == 0, listed.stderr
    assert "listed-by-tool" in listed.stdout.split()


def test_restart_keeps_ports_and_data(kafka: reference.ReferenceKafka) -> None:
    bootstrap = kafka.bootstrap_servers
    assert reference.run_driver(bootstrap, "survives-restart", "produce", count=5)["ok"]
    kafka.restart()
    assert kafka.bootstrap_servers == bootstrap
    consumed = reference.run_driver(bootstrap, "survives-restart", "consume")
    assert [r["key"] for r in consumed["records"]] == [f"k{i}" for i in range(5)]
