"""Kafka's own tools and Java client against Ottla's SASL: `kafka-configs --entity-type users`
adds, describes and deletes SCRAM credentials, the Java client then logs in with them
(SCRAM-SHA-512; PLAIN from the JAAS config; OAUTHBEARER with its unsecured JWS) over
SASL_PLAINTEXT; and the SCRAM credential
APIs answer as the reference Kafka 4.4 answers the same requests (they need no SASL listener
there either: Kafka serves them on any listener)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from compat import kafka as reference
from compat.harness import wait_for
from ottla.server.admin import AdminClient, ClientError, SaslLogin
from ottla.server.config import BrokerConfig
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey

pytestmark = [pytest.mark.external, pytest.mark.slow]

JAAS = (
    "org.apache.kafka.common.security.plain.PlainLoginModule required "
    'username="admin" password="admin-secret" user_admin="admin-secret" user_bob="bob-secret";'
)
OAUTH_JAAS = 'org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="{user}";'
SHA256, SHA512 = 1, 2


@pytest.fixture(scope="module")
def broker() -> Iterator[ThreadedBroker]:
    settings = {
        "listeners": "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
        "data.dir": None,
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
        "listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config": OAUTH_JAAS.format(user="admin"),
    }
    with running_broker(config=BrokerConfig.from_settings(settings)) as handle:
        yield handle


def _addresses(broker: ThreadedBroker) -> tuple[str, str]:
    assert broker.broker is not None
    ports = broker.broker.bound_ports
    return f"127.0.0.1:{ports['PLAINTEXT']}", f"127.0.0.1:{ports['SASL_PLAINTEXT']}"


def _configs(*args: str) -> str:
    done = reference.run_tool("kafka-configs", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _java_client(bootstrap: str, mechanism: str, user: str, password: str, topic: str) -> dict:
    if mechanism == "OAUTHBEARER":
        jaas = OAUTH_JAAS.format(user=user)  # the Java client's unsecured JWS, for development
    else:
        module = "plain.PlainLoginModule" if mechanism == "PLAIN" else "scram.ScramLoginModule"
        jaas = f'org.apache.kafka.common.security.{module} required username="{user}" password="{password}";'
    config = {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": mechanism, "sasl.jaas.config": jaas}
    return reference.run_driver(bootstrap, topic, "produce", count=5, config=config, timeout_ms=20_000)


def test_kafka_configs_users_then_the_java_client_logs_in(broker: ThreadedBroker) -> None:
    if not reference.is_fetched():
        pytest.skip("the reference Kafka is not fetched (python -m compat.kafka --fetch)")
    plaintext, sasl = _addresses(broker)
    users = ["--bootstrap-server", plaintext, "--entity-type", "users", "--entity-name", "alice"]
    # One mechanism per command: Kafka 4.4 refuses two alterations of one user in one request
    # (DUPLICATE_RESOURCE), and so kafka-configs given both at once; Ottla answers the same.
    for credential in ("SCRAM-SHA-256=[iterations=8192,password=alice-secret]", "SCRAM-SHA-512=[password=alice-secret]"):
        assert "Completed updating config for user alice." in _configs(*users, "--alter", "--add-config", credential)
    described = _configs(*users, "--describe")
    assert "SCRAM credential configs for user-principal 'alice' are SCRAM-SHA-256=iterations=8192, SCRAM-SHA-512=iterations=4096" in described

    produced = _java_client(sasl, "SCRAM-SHA-512", "alice", "alice-secret", "sasl-java-scram")
    assert produced["ok"], produced
    assert _java_client(sasl, "PLAIN", "bob", "bob-secret", "sasl-java-plain")["ok"]
    assert _java_client(sasl, "OAUTHBEARER", "carol", "", "sasl-java-oauth")["ok"]
    refused = _java_client(sasl, "SCRAM-SHA-512", "alice", "not-alices", "sasl-java-scram")
    assert not refused["ok"] and refused["error"] == "SaslAuthenticationException", refused

    assert "Completed updating config for user alice." in _configs(*users, "--alter", "--delete-config", "SCRAM-SHA-512")
    with AdminClient(plaintext) as admin:
        assert [(user.user, user.mechanisms) for user in admin.describe_scram_users(["alice"])] == [("alice", {"SCRAM-SHA-256": 8192})]
    with pytest.raises(ClientError, match="SASL_AUTHENTICATION_FAILED"):
        AdminClient(sasl, timeout=10, sasl=SaslLogin("SCRAM-SHA-512", "alice", "alice-secret"))


# Requests whose answers must match the reference's, each judged against the state the ones
# before it left (two users, one with both mechanisms).
SCRAM_REQUESTS: list[tuple[ApiKey, dict]] = [
    (ApiKey.ALTER_USER_SCRAM_CREDENTIALS, {"deletions": [], "upsertions": [
        {"name": "diff-ann", "mechanism": SHA256, "iterations": 4096, "salt": b"s" * 16, "salted_password": b"p" * 32},
        {"name": "diff-ben", "mechanism": SHA512, "iterations": 8192, "salt": b"t" * 16, "salted_password": b"q" * 64},
    ]}),
    (ApiKey.ALTER_USER_SCRAM_CREDENTIALS, {"deletions": [], "upsertions": [
        {"name": "diff-ann", "mechanism": SHA512, "iterations": 4096, "salt": b"s" * 16, "salted_password": b"p" * 64},
        {"name": "diff-cat", "mechanism": 3, "iterations": 4096, "salt": b"s", "salted_password": b"p"},
        {"name": "diff-dan", "mechanism": SHA256, "iterations": 100, "salt": b"s", "salted_password": b"p"},
        {"name": "diff-eve", "mechanism": SHA256, "iterations": 20000, "salt": b"s", "salted_password": b"p"},
        {"name": "", "mechanism": SHA256, "iterations": 4096, "salt": b"s", "salted_password": b"p"},
    ]}),
    (ApiKey.ALTER_USER_SCRAM_CREDENTIALS, {"deletions": [{"name": "diff-ben", "mechanism": SHA256}, {"name": "diff-fay", "mechanism": SHA512}], "upsertions": [
        {"name": "diff-gus", "mechanism": SHA256, "iterations": 4096, "salt": b"s", "salted_password": b"p" * 32},
        {"name": "diff-gus", "mechanism": SHA512, "iterations": 4096, "salt": b"s", "salted_password": b"p" * 64},
    ]}),
    (ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS, {"users": [{"name": "diff-ann"}, {"name": "diff-ben"}, {"name": "diff-cat"}, {"name": "diff-ben"}]}),
    (ApiKey.ALTER_USER_SCRAM_CREDENTIALS, {"deletions": [{"name": "diff-ann", "mechanism": SHA256}, {"name": "diff-ben", "mechanism": SHA512}], "upsertions": []}),
    (ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS, {"users": [{"name": "diff-ann"}, {"name": "diff-ben"}]}),
]


def _answers(bootstrap: str) -> list[dict]:
    with AdminClient(bootstrap, timeout=30) as admin:
        answers = []
        for api, body in SCRAM_REQUESTS:
            _, answer = admin.client.call(api, body)
            answer.pop("throttle_time_ms", None)
            answers.append(answer)
            if api == ApiKey.ALTER_USER_SCRAM_CREDENTIALS:
                _await_alterations(admin, body, answer)
        return answers


def _await_alterations(admin: AdminClient, body: dict, answer: dict) -> None:
    """Until a Describe shows every alteration the answer accepted. Kafka acknowledges an
    alteration once its controller has committed it; its broker answers Describe from a metadata
    image that applies the record a moment later, so a Describe sent at once may still see the
    credentials before it. Ottla applies an alteration before it answers: this returns at once."""
    accepted = {result["user"] for result in answer["results"] if result["error_code"] == 0}
    expected: dict[str, dict[int, int | None]] = {}
    for upsertion in body["upsertions"]:
        if upsertion["name"] in accepted:
            expected.setdefault(upsertion["name"], {})[upsertion["mechanism"]] = upsertion["iterations"]
    for deletion in body["deletions"]:
        if deletion["name"] in accepted:
            expected.setdefault(deletion["name"], {})[deletion["mechanism"]] = None
    if not expected:
        return

    def applied() -> bool:
        _, described = admin.client.call(ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS, {"users": [{"name": user} for user in expected]})
        held = {result["user"]: {info["mechanism"]: info["iterations"] for info in result.get("credential_infos") or []} for result in described["results"]}
        return all(held.get(user, {}).get(mechanism) == iterations for user, mechanisms in expected.items() for mechanism, iterations in mechanisms.items())

    assert wait_for(applied, timeout=10), ("alterations never visible", body)


def test_scram_credential_apis_answer_as_the_reference_kafka(broker: ThreadedBroker, reference_kafka: str) -> None:
    plaintext, _ = _addresses(broker)
    ours, theirs = _answers(plaintext), _answers(reference_kafka)
    for (api, body), mine, kafkas in zip(SCRAM_REQUESTS, ours, theirs):
        # Kafka orders users and mechanisms by its HashMaps' iteration (of enum identity hashes
        # for mechanisms, so not even the same from run to run): each user's result is what counts.
        for answer in (mine, kafkas):
            answer["results"].sort(key=lambda result: result["user"])
            for result in answer["results"]:
                result.get("credential_infos", []).sort(key=lambda info: info["mechanism"])
        assert mine == kafkas, (api.name, body)
