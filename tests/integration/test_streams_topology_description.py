"""Kafka Streams 4.4 pushes its topology description (KIP-1331) to a broker running the
in-memory description plugin, on Ottla as on the reference Kafka 4.4: the same WordCount in a
streams group, and StreamsGroupDescribe v1 then answers the same description, AVAILABLE, which
`kafka-streams-groups --describe --topology` prints alike."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from compat import kafka, streams
from compat.differential import _Connection
from ottla.wire.api import ApiKey
from tests.integration.conftest import unavailable

pytestmark = pytest.mark.slow

PLUGIN = {"group.streams.topology.description.plugin.class": "org.apache.kafka.server.streams.InMemoryTopologyDescriptionPlugin"}
AVAILABLE = 3


def _described_once_pushed(bootstrap: str, group_id: str, timeout: float = 60) -> dict[str, Any]:
    """The group's answer to StreamsGroupDescribe v1 once it carries a description (the app
    pushes it after the heartbeat that asks), or the last answer after `timeout`."""
    connection = _Connection(bootstrap)
    deadline = time.monotonic() + timeout
    try:
        while True:
            group: dict[str, Any] = connection.call(ApiKey.STREAMS_GROUP_DESCRIBE, 1, {
                "group_ids": [group_id], "include_authorized_operations": False, "include_topology_description": True})["groups"][0]
            if group["topology_description_status"] == AVAILABLE or time.monotonic() > deadline:
                return group
            time.sleep(0.2)
    finally:
        connection.close()


def _run(bootstrap: str, work_dir: Path) -> dict[str, Any]:
    prefix = "td"
    work_dir.mkdir(parents=True)
    streams.create_topics(bootstrap, {f"{prefix}-lines": 2, f"{prefix}-counts": 1})
    settings = {"input": f"{prefix}-lines", "output": f"{prefix}-counts", "commit.interval.ms": "200", "group.protocol": "streams"}
    with streams.StreamsApp("wordcount", bootstrap, f"{prefix}-app", work_dir / f"{prefix}-app", settings) as app:
        app.start_running()
        group = _described_once_pushed(bootstrap, f"{prefix}-app")
        tool = kafka.run_tool("kafka-streams-groups", "--bootstrap-server", bootstrap, "--describe", "--topology", "--group", f"{prefix}-app")
    return {"status": group["topology_description_status"], "description": group["topology_description"],
            "tool": (tool.returncode, tool.stdout)}


def test_wordcount_description_is_available_as_on_kafka(tmp_path: Path) -> None:
    from compat.harness import OttlaBroker

    if not streams.module_built("streams"):
        unavailable("compat/java/streams is not built: run `python -m compat.install` (needs mvn)")
    if not kafka.is_fetched():
        unavailable(f"reference Kafka {kafka.KAFKA_VERSION} not fetched: run `python -m compat.kafka --fetch`")
    settings = {**streams.STREAMS_BROKER_SETTINGS, **PLUGIN}
    with OttlaBroker(tmp_path / "ottla", settings=settings) as broker:
        on_ottla = _run(broker.bootstrap, tmp_path / "ottla-app")
    with kafka.ReferenceKafka(config=settings) as reference:
        on_kafka = _run(reference.bootstrap_servers, tmp_path / "kafka-app")
    assert on_kafka["status"] == AVAILABLE
    assert on_ottla == on_kafka
