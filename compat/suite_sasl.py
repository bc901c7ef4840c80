"""The SASL listener the client suites' login tests run against, on Ottla and on Kafka alike.

A suite's tests that log in (franz-go's TestSCRAMAuth and TestOAuthAuth, librdkafka's 0135 and
0142) need a listener that asks for SASL; the rest of each suite runs on PLAINTEXT. `add_sasl_listener`
restarts a one-node broker with a SASL_PLAINTEXT listener beside its PLAINTEXT one, configured by
the same Kafka broker properties on both brokers, and creates SCRAM_USER's credential through the
admin API (AlterUserScramCredentials, as kafka-configs sends it).
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from compat.harness import OttlaBroker

if TYPE_CHECKING:
    from compat.kafka import ReferenceKafka

# The SCRAM-SHA-256 user the suites log in as.
SCRAM_USER = ("suite", "suite-secret")
MECHANISMS = ("SCRAM-SHA-256", "OAUTHBEARER")


def listener_settings(port: int, sasl_port: int) -> dict[str, str]:
    """Kafka's broker properties for PLAINTEXT on `port` and SASL_PLAINTEXT on `sasl_port`, the
    latter with MECHANISMS; OAUTHBEARER without a callback handler validates with Kafka's
    default, the unsecured-JWS validator (`alg: none` tokens, for development)."""
    ports = {"PLAINTEXT": port, "SASL_PLAINTEXT": sasl_port}
    return {
        "listeners": ",".join(f"{name}://127.0.0.1:{p}" for name, p in ports.items()),
        "advertised.listeners": ",".join(f"{name}://127.0.0.1:{p}" for name, p in ports.items()),
        "listener.security.protocol.map": ",".join(f"{name}:{name}" for name in ports),
        "sasl.enabled.mechanisms": ",".join(MECHANISMS),
        "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config":
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
        "listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config":
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;",
    }


def add_sasl_listener(broker: OttlaBroker | ReferenceKafka, extra: dict[str, str] | None = None) -> str:
    """Restart a running one-node `broker` with `listener_settings` (and `extra` broker
    properties), create SCRAM_USER, and give the SASL listener's bootstrap address."""
    from kafka.admin import KafkaAdminClient, ScramMechanism, UserScramCredentialUpsertion

    sasl_port = _free_port()
    settings = {**listener_settings(broker.port, sasl_port), **(extra or {})}
    if isinstance(broker, OttlaBroker):
        broker.settings.update(settings)
        broker.restart()
    else:
        broker.reconfigure(settings)
    admin = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{broker.port}", request_timeout_ms=15000)
    try:
        upsert = UserScramCredentialUpsertion(SCRAM_USER[0], ScramMechanism.SCRAM_SHA_256, SCRAM_USER[1])
        refused = {user: why for user, why in admin.alter_user_scram_credentials([upsert]).items() if why}
    finally:
        admin.close()
    if refused:
        raise RuntimeError(f"AlterUserScramCredentials refused: {refused}")
    return f"127.0.0.1:{sasl_port}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
