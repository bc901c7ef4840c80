"""`ottla serve --add-scram` and `ottla users list|add|delete` against a SASL_PLAINTEXT
listener: the commands log in with SCRAM or PLAIN (flags, $OTTLA_SASL_PASSWORD or Kafka's
--command-config file), and a stock client then logs in as the user they made."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaProducer

from ottla.server.admin.client import ClientError
from ottla.server.admin.sasl import SaslLogin
from ottla.server.admin.operations import AdminClient
from ottla.testing import ThreadedBroker, running_broker
from tests.security.test_sasl_clients import ADD_SCRAM, JAAS, sasl_config

ADMIN = ["--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", "dave"]
ADMIN_PASSWORD = {"OTTLA_SASL_PASSWORD": "dave-secret"}


@pytest.fixture(scope="module")
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(config=sasl_config(), add_scram=ADD_SCRAM) as handle:
        yield handle


def _ottla(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ottla", *args], input=stdin, capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}
    )


def _sasl_bootstrap(broker: ThreadedBroker) -> str:
    assert broker.broker is not None
    return f"127.0.0.1:{broker.broker.bound_ports['SASL_PLAINTEXT']}"


def _produces(bootstrap: str, mechanism: str, user: str, password: str) -> None:
    """kafka-python logs in and produces."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, security_protocol="SASL_PLAINTEXT", sasl_mechanism=mechanism, sasl_plain_username=user, sasl_plain_password=password
    )
    try:
        assert producer.send("sasl-cli", b"hello").get(timeout=10).offset >= 0
    finally:
        producer.close()


def _refused(bootstrap: str, mechanism: str, user: str, password: str) -> bool:
    """The login fails with SASL_AUTHENTICATION_FAILED (Ottla's client: kafka-python retries a
    failed login for half a minute before it gives up)."""
    try:
        AdminClient(bootstrap, timeout=10, sasl=SaslLogin(mechanism, user, password)).close()
    except ClientError as exc:
        return "SASL_AUTHENTICATION_FAILED" in str(exc)
    return False


def test_users_add_list_delete_then_a_client_logs_in(broker: ThreadedBroker) -> None:
    bootstrap = _sasl_bootstrap(broker)
    added = _ottla("users", "add", "alice", "--mechanism", "SCRAM-SHA-256", "-b", bootstrap, *ADMIN, stdin="alice-scram\n", env=ADMIN_PASSWORD)
    assert added.returncode == 0, added.stderr
    assert "alice-scram" not in added.stdout + added.stderr
    listed = _ottla("users", "list", "--json", "-b", bootstrap, *ADMIN, env=ADMIN_PASSWORD)
    assert listed.returncode == 0, listed.stderr
    users = {entry["user"]: entry["mechanisms"] for entry in json.loads(listed.stdout)}
    assert users["alice"] == {"SCRAM-SHA-256": 4096}
    assert users["dave"] == {"SCRAM-SHA-512": 8192}
    _produces(bootstrap, "SCRAM-SHA-256", "alice", "alice-scram")
    deleted = _ottla("users", "delete", "alice", "-b", bootstrap, *ADMIN, env=ADMIN_PASSWORD)
    assert deleted.returncode == 0, deleted.stderr
    assert "SCRAM-SHA-256" in deleted.stdout
    assert _refused(bootstrap, "SCRAM-SHA-256", "alice", "alice-scram")
    gone = _ottla("users", "list", "alice", "-b", bootstrap, *ADMIN, env=ADMIN_PASSWORD)
    assert gone.returncode == 1 and "RESOURCE_NOT_FOUND" in gone.stderr


@pytest.mark.parametrize(
    "jaas",
    [
        'org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="alice-secret";',
        # Continued over lines, as Kafka's documentation writes it: Properties.load joins them.
        'org.apache.kafka.common.security.plain.PlainLoginModule required \\\n    username="alice" \\\n    password="alice-secret";',
    ],
    ids=["one-line", "continued"],
)
def test_command_config_file_logs_in_with_plain(broker: ThreadedBroker, tmp_path: Path, jaas: str) -> None:
    properties = tmp_path / "client.properties"
    properties.write_text(f"security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.jaas.config={jaas}\n")
    listed = _ottla("users", "list", "-b", _sasl_bootstrap(broker), "--command-config", str(properties))
    assert listed.returncode == 0, listed.stderr
    assert "carol" in listed.stdout and "SCRAM-SHA-256" in listed.stdout


def test_a_wrong_password_is_one_line_naming_no_secret(broker: ThreadedBroker) -> None:
    failed = _ottla("users", "list", "-b", _sasl_bootstrap(broker), *ADMIN, "--sasl-password", "not-daves")
    assert failed.returncode == 1
    assert "SASL_AUTHENTICATION_FAILED" in failed.stderr and "not-daves" not in failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1


def test_serve_add_scram(tmp_path: Path) -> None:
    """`ottla serve --add-scram` (repeatable) makes users a client can log in as; a malformed
    value stops start-up with a message that names no password."""
    settings = {
        "listeners": "SASL_PLAINTEXT://127.0.0.1:0",
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
    }
    flags = [item for key, value in settings.items() for item in ("--set", f"{key}={value}")]
    refused = _ottla("serve", "--memory", *flags, "--add-scram", "SCRAM-SHA-1=[name=eve,password=eve-secret]")
    assert refused.returncode == 2 and "SCRAM-SHA-1" in refused.stderr and "eve-secret" not in refused.stderr
    process = subprocess.Popen(
        [sys.executable, "-m", "ottla", "serve", "--data-dir", str(tmp_path), *flags,
         "--add-scram", "SCRAM-SHA-256=[name=erin,password=erin-secret]", "--add-scram", 'SCRAM-SHA-512=[name=frank,password="frank,secret"]'],
        stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stderr is not None
        ready = next(line for line in process.stderr if line.startswith("ottla ready"))
        bootstrap = ready.split("bootstrap=")[1].split()[0]
        _produces(bootstrap, "SCRAM-SHA-256", "erin", "erin-secret")
        _produces(bootstrap, "SCRAM-SHA-512", "frank", "frank,secret")
        assert _refused(bootstrap, "SCRAM-SHA-512", "frank", "erin-secret")
    finally:
        process.terminate()
        process.wait(timeout=30)
    kept = (tmp_path / "scram-credentials.json").read_text()
    assert "erin-secret" not in kept and "frank,secret" not in kept
