"""The transaction coordinator (KIP-98): transactional ids, their producer ids and epochs,
and the two-phase end of each transaction.

It follows Kafka's TransactionCoordinator and TransactionStateManager. Each state
change is written to `__transaction_state` before it is acknowledged, so a restart
replays the log into the same metadata. Ending a transaction writes PrepareCommit or
PrepareAbort, then a COMMIT or ABORT marker into every partition of the transaction
(Kafka's TransactionMarkerChannelManager; here they are local appends, but for a group's
offsets another broker over the same database coordinates: server/txn/marker_channel.py), then
CompleteCommit or CompleteAbort. A restart that finds a Prepare state writes the
markers again and completes, as Kafka's coordinator does on loading; an Ongoing
transaction stays open until its producer ends it or transaction.timeout.ms aborts it,
so no transaction is ever half-visible.

Since markers are local appends, each request finishes its whole transition before it
returns: clients see CONCURRENT_TRANSACTIONS only after a failed write left a Prepare
state, until the next timeout sweep finishes it. Markers into database partitions are
tasks: there the Prepare state lasts until they are in (CONCURRENT_TRANSACTIONS meanwhile,
as from Kafka), so a coordinator that stops first leaves it for the next one to finish.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import pathlib
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Protocol

from ottla.server.coordinator import OFFSETS_TOPIC, Clock, CoordinatorLog, Timers, now_epoch_ms
from ottla.server.txn.database_markers import MarkerWrites
from ottla.server.txn.marker_channel import OffsetsMarkerChannel
from ottla.server.txn.records import TxnRecord, parse_txn_key, parse_txn_value, txn_key, txn_value
from ottla.server.txn.state import TxnState, check_transition
from ottla.storage import Storage
from ottla.storage.files import replace_file
from ottla.storage.producer_state import control_batch
from ottla.wire.errors import ErrorCode, KafkaError

log = logging.getLogger("ottla.txn")

# RecordBatch.NO_PRODUCER_EPOCH and Short.MAX_VALUE: an exhausted epoch takes a new producer id.
NO_PRODUCER_EPOCH = -1
_MAX_EPOCH = 2**15 - 1
# Marker writes a later attempt may get past (TransactionMarkerRequestCompletionHandler); a
# partition deleted since it joined (UNKNOWN_TOPIC_OR_PARTITION) gets none, in Kafka too.
_RETRIED_MARKER_ERRORS = frozenset({
    ErrorCode.KAFKA_STORAGE_ERROR, ErrorCode.NOT_LEADER_FOR_PARTITION, ErrorCode.NOT_ENOUGH_REPLICAS,
    ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND, ErrorCode.REQUEST_TIMED_OUT,
})
# ProducerIdManager hands out ids in blocks (ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE).
PRODUCER_ID_BLOCK_SIZE = 1000
_PRODUCER_ID_FILE = "producer-id-block"


class ProducerIdManager:
    """Unique producer ids across restarts: the end of the block in use is written to
    `producer-id-block` before any id of the block is given out (Kafka keeps the same
    in its metadata log as ProducerIdsRecord). In memory, ids simply count from 0."""

    def __init__(self, data_dir: pathlib.Path | None) -> None:
        self._path = None if data_dir is None else data_dir / _PRODUCER_ID_FILE
        self._next = 0
        if self._path is not None and self._path.exists():
            try:
                self._next = int(self._path.read_text().strip())
            except ValueError:
                raise RuntimeError(f"{self._path} is unreadable; remove it only if no producer ids were ever handed out") from None
        self._block_end = self._next

    def generate(self) -> int:
        if self._next >= self._block_end:
            self._block_end = self._next + PRODUCER_ID_BLOCK_SIZE
            if self._path is not None:
                replace_file(self._path, f"{self._block_end}\n".encode())
        producer_id = self._next
        self._next += 1
        return producer_id


class ProducerIds(Protocol):
    """Where producer ids come from: ProducerIdManager, or blocks reserved in a database
    (server/coordinator/database.py). `generate` never gives an id twice, across restarts."""

    def generate(self) -> int: ...


class GroupOffsets(Protocol):
    """What the transaction coordinator needs of the group coordinator, injected by the
    broker so that neither imports the other: which `__consumer_offsets` partition holds a
    group (AddOffsetsToTxn joins it to the transaction), and settling a producer's pending
    TxnOffsetCommit offsets once its marker reaches those partitions
    (GroupCoordinator.onTransactionCompleted in Kafka)."""

    def offsets_partition(self, group_id: str) -> int: ...

    def complete_transaction(self, producer_id: int, partitions: set[int], commit: bool) -> None: ...


@dataclass(slots=True, frozen=True)
class TxnConfig:
    """Broker settings the coordinator reads (Kafka's names in server/config.py)."""

    max_timeout_ms: int = 900000
    id_expiration_ms: int = 604800000
    abort_timed_out_interval_ms: int = 10000
    remove_expired_interval_ms: int = 3600000
    producer_id_expiration_ms: int = 86400000
    producer_id_expiration_check_interval_ms: int = 600000
    state_log_partitions: int = 1

    @classmethod
    def from_broker(cls, config: Any) -> "TxnConfig":
        return cls(
            max_timeout_ms=config.transaction_max_timeout_ms,
            id_expiration_ms=config.transactional_id_expiration_ms,
            abort_timed_out_interval_ms=config.transaction_abort_timed_out_transaction_cleanup_interval_ms,
            remove_expired_interval_ms=config.transaction_remove_expired_transaction_cleanup_interval_ms,
            producer_id_expiration_ms=config.producer_id_expiration_ms,
            producer_id_expiration_check_interval_ms=config.producer_id_expiration_check_interval_ms,
            state_log_partitions=config.transaction_state_log_num_partitions,
        )


@dataclass(slots=True)
class TransactionMetadata:
    """Kafka's TransactionMetadata: one transactional id's current state."""

    transactional_id: str
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    state: TxnState
    partitions: set[tuple[str, int]] = field(default_factory=set)
    update_ms: int = -1
    start_ms: int = -1
    # 2 when the transaction came from a transaction version 2 client (KIP-890 part 2: EndTxn
    # v5, partitions added by Produce v12 or TxnOffsetCommit v5), else 0, as Kafka's
    # TransactionVersion.transactionVersionForEndTxn and ...ForAddPartitionsToTxn map them.
    # Persisted as the log value's ClientTransactionVersion (value version 1).
    client_transaction_version: int = 0
    # Epoch exhaustion under transaction version 2 (TransactionMetadata): the id the Prepare
    # state reserves for after the markers, and the one the Complete state moved away from.
    next_producer_id: int = -1
    previous_producer_id: int = -1
    # The epoch an InitProducerId that named its producer bumped from (Kafka's lastProducerEpoch,
    # in memory only): the same request again, its answer lost, is answered, not fenced.
    last_producer_epoch: int = NO_PRODUCER_EPOCH

    @property
    def tv2(self) -> bool:
        return self.client_transaction_version >= 2

    def record(self) -> TxnRecord:
        return TxnRecord(
            self.producer_id, self.producer_epoch, self.timeout_ms, self.state, frozenset(self.partitions), self.update_ms, self.start_ms,
            client_transaction_version=self.client_transaction_version, previous_producer_id=self.previous_producer_id,
            next_producer_id=self.next_producer_id,
        )


class InitResult:
    """InitProducerId's answer. A plain class: a dataclass costs every broker's start most of
    a millisecond to create, and nothing compares one."""

    __slots__ = ("error", "producer_id", "producer_epoch")

    def __init__(self, error: ErrorCode, producer_id: int = -1, producer_epoch: int = NO_PRODUCER_EPOCH) -> None:
        self.error = error
        self.producer_id = producer_id
        self.producer_epoch = producer_epoch


class TransactionCoordinator:
    def __init__(
        self,
        log_: CoordinatorLog,
        storage: Storage,
        group_offsets: GroupOffsets,
        producer_ids: ProducerIds,
        config: TxnConfig,
        clock: Clock,
        notify_data: Callable[[str, int], None] = lambda topic, partition: None,
        wall_clock_ms: Callable[[], int] = now_epoch_ms,
        transaction_version: Callable[[], int] = lambda: 0,
    ) -> None:
        self.log = log_
        self.storage = storage
        self.group_offsets = group_offsets
        self.producer_ids = producer_ids
        self.config = config
        self.timers = Timers(clock)
        self.notify_data = notify_data
        self.wall_clock_ms = wall_clock_ms
        # The finalized transaction.version: from 1 the state log is written in value version 1.
        self.transaction_version = transaction_version
        self.transactions: dict[str, TransactionMetadata] = {}
        # Markers into partitions whose appends are coroutines (PostgreSQL), written as tasks.
        self.database_markers = MarkerWrites(notify_data)
        # Among brokers over one database: where a `__consumer_offsets` partition's marker goes
        # when another broker coordinates its groups (set by the broker once it joins them).
        self.offsets_marker_channel: OffsetsMarkerChannel | None = None
        # Transactions in PrepareCommit / PrepareAbort whose markers into database partitions are
        # under way: each task writes the Complete state once they are in, by transactional id.
        self._completing: dict[str, tuple[TransactionMetadata, asyncio.Task[None]]] = {}

    # --- lifecycle ---------------------------------------------------------------

    def load(self) -> None:
        """Replay `__transaction_state`, then finish what a stop interrupted: a Prepare
        state gets its markers (again) and completes (TransactionStateManager.loadTransactionMetadata).
        Over a database shared by brokers nothing is finished here: the broker leads no partition
        yet, the transactions it read may be in the hands of live brokers (a marker written for
        a stale Prepare state could end another transaction of the same producer), and each
        partition it comes to lead is read again and finished then (`reload_partition`)."""
        self.log.load(self._replay)
        for txn in list(self.transactions.values()) if self.log.journal is None else []:
            try:
                self._finish_interrupted(txn)
            except KafkaError as exc:
                log.warning("could not finish transaction %s on load: %s", txn.transactional_id, exc)
        self.timers.every(self.config.abort_timed_out_interval_ms, self.abort_timed_out)
        self.timers.every(self.config.remove_expired_interval_ms, self.remove_expired)
        self.timers.every(self.config.producer_id_expiration_check_interval_ms, self.expire_producers)

    def reload_partition(self, index: int) -> None:
        """This broker took `__transaction_state` partition `index` over from another broker over
        the same database, its records read again: the partition's transactions are dropped and
        rebuilt from them, and what they left between states goes on, as at load."""
        for transactional_id in [txn_id for txn_id in self.transactions if self.log.partition_for(txn_id) == index]:
            del self.transactions[transactional_id]
        self.log.load(self._replay, [index])
        for txn in [txn for txn in self.transactions.values() if self.log.partition_for(txn.transactional_id) == index]:
            try:
                self._finish_interrupted(txn)
            except KafkaError as exc:
                log.warning("could not finish transaction %s on load: %s", txn.transactional_id, exc)

    def _replay(self, key: bytes, value: bytes | None) -> None:
        """TransactionStateManager.loadTransactionMetadata: the latest record per id wins."""
        transactional_id = parse_txn_key(key)
        if value is None:
            self.transactions.pop(transactional_id, None)
            return
        stored = parse_txn_value(value)
        self.transactions[transactional_id] = TransactionMetadata(
            transactional_id, stored.producer_id, stored.producer_epoch, stored.timeout_ms, stored.state, set(stored.partitions), stored.update_ms,
            stored.start_ms, stored.client_transaction_version, stored.next_producer_id, stored.previous_producer_id,
        )

    def close(self) -> None:
        self.timers.close()

    # --- persistence -------------------------------------------------------------

    def _write(self, txn: TransactionMetadata, target: TxnState, **changes: Any) -> None:
        """Check the transition, store the new metadata, then apply it: a failed write
        leaves memory as it was (TransactionMetadata.prepareTransitionTo / completeTransitionTo).
        Raises KafkaError from the log."""
        check_transition(txn.state, target)
        updated = replace(txn, state=target, update_ms=self.wall_clock_ms(), **changes)
        # Kafka's every transition (TransactionMetadata.prepareTransitionTo) records as
        # PreviousProducerId the producer id held before it, rotation or not.
        record = replace(updated.record(), previous_producer_id=txn.producer_id)
        value = txn_value(record, version=1 if self.transaction_version() >= 1 else 0)
        self.log.append(txn.transactional_id, [(txn_key(txn.transactional_id), value)], updated.update_ms)
        for name in _FIELDS:
            setattr(txn, name, getattr(updated, name))

    # --- InitProducerId ----------------------------------------------------------

    def init_producer_id(self, transactional_id: str | None, timeout_ms: int, producer_id: int = -1, producer_epoch: int = NO_PRODUCER_EPOCH) -> InitResult:
        """TransactionCoordinator.handleInitProducerId. Without a transactional id every
        call gets a fresh producer id at epoch 0, as Kafka does: an idempotent producer
        bumps its own epoch after an error (KIP-360) and the partitions accept it."""
        if transactional_id is None:
            return InitResult(ErrorCode.NONE, self.producer_ids.generate(), 0)
        if not transactional_id:
            return InitResult(ErrorCode.INVALID_REQUEST)
        if not 0 < timeout_ms <= self.config.max_timeout_ms:
            return InitResult(ErrorCode.INVALID_TRANSACTION_TIMEOUT)
        txn = self.transactions.get(transactional_id)
        try:
            if txn is None:
                txn = TransactionMetadata(transactional_id, self.producer_ids.generate(), NO_PRODUCER_EPOCH, timeout_ms, TxnState.EMPTY)
                self._write(txn, TxnState.EMPTY, producer_epoch=0)
                self.transactions[transactional_id] = txn
                return InitResult(ErrorCode.NONE, txn.producer_id, txn.producer_epoch)
            named = producer_id >= 0
            if named and not (producer_id == txn.producer_id or (producer_id == txn.previous_producer_id and producer_epoch >= _MAX_EPOCH - 1)):
                # KIP-360 (TransactionCoordinator.isValidProducerId): another producer's id, or
                # not the one this id's producer id was rotated from, is fenced.
                return InitResult(ErrorCode.PRODUCER_FENCED)
            if txn.state in (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT, TxnState.PREPARE_EPOCH_FENCE):
                return InitResult(ErrorCode.CONCURRENT_TRANSACTIONS)  # its markers are under way
            if txn.state is TxnState.ONGOING:
                # A new producer with this id: abort what the old one left open, fencing it, and
                # answer CONCURRENT_TRANSACTIONS whether or not the abort is complete, as Kafka's
                # handleInitProducerId does: the producer asks again, and that call bumps the epoch.
                self._fence_and_abort(txn)
                return InitResult(ErrorCode.CONCURRENT_TRANSACTIONS)
            elif named and producer_epoch != txn.producer_epoch:
                if producer_epoch == txn.last_producer_epoch:
                    # TransactionMetadata.prepareIncrementProducerEpoch: the bump this producer
                    # asked for is done, its answer lost; the same answer again.
                    return InitResult(ErrorCode.NONE, txn.producer_id, txn.producer_epoch)
                return InitResult(ErrorCode.PRODUCER_FENCED)
            last_epoch = txn.producer_epoch if named else NO_PRODUCER_EPOCH
            pid, epoch, previous = txn.producer_id, txn.producer_epoch + 1, txn.previous_producer_id
            if epoch >= _MAX_EPOCH:
                pid, epoch, previous = self.producer_ids.generate(), 0, txn.producer_id
            self._write(txn, TxnState.EMPTY, producer_id=pid, producer_epoch=epoch, timeout_ms=timeout_ms, partitions=set(), start_ms=-1,
                        previous_producer_id=previous, last_producer_epoch=last_epoch)
        except KafkaError as exc:
            return InitResult(_store_error(exc.code))
        return InitResult(ErrorCode.NONE, txn.producer_id, txn.producer_epoch)

    # --- the transaction ---------------------------------------------------------

    def _validate(self, transactional_id: str, producer_id: int, producer_epoch: int) -> tuple[ErrorCode, TransactionMetadata | None]:
        """The checks every in-transaction request starts with (TransactionCoordinator). Over a
        database shared by brokers, an id whose partition another broker leads is NOT_COORDINATOR
        and one whose partition this broker is still reading again COORDINATOR_LOAD_IN_PROGRESS
        (TransactionStateManager.getTransactionState): this broker's copy of it is not the
        record, and what it wrote would be dropped. A partition's leader asking for its produce
        (KIP-890) comes here without the handlers' coordinator check."""
        if not transactional_id:
            return ErrorCode.INVALID_REQUEST, None
        partition = self.log.partition_for(transactional_id)
        if not self.log.owns(partition):
            return ErrorCode.NOT_COORDINATOR, None
        if self.log.loading(partition):
            return ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, None
        txn = self.transactions.get(transactional_id)
        if txn is None or txn.producer_id != producer_id:
            return ErrorCode.INVALID_PRODUCER_ID_MAPPING, None
        if txn.producer_epoch != producer_epoch:
            return ErrorCode.PRODUCER_FENCED, None
        if txn.state in (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT, TxnState.PREPARE_EPOCH_FENCE):
            return ErrorCode.CONCURRENT_TRANSACTIONS, None
        return ErrorCode.NONE, txn

    def add_partitions(
        self, transactional_id: str, producer_id: int, producer_epoch: int, partitions: set[tuple[str, int]], tv2: bool = False
    ) -> ErrorCode:
        """TransactionCoordinator.handleAddPartitionsToTransaction: the transaction is
        Ongoing from its first partition; its timeout counts from then. `tv2` says the
        partitions come from a transaction version 2 client, through its Produce v12 or
        TxnOffsetCommit v5 (KIP-890 part 2: no AddPartitionsToTxn of its own); below a
        finalized transaction.version 2 such an add is UNSUPPORTED_VERSION, as Kafka 4.4
        answers it, unless the partitions are already in the transaction."""
        error, txn = self._validate(transactional_id, producer_id, producer_epoch)
        if txn is None:
            return error
        if txn.state is TxnState.ONGOING and partitions <= txn.partitions:
            return ErrorCode.NONE
        if tv2 and self.transaction_version() < 2:
            return ErrorCode.UNSUPPORTED_VERSION
        start = txn.start_ms if txn.state is TxnState.ONGOING else self.wall_clock_ms()
        try:
            self._write(txn, TxnState.ONGOING, partitions=(txn.partitions if txn.state is TxnState.ONGOING else set()) | partitions, start_ms=start,
                        client_transaction_version=2 if tv2 else 0)
        except KafkaError as exc:
            return _store_error(exc.code)
        return ErrorCode.NONE

    def verify_partitions(self, transactional_id: str, producer_id: int, producer_epoch: int, partitions: set[tuple[str, int]]) -> dict[tuple[str, int], ErrorCode]:
        """AddPartitionsToTxn v4+ verify_only: is each partition already in the open
        transaction (KIP-890 part 1)? TRANSACTION_ABORTABLE for one that is not, as
        TransactionCoordinator.handleVerifyPartitionsInTransaction answers since Kafka 3.8;
        the produce path turns it into INVALID_TXN_STATE for clients that predate it."""
        error, txn = self._validate(transactional_id, producer_id, producer_epoch)
        if txn is None:
            return {tp: error for tp in partitions}
        inside = txn.partitions if txn.state is TxnState.ONGOING else set()
        return {tp: ErrorCode.NONE if tp in inside else ErrorCode.TRANSACTION_ABORTABLE for tp in partitions}

    def add_offsets(self, transactional_id: str, producer_id: int, producer_epoch: int, group_id: str) -> ErrorCode:
        """AddOffsetsToTxn: the group's `__consumer_offsets` partition joins the transaction. An
        empty id is INVALID_REQUEST before the group's partition is looked up, on any broker
        (handleAddPartitionsToTransaction's first check)."""
        if not transactional_id:
            return ErrorCode.INVALID_REQUEST
        return self.add_partitions(transactional_id, producer_id, producer_epoch, {(OFFSETS_TOPIC, self.group_offsets.offsets_partition(group_id))})

    def check_offsets_commit(self, transactional_id: str, producer_id: int, producer_epoch: int, group_id: str, version: int) -> ErrorCode:
        """TxnOffsetCommit is accepted only from the current producer of a transaction
        that holds the group's `__consumer_offsets` partition: through AddOffsetsToTxn
        before v5, added here from v5 (KIP-890 part 2, AddPartitionsToTxnManager's
        txnOffsetCommitRequestVersionToTransactionSupportedOperation). A partition not in
        the transaction is TRANSACTION_ABORTABLE from v4, INVALID_TXN_STATE before."""
        offsets_partition = {(OFFSETS_TOPIC, self.group_offsets.offsets_partition(group_id))}
        if version >= 5:
            error = self.add_partitions(transactional_id, producer_id, producer_epoch, offsets_partition, tv2=True)
        else:
            error = self.verify_partitions(transactional_id, producer_id, producer_epoch, offsets_partition).popitem()[1]
        return verification_error(error, abortable_known=version >= 4)

    def end_transaction(self, transactional_id: str, producer_id: int, producer_epoch: int, commit: bool, tv2: bool = False) -> InitResult:
        """TransactionCoordinator.handleEndTransaction. With transaction version 1 a retry
        of an end that already completed succeeds and the other end of a completed
        transaction is INVALID_TXN_STATE. `tv2` is EndTxn v5 (KIP-890 part 2): see `_end_tv2`;
        below a finalized transaction.version 2 Kafka 4.4 refuses it with UNSUPPORTED_VERSION. An
        empty id is INVALID_REQUEST first, under either version (handleEndTransaction)."""
        if not transactional_id:
            return InitResult(ErrorCode.INVALID_REQUEST)
        if tv2:
            if self.transaction_version() < 2:
                return InitResult(ErrorCode.UNSUPPORTED_VERSION)
            return self._end_tv2(transactional_id, producer_id, producer_epoch, commit)
        error, txn = self._validate(transactional_id, producer_id, producer_epoch)
        if txn is None:
            return InitResult(error)
        if txn.state is TxnState.ONGOING:
            return self._try_end(txn, commit)
        done = TxnState.COMPLETE_COMMIT if commit else TxnState.COMPLETE_ABORT
        if txn.state is done:
            return InitResult(ErrorCode.NONE, txn.producer_id, txn.producer_epoch)
        return InitResult(ErrorCode.INVALID_TXN_STATE)

    def _end_tv2(self, transactional_id: str, producer_id: int, producer_epoch: int, commit: bool) -> InitResult:
        """TransactionCoordinator.endTransaction for transaction version 2: every end bumps
        the epoch (the markers carry the new one, fencing the transaction's late writes)
        and the answer carries it. So a retry is recognised by its epoch being one below
        the stored one, and an abort is accepted with nothing open (Empty, or after a
        completed end) as the client's way to bump its epoch. An end that exhausted the epoch
        moved the transactional id to a new producer id at epoch 0: its retry names the
        previous id at the last epoch but one (`retryOnOverflow` in Kafka):

            state           Abort retry / current   Commit retry / current
            Empty           PRODUCER_FENCED / bump  PRODUCER_FENCED / INVALID_TXN_STATE
            CompleteAbort   NONE / bump             INVALID_TXN_STATE / INVALID_TXN_STATE
            CompleteCommit  INVALID_TXN_STATE / bump  NONE / INVALID_TXN_STATE
        """
        txn = self.transactions.get(transactional_id)
        if txn is None:
            return InitResult(ErrorCode.INVALID_PRODUCER_ID_MAPPING)
        retry_on_overflow = txn.previous_producer_id == producer_id and producer_epoch == _MAX_EPOCH - 1 and txn.producer_epoch == 0
        if txn.producer_id != producer_id and not retry_on_overflow:
            return InitResult(ErrorCode.INVALID_PRODUCER_ID_MAPPING)
        retry = txn.producer_epoch == producer_epoch + 1 or retry_on_overflow
        current = txn.producer_epoch == producer_epoch and not retry_on_overflow
        state = txn.state
        completed = state in (TxnState.COMPLETE_COMMIT, TxnState.COMPLETE_ABORT)
        if state in (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT):
            if not retry:
                return InitResult(ErrorCode.PRODUCER_FENCED)
            same_end = state is (TxnState.PREPARE_COMMIT if commit else TxnState.PREPARE_ABORT)
            return InitResult(ErrorCode.CONCURRENT_TRANSACTIONS if same_end else ErrorCode.INVALID_TXN_STATE)
        if not (current or (completed and retry)):
            return InitResult(ErrorCode.PRODUCER_FENCED)
        if state is TxnState.ONGOING:
            return self._try_end(txn, commit, bump_epoch=True, client_transaction_version=2)
        if retry:
            if state is (TxnState.COMPLETE_COMMIT if commit else TxnState.COMPLETE_ABORT):
                return InitResult(ErrorCode.NONE, txn.producer_id, txn.producer_epoch)
            return InitResult(ErrorCode.INVALID_TXN_STATE)
        if commit or state not in (TxnState.EMPTY, TxnState.COMPLETE_COMMIT, TxnState.COMPLETE_ABORT):
            return InitResult(ErrorCode.INVALID_TXN_STATE)
        # An abort with nothing open: PrepareAbort over no partitions, the epoch bumped.
        return self._try_end(txn, commit=False, bump_epoch=True, start_ms=self.wall_clock_ms(), client_transaction_version=2)

    def _try_end(self, txn: TransactionMetadata, commit: bool, bump_epoch: bool = False, **changes: Any) -> InitResult:
        try:
            self._end(txn, commit, bump_epoch, **changes)
        except KafkaError as exc:
            return InitResult(_store_error(exc.code))
        return InitResult(ErrorCode.NONE, txn.producer_id, txn.producer_epoch)

    def _end(self, txn: TransactionMetadata, commit: bool, bump_epoch: bool = False, fencing: bool = False, **changes: Any) -> None:
        """Ongoing (or fenced) -> Prepare -> markers -> Complete. An epoch bumped to the
        last one (Short.MAX_VALUE) still carries the markers, then the producer moves on
        to a new producer id at epoch 0, reserved in the Prepare state
        (TransactionMetadata.prepareAbortOrCommit and prepareComplete), when the end runs
        under transaction version 2: the client's own (`bump_epoch`), or the abort of a fenced
        transaction (`fencing`) while the finalized transaction.version is 2, which Kafka 4.4's
        TransactionCoordinator hands to endTransaction at that level. Otherwise (endTransactionWithTV1,
        or endTransaction below version 2) no id is reserved and prepareComplete keeps the
        exhausted epoch: the next InitProducerId moves to a new id (prepareInitProducerIdTransit's
        isProducerEpochExhausted)."""
        epoch = txn.producer_epoch + 1 if bump_epoch else txn.producer_epoch
        if bump_epoch:
            # prepareAbortOrCommit under version 2: an InitProducerId naming the epoch this end
            # bumped from is a retry of a bump already done, answered, not fenced.
            changes.setdefault("last_producer_epoch", txn.producer_epoch)
        rotates = epoch >= _MAX_EPOCH and (bump_epoch or (fencing and self.transaction_version() >= 2))
        next_producer_id = self.producer_ids.generate() if rotates else -1
        self._write(txn, TxnState.PREPARE_COMMIT if commit else TxnState.PREPARE_ABORT, producer_epoch=epoch, next_producer_id=next_producer_id, **changes)
        self._complete(txn, commit)

    def _finish_interrupted(self, txn: TransactionMetadata) -> None:
        """A transaction left between states (a stop, or a failed write) goes on to its end:
        Prepare states get their markers and complete, a fenced one is aborted. One whose markers
        are being written already is left to complete."""
        completing = self._completing.get(txn.transactional_id)
        if completing is not None and completing[0] is txn:
            return
        if txn.state in (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT):
            self._complete(txn, commit=txn.state is TxnState.PREPARE_COMMIT)
        elif txn.state is TxnState.PREPARE_EPOCH_FENCE:
            self._end(txn, commit=False, fencing=True)

    def _fence_and_abort(self, txn: TransactionMetadata) -> None:
        """Bump the epoch first (PrepareEpochFence), so the markers carry the new one and
        every partition refuses the old producer's late writes, then abort. The fence is the
        only bump, for a transaction version 2 transaction too (TransactionCoordinator's
        endTransaction takes an epoch fence's abort as its bump): asked of Kafka 4.4, a
        timed-out v2 transaction's ABORT marker carries the epoch one above its producer's,
        whose own EndTxn v5 abort then counts as a retry of it."""
        self._write(txn, TxnState.PREPARE_EPOCH_FENCE, producer_epoch=txn.producer_epoch + 1, last_producer_epoch=NO_PRODUCER_EPOCH)
        self._end(txn, commit=False, fencing=True)

    def _complete(self, txn: TransactionMetadata, commit: bool) -> None:
        """The markers, then the Complete state. Markers into database partitions are written by
        tasks: the Complete state waits for them (`_complete_when_written`), as Kafka's coordinator
        writes it only once every partition has its marker, so a coordinator that stops before
        then leaves a Prepare state, whose markers the next coordinator of the id writes again.
        A marker that failed in a way a retry may get past keeps the Prepare state too
        (`_markers_missing`), its partition left for the timeout sweep to write again: completed
        without it, the partition's transaction would stay open, and the producer's next one
        there would be ended by that one's marker, aborted records committed with it."""
        written = self.write_markers(txn.producer_id, txn.producer_epoch, commit, txn.partitions, self.coordinator_epoch(txn.transactional_id))
        under_way = self.database_markers.under_way(txn.partitions)
        if under_way:
            task = asyncio.get_running_loop().create_task(self._complete_when_written(txn, commit, under_way, written))
            self._completing[txn.transactional_id] = (txn, task)
            return
        if not self._markers_missing(txn, commit, written):
            self._write_complete(txn, commit)

    async def _complete_when_written(
        self, txn: TransactionMetadata, commit: bool, partitions: set[tuple[str, int]], written: dict[tuple[str, int], ErrorCode],
    ) -> None:
        """The Complete state once the markers into database `partitions` are in: not written when
        the id's state was reloaded meanwhile (another broker coordinated it, or this one took it
        over again and goes on from what it read); a failed write is retried by the timeout sweep."""
        try:
            written = {**written, **await self.database_markers.settled(partitions)}
            if self.transactions.get(txn.transactional_id) is not txn or not self.log.owns(self.log.partition_for(txn.transactional_id)):
                return
            if not self._markers_missing(txn, commit, written):
                self._write_complete(txn, commit)
        except KafkaError as exc:
            log.warning("could not complete transaction %s: %s", txn.transactional_id, exc)
        finally:
            if self._completing.get(txn.transactional_id, (None,))[0] is txn:
                del self._completing[txn.transactional_id]

    async def completion(self, transactional_id: str) -> None:
        """Wait until the id's transaction has its Complete state, if its markers are under way."""
        completing = self._completing.get(transactional_id)
        if completing is not None:
            await asyncio.wait([completing[1]])

    def _markers_missing(self, txn: TransactionMetadata, commit: bool, written: dict[tuple[str, int], ErrorCode]) -> bool:
        """Whether a marker failed in a way a retry may get past (Kafka's
        TransactionMarkerRequestCompletionHandler retries those): the transaction's partitions
        become those alone, in memory, as Kafka removes a partition once its marker is in. A
        marker refused for good (its topic deleted, a fenced epoch) is dropped, as Kafka drops it."""
        missing = {partition for partition, error in written.items() if error in _RETRIED_MARKER_ERRORS}
        for (topic, partition), error in written.items():
            kind = "COMMIT" if commit else "ABORT"
            if (topic, partition) in missing:
                log.warning("%s marker for %s-%d of %s not written, retried later: %s", kind, topic, partition, txn.transactional_id, error.name)
            elif error is not ErrorCode.NONE:
                log.info("no %s marker for %s-%d of %s: %s", kind, topic, partition, txn.transactional_id, error.name)
        if missing:
            txn.partitions = missing
        return bool(missing)

    def _write_complete(self, txn: TransactionMetadata, commit: bool) -> None:
        rotate: dict[str, int] = {}
        if txn.next_producer_id >= 0:  # reserved by the end (`_end`): TransactionMetadata.prepareComplete
            rotate = {"producer_id": txn.next_producer_id, "producer_epoch": 0, "previous_producer_id": txn.producer_id, "next_producer_id": -1}
        # The partitions leave with the markers (TransactionMetadata.prepareComplete).
        self._write(txn, TxnState.COMPLETE_COMMIT if commit else TxnState.COMPLETE_ABORT, partitions=set(), **rotate)

    def coordinator_epoch(self, transactional_id: str) -> int:
        """The epoch this coordinator writes into a transaction's markers: the leader epoch of
        the id's `__transaction_state` partition, as Kafka's coordinator takes it when it loads
        the partition (TransactionStateManager.loadTransactionsForTxnTopicPartition). Each
        partition keeps the last marker's in its producer state, which DescribeProducers shows."""
        return self.storage.partition(self.log.topic, self.log.partition_for(transactional_id)).leader_epoch

    def write_markers(
        self, producer_id: int, producer_epoch: int, commit: bool, partitions: Iterable[tuple[str, int]], coordinator_epoch: int
    ) -> dict[tuple[str, int], ErrorCode]:
        """A COMMIT or ABORT marker into each partition, what WriteTxnMarkers asks of a
        partition leader (KafkaApis.handleWriteTxnMarkersRequest): this coordinator's own
        ends and the admin client's abortTransaction both come here. A marker in a
        `__consumer_offsets` partition settles the producer's pending transactional
        offsets there (GroupCoordinator.onTransactionCompleted). Into a database partition
        the marker is written by a task (`database_markers`): answered NONE here, its outcome
        known once `database_markers.settled()` returns. A `__consumer_offsets` partition whose
        groups another broker coordinates, or this one is still loading, gets its marker through
        `offsets_marker_channel`, which waits for its coordinator to be ready."""
        marker = control_batch(producer_id, producer_epoch, commit, self.wall_clock_ms(), coordinator_epoch)
        errors: dict[tuple[str, int], ErrorCode] = {}
        offsets_partitions = set()
        for topic, partition in sorted(partitions):
            try:
                target = self.storage.partition(topic, partition)
                channel = self.offsets_marker_channel
                if topic == OFFSETS_TOPIC and channel is not None and not channel.ready_here(partition):
                    append = functools.partial(target.append, marker, from_client=False)
                    write_here = functools.partial(self._write_offsets_marker, append, producer_id, partition, commit)
                    self.database_markers.start(topic, partition, functools.partial(
                        channel.deliver, partition, producer_id, producer_epoch, commit, coordinator_epoch, write_here))
                    errors[(topic, partition)] = ErrorCode.NONE
                    continue
                if self.storage.is_database_topic(topic):
                    self.database_markers.start(topic, partition, functools.partial(target.append, marker, from_client=False))
                    errors[(topic, partition)] = ErrorCode.NONE
                    if topic == OFFSETS_TOPIC:
                        offsets_partitions.add(partition)
                    continue
                target.append(marker, from_client=False)
            except KafkaError as exc:
                errors[(topic, partition)] = exc.code
                continue
            errors[(topic, partition)] = ErrorCode.NONE
            if topic == OFFSETS_TOPIC:
                offsets_partitions.add(partition)
            self.notify_data(topic, partition)
        if offsets_partitions:
            self.group_offsets.complete_transaction(producer_id, offsets_partitions, commit)
        return errors

    async def _write_offsets_marker(self, append: Callable[[], Any], producer_id: int, partition: int, commit: bool) -> None:
        """A marker the offsets channel found this broker now leads the partition for: appended
        (`append` a database partition's, a coroutine), then the pending offsets it ends
        completed, as a marker written above completes them."""
        await append()
        self.group_offsets.complete_transaction(producer_id, {partition}, commit)

    # --- housekeeping ------------------------------------------------------------

    def abort_timed_out(self) -> int:
        """TransactionCoordinator.abortTimedOutTransactions: an Ongoing transaction older
        than its timeout has its epoch bumped (fencing its producer) and is aborted."""
        now = self.wall_clock_ms()
        aborted = 0
        for txn in list(self.transactions.values()):
            partition = self.log.partition_for(txn.transactional_id)
            if not self.log.owns(partition) or self.log.loading(partition):
                continue  # another broker coordinates it, and ends it; or this copy is being replaced
            try:
                self._finish_interrupted(txn)  # an end whose writes failed earlier is retried here
            except KafkaError as exc:
                log.warning("could not finish transaction %s: %s", txn.transactional_id, exc)
                continue
            if txn.state is TxnState.ONGOING and txn.start_ms + txn.timeout_ms < now:
                try:
                    self._fence_and_abort(txn)
                except KafkaError as exc:
                    log.warning("could not abort timed-out transaction %s: %s", txn.transactional_id, exc)
                    continue
                log.info("aborted transaction %s after its %d ms timeout", txn.transactional_id, txn.timeout_ms)
                aborted += 1
        return aborted

    def remove_expired(self) -> int:
        """transactional.id.expiration.ms: ids idle that long with nothing open are
        removed, a tombstone in the log (TransactionStateManager.removeExpiredTransactionalIds)."""
        now = self.wall_clock_ms()
        removed = 0
        for transactional_id, txn in list(self.transactions.items()):
            if txn.state in (TxnState.EMPTY, TxnState.COMPLETE_COMMIT, TxnState.COMPLETE_ABORT) and txn.update_ms + self.config.id_expiration_ms < now:
                check_transition(txn.state, TxnState.DEAD)
                try:
                    self.log.append(transactional_id, [(txn_key(transactional_id), None)], now)
                except KafkaError as exc:
                    log.warning("could not expire transactional id %s: %s", transactional_id, exc)
                    continue
                del self.transactions[transactional_id]
                removed += 1
        return removed

    def expire_producers(self) -> None:
        """producer.id.expiration.ms in every partition (Kafka's removeExpiredProducers)."""
        self.storage.expire_producers(self.wall_clock_ms(), self.config.producer_id_expiration_ms)

    # --- describing --------------------------------------------------------------

    def describe(self, transactional_id: str) -> TransactionMetadata | None:
        return self.transactions.get(transactional_id)

    def list_transactions(self, states: set[str], producer_ids: set[int], min_duration_ms: int) -> list[TransactionMetadata]:
        """ListTransactions filters: states by name, producer ids, and (v1) started more than
        `min_duration_ms` ago, as Kafka 4.4's TransactionStateManager.listTransactionStates
        measures it: `now - txnStartTimestamp > durationFilter`, whatever the state, so an id
        with no transaction started (-1: Empty after InitProducerId) always passes."""
        now = self.wall_clock_ms()
        return [
            txn
            for txn in self.transactions.values()
            if (not states or txn.state.value in states)
            and (not producer_ids or txn.producer_id in producer_ids)
            and (min_duration_ms < 0 or now - txn.start_ms > min_duration_ms)
        ]


_FIELDS = tuple(f.name for f in fields(TransactionMetadata) if f.name != "transactional_id")


def verification_error(error: ErrorCode, abortable_known: bool) -> ErrorCode:
    """What a partition write reports for the coordinator's answer (AddPartitionsToTxnManager):
    producers expect INVALID_PRODUCER_EPOCH for a fenced epoch, and clients older than
    TRANSACTION_ABORTABLE get INVALID_TXN_STATE in its place."""
    if error is ErrorCode.PRODUCER_FENCED:
        return ErrorCode.INVALID_PRODUCER_EPOCH
    if error is ErrorCode.TRANSACTION_ABORTABLE and not abortable_known:
        return ErrorCode.INVALID_TXN_STATE
    return error


def _store_error(error: ErrorCode) -> ErrorCode:
    """TransactionStateManager.appendTransactionToLog: what a failed write tells the client."""
    if error in (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.NOT_ENOUGH_REPLICAS, ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND, ErrorCode.REQUEST_TIMED_OUT):
        return ErrorCode.COORDINATOR_NOT_AVAILABLE
    if error in (ErrorCode.NOT_LEADER_FOR_PARTITION, ErrorCode.KAFKA_STORAGE_ERROR):
        return ErrorCode.NOT_COORDINATOR
    return ErrorCode.UNKNOWN_SERVER_ERROR
