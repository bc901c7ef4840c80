"""Client quotas, SCRAM credentials and delegation tokens judged as Kafka 4.x's controller
judges them (ClientQuotaControlManager, ScramControlManager, DelegationTokenControlManager,
ClientQuotasImage), over a broker each test starts: values no throttle can be computed from,
the validation of AlterClientQuotas and DescribeClientQuotas, usage kept across quota changes,
renewal periods, expired tokens not yet swept, who sees a token, and token ids."""

from __future__ import annotations

import base64
import json
import math
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from kafka.protocol.producer import ProduceRequest, ProduceResponse

from kafka_wire import RawClient, build_records, make
from ottla.server.admin import client as admin_client
from ottla.server.admin.client import KafkaClient
from ottla.server.admin.sasl import SaslLogin, ScramClient
from ottla.server.config import BrokerConfig
from ottla.server.security import tokens as tokens_module
from ottla.server.security.quotas import Rate
from ottla.server.security.tokens import DelegationTokens, now_ms
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

HOUR = 3_600_000
DAY = 24 * HOUR


def _entity(**names: str | None) -> list[dict[str, str | None]]:
    return [{"entity_type": entity_type.replace("_", "-"), "entity_name": name} for entity_type, name in names.items()]


def _op(key: str, value: float = 0.0, remove: bool = False) -> dict[str, Any]:
    return {"key": key, "value": value, "remove": remove}


def _alter(client: KafkaClient, *entries: tuple[list[dict[str, str | None]], list[dict[str, Any]]], validate_only: bool = False) -> list[tuple[int, str | None]]:
    body = {"entries": [{"entity": entity, "ops": ops} for entity, ops in entries], "validate_only": validate_only}
    return [(entry["error_code"], entry["error_message"]) for entry in client.call(ApiKey.ALTER_CLIENT_QUOTAS, body)[1]["entries"]]


def _quotas(client: KafkaClient) -> dict[tuple[tuple[str, str | None], ...], dict[str, float]]:
    response = client.call(ApiKey.DESCRIBE_CLIENT_QUOTAS, {"components": [], "strict": False})[1]
    assert response["error_code"] == 0
    return {
        tuple(sorted((part["entity_type"], part["entity_name"]) for part in entry["entity"])): {value["key"]: value["value"] for value in entry["values"]}
        for entry in response["entries"]
    }


@pytest.fixture
def quota_broker(tmp_path: Path) -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=str(tmp_path)) as broker:
        yield broker


# --- Client quotas.


@pytest.mark.parametrize("value", [math.nan, math.inf, 5e-324])
def test_a_quota_no_throttle_can_be_computed_from_is_refused(quota_broker: ThreadedBroker, value: float) -> None:
    with KafkaClient(quota_broker.bootstrap_servers, timeout=10) as admin:
        [(code, _)] = _alter(admin, (_entity(user="alice"), [_op("request_percentage", value)]))
        assert code == ErrorCode.INVALID_REQUEST
        [(code, _)] = _alter(admin, (_entity(client_id="app"), [_op("controller_mutation_rate", value)]))
        assert code == ErrorCode.INVALID_REQUEST
        assert _quotas(admin) == {}


def test_unusable_values_in_the_file_are_dropped_and_clients_still_served(tmp_path: Path) -> None:
    # As an older Ottla wrote them: every request of every client would divide by NaN.
    rows = [{"entity": [["user", None]], "values": {"request_percentage": math.nan}},
            {"entity": [["client-id", "victim"]], "values": {"producer_byte_rate": math.inf, "consumer_byte_rate": 1e9}}]
    (tmp_path / "client-quotas.json").write_text(json.dumps({"version": 1, "quotas": rows}))
    with running_broker(data_dir=str(tmp_path)) as broker:
        with KafkaClient(broker.bootstrap_servers, timeout=10, client_id="victim") as victim:
            for _ in range(3):
                assert victim.call(ApiKey.METADATA, {"topics": None, "allow_auto_topic_creation": False})[1]["throttle_time_ms"] == 0
            assert _quotas(victim) == {(("client-id", "victim"),): {"consumer_byte_rate": 1e9}}


