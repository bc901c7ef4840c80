"""Secrets never leave the broker: after logins that succeed and fail with every mechanism,
and with everything logged at DEBUG, no password or token appears in the broker's log, in
any DescribeConfigs answer (the broker's every config, with synonyms and documentation),
or in an error message; DescribeConfigs shows a JAAS config and every password-type key as
Kafka does: present, value null, sensitive."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from ottla.server.admin import AdminClient, ClientError, SaslLogin
from ottla.server.config import BrokerConfig
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from tests.security.test_sasl_oauthbearer import client_first, unsecured

SECRETS = ["plain-admin-secret", "plain-alice-secret", "scram-carol-secret", "ssl-store-secret", "wrong-guess-secret"]
JAAS = (
    "org.apache.kafka.common.security.plain.PlainLoginModule required "
    'username="admin" password="plain-admin-secret" user_admin="plain-admin-secret" user_alice="plain-alice-secret";'
)
OAUTH_JAAS = 'org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="admin";'
BROKER = 4  # DescribeConfigs resource type


@pytest.fixture(scope="module")
def broker() -> Iterator[ThreadedBroker]:
    settings = {
        "listeners": "SASL_PLAINTEXT://127.0.0.1:0",
        "data.dir": None,
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,OAUTHBEARER",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
        "listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config": OAUTH_JAAS,
        "sasl.jaas.config": JAAS,
        # A password-type key set though unused: DescribeConfigs must still hide it.
        "ssl.keystore.password": "ssl-store-secret",
    }
    with running_broker(config=BrokerConfig.from_settings(settings), add_scram=["SCRAM-SHA-256=[name=carol,password=scram-carol-secret]"]) as handle:
        yield handle


class _Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def _admin(broker: ThreadedBroker, mechanism: str, user: str, password: str) -> AdminClient:
    return AdminClient(broker.bootstrap_servers, timeout=10, sasl=SaslLogin(mechanism, user, password))


def test_no_secret_in_logs_describe_configs_or_errors(broker: ThreadedBroker) -> None:
    captured = _Captured()
    root = logging.getLogger("ottla")
    level = root.level
    root.addHandler(captured)
    root.setLevel(logging.DEBUG)
    errors: list[str] = []
    try:
        for mechanism, user in (("PLAIN", "alice"), ("SCRAM-SHA-256", "carol")):
            with pytest.raises(ClientError) as refused:
                _admin(broker, mechanism, user, "wrong-guess-secret")
            errors.append(str(refused.value))
        with _admin(broker, "PLAIN", "alice", "plain-alice-secret") as admin:
            _, answer = admin.client.call(
                ApiKey.DESCRIBE_CONFIGS,
                {"resources": [{"resource_type": BROKER, "resource_name": "1", "configuration_keys": None}], "include_synonyms": True, "include_documentation": True},
            )
        with _admin(broker, "SCRAM-SHA-256", "carol", "scram-carol-secret"):
            pass
    finally:
        root.removeHandler(captured)
        root.setLevel(level)
    configs = {entry["name"]: entry for entry in answer["results"][0]["configs"]}
    for name in ("listener.name.sasl_plaintext.plain.sasl.jaas.config", "sasl.jaas.config", "ssl.keystore.password"):
        assert configs[name]["value"] is None and configs[name]["is_sensitive"], name
        assert all(synonym["value"] is None for synonym in configs[name]["synonyms"]), name
    everything = "\n".join([*captured.lines, repr(answer), *errors])
    assert any("authenticated as User:alice" in line for line in captured.lines)  # the log was captured
    for secret in SECRETS:
        assert secret not in everything, secret


def test_an_oauthbearer_token_is_not_logged(broker: ThreadedBroker, caplog: pytest.LogCaptureFixture) -> None:
    from ottla.server.admin.client import Connection

    token = unsecured(sub="alice", exp=1.0, secret_claim="token-claim-secret")  # expired: rejected
    caplog.set_level(logging.DEBUG, logger="ottla")
    host, port = broker.bootstrap_servers.split(":")
    connection = Connection(host, int(port), 10, "secrets-test")
    try:
        assert connection.request(ApiKey.SASL_HANDSHAKE, 1, {"mechanism": "OAUTHBEARER"})["error_code"] == 0
        challenge = connection.request(ApiKey.SASL_AUTHENTICATE, 2, {"auth_bytes": client_first(token)})
        assert bytes(challenge["auth_bytes"]) == b'{"status":"invalid_token"}'
        failed = connection.request(ApiKey.SASL_AUTHENTICATE, 2, {"auth_bytes": b"\x01"})
        assert failed["error_code"] == 58 and failed["error_message"] == '{"status":"invalid_token"}'
    finally:
        connection.close()
    assert token not in caplog.text and "token-claim-secret" not in caplog.text
