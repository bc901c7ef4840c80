"""SCRAM credentials, ACLs, client quotas and group configs in PostgreSQL: two `ottla serve
--storage postgresql://...` processes on one private PostgreSQL, SASL_PLAINTEXT with SCRAM and
StandardAuthorizer. A user created through broker 1 logs in through broker 2 (confluent-kafka
produces as them); an ACL created through broker 1 denies on broker 2, and its deletion through
broker 2 allows on broker 1 again; a group config and a client quota set through broker 1 are
described by broker 2, as are a delegation token created and a feature level finalized there; and a broker started afresh, with nothing on its disk, has them all.

Each check asks the one broker it names (ottla's own client, one connection to it), waiting with
a deadline for the other broker to have heard of the change."""

from __future__ import annotations

import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, TypeVar

import pytest
from confluent_kafka import Producer

from ottla.server.admin.client import KafkaClient
from ottla.server.admin.operations import AdminClient
from ottla.server.admin.sasl import SaslLogin
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

pytestmark = [pytest.mark.external, pytest.mark.slow]

_START_TIMEOUT = 60.0
_DEADLINE = 60.0
_MECHANISM = "SCRAM-SHA-256"
_ADMIN = SaslLogin(_MECHANISM, "admin", "admin-secret")
_ALICE = SaslLogin(_MECHANISM, "alice", "alice-secret")
_SETTINGS = {
    "listeners": "SASL_PLAINTEXT://127.0.0.1:0",
    "sasl.enabled.mechanisms": "SCRAM-SHA-256,SCRAM-SHA-512",
    "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "super.users": "User:admin",
    "allow.everyone.if.no.acl.found": "true",
    "delegation.token.secret.key": "the-secret",
}
# Kafka's codes: TOPIC, LITERAL, DESCRIBE, DENY.
_DENY_DESCRIBE = {"resource_type": 2, "resource_pattern_type": 3, "operation": 8, "permission_type": 2, "host": "*"}

T = TypeVar("T")