def test_a_throttle_that_does_not_fit_is_one_window() -> None:
    rate = Rate(samples=2, window_ms=1000)
    rate.record(1e300, now_ms=0)
    assert rate.throttle_time_ms(1e-300, now_ms=0) == 1000  # (rate - bound) / bound overflows
    assert rate.throttle_time_ms(math.nan, now_ms=0) == 1000
    rate = Rate(samples=2, window_ms=1000)
    rate.record(1e6, now_ms=0)
    assert rate.throttle_time_ms(1e-3, now_ms=0) == 2**31 - 1  # throttle_time_ms is an INT32


def test_alter_client_quotas_validates_as_kafka(quota_broker: ThreadedBroker) -> None:
    invalid = ErrorCode.INVALID_REQUEST
    with KafkaClient(quota_broker.bootstrap_servers, timeout=10) as admin:
        assert _alter(admin, (_entity(client_id=""), [_op("producer_byte_rate", 1000)])) == [(invalid, "Empty client-id not supported")]
        # A key twice: nothing of that entity applies.
        [(code, _)] = _alter(admin, (_entity(user="dup"), [_op("producer_byte_rate", 1000), _op("consumer_byte_rate", 5), _op("producer_byte_rate", 2000)]))
        assert code == invalid
        # The same entity twice: one answer; Kafka keeps what the first entry set.
        answers = _alter(admin, (_entity(user="twice"), [_op("producer_byte_rate", 1000)]), (_entity(user="twice"), [_op("consumer_byte_rate", 1000)]))
        assert [code for code, _ in answers] == [invalid]
        # Removals are never judged, and remove only what is set.
        assert _alter(admin, (_entity(user="x"), [_op("no_such_key", remove=True), _op("connection_creation_rate", math.nan, remove=True)])) == [(0, None)]
        assert _alter(admin, (_entity(user="big"), [_op("producer_byte_rate", 1e19)])) == [(invalid, "Proposed value for producer_byte_rate is too large for a LONG.")]
        assert _alter(admin, (_entity(ip="10.0.0.1"), [_op("connection_creation_rate", 3e9)])) == [(invalid, "Proposed value for connection_creation_rate is too large for an INT.")]
        assert _alter(admin, (_entity(user="eps"), [_op("producer_byte_rate", 1000.0000001)])) == [(0, None)]
        assert _alter(admin, (_entity(user="frac"), [_op("producer_byte_rate", 1000.5)])) == [(invalid, "producer_byte_rate cannot be a fractional value.")]
        # A type named twice in one entity: the last name wins, as Java's HashMap has it.
        assert _alter(admin, ([*_entity(user="a"), *_entity(user="b")], [_op("producer_byte_rate", 1000)])) == [(0, None)]
        assert _quotas(admin) == {
            (("user", "twice"),): {"producer_byte_rate": 1000.0},
            (("user", "eps"),): {"producer_byte_rate": 1000.0000001},
            (("user", "b"),): {"producer_byte_rate": 1000.0},
        }


def test_describe_client_quotas_refuses_an_empty_type_and_an_unknown_match(quota_broker: ThreadedBroker) -> None:
    with KafkaClient(quota_broker.bootstrap_servers, timeout=10) as admin:
        response = admin.call(ApiKey.DESCRIBE_CLIENT_QUOTAS, {"components": [{"entity_type": "", "match_type": 2, "match": None}], "strict": False})[1]
        assert (response["error_code"], response["error_message"]) == (ErrorCode.INVALID_REQUEST, "Invalid empty entity type.")
        response = admin.call(ApiKey.DESCRIBE_CLIENT_QUOTAS, {"components": [{"entity_type": "user", "match_type": 7, "match": None}], "strict": False})[1]
        assert (response["error_code"], response["error_message"]) == (ErrorCode.INVALID_REQUEST, "Unknown match type 7")


def _produce(size: int) -> Any:
    records = build_records(2, [(None, b"x" * size)])
    return make(ProduceRequest, dict(transactional_id=None, acks=1, timeout_ms=5000, topic_data=[dict(name="usage", partition_data=[dict(index=0, records=records)])]))


