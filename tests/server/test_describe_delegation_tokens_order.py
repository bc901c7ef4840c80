"""DescribeDelegationToken lists tokens in the order of Kafka's token cache, a ConcurrentHashMap
keyed by token id: by bin (the spread String hash's low bits, 16 bins, 32 from the 12th token),
within a bin as created (checked on the reference Kafka 4.4 for 9 and 14 tokens), not oldest first."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ottla.server.admin.client import KafkaClient
from ottla.server.admin.sasl import SaslLogin
from ottla.server.config import BrokerConfig
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey


@pytest.fixture
def alice() -> Iterator[KafkaClient]:
    config = BrokerConfig.from_settings({"listeners": "SASL_PLAINTEXT://127.0.0.1:0", "data.dir": None,
                                         "sasl.enabled.mechanisms": "SCRAM-SHA-512", "delegation.token.secret.key": "the-secret"})
    broker: ThreadedBroker
    with running_broker(config=config, add_scram=["SCRAM-SHA-512=[name=alice,password=alice-secret]"]) as broker:
        assert broker.broker is not None
        address = f"127.0.0.1:{broker.broker.bound_ports['SASL_PLAINTEXT']}"
        with KafkaClient(address, timeout=10, sasl=SaslLogin("SCRAM-SHA-512", "alice", "alice-secret")) as client:
            yield client


def _bin(token_id: str, bins: int) -> int:
    h = 0
    for unit in token_id.encode("utf-16-be")[1::2]:  # token ids are ASCII
        h = (31 * h + unit) & 0xFFFFFFFF
    return ((h ^ (h >> 16)) & 0x7FFFFFFF) & (bins - 1)


def _create_and_describe(client: KafkaClient, created: list[str], count: int) -> list[str]:
    while len(created) < count:
        answer = client.call(ApiKey.CREATE_DELEGATION_TOKEN, {"renewers": [], "max_lifetime_ms": -1})[1]
        assert answer["error_code"] == 0, answer
        created.append(answer["token_id"])
    described = client.call(ApiKey.DESCRIBE_DELEGATION_TOKEN, {"owners": [{"principal_type": "User", "principal_name": "alice"}]})[1]
    return [token["token_id"] for token in described["tokens"]]


def test_tokens_come_by_their_id_bins_then_as_created(alice: KafkaClient) -> None:
    created: list[str] = []
    nine = _create_and_describe(alice, created, 9)
    assert nine == sorted(created, key=lambda token_id: (_bin(token_id, 16), created.index(token_id)))
    # The twelfth token doubles the table: the bins are those of 32.
    fourteen = _create_and_describe(alice, created, 14)
    assert sorted(fourteen) == sorted(created)
    assert [_bin(token_id, 32) for token_id in fourteen] == sorted(_bin(token_id, 32) for token_id in fourteen)
