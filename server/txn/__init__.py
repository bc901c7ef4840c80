"""The transaction coordinator (issue 5): transactional ids, epochs and markers."""

from __future__ import annotations

from typing import Any, Callable

from ottla.server.coordinator import TRANSACTION_STATE, TRANSACTION_STATE_TOPIC, Clock, CoordinatorLog
from ottla.server.txn.coordinator import GroupOffsets, ProducerIdManager, ProducerIds, TransactionCoordinator, TxnConfig
from ottla.storage import Storage

__all__ = ["TRANSACTION_STATE_TOPIC", "GroupOffsets", "TransactionCoordinator", "TxnConfig", "open_transaction_coordinator"]


def open_transaction_coordinator(
    storage: Storage, group_offsets: GroupOffsets, config: Any, clock: Clock, notify_data: Callable[[str, int], None],
    transaction_version: Callable[[], int] = lambda: 0, producer_ids: ProducerIds | None = None,
) -> TransactionCoordinator:
    """A coordinator over `__transaction_state` (created on first use, not here), its state
    loaded and interrupted transaction ends finished. `transaction_version` reads the finalized
    transaction.version, which picks the state log's value version; `producer_ids` are the
    data directory's ProducerIdManager unless given (the database's, over PostgreSQL)."""
    txn_config = TxnConfig.from_broker(config)
    log_ = CoordinatorLog(storage, TRANSACTION_STATE, txn_config.state_log_partitions, TRANSACTION_STATE.configs(config.value))
    coordinator = TransactionCoordinator(
        log_, storage, group_offsets, ProducerIdManager(storage.data_dir) if producer_ids is None else producer_ids, txn_config, clock, notify_data, transaction_version=transaction_version
    )
    coordinator.load()
    return coordinator
