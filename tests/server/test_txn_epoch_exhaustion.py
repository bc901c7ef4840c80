"""Where a transactional id whose epoch is exhausted moves to a new producer id, driven on the
coordinator directly (no sockets), as Kafka 4.4's TransactionCoordinator does it (read with
`javap -c -p` on the 4.4.0 jars):

* a fenced transaction (timeout, or InitProducerId over an open one) is aborted by
  `endTransaction` at the finalized transaction.version, or by `endTransactionWithTV1` below
  version 2 from InitProducerId; only under version 2 is a next producer id reserved
  (isProducerEpochExhausted) and taken at the end (TransactionMetadata.prepareComplete, which
  needs `clientTransactionVersion.supportsEpochBump()` and a nextProducerId);
* below version 2 the end keeps the exhausted epoch, and the next InitProducerId moves on
  (prepareInitProducerIdTransit: `isProducerEpochExhausted` -> prepareProducerIdRotation).
"""

from __future__ import annotations

import pytest

from ottla.server.txn.state import TxnState
from ottla.wire.errors import ErrorCode
from tests.server.test_txn_coordinator import ABORT_KEY, TIMEOUT_MS, Harness

LAST_BUT_ONE = 2**15 - 2


def _open_at_last_epoch_but_one(h: Harness) -> int:
    """A transaction version 1 transaction open at Short.MAX_VALUE - 1, with a batch in it."""
    pid = h.coordinator.init_producer_id("tx", TIMEOUT_MS).producer_id
    h.coordinator.describe("tx").producer_epoch = LAST_BUT_ONE
    assert h.coordinator.add_partitions("tx", pid, LAST_BUT_ONE, {("t", 0)}) is ErrorCode.NONE
    h.produce(pid, LAST_BUT_ONE, 0)
    return pid


@pytest.mark.parametrize("level", [0, 1])
def test_below_version_2_a_timed_out_transaction_keeps_its_id_until_the_next_init(level: int) -> None:
    h = Harness(transaction_version=level)
    pid = _open_at_last_epoch_but_one(h)
    h.clock.advance(TIMEOUT_MS / 1000 + 20)
    txn = h.coordinator.describe("tx")
    assert (txn.state, txn.producer_id) == (TxnState.COMPLETE_ABORT, pid)
    moved = h.coordinator.init_producer_id("tx", TIMEOUT_MS)
    assert moved.error is ErrorCode.NONE and moved.producer_id != pid and moved.producer_epoch == 0


@pytest.mark.parametrize("level", [0, 1])
def test_below_version_2_a_transaction_fenced_by_a_new_producer_keeps_its_id_until_that_producers_retry(level: int) -> None:
    h = Harness(transaction_version=level)
    pid = _open_at_last_epoch_but_one(h)
    assert h.coordinator.init_producer_id("tx", TIMEOUT_MS).error is ErrorCode.CONCURRENT_TRANSACTIONS
    txn = h.coordinator.describe("tx")
    assert (txn.state, txn.producer_id, txn.producer_epoch) == (TxnState.COMPLETE_ABORT, pid, LAST_BUT_ONE + 1)
    assert h.batches(0)[-1] == (LAST_BUT_ONE + 1, True, ABORT_KEY)
    moved = h.coordinator.init_producer_id("tx", TIMEOUT_MS)
    assert moved.error is ErrorCode.NONE and moved.producer_id != pid and moved.producer_epoch == 0


def test_at_version_2_a_timed_out_transaction_moves_to_a_new_id_when_it_completes() -> None:
    """The same transaction version 1 transaction, the finalized level 2: endTransaction at
    version 2 reserves the next id and prepareComplete takes it."""
    h = Harness(transaction_version=2)
    pid = _open_at_last_epoch_but_one(h)
    h.clock.advance(TIMEOUT_MS / 1000 + 20)
    txn = h.coordinator.describe("tx")
    assert txn.state is TxnState.COMPLETE_ABORT and txn.producer_id != pid and txn.producer_epoch == 0
    assert h.batches(0)[-1] == (LAST_BUT_ONE + 1, True, ABORT_KEY)
