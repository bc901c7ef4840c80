"""The client half of SASL a broker logs in to other brokers with (server/security/sasl/client.py),
against the broker's own server mechanisms: PLAIN and both SCRAMs succeed with the JAAS
config's username and password and fail with a wrong one, a SCRAM server that does not hold the
credential is caught by its signature, and settings a broker cannot log in with are refused
with messages that name keys, never the password."""

from __future__ import annotations

import pytest

from ottla.server.security.sasl.client import LoginConfigError, SaslLogin, inter_broker_login
from ottla.server.security.sasl.errors import AuthenticationFailed
from ottla.server.security.sasl.plain import PlainServer
from ottla.server.security.sasl.scram import ScramMechanism, ScramServer

_JAAS = 'org.apache.kafka.common.security.scram.ScramLoginModule required username="broker" password="broker-secret";'


def _settings(**values: str) -> dict[str, str]:
    return {"sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512", "scram-sha-512.sasl.jaas.config": _JAAS, **values}


def _run(login: SaslLogin, server: PlainServer | ScramServer) -> str | None:
    exchange = login.exchange()
    token = exchange.respond(None)
    while token is not None:
        token = exchange.respond(server.evaluate(token))
    assert server.complete
    return server.principal


@pytest.mark.parametrize("mechanism", list(ScramMechanism))
def test_scram_logs_in_and_checks_the_servers_signature(mechanism: ScramMechanism) -> None:
    stored = mechanism.credential_from_password("broker-secret", 4096)
    login = SaslLogin(mechanism.mechanism_name, "broker", "broker-secret")
    assert _run(login, ScramServer(mechanism, lambda user, _: stored if user == "broker" else None)) == "broker"
    with pytest.raises(AuthenticationFailed):
        _run(SaslLogin(mechanism.mechanism_name, "broker", "wrong-secret"), ScramServer(mechanism, lambda user, _: stored))
    # A server final that is not the server's signature over this exchange is refused.
    exchange = login.exchange()
    server = ScramServer(mechanism, lambda user, _: stored)
    final = exchange.respond(server.evaluate(exchange.respond(None) or b""))
    assert final is not None
    signature = server.evaluate(final)
    with pytest.raises(AuthenticationFailed):
        exchange.respond(signature[:-4] + b"AAA=")


def test_plain_logs_in_with_the_jaas_users_password() -> None:
    jaas = 'org.apache.kafka.common.security.plain.PlainLoginModule required username="broker" password="broker-secret" user_broker="broker-secret";'
    login = inter_broker_login({"sasl.mechanism.inter.broker.protocol": "PLAIN", "plain.sasl.jaas.config": jaas}.get, "INTERNAL")
    assert _run(login, PlainServer({"broker": "broker-secret"})) == "broker"
    assert "broker-secret" not in repr(login)


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"sasl.mechanism.inter.broker.protocol": "GSSAPI"}, "sasl.mechanism.inter.broker.protocol"),
        (_settings(**{"scram-sha-512.sasl.jaas.config": None}), "listener.name.internal.scram-sha-512.sasl.jaas.config"),
        (_settings(**{"scram-sha-512.sasl.jaas.config": 'x required password="broker-secret";'}), "needs username and password"),
        (_settings(**{"scram-sha-512.sasl.jaas.config": 'x required password="broker-secret"'}), "not terminated"),
    ],
)
def test_settings_a_broker_cannot_log_in_with_name_keys_not_secrets(settings: dict[str, str | None], named: str) -> None:
    with pytest.raises(LoginConfigError) as refused:
        inter_broker_login(settings.get, "INTERNAL")
    assert named in str(refused.value) and "broker-secret" not in str(refused.value)
