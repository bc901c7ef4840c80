"""Console logins: an unknown user costs the same PBKDF2 as a known one, a failure is answered
only after connection.failed.authentication.delay.ms without holding up anything else, and
each login is logged by principal, never with its password."""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from typing import Iterator

import pytest

from ottla.server.config import BrokerConfig
from ottla.server.security.sasl.scram import MIN_ITERATIONS, ScramMechanism
from ottla.testing import ThreadedBroker, running_broker

PASSWORDS = ("alice-secret", "guessed-wrong", "whoever-secret")


def _broker(delay_ms: int) -> Iterator[ThreadedBroker]:
    config = BrokerConfig.from_settings(
        {
            "listeners": "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
            "data.dir": None,
            "http.port": 0,
            "sasl.enabled.mechanisms": "SCRAM-SHA-512",
            "connection.failed.authentication.delay.ms": delay_ms,
        }
    )
    with running_broker(config=config, add_scram=["SCRAM-SHA-512=[name=alice,password=alice-secret]"]) as broker:
        yield broker


def _login(broker: ThreadedBroker, username: str, password: str) -> int:
    assert broker.broker is not None and broker.broker.http is not None
    url = broker.broker.http.url
    with urllib.request.urlopen(url + "/api/csrf", timeout=30) as answer:
        token = json.load(answer)["token"]
    request = urllib.request.Request(
        url + "/api/login",
        data=json.dumps({"username": username, "password": password}).encode(),
        method="POST",
        headers={"X-CSRF-Token": token, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=600) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


@pytest.fixture
def broker() -> Iterator[ThreadedBroker]:
    yield from _broker(0)


def test_an_unknown_user_costs_a_pbkdf2_and_logins_are_logged_without_passwords(
    broker: ThreadedBroker, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ottla")
    hashed: list[int] = []
    salted_password = ScramMechanism.salted_password

    def counted(self: ScramMechanism, password: str, salt: bytes, iterations: int) -> bytes:
        hashed.append(iterations)
        return salted_password(self, password, salt, iterations)

    monkeypatch.setattr(ScramMechanism, "salted_password", counted)
    assert _login(broker, "nobody", "whoever-secret") == 401
    assert hashed == [MIN_ITERATIONS]
    assert _login(broker, "alice", "guessed-wrong") == 401
    assert _login(broker, "alice", "alice-secret") == 200
    assert len(hashed) == 3

    logged = [record.getMessage() for record in caplog.records if record.name.startswith("ottla.server.http")]
    assert "console login failed for 'User:nobody' from 127.0.0.1" in logged
    assert "console login failed for 'User:alice' from 127.0.0.1" in logged
    assert "console login of 'User:alice' from 127.0.0.1" in logged
    assert not [message for message in caplog.messages if any(password in message for password in PASSWORDS)]


def test_a_failed_login_is_answered_after_the_delay_without_holding_the_loop(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ottla")
    answers: list[int] = []
    for broker in _broker(3_000):  # far longer than a login takes
        pending = threading.Thread(target=lambda: answers.append(_login(broker, "alice", "guessed-wrong")))
        pending.start()
        while "console login failed for 'User:alice' from 127.0.0.1" not in caplog.messages and pending.is_alive():
            pending.join(0.01)  # until the password is checked: its answer is being delayed then
        assert _login(broker, "alice", "alice-secret") == 200  # others are served meanwhile
        assert pending.is_alive() and answers == []
        pending.join()
    assert answers == [401]
