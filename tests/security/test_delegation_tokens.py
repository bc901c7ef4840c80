"""Delegation tokens (KIP-48): the token rules without sockets (lifetimes, renewers, the
durable table, SCRAM logins with `tokenauth=true`), then the four APIs over a real SASL
listener, judged as Kafka's KafkaApis judges who may ask."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from ottla.server.admin.client import KafkaClient
from ottla.server.admin.sasl import SaslLogin, ScramClient
from ottla.server.config import BrokerConfig
from ottla.server.security.sasl import AuthenticationFailed
from ottla.server.security.sasl.credentials import ScramCredentialStore
from ottla.server.security.sasl.scram import ScramMechanism, ScramServer
from ottla.server.security.tokens import DelegationTokens
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

HOUR = 3_600_000
DAY = 24 * HOUR


def _tokens(path: Path | None = None, key: str | None = "secret") -> DelegationTokens:
    return DelegationTokens.open(path, key, max_lifetime_ms=7 * DAY, expiry_time_ms=DAY)


def test_lifetimes_are_capped_as_kafka_caps_them() -> None:
    tokens = _tokens()
    token = tokens.create("User:alice", "User:alice", ["User:bob"], max_lifetime_ms=-1, now=0)
    assert (token.issue_ms, token.expiry_ms, token.max_ms) == (0, DAY, 7 * DAY)
    short = tokens.create("User:alice", "User:alice", [], max_lifetime_ms=HOUR, now=0)
    assert (short.expiry_ms, short.max_ms) == (HOUR, HOUR)
    assert tokens.create("User:alice", "User:alice", [], max_lifetime_ms=30 * DAY, now=0).max_ms == 7 * DAY


def test_only_owners_and_renewers_renew_and_never_past_the_maximum() -> None:
    tokens = _tokens()
    token = tokens.create("User:alice", "User:alice", ["User:bob"], max_lifetime_ms=-1, now=0)
    assert tokens.renew(token.hmac, "User:carol", -1, now=1) == (ErrorCode.DELEGATION_TOKEN_OWNER_MISMATCH, 0)
    assert tokens.renew(token.hmac, "User:bob", 2 * DAY, now=DAY // 2) == (ErrorCode.NONE, DAY // 2 + DAY)
    short = tokens.create("User:alice", "User:alice", [], max_lifetime_ms=HOUR, now=0)
    assert tokens.renew(short.hmac, "User:alice", -1, now=HOUR // 2) == (ErrorCode.NONE, HOUR)
    assert tokens.renew(b"not a token", "User:alice", -1, now=DAY) == (ErrorCode.DELEGATION_TOKEN_NOT_FOUND, 0)


def test_expire_now_removes_and_an_expired_token_is_expired() -> None:
    tokens = _tokens()
    first = tokens.create("User:alice", "User:alice", [], max_lifetime_ms=-1, now=0)
    second = tokens.create("User:alice", "User:alice", [], max_lifetime_ms=-1, now=0)
    assert tokens.expire(first.hmac, "User:alice", -1, now=5) == (ErrorCode.NONE, 5)
    assert tokens.by_hmac(first.hmac, now=5) is None
    assert tokens.expire(second.hmac, "User:alice", 10, now=5) == (ErrorCode.NONE, 15)
    assert [token.token_id for token in tokens.tokens(now=15)] == [second.token_id]
    assert tokens.expire(second.hmac, "User:alice", 10, now=16) == (ErrorCode.DELEGATION_TOKEN_EXPIRED, 0)


def test_tokens_survive_a_restart_and_a_new_key_voids_them(tmp_path: Path) -> None:
    token = _tokens(tmp_path).create("User:alice", "User:admin", ["User:bob"], max_lifetime_ms=-1)
    assert b"secret" not in (tmp_path / "delegation-tokens.json").read_bytes()
    assert base64.b64encode(token.hmac) not in (tmp_path / "delegation-tokens.json").read_bytes()
    reopened = _tokens(tmp_path).by_hmac(token.hmac)
    assert reopened == token
    assert _tokens(tmp_path, key="another").by_hmac(token.hmac) is None
    assert not _tokens(tmp_path, key=None).enabled


class _TokenScramClient(ScramClient):
    """Kafka's client side of a token login: the `tokenauth=true` extension in client-first."""

    def first(self) -> bytes:
        self._bare = f"n={self._username},r={self._nonce},tokenauth=true"
        return f"n,,{self._bare}".encode()


def _login(server: ScramServer, client: ScramClient) -> None:
    client.verify(server.evaluate(client.final(server.evaluate(client.first()))))


@pytest.mark.parametrize("mechanism", list(ScramMechanism))
def test_a_scram_login_with_a_token_is_its_owner(mechanism: ScramMechanism) -> None:
    tokens = _tokens()
    token = tokens.create("User:alice", "User:alice", [], max_lifetime_ms=-1)
    password = base64.b64encode(token.hmac).decode()
    users = ScramCredentialStore(None, {})
    server = ScramServer(mechanism, users.get, tokens=tokens.scram)
    _login(server, _TokenScramClient(mechanism.mechanism_name, token.token_id, password))
    assert server.complete and server.token_authenticated and server.principal == "alice"
    assert server.expires_at_ms == token.expiry_ms
    with pytest.raises(AuthenticationFailed):
        _login(ScramServer(mechanism, users.get, tokens=tokens.scram), _TokenScramClient(mechanism.mechanism_name, token.token_id, "wrong"))
    # Without tokenauth the token id is an unknown user; without tokens every token id is unknown.
    with pytest.raises(AuthenticationFailed):
        _login(ScramServer(mechanism, users.get, tokens=tokens.scram), ScramClient(mechanism.mechanism_name, token.token_id, password))
    with pytest.raises(AuthenticationFailed):
        _login(ScramServer(mechanism, users.get), _TokenScramClient(mechanism.mechanism_name, token.token_id, password))
    tokens.expire(token.hmac, "User:alice", -1)
    with pytest.raises(AuthenticationFailed):
        _login(ScramServer(mechanism, users.get, tokens=tokens.scram), _TokenScramClient(mechanism.mechanism_name, token.token_id, password))