def test_altering_a_quota_keeps_the_usage_measured(quota_broker: ThreadedBroker) -> None:
    quota_broker.create_topic("usage")
    with KafkaClient(quota_broker.bootstrap_servers, timeout=10) as admin:
        assert _alter(admin, (_entity(client_id="burst"), [_op("producer_byte_rate", 1000)])) == [(0, None)]
        with RawClient(quota_broker.bootstrap_servers, client_id="burst") as burst:
            assert burst.call(_produce(20_000), 9, ProduceResponse).throttle_time_ms > 0
        assert _alter(admin, (_entity(client_id="unrelated"), [_op("consumer_byte_rate", 5)])) == [(0, None)]
    # A new connection, the same client id: still over its quota.
    with RawClient(quota_broker.bootstrap_servers, client_id="burst") as again:
        assert again.call(_produce(10), 9, ProduceResponse).throttle_time_ms > 0


# --- SCRAM credentials.


def test_alter_user_scram_credentials_as_kafka(quota_broker: ThreadedBroker) -> None:
    with KafkaClient(quota_broker.bootstrap_servers, timeout=10) as admin:
        body = {"deletions": [{"name": "", "mechanism": 0}], "upsertions": []}
        [result] = admin.call(ApiKey.ALTER_USER_SCRAM_CREDENTIALS, body)[1]["results"]
        assert (result["error_code"], result["error_message"]) == (ErrorCode.UNACCEPTABLE_CREDENTIAL, "Username must not be empty")
        upsertion = {"name": "nokey", "mechanism": 2, "iterations": 4096, "salt": b"salt", "salted_password": b""}
        [result] = admin.call(ApiKey.ALTER_USER_SCRAM_CREDENTIALS, {"deletions": [], "upsertions": [upsertion]})[1]["results"]
        assert (result["user"], result["error_code"], result["error_message"]) == ("nokey", ErrorCode.UNKNOWN_SERVER_ERROR, None)
        [described] = admin.call(ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS, {"users": [{"name": "nokey"}]})[1]["results"]
        assert described["error_code"] == ErrorCode.RESOURCE_NOT_FOUND


# --- Delegation tokens.

USERS = ("admin", "alice", "bob")


@pytest.fixture(scope="module")
def token_broker() -> Iterator[ThreadedBroker]:
    config = BrokerConfig.from_settings(
        {
            "listeners": "SASL_PLAINTEXT://127.0.0.1:0",
            "data.dir": None,
            "sasl.enabled.mechanisms": "SCRAM-SHA-512",
            "delegation.token.secret.key": "the-secret",
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": "User:admin",
        }
    )
    with running_broker(config=config, add_scram=[f"SCRAM-SHA-512=[name={user},password={user}-secret]" for user in USERS]) as broker:
        yield broker


def _address(broker: ThreadedBroker) -> str:
    assert broker.broker is not None
    return f"127.0.0.1:{broker.broker.bound_ports['SASL_PLAINTEXT']}"


def _as(broker: ThreadedBroker, user: str, password: str | None = None) -> KafkaClient:
    return KafkaClient(_address(broker), timeout=10, sasl=SaslLogin("SCRAM-SHA-512", user, password or f"{user}-secret"))


def _create(client: KafkaClient, renewers: tuple[str, ...] = (), **extra: object) -> dict[str, Any]:
    body = {"renewers": [{"principal_type": "User", "principal_name": name} for name in renewers], "max_lifetime_ms": -1, **extra}
    created = client.call(ApiKey.CREATE_DELEGATION_TOKEN, body)[1]
    assert created["error_code"] == 0
    return created


def test_renew_asks_for_at_most_the_expiry_time(token_broker: ThreadedBroker) -> None:
    with _as(token_broker, "alice") as alice:
        token = _create(alice)
        for period in (0, 5 * DAY, -1):
            before = now_ms()
            renewed = alice.call(ApiKey.RENEW_DELEGATION_TOKEN, {"hmac": token["hmac"], "renew_period_ms": period})[1]
            assert renewed["error_code"] == 0
            assert before + DAY <= renewed["expiry_timestamp_ms"] <= now_ms() + DAY
        renewed = alice.call(ApiKey.RENEW_DELEGATION_TOKEN, {"hmac": token["hmac"], "renew_period_ms": HOUR})[1]
        assert renewed["expiry_timestamp_ms"] <= now_ms() + HOUR


