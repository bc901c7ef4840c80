"""Brokers over one PostgreSQL: a request for a transactional id another broker coordinates runs
its handler with a stand-in for the transaction coordinator (server/cluster/coordinators.py), which
answers the coordinator's own checks and refuses at its first use of the coordinator's state, even
when the handler reaches it only after parking: an EndTxn of an empty transactional id awaits its
markers on a database broker, and the brokers that do not coordinate the id still answer it."""

from __future__ import annotations

from pathlib import Path

import pytest

from compat.harness import PostgresBrokers
from ottla.server.admin.client import KafkaClient
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

pytestmark = [pytest.mark.external, pytest.mark.slow]


def test_an_end_txn_refused_after_it_parks_is_answered(postgres_url: str, tmp_path: Path) -> None:
    end = {"transactional_id": "", "producer_id": 7, "producer_epoch": 0, "committed": True}
    with PostgresBrokers(tmp_path, storage=postgres_url, nodes=3) as brokers:
        errors = []
        for broker in brokers.brokers:
            with KafkaClient(broker.bootstrap) as client:
                errors.append(client.call(ApiKey.END_TXN, end, highest=4)[1]["error_code"])
    # The id's coordinator checks it (INVALID_REQUEST); the others refuse once past that check,
    # where EndTxn awaits its markers (Kafka answers INVALID_REQUEST on every broker).
    assert sorted(errors) == sorted([ErrorCode.INVALID_REQUEST, ErrorCode.NOT_COORDINATOR, ErrorCode.NOT_COORDINATOR])
