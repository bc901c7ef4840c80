"""Brokers over one PostgreSQL: a request for a transactional id another broker coordinates runs
its handler with a stand-in for the transaction coordinator (server/cluster/coordinators.py), which
answers the coordinator's own checks and refuses at its first use of the coordinator's state. An
empty transactional id is such a check, made first: Kafka 4.4's TransactionCoordinator answers it
INVALID_REQUEST in handleEndTransaction (under either transaction version) and in
handleAddPartitionsToTransaction, which AddOffsetsToTxn reaches with the group's partition, before
it asks whether it owns the id. So every broker answers it so, and an EndTxn refused there does not
wait for markers (on a database broker it awaits them before a successful answer)."""

from __future__ import annotations

from pathlib import Path

import pytest

from compat.harness import PostgresBrokers
from ottla.server.admin.client import KafkaClient
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

pytestmark = [pytest.mark.external, pytest.mark.slow]


def test_every_broker_refuses_an_empty_transactional_id(postgres_url: str, tmp_path: Path) -> None:
    end = {"transactional_id": "", "producer_id": 7, "producer_epoch": 0, "committed": True}
    add_offsets = {"transactional_id": "", "producer_id": 7, "producer_epoch": 0, "group_id": "stand-in-group"}
    with PostgresBrokers(tmp_path, storage=postgres_url, nodes=3) as brokers:
        answers = []
        for broker in brokers.brokers:
            with KafkaClient(broker.bootstrap) as client:
                versioned_end = [client.call(ApiKey.END_TXN, end, highest=highest) for highest in (4, 5)]
                assert [version for version, _ in versioned_end] == [4, 5]
                answers.append((*(answer["error_code"] for _, answer in versioned_end),
                                client.call(ApiKey.ADD_OFFSETS_TO_TXN, add_offsets, highest=4)[1]["error_code"]))
    assert answers == [(ErrorCode.INVALID_REQUEST,) * 3] * 3