# --- Over a real socket.

ADD_SCRAM = ["SCRAM-SHA-512=[name=alice,password=alice-secret]", "SCRAM-SHA-512=[name=bob,password=bob-secret]"]


def token_broker_config(**extra: str | None) -> BrokerConfig:
    return BrokerConfig.from_settings(
        {
            "listeners": "SASL_PLAINTEXT://127.0.0.1:0,PLAINTEXT://127.0.0.1:0",
            "data.dir": None,
            "sasl.enabled.mechanisms": "SCRAM-SHA-512",
            "delegation.token.secret.key": "the-secret",
            **extra,
        }
    )


@pytest.fixture(scope="module")
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(config=token_broker_config(), add_scram=ADD_SCRAM) as handle:
        yield handle


def _address(broker: ThreadedBroker, listener: str) -> str:
    assert broker.broker is not None
    return f"127.0.0.1:{broker.broker.bound_ports[listener]}"


def _as(broker: ThreadedBroker, user: str) -> KafkaClient:
    return KafkaClient(_address(broker, "SASL_PLAINTEXT"), timeout=10, sasl=SaslLogin("SCRAM-SHA-512", user, f"{user}-secret"))


def _create(client: KafkaClient, renewers: list[str] = (), **extra: object) -> dict:
    body = {"renewers": [{"principal_type": "User", "principal_name": name} for name in renewers], "max_lifetime_ms": -1, **extra}
    return client.call(ApiKey.CREATE_DELEGATION_TOKEN, body)[1]


def test_create_describe_renew_expire(broker: ThreadedBroker) -> None:
    with _as(broker, "alice") as alice, _as(broker, "bob") as bob:
        created = _create(alice, ["bob"])
        assert created["error_code"] == 0 and (created["principal_type"], created["principal_name"]) == ("User", "alice")
        assert created["expiry_timestamp_ms"] - created["issue_timestamp_ms"] == DAY
        hmac = created["hmac"]
        version, described = bob.call(ApiKey.DESCRIBE_DELEGATION_TOKEN, {"owners": [{"principal_type": "User", "principal_name": "alice"}]})
        assert version == 3 and described["error_code"] == 0
        assert [(token["token_id"], [r["principal_name"] for r in token["renewers"]]) for token in described["tokens"]] == [(created["token_id"], ["bob"])]
        assert bob.call(ApiKey.DESCRIBE_DELEGATION_TOKEN, {"owners": []})[1]["tokens"] == []
        renewed = bob.call(ApiKey.RENEW_DELEGATION_TOKEN, {"hmac": hmac, "renew_period_ms": HOUR})[1]
        assert renewed["error_code"] == 0 and renewed["expiry_timestamp_ms"] < created["expiry_timestamp_ms"]
        expired = alice.call(ApiKey.EXPIRE_DELEGATION_TOKEN, {"hmac": hmac, "expiry_time_period_ms": -1})[1]
        assert expired["error_code"] == 0
        assert alice.call(ApiKey.RENEW_DELEGATION_TOKEN, {"hmac": hmac, "renew_period_ms": HOUR})[1]["error_code"] == ErrorCode.DELEGATION_TOKEN_NOT_FOUND
        mine = _create(bob)
        assert alice.call(ApiKey.EXPIRE_DELEGATION_TOKEN, {"hmac": mine["hmac"], "expiry_time_period_ms": -1})[1]["error_code"] == ErrorCode.DELEGATION_TOKEN_OWNER_MISMATCH


def test_who_may_not_manage_tokens(broker: ThreadedBroker) -> None:
    with KafkaClient(_address(broker, "PLAINTEXT"), timeout=10) as anonymous:
        refused = _create(anonymous)
        assert refused["error_code"] == ErrorCode.DELEGATION_TOKEN_REQUEST_NOT_ALLOWED and refused["token_id"] == ""
        assert anonymous.call(ApiKey.DESCRIBE_DELEGATION_TOKEN, {"owners": None})[1]["error_code"] == ErrorCode.DELEGATION_TOKEN_REQUEST_NOT_ALLOWED
    with _as(broker, "alice") as alice:
        body = {"renewers": [{"principal_type": "Group", "principal_name": "g"}], "max_lifetime_ms": -1}
        assert alice.call(ApiKey.CREATE_DELEGATION_TOKEN, body)[1]["error_code"] == ErrorCode.INVALID_PRINCIPAL_TYPE


def test_without_a_secret_key_tokens_are_disabled() -> None:
    config = token_broker_config(**{"delegation.token.secret.key": None})
    with running_broker(config=config, add_scram=ADD_SCRAM) as handle, _as(handle, "alice") as alice:
        assert _create(alice)["error_code"] == ErrorCode.DELEGATION_TOKEN_AUTH_DISABLED
