"""A schema registry that keeps its state in Kafka (Apicurio Registry with KafkaSQL, compat/registry.py) on Ottla.

confluent-kafka's Avro, JSON Schema and Protobuf serializers register through the registry's
Confluent-compatible API and produce; the deserializers read back; the registry restarts and must
reload every schema from its journal topic. On Ottla in full (about 90 s: each registry start is
about 40 s of JVM on a loaded machine); on the reference Kafka once, without the restart, to show
the same rows pass there (`python -m compat.registry --report` runs the full scenario on both).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from compat import registry
from tests.integration.conftest import java_module_bootstrap

pytestmark = pytest.mark.slow


@pytest.fixture
def bootstrap(request: pytest.FixtureRequest) -> str:
    """The broker named by the test's parameter, once the registry is unpacked."""
    return java_module_bootstrap(request, "registry")


@pytest.mark.parametrize("bootstrap", ["ottla"], indirect=True)
def test_registry_keeps_its_schemas_in_the_broker_across_a_restart(bootstrap: str, tmp_path: Path) -> None:
    """Three formats registered, produced and consumed; a restarted registry has the same subjects and ids."""
    assert registry.schemas(bootstrap, tmp_path) == []


@pytest.mark.parametrize("bootstrap", ["kafka"], indirect=True)
def test_registry_serves_the_three_formats_on_the_reference_kafka(bootstrap: str, tmp_path: Path) -> None:
    """The same, without the restart: what the Ottla test checks holds on Kafka too."""
    assert registry.schemas(bootstrap, tmp_path, restart=False) == []
