"""ListTransactions' DurationFilter (v1+, KIP-994) as Kafka 4.4's
TransactionStateManager.listTransactionStates applies it (`shouldInclude`, read with `javap -c -p`
on the 4.4.0 kafka_2.13 jar): a transaction is left out when `durationFilter >= 0 && now -
txnStartTimestamp <= durationFilter`, whatever its state; so strictly longer than the filter,
a completed transaction measured from its start, and an id with no transaction started
(txnStartTimestamp -1) always listed."""

from __future__ import annotations

from txn_wire import TxnClient

from ottla.server.txn.state import TxnState
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from tests.server.test_txn_coordinator import TIMEOUT_MS, Harness


def _listed(h: Harness, duration_ms: int) -> set[str]:
    return {txn.transactional_id for txn in h.coordinator.list_transactions(set(), set(), duration_ms)}


def test_the_duration_is_strictly_longer_than_the_filter_in_any_state() -> None:
    h = Harness()
    open_ = h.coordinator.init_producer_id("open", TIMEOUT_MS)
    done = h.coordinator.init_producer_id("done", TIMEOUT_MS)
    for tid, init in (("open", open_), ("done", done)):
        assert h.coordinator.add_partitions(tid, init.producer_id, init.producer_epoch, {("t", 0)}) is ErrorCode.NONE
    assert h.coordinator.end_transaction("done", done.producer_id, done.producer_epoch, commit=True).error is ErrorCode.NONE
    assert h.coordinator.describe("done").state is TxnState.COMPLETE_COMMIT
    h.clock.advance(5)  # 5000 ms since both started
    assert _listed(h, 5000) == set()
    assert _listed(h, 4999) == {"open", "done"}


def test_an_id_with_no_transaction_started_is_listed_under_any_duration_filter() -> None:
    with running_broker(data_dir=None) as broker:
        with TxnClient(broker.bootstrap_servers, "unused") as client:
            client.init("idle")
            listed = client.call(ApiKey.LIST_TRANSACTIONS, 1, {"state_filters": [], "producer_id_filters": [], "duration_filter": 1})
            assert listed["error_code"] == ErrorCode.NONE
            assert [(t["transactional_id"], t["transaction_state"]) for t in listed["transaction_states"]] == [("idle", "Empty")]
