"""The compat matrix's security columns under pytest: every client whose driver takes
--security, over SASL_SSL/SCRAM-SHA-512, SASL_PLAINTEXT/PLAIN and mutual TLS, refused by an ACL
and by a wrong password, against one secured Ottla (`compat.harness.secure`: one restart, then
every scenario on it). Below it, the refusal checks are pinned without sockets, so a client
that hangs or fails for another reason cannot pass them.

`python -m compat --scenario no-write-acl --broker kafka` runs the same against the reference
Kafka 4.4 (StandardAuthorizer, the same listeners, users and ACLs) for the differential."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from compat.clients import CLIENTS, Client, DriverError
from compat.harness import OttlaBroker, secure
from compat.matrix import FAIL, run_scenario
from compat.scenarios import _AUTHENTICATION, _AUTHORIZATION, SCENARIOS, SECURITY_SCENARIOS, ScenarioFailure, _refused, not_applicable

pytestmark = [pytest.mark.external]

RUNS = [(client, scenario) for scenario in SCENARIOS if scenario in SECURITY_SCENARIOS
        for client in CLIENTS.values() if not_applicable(client, scenario) is None]


@pytest.fixture(scope="module")
def secured_ottla(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OttlaBroker]:
    """One secured broker for the module: the scenarios make their own topics on it."""
    with OttlaBroker(tmp_path_factory.mktemp("secured-ottla")) as broker:
        secure(broker)
        yield broker


@pytest.mark.parametrize(("compat_client", "scenario"), RUNS, ids=[f"{c.name}-{s}" for c, s in RUNS], indirect=["compat_client"])
def test_client(compat_client: Client, scenario: str, secured_ottla: OttlaBroker) -> None:
    result = run_scenario(compat_client, scenario, secured_ottla)
    if result.status == FAIL:
        pytest.fail(f"{result.reason}\n\n{result.detail}\n\n{secured_ottla.log_tail()}", pytrace=False)


class _Refusing(Client):
    """A client whose produce fails with a fixed reason, as a driver would report it."""

    def run(self, *args: object, **kwargs: object) -> dict[str, object]:
        raise DriverError(self.notes)


def _refusal(reason: str, expect: re.Pattern[str]) -> str:
    client = _Refusing("refusing", (), lambda: "0", notes=reason)
    return _refused(client, "127.0.0.1:1", "t", None, expect, "it")  # type: ignore[arg-type]


@pytest.mark.parametrize("reason", [
    "kafka-python produce: KafkaError: Unexpected error in InitProducerIdResponse: [Error 31] ClusterAuthorizationFailedError",
    "kafkajs produce: KafkaJSProtocolError: Not authorized to access topics: [Topic authorization failed]",
    "confluent-kafka produce: KafkaException: errors: [KafkaError{code=TOPIC_AUTHORIZATION_FAILED,val=29}]",
])
def test_an_authorization_refusal_passes(reason: str) -> None:
    assert _refusal(reason, _AUTHORIZATION)


@pytest.mark.parametrize("reason", [
    "kafka-python produce: KafkaTimeoutError: Unable to bootstrap from 127.0.0.1:52179",  # a hang, bounded by the driver
    "aiokafka produce: KafkaConnectionError: Unable to bootstrap from [('127.0.0.1', 40161)]",  # a refusal it does not name
    "kcat produce: kcat -P hung for 35s",
])
def test_a_refusal_that_names_no_authentication_error_fails(reason: str) -> None:
    with pytest.raises(ScenarioFailure, match="without naming"):
        _refusal(reason, _AUTHENTICATION)


def test_a_produce_that_succeeds_fails_the_refusal_scenarios() -> None:
    class Accepting(Client):
        def run(self, *args: object, **kwargs: object) -> dict[str, object]:
            return {"produced": 1, "delivered": None}

    with pytest.raises(ScenarioFailure, match="succeeded"):
        _refused(Accepting("accepting", (), lambda: "0"), "127.0.0.1:1", "t", None, _AUTHORIZATION, "it")  # type: ignore[arg-type]
