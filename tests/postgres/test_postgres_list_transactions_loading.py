"""ListTransactions on a broker over PostgreSQL that is reading a `__transaction_state` partition
again, having just gained it from a broker that stopped: Kafka 4.4's
TransactionStateManager.listTransactionStates answers COORDINATOR_LOAD_IN_PROGRESS (and nothing
else) while any partition is loading. The load is held open by the test's own connection: an
ACCESS EXCLUSIVE lock on `batches`, which the load's read waits for, taken before the broker stops
and released once the answer is checked."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from compat.harness import PostgresBrokers
from ottla.server.admin.client import KafkaClient
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

pytestmark = [pytest.mark.external, pytest.mark.slow]

_DEADLINE = 60.0
_TXN = 1  # FindCoordinator key type
_LIST = {"state_filters": [], "producer_id_filters": [], "duration_filter": -1}


def _until(check: Any, what: str) -> Any:
    deadline = time.monotonic() + _DEADLINE
    while True:
        found = check()
        if found is not None:
            return found
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _coordinator(client: KafkaClient, key: str) -> int | None:
    entry = client.call(ApiKey.FIND_COORDINATOR, {"key_type": _TXN, "coordinator_keys": [key]}, highest=4)[1]["coordinators"][0]
    return None if entry["error_code"] else int(entry["node_id"])


def _describe(client: KafkaClient, key: str) -> ErrorCode:
    return ErrorCode(client.call(ApiKey.DESCRIBE_TRANSACTIONS, {"transactional_ids": [key]})[1]["transaction_states"][0]["error_code"])


def test_list_transactions_answers_load_in_progress_while_a_partition_loads(postgres_url: str, tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    try:
        with PostgresBrokers(tmp_path, storage=postgres_url, nodes=2) as brokers:
            staying, leaving = brokers.brokers
            with KafkaClient(staying.bootstrap) as client:
                # A transaction this broker coordinates, listed before the other broker stops.
                key = next(f"here-{n}" for n in itertools.count() if _until(lambda n=n: _coordinator(client, f"here-{n}"), "no coordinator") == 1)
                init = client.call(ApiKey.INIT_PRODUCER_ID, {"transactional_id": key, "transaction_timeout_ms": 60000,
                                                             "producer_id": -1, "producer_epoch": -1}, highest=4)[1]
                assert init["error_code"] == ErrorCode.NONE, init
                assert [t["transactional_id"] for t in client.call(ApiKey.LIST_TRANSACTIONS, _LIST, highest=1)[1]["transaction_states"]] == [key]
                moving = next(f"there-{n}" for n in itertools.count() if _until(lambda n=n: _coordinator(client, f"there-{n}"), "no coordinator") == 2)
                connection = loop.run_until_complete(asyncpg.connect(postgres_url))
                try:
                    transaction = connection.transaction()
                    loop.run_until_complete(transaction.start())
                    loop.run_until_complete(connection.execute("LOCK TABLE batches IN ACCESS EXCLUSIVE MODE"))
                    leaving.stop()
                    # The staying broker has gained the partition of `moving` and is reading it.
                    _until(lambda: True if _describe(client, moving) is ErrorCode.COORDINATOR_LOAD_IN_PROGRESS else None, "no load began")
                    listed = client.call(ApiKey.LIST_TRANSACTIONS, _LIST, highest=1)[1]
                    loop.run_until_complete(transaction.rollback())
                finally:
                    loop.run_until_complete(connection.close())
                assert (listed["error_code"], listed["transaction_states"]) == (ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, [])
                # Once every partition gained is read, the list again.
                listed = _until(lambda: answer if (answer := client.call(ApiKey.LIST_TRANSACTIONS, _LIST, highest=1)[1])["error_code"]
                                != ErrorCode.COORDINATOR_LOAD_IN_PROGRESS else None, "the loads never ended")
                assert (listed["error_code"], [t["transactional_id"] for t in listed["transaction_states"]]) == (ErrorCode.NONE, [key])
    finally:
        loop.close()
