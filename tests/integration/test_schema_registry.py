"""A schema registry that keeps its state in Kafka (Apicurio Registry with KafkaSQL, compat/registry.py) on Ottla.

confluent-kafka's Avro, JSON Schema and Protobuf serializers register through the registry's
Confluent-compatible API and produce; the deserializers read back; the registry restarts and must
reload every schema from its journal topic. On Ottla in full (about 90 s: each registry start is
30-40 s of JVM on a loaded machine); on the session's reference Kafka once, without the restart, to
show the same checks pass there (`python -m compat.registry --report` runs all of it on both).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from compat import registry
from compat.harness import OttlaBroker
from tests.integration.conftest import unavailable

pytestmark = pytest.mark.slow


@pytest.fixture
def unpacked() -> None:
    if not registry.is_built():
        unavailable("compat/java/registry is not unpacked: run `python -m compat.install` (needs mvn)")


@pytest.mark.usefixtures("unpacked")
def test_registry_keeps_its_schemas_in_ottla_across_a_restart(ottla_serve: OttlaBroker, tmp_path: Path) -> None:
    """Three formats registered, produced and consumed; a restarted registry has the same subjects and ids."""
    assert registry.schemas(ottla_serve.bootstrap, tmp_path) == []


@pytest.mark.usefixtures("unpacked")
def test_registry_serves_the_three_formats_on_the_reference_kafka(reference_kafka: str, tmp_path: Path) -> None:
    """The same without the restart (it runs with the other reference-Kafka tests, on their one broker)."""
    assert registry.schemas(reference_kafka, tmp_path, restart=False) == []
