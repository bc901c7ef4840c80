"""Faults from outside the broker's process: the HTTP API `/api/faults` and `ottla faults`, which
finds that API through the broker's DescribeConfigs (`http.host`, `http.port`)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any, Iterator

import pytest
from kafka import KafkaProducer

from ottla.testing import ThreadedBroker, running_broker


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def broker() -> Iterator[ThreadedBroker]:
    """A broker whose HTTP listener has a port of its own, so DescribeConfigs names it."""
    with running_broker(data_dir=None, http_port=_free_port()) as broker:
        broker.create_topic("t", 1)
        yield broker


@pytest.fixture(autouse=True)
def no_faults_left(broker: ThreadedBroker) -> Iterator[None]:
    yield
    broker.faults.clear()


def _url(broker: ThreadedBroker) -> str:
    assert broker.broker is not None and broker.broker.http is not None
    return broker.broker.http.url


def _call(broker: ThreadedBroker, method: str, path: str, body: Any = None, csrf: bool = True) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if csrf:
        with urllib.request.urlopen(_url(broker) + "/api/csrf", timeout=30) as answer:
            headers["X-CSRF-Token"] = json.loads(answer.read())["token"]
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(_url(broker) + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _ottla(broker: ThreadedBroker, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ottla", "faults", *args, "--bootstrap", broker.bootstrap_servers]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_a_fault_set_over_http_fires_on_the_next_request_and_is_removed_with_its_count(broker: ThreadedBroker) -> None:
    status, fault = _call(broker, "POST", "/api/faults", {"api": "produce", "topic": "t", "error": "NOT_LEADER_OR_FOLLOWER", "every": 2})
    assert status == 201
    assert (fault["api"], fault["topic"], fault["error"], fault["fired"]) == ("produce", "t", "NOT_LEADER_OR_FOLLOWER", 0)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, enable_idempotence=True, retry_backoff_ms=10)
    for value in (b"a", b"b", b"c"):
        producer.send("t", value, partition=0).get(timeout=30)
    producer.close()
    assert _call(broker, "GET", "/api/faults")[1]["faults"][0]["fired"] >= 1
    status, removed = _call(broker, "DELETE", f"/api/faults/{fault['id']}")
    assert status == 200 and removed["fired"] >= 1
    assert _call(broker, "GET", "/api/faults") == (200, {"faults": []})


@pytest.mark.parametrize(
    "body, status, says",
    [
        ({"api": "produce", "error": "NOT_AN_ERROR"}, 400, "unknown error"),
        ({"api": "produce", "when": "always"}, 400, "unknown fault fields"),
        ({"api": "produce", "count": "three"}, 400, "count"),
        ({"error": "REQUEST_TIMED_OUT"}, 400, "needs an API"),
    ],
)
def test_a_fault_that_cannot_be_set_is_refused_with_why(broker: ThreadedBroker, body: dict[str, Any], status: int, says: str) -> None:
    answer = _call(broker, "POST", "/api/faults", body)
    assert answer[0] == status and says in answer[1]["error"]
    assert broker.faults.list() == []


def test_setting_a_fault_needs_the_csrf_token(broker: ThreadedBroker) -> None:
    assert _call(broker, "POST", "/api/faults", {"api": "produce", "drop": "after"}, csrf=False)[0] == 403
    assert _call(broker, "DELETE", "/api/faults/1", csrf=False)[0] == 403
    assert broker.faults.list() == []


def test_an_unknown_fault_is_not_found(broker: ThreadedBroker) -> None:
    assert _call(broker, "DELETE", "/api/faults/999999")[0] == 404


def test_ottla_faults_add_list_remove_through_the_bootstrap_address(broker: ThreadedBroker) -> None:
    added = _ottla(broker, "add", "--api", "produce", "--topic", "t", "--drop", "after", "--every", "3", "--name", "flaky", "--json")
    assert added.returncode == 0, added.stderr
    (fault,) = json.loads(added.stdout)
    assert (fault["name"], fault["drop"], fault["every"]) == ("flaky", "after", 3)
    assert [f.name for f in broker.faults.list()] == ["flaky"]
    listed = _ottla(broker, "list")
    assert listed.returncode == 0 and "flaky" in listed.stdout and "api=produce,topic=t" in listed.stdout
    removed = _ottla(broker, "remove", str(fault["id"]), "--json")
    assert removed.returncode == 0 and json.loads(removed.stdout)[0]["id"] == fault["id"]
    assert broker.faults.list() == []


def test_ottla_faults_says_why_a_fault_is_refused(broker: ThreadedBroker) -> None:
    refused = _ottla(broker, "add", "--api", "join_group", "--topic", "t")
    assert refused.returncode == 1 and "names no topic partitions" in refused.stderr


def test_ottla_faults_needs_an_http_listener_it_can_find() -> None:
    with running_broker(data_dir=None) as broker:
        found = _ottla(broker, "list")
    assert found.returncode == 1 and "no HTTP listener" in found.stderr
