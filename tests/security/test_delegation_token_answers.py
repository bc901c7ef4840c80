"""Delegation token answers as the reference Kafka 4.4 gives them (checked against it over a
SASL_PLAINTEXT listener with a token secret and StandardAuthorizer): KafkaApis' own refusals
and the controller's (DelegationTokenControlManager) in their order, the timestamps each
refusal carries (-1 from KafkaApis, the fields' default 0 from the controller), owners of any
principal type, and Expire's negative period, which removes even an expired token and answers
the time it did so."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ottla.server.admin.client import KafkaClient
from ottla.server.admin.sasl import SaslLogin
from ottla.server.config import BrokerConfig
from ottla.server.security.tokens import now_ms
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

HOUR = 3_600_000
USERS = ("admin", "alice", "bob")


def _config(**extra: str | None) -> BrokerConfig:
    return BrokerConfig.from_settings(
        {
            "listeners": "SASL_PLAINTEXT://127.0.0.1:0,PLAINTEXT://127.0.0.1:0",
            "data.dir": None,
            "sasl.enabled.mechanisms": "SCRAM-SHA-512",
            "delegation.token.secret.key": "the-secret",
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": "User:admin",
            **extra,
        }
    )


def _running(config: BrokerConfig) -> Any:
    return running_broker(config=config, add_scram=[f"SCRAM-SHA-512=[name={user},password={user}-secret]" for user in USERS])


@pytest.fixture(scope="module")
def broker() -> Iterator[ThreadedBroker]:
    with _running(_config()) as handle:
        yield handle


def _as(broker: ThreadedBroker, user: str) -> KafkaClient:
    assert broker.broker is not None
    address = f"127.0.0.1:{broker.broker.bound_ports['SASL_PLAINTEXT']}"
    return KafkaClient(address, timeout=10, sasl=SaslLogin("SCRAM-SHA-512", user, f"{user}-secret"))


def _create(client: KafkaClient, renewers: tuple[tuple[str, str], ...] = (), **extra: object) -> dict[str, Any]:
    body = {"renewers": [{"principal_type": kind, "principal_name": name} for kind, name in renewers], "max_lifetime_ms": -1, **extra}
    return client.call(ApiKey.CREATE_DELEGATION_TOKEN, body)[1]


def _renew(client: KafkaClient, hmac: bytes, period: int) -> tuple[int, int]:
    answer = client.call(ApiKey.RENEW_DELEGATION_TOKEN, {"hmac": hmac, "renew_period_ms": period})[1]
    return answer["error_code"], answer["expiry_timestamp_ms"]


def _expire(client: KafkaClient, hmac: bytes, period: int) -> tuple[int, int]:
    answer = client.call(ApiKey.EXPIRE_DELEGATION_TOKEN, {"hmac": hmac, "expiry_time_period_ms": period})[1]
    return answer["error_code"], answer["expiry_timestamp_ms"]


def _listed(client: KafkaClient) -> list[str]:
    return [token["token_id"] for token in client.call(ApiKey.DESCRIBE_DELEGATION_TOKEN, {"owners": None})[1]["tokens"]]


def _timestamps(created: dict[str, Any]) -> tuple[int, int, int]:
    return created["issue_timestamp_ms"], created["expiry_timestamp_ms"], created["max_timestamp_ms"]


def test_create_checks_the_owners_acl_before_the_renewers_types_and_not_the_owners_type(broker: ThreadedBroker) -> None:
    """KafkaApis.handleCreateTokenRequest: CREATE_TOKENS on another owner first, then User
    renewers only; the controller takes an owner of any type (the token logs in as User:<name>)."""
    with _as(broker, "alice") as alice, _as(broker, "admin") as admin:
        refused = _create(alice, (("Group", "g"),), owner_principal_type="User", owner_principal_name="carol")
        assert refused["error_code"] == ErrorCode.DELEGATION_TOKEN_AUTHORIZATION_FAILED and _timestamps(refused) == (-1, -1, -1)
        assert _create(alice, (("Group", "g"),))["error_code"] == ErrorCode.INVALID_PRINCIPAL_TYPE
        created = _create(admin, owner_principal_type="Group", owner_principal_name="g")
        assert created["error_code"] == 0 and (created["principal_type"], created["principal_name"]) == ("Group", "g")
        assert created["token_id"] in _listed(admin)


def test_the_controllers_refusals_answer_expiry_0_and_kafkaapis_refusals_minus_1(broker: ThreadedBroker) -> None:
    with _as(broker, "alice") as alice, _as(broker, "bob") as bob:
        hmac = _create(alice)["hmac"]
        assert _renew(alice, b"not a token", HOUR) == (ErrorCode.DELEGATION_TOKEN_NOT_FOUND, 0)
        assert _expire(alice, b"not a token", HOUR) == (ErrorCode.DELEGATION_TOKEN_NOT_FOUND, 0)
        assert _renew(bob, hmac, HOUR) == (ErrorCode.DELEGATION_TOKEN_OWNER_MISMATCH, 0)
        assert _expire(bob, hmac, HOUR) == (ErrorCode.DELEGATION_TOKEN_OWNER_MISMATCH, 0)
    assert broker.broker is not None
    with KafkaClient(f"127.0.0.1:{broker.broker.bound_ports['PLAINTEXT']}", timeout=10) as anonymous:
        assert _renew(anonymous, hmac, HOUR) == (ErrorCode.DELEGATION_TOKEN_REQUEST_NOT_ALLOWED, -1)
        assert _expire(anonymous, hmac, HOUR) == (ErrorCode.DELEGATION_TOKEN_REQUEST_NOT_ALLOWED, -1)


def test_without_a_secret_key_the_controller_refuses_with_timestamps_0() -> None:
    with _running(_config(**{"delegation.token.secret.key": None})) as handle, _as(handle, "alice") as alice:
        refused = _create(alice)
        assert refused["error_code"] == ErrorCode.DELEGATION_TOKEN_AUTH_DISABLED and _timestamps(refused) == (0, 0, 0)
        assert (refused["token_id"], refused["hmac"]) == ("", b"")
        assert _create(alice, (("Group", "g"),))["error_code"] == ErrorCode.INVALID_PRINCIPAL_TYPE  # KafkaApis checks first
        assert _renew(alice, b"any", HOUR) == (ErrorCode.DELEGATION_TOKEN_AUTH_DISABLED, 0)
        assert _expire(alice, b"any", HOUR) == (ErrorCode.DELEGATION_TOKEN_AUTH_DISABLED, 0)


def test_expire_judges_ownership_before_expiry_and_a_negative_period_removes_an_expired_token(broker: ThreadedBroker) -> None:
    with _as(broker, "alice") as alice, _as(broker, "bob") as bob:
        created = _create(alice)
        hmac = created["hmac"]
        code, expiry = _expire(alice, hmac, 0)
        assert code == 0
        while now_ms() <= expiry:  # expired once the clock has passed its expiry
            time.sleep(0.001)
        assert _renew(bob, hmac, HOUR) == (ErrorCode.DELEGATION_TOKEN_EXPIRED, 0)  # Renew: expiry first
        assert _expire(bob, hmac, HOUR) == (ErrorCode.DELEGATION_TOKEN_OWNER_MISMATCH, 0)  # Expire: ownership first
        assert _expire(alice, hmac, HOUR) == (ErrorCode.DELEGATION_TOKEN_EXPIRED, 0)
        assert created["token_id"] in _listed(alice)  # not swept yet
        before = now_ms()
        code, expiry = _expire(alice, hmac, -1)
        assert code == 0 and before <= expiry <= now_ms()
        assert created["token_id"] not in _listed(alice)


def test_expire_at_once_answers_now(broker: ThreadedBroker) -> None:
    with _as(broker, "alice") as alice:
        created = _create(alice)
        before = now_ms()
        code, expiry = _expire(alice, created["hmac"], -5)
        assert code == 0 and before <= expiry <= now_ms()
        assert _renew(alice, created["hmac"], HOUR) == (ErrorCode.DELEGATION_TOKEN_NOT_FOUND, 0)


def test_below_3_6_iv2_the_controller_refuses_token_changes(tmp_path: Path) -> None:
    """DelegationTokenControlManager checks the secret key, then metadata.version 3.6-IV2, before
    looking at the token: Create, Renew and Expire at 3.6-IV1 answer UNSUPPORTED_VERSION with the
    controller's 0 timestamps, whatever the token; Describe is the broker's, and answers."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "finalized-features.json").write_text(json.dumps({"epoch": 0, "levels": {"metadata.version": 13}}))
    with _running(_config(**{"data.dir": str(data)})) as handle, _as(handle, "alice") as alice:
        created = _create(alice)
        assert (created["error_code"], created["expiry_timestamp_ms"]) == (ErrorCode.UNSUPPORTED_VERSION, 0)
        for api, field in ((ApiKey.RENEW_DELEGATION_TOKEN, "renew_period_ms"), (ApiKey.EXPIRE_DELEGATION_TOKEN, "expiry_time_period_ms")):
            answer = alice.call(api, {"hmac": b"not a token", field: HOUR})[1]
            assert (answer["error_code"], answer["expiry_timestamp_ms"]) == (ErrorCode.UNSUPPORTED_VERSION, 0)
        assert alice.call(ApiKey.DESCRIBE_DELEGATION_TOKEN, {"owners": None})[1]["error_code"] == ErrorCode.NONE
