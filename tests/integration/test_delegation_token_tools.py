"""Kafka's own `kafka-delegation-tokens` creates, describes, renews and expires Ottla's
delegation tokens over a SCRAM login, and the Java client logs in with a token
(`tokenauth=true`) as the token's owner."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from compat import kafka as reference
from ottla.server.config import BrokerConfig
from ottla.testing import ThreadedBroker, running_broker

pytestmark = [pytest.mark.external, pytest.mark.slow]

TOOL = "org.apache.kafka.tools.DelegationTokenCommand"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedBroker]:
    if not reference.is_fetched():
        pytest.skip("the reference Kafka is not fetched (python -m compat.kafka --fetch)")
    settings = {
        "listeners": "SASL_PLAINTEXT://127.0.0.1:0",
        "data.dir": str(tmp_path_factory.mktemp("tokens")),
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "delegation.token.secret.key": "the-secret",
    }
    with running_broker(config=BrokerConfig.from_settings(settings), add_scram=["SCRAM-SHA-512=[name=alice,password=alice-secret]"]) as handle:
        yield handle


def _scram_config(tmp_path: Path, username: str, password: str, token: bool = False) -> dict[str, str]:
    extension = ' tokenauth="true"' if token else ""
    return {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.jaas.config": f'org.apache.kafka.common.security.scram.ScramLoginModule required username="{username}" password="{password}"{extension};',
    }


def _tokens(broker: ThreadedBroker, config: Path, *args: str) -> str:
    done = reference.run_tool(TOOL, "--bootstrap-server", broker.bootstrap_servers, "--command-config", str(config), *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_kafka_delegation_tokens_then_the_java_client_logs_in_with_one(broker: ThreadedBroker, tmp_path: Path) -> None:
    config = tmp_path / "alice.properties"
    config.write_text("".join(f"{key}={value}\n" for key, value in _scram_config(tmp_path, "alice", "alice-secret").items()))
    created = _tokens(broker, config, "--create", "--max-life-time-period", "-1", "--renewer-principal", "User:bob")
    assert "Calling create token operation with renewers :[User:bob]" in created
    row = re.search(r"^(?P<id>\S{22})\s+(?P<hmac>\S+)\s+User:alice\s+User:alice\s+\[User:bob\]", created, re.M)
    assert row, created
    token_id, hmac = row["id"], row["hmac"]

    described = _tokens(broker, config, "--describe", "--owner-principal", "User:alice")
    assert token_id in described

    produced = reference.run_driver(broker.bootstrap_servers, "token-login", "produce", count=3, config=_scram_config(tmp_path, token_id, hmac, token=True), timeout_ms=20_000)
    assert produced["ok"], produced
    refused = reference.run_driver(broker.bootstrap_servers, "token-login", "produce", count=1, config=_scram_config(tmp_path, token_id, "not-the-hmac", token=True), timeout_ms=20_000)
    assert not refused["ok"] and refused["error"] == "SaslAuthenticationException", refused

    assert "Completed renew operation" in _tokens(broker, config, "--renew", "--hmac", hmac, "--renew-time-period", "3600000")
    assert "Completed expire operation" in _tokens(broker, config, "--expire", "--hmac", hmac, "--expiry-time-period", "-1")
    assert token_id not in _tokens(broker, config, "--describe")
