"""Kafka's own `kafka-configs` manages Ottla's client quotas: `--entity-type clients|users`
with `--alter --add-config`, `--describe` and `--delete-config`, as against Kafka 4.4."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from compat import kafka as reference
from ottla.testing import ThreadedBroker, running_broker

pytestmark = [pytest.mark.external, pytest.mark.slow]


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedBroker]:
    if not reference.is_fetched():
        pytest.skip("the reference Kafka is not fetched (python -m compat.kafka --fetch)")
    with running_broker(data_dir=str(tmp_path_factory.mktemp("quota-tools"))) as handle:
        yield handle


def _configs(broker: ThreadedBroker, *args: str) -> str:
    done = reference.run_tool("kafka-configs", "--bootstrap-server", broker.bootstrap_servers, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_kafka_configs_clients_and_users(broker: ThreadedBroker) -> None:
    client = ["--entity-type", "clients", "--entity-name", "app"]
    assert "Completed updating config for client app." in _configs(broker, *client, "--alter", "--add-config", "producer_byte_rate=1024,consumer_byte_rate=2048")
    described = _configs(broker, *client, "--describe")
    assert "Quota configs for client-id 'app' are" in described
    assert "producer_byte_rate=1024.0" in described and "consumer_byte_rate=2048.0" in described

    user = ["--entity-type", "users", "--entity-name", "alice", "--entity-type", "clients", "--entity-default"]
    assert "Completed updating config for user alice." in _configs(broker, *user, "--alter", "--add-config", "request_percentage=25")
    assert "request_percentage=25.0" in _configs(broker, *user, "--describe")

    everything = _configs(broker, "--entity-type", "clients", "--describe")
    assert "client-id 'app'" in everything

    assert "Completed updating config for client app." in _configs(broker, *client, "--alter", "--delete-config", "producer_byte_rate")
    described = _configs(broker, *client, "--describe")
    assert "producer_byte_rate" not in described and "consumer_byte_rate=2048.0" in described
    assert broker.broker is not None and Path(str(broker.broker.data_dir), "client-quotas.json").exists()