@contextmanager
def _serve(url: str, node_id: int, add_admin: bool) -> Iterator[str]:
    """Broker `node_id` on a free port over `url`, in memory: its bootstrap address."""
    command = [sys.executable, "-m", "ottla", "serve", "--port", "0", "--memory", "--http-port", "-1", "--storage", url, "--node-id", str(node_id)]
    for name, value in _SETTINGS.items():
        command += ["--set", f"{name}={value}"]
    if add_admin:
        command += ["--add-scram", f"{_MECHANISM}=[name={_ADMIN.username},password={_ADMIN.password}]"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    seen: list[str] = []

    def read() -> None:
        for line in process.stderr:  # type: ignore[union-attr]
            seen.append(line)
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    try:
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise AssertionError(f"broker {node_id} did not start: {seen}") from None
            found = re.search(r"ottla ready bootstrap=(\S+)", line)
            if found:
                break
        yield found[1]
    finally:
        if process.poll() is None:
            process.terminate()
            assert process.wait(timeout=30) == 0, "".join(seen[-20:])


def _until(check: Callable[[], T], what: str) -> T:
    """`check()` once it is truthy (an exception counts as not yet), polled until the deadline."""
    deadline = time.monotonic() + _DEADLINE
    last: object = None
    while True:
        try:
            value = check()
            if value:
                return value
            last = value
        except Exception as exc:  # noqa: BLE001 - a login refused, a connection reset: not yet
            last = exc
        assert time.monotonic() < deadline, f"never: {what} (last: {last!r})"
        time.sleep(0.2)


def _call(bootstrap: str, login: SaslLogin, api: ApiKey, body: dict[str, Any]) -> dict[str, Any]:
    """One request to the broker at `bootstrap` itself, logged in as `login`."""
    with KafkaClient(bootstrap, timeout=10, sasl=login) as client:
        return client.call(api, body)[1]


def _topic_error(bootstrap: str, login: SaslLogin, topic: str) -> int:
    """The error the broker at `bootstrap` answers `login`'s Metadata for `topic` with."""
    with KafkaClient(bootstrap, timeout=10, sasl=login) as client:
        return int(client.metadata([topic])["topics"][0]["error_code"])


def _acl_body(topic: str) -> dict[str, Any]:
    return {**_DENY_DESCRIBE, "resource_name": topic, "principal": f"User:{_ALICE.username}"}


def _group_config(bootstrap: str, group: str) -> str | None:
    described = _call(bootstrap, _ADMIN, ApiKey.DESCRIBE_CONFIGS, {
        "resources": [{"resource_type": 32, "resource_name": group, "configuration_keys": ["consumer.session.timeout.ms"]}],
        "include_synonyms": False, "include_documentation": False,
    })
    configs = described["results"][0]["configs"]
    return configs[0]["value"] if configs else None


def _alice_quotas(bootstrap: str) -> list[Any]:
    described = _call(bootstrap, _ADMIN, ApiKey.DESCRIBE_CLIENT_QUOTAS, {
        "components": [{"entity_type": "user", "match_type": 0, "match": _ALICE.username}], "strict": False,
    })
    assert described["error_code"] == 0, described
    return [(value["key"], value["value"]) for entry in described["entries"] or [] for value in entry["values"]]


def _share_version(bootstrap: str) -> int | None:
    """share.version's finalized level as the broker at `bootstrap` reports it in ApiVersions."""
    with KafkaClient(bootstrap, timeout=10, sasl=_ADMIN) as client:
        answer = client.call(ApiKey.API_VERSIONS, {"client_software_name": "test", "client_software_version": "1"}, highest=3)[1]
    levels = {feature["name"]: feature["max_version_level"] for feature in answer["finalized_features"]}
    return levels.get("share.version")


def _token_ids(bootstrap: str) -> list[str]:
    described = _call(bootstrap, _ADMIN, ApiKey.DESCRIBE_DELEGATION_TOKEN, {"owners": None})
    assert described["error_code"] == 0, described
    return [token["token_id"] for token in described["tokens"]]


def _produce_as_alice(bootstrap: str, topic: str) -> None:
    """confluent-kafka bootstrapped at `bootstrap` (its first login is there) produces one record as alice."""
    producer = Producer({
        "bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": _MECHANISM,
        "sasl.username": _ALICE.username, "sasl.password": _ALICE.password, "message.timeout.ms": 30000,
    })
    delivered: list[Any] = []
    producer.produce(topic, b"from alice", on_delivery=lambda error, message: delivered.append(error))
    producer.flush(40)
    assert delivered == [None], delivered


def test_users_acls_quotas_and_group_configs_are_the_databases(postgres_url: str) -> None:
    with ExitStack() as stack:
        one = stack.enter_context(_serve(postgres_url, 1, add_admin=True))
        two = stack.enter_context(_serve(postgres_url, 2, add_admin=False))

        # alice, made through broker 1, logs in through broker 2; admin, from broker 1's
        # --add-scram, is known there too.
        with AdminClient(one, sasl=_ADMIN) as admin:
            admin.add_scram_user(_ALICE.username, _ALICE.password, [_MECHANISM])
            admin.create_topic("guarded", 1)
        _until(lambda: _topic_error(two, _ALICE, "guarded") == ErrorCode.NONE, "alice logs in on broker 2")
        _produce_as_alice(two, "guarded")

        # DENY DESCRIBE made through broker 1 is enforced by broker 2.
        created = _call(one, _ADMIN, ApiKey.CREATE_ACLS, {"creations": [_acl_body("guarded")]})
        assert [result["error_code"] for result in created["results"]] == [0]
        _until(lambda: _topic_error(two, _ALICE, "guarded") == ErrorCode.TOPIC_AUTHORIZATION_FAILED, "broker 2 denies alice")

        # A group config and a client quota set through broker 1 are broker 2's too.
        altered = _call(one, _ADMIN, ApiKey.INCREMENTAL_ALTER_CONFIGS, {
            "resources": [{"resource_type": 32, "resource_name": "settled", "configs": [
                {"name": "consumer.session.timeout.ms", "config_operation": 0, "value": "50000"}]}],
            "validate_only": False,
        })
        assert altered["responses"][0]["error_code"] == 0, altered
        quota = _call(one, _ADMIN, ApiKey.ALTER_CLIENT_QUOTAS, {
            "entries": [{"entity": [{"entity_type": "user", "entity_name": _ALICE.username}],
                         "ops": [{"key": "producer_byte_rate", "value": 1048576.0, "remove": False}]}],
            "validate_only": False,
        })
        assert quota["entries"][0]["error_code"] == 0, quota
        _until(lambda: _group_config(two, "settled") == "50000", "broker 2 describes the group config")
        _until(lambda: _alice_quotas(two) == [("producer_byte_rate", 1048576.0)], "broker 2 describes alice's quota")
        token = _call(one, _ADMIN, ApiKey.CREATE_DELEGATION_TOKEN, {"renewers": [], "max_lifetime_ms": -1})
        assert token["error_code"] == 0, token
        _until(lambda: _token_ids(two) == [token["token_id"]], "broker 2 describes the token")
        assert _share_version(two) == 2
        updated = _call(one, _ADMIN, ApiKey.UPDATE_FEATURES, {
            "timeout_ms": 30000, "feature_updates": [{"feature": "share.version", "max_version_level": 1, "upgrade_type": 2}], "validate_only": False,
        })
        assert updated["error_code"] == 0, updated
        _until(lambda: _share_version(two) == 1, "broker 2 reports share.version 1")

        # A second topic denied through broker 1, its ACL deleted through broker 2: allowed on broker 1 again.
        assert _call(one, _ADMIN, ApiKey.CREATE_ACLS, {"creations": [_acl_body("released")]})["results"][0]["error_code"] == 0
        with AdminClient(one, sasl=_ADMIN) as admin:
            admin.create_topic("released", 1)
        assert _topic_error(one, _ALICE, "released") == ErrorCode.TOPIC_AUTHORIZATION_FAILED
        deleted = _until(lambda: _call(two, _ADMIN, ApiKey.DELETE_ACLS, {"filters": [{
            "resource_type_filter": 2, "resource_name_filter": "released", "pattern_type_filter": 3, "principal_filter": None,
            "host_filter": None, "operation": 1, "permission_type": 1}]})["filter_results"][0]["matching_acls"], "broker 2 deletes the ACL")
        assert [acl["resource_name"] for acl in deleted] == ["released"]
        _until(lambda: _topic_error(one, _ALICE, "released") == ErrorCode.NONE, "broker 1 allows alice again")

    # Both stopped: a broker started afresh finds every change in the database.
    with _serve(postgres_url, 2, add_admin=False) as again:
        assert _topic_error(again, _ALICE, "guarded") == ErrorCode.TOPIC_AUTHORIZATION_FAILED
        assert _topic_error(again, _ALICE, "released") == ErrorCode.NONE
        assert _group_config(again, "settled") == "50000"
        assert _alice_quotas(again) == [("producer_byte_rate", 1048576.0)]
        assert _token_ids(again) == [token["token_id"]]
        assert _share_version(again) == 1
        _produce_as_alice(again, "released")