class _TokenScramClient(ScramClient):
    """Kafka's client side of a token login: `tokenauth=true` in client-first."""

    def first(self) -> bytes:
        self._bare = f"{super().first().decode()[3:]},tokenauth=true"
        return f"n,,{self._bare}".encode()


def test_an_expired_token_is_expired_until_swept(token_broker: ThreadedBroker, monkeypatch: pytest.MonkeyPatch) -> None:
    with _as(token_broker, "alice") as alice, _as(token_broker, "bob") as bob:
        token = _create(alice, ("bob",))
        password = base64.b64encode(token["hmac"]).decode()
        monkeypatch.setattr(admin_client, "ScramClient", _TokenScramClient)
        with _as(token_broker, token["token_id"], password) as holder:  # a live token logs in
            assert holder.call(ApiKey.METADATA, {"topics": [], "allow_auto_topic_creation": False})[1]["brokers"]
        expired = alice.call(ApiKey.EXPIRE_DELEGATION_TOKEN, {"hmac": token["hmac"], "expiry_time_period_ms": 0})[1]
        assert expired["error_code"] == 0
        time.sleep(0.01)
        for client, api, field in ((bob, ApiKey.RENEW_DELEGATION_TOKEN, "renew_period_ms"), (alice, ApiKey.EXPIRE_DELEGATION_TOKEN, "expiry_time_period_ms")):
            answer = client.call(api, {"hmac": token["hmac"], field: HOUR})[1]
            assert (answer["error_code"], answer["expiry_timestamp_ms"]) == (ErrorCode.DELEGATION_TOKEN_EXPIRED, 0)
        listed = alice.call(ApiKey.DESCRIBE_DELEGATION_TOKEN, {"owners": None})[1]["tokens"]
        assert token["token_id"] in [described["token_id"] for described in listed]
        # Kafka 4.4 logs it in for a session already over (lifetime 0): its next request closes the connection.
        with _as(token_broker, token["token_id"], password) as holder, pytest.raises(admin_client.ClientError, match="closed|reset"):
            holder.call(ApiKey.METADATA, {"topics": [], "allow_auto_topic_creation": False})


def test_sweeps_drop_expired_tokens_once_an_interval() -> None:
    start = now_ms()
    tokens = DelegationTokens(None, "secret", 7 * DAY, DAY, check_interval_ms=HOUR)
    token = tokens.create("User:alice", "User:alice", [], max_lifetime_ms=-1, now=start)
    assert tokens.expire(token.hmac, "User:alice", 10, now=start) == (ErrorCode.NONE, start + 10)
    assert [listed.token_id for listed in tokens.tokens(now=start + HOUR - 1)] == [token.token_id]
    assert tokens.renew(token.hmac, "User:alice", -1, now=start + HOUR - 1) == (ErrorCode.DELEGATION_TOKEN_EXPIRED, 0)
    assert list(tokens.tokens(now=start + HOUR)) == []
    assert tokens.renew(token.hmac, "User:alice", -1, now=start + HOUR) == (ErrorCode.DELEGATION_TOKEN_NOT_FOUND, 0)


def test_a_requester_sees_the_token_it_asked_for_but_may_not_renew_it(token_broker: ThreadedBroker) -> None:
    acl = {"resource_type": 7, "resource_name": "User:carol", "resource_pattern_type": 3, "principal": "User:alice", "host": "*", "operation": 13, "permission_type": 3}
    with _as(token_broker, "admin") as admin, _as(token_broker, "alice") as alice, _as(token_broker, "bob") as bob:
        assert [result["error_code"] for result in admin.call(ApiKey.CREATE_ACLS, {"creations": [acl]})[1]["results"]] == [0]
        token = _create(alice, owner_principal_type="User", owner_principal_name="carol")
        assert (token["principal_name"], token["token_requester_principal_name"]) == ("carol", "alice")
        seen = [described["token_id"] for described in alice.call(ApiKey.DESCRIBE_DELEGATION_TOKEN, {"owners": None})[1]["tokens"]]
        assert token["token_id"] in seen
        owners = [{"principal_type": "User", "principal_name": "alice"}]
        assert token["token_id"] in [described["token_id"] for described in admin.call(ApiKey.DESCRIBE_DELEGATION_TOKEN, {"owners": owners})[1]["tokens"]]
        assert token["token_id"] not in [described["token_id"] for described in bob.call(ApiKey.DESCRIBE_DELEGATION_TOKEN, {"owners": None})[1]["tokens"]]
        renewed = alice.call(ApiKey.RENEW_DELEGATION_TOKEN, {"hmac": token["hmac"], "renew_period_ms": HOUR})[1]
        assert renewed["error_code"] == ErrorCode.DELEGATION_TOKEN_OWNER_MISMATCH


def test_a_token_id_never_starts_with_a_dash(token_broker: ThreadedBroker, monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = iter([uuid.UUID(bytes=b"\xf8" + bytes(15))])  # URL-safe base64 "-AAAA..."
    monkeypatch.setattr(tokens_module, "uuid", SimpleNamespace(uuid4=lambda: next(drawn, None) or uuid.uuid4()))
    with _as(token_broker, "alice") as alice:
        token_id = _create(alice)["token_id"]
    assert not token_id.startswith("-") and len(token_id) == 22


# --- Controller mutation quotas (KIP-599).


def _create_topics(connection: Any, version: int, **partitions: int) -> dict[str, Any]:
    topics = [{"name": name, "num_partitions": count, "replication_factor": 1, "assignments": [], "configs": []} for name, count in partitions.items()]
    return connection.call(ApiKey.CREATE_TOPICS, version, {"topics": topics, "timeout_ms": 5000, "validate_only": False})


def test_controller_mutation_rate_refuses_partitions_past_the_bucket_from_the_strict_versions(quota_broker: ThreadedBroker) -> None:
    """ControllerMutationQuotaManager: a bucket of controller.quota.window.num x size seconds
    of the rate (here 0.1 partitions/s: 1.1), full at first. From CreateTopics v6,
    CreatePartitions v3 and DeleteTopics v5 a topic is refused THROTTLING_QUOTA_EXCEEDED while
    the bucket is below zero (the one taking it below passes) and the answer carries the time
    to refill it; older versions are served and only throttled."""
    from compat.differential import _Connection

    with KafkaClient(quota_broker.bootstrap_servers, timeout=10) as admin:
        assert _alter(admin, (_entity(user=None), [_op("controller_mutation_rate", 0.1)])) == [(ErrorCode.NONE, None)]
    connection = _Connection(quota_broker.bootstrap_servers)
    try:
        strict = _create_topics(connection, 7, wide=10, refused=1)
        assert [(t["name"], t["error_code"]) for t in strict["topics"]] == [("wide", ErrorCode.NONE), ("refused", ErrorCode.THROTTLING_QUOTA_EXCEEDED)]
        assert strict["topics"][1]["error_message"] == "The throttling quota has been exceeded."
        assert strict["throttle_time_ms"] > 60_000  # ~89 s: 8.9 partitions short at 0.1/s
        permissive = _create_topics(connection, 5, older=1)
        assert permissive["topics"][0]["error_code"] == ErrorCode.NONE and permissive["throttle_time_ms"] > 60_000
        grown = connection.call(ApiKey.CREATE_PARTITIONS, 3, {"topics": [{"name": "wide", "count": 11, "assignments": None}],
                                                              "timeout_ms": 5000, "validate_only": False})
        assert grown["results"][0]["error_code"] == ErrorCode.THROTTLING_QUOTA_EXCEEDED
        deleted = connection.call(ApiKey.DELETE_TOPICS, 5, {"topic_names": ["older"], "timeout_ms": 5000})
        assert deleted["responses"][0]["error_code"] == ErrorCode.THROTTLING_QUOTA_EXCEEDED
    finally:
        connection.close()
