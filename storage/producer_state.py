"""Per-partition producer state: idempotent de-duplication and transaction bookkeeping.

Modelled on Kafka's `ProducerStateManager` / `ProducerAppendInfo`:

* each producer id keeps its epoch and the metadata of its last five batches, so a
  retried batch is recognised and answered with the offsets it got the first time;
* a batch must continue its producer's sequence (or start a new epoch at 0), else
  OUT_OF_ORDER_SEQUENCE_NUMBER; a producer the partition holds no state for (expired, or
  its batches removed by retention) may go on at any sequence, as Kafka's
  ProducerAppendInfo.checkSequence accepts it;
* a transactional batch opens a transaction at its first offset; a control batch
  (COMMIT/ABORT marker) closes it. Aborted transactions are kept as Kafka's
  `.txnindex` entries so read_committed fetches can filter them, and the last stable
  offset (LSO) is the first offset of the oldest open transaction, or the high watermark;
* each producer keeps the coordinator epoch of the last marker it took (-1 before any),
  as Kafka's ProducerStateEntry.coordinatorEpoch, which DescribeProducers reports;
* a transactional producer whose batch the coordinator is asked about (KIP-890) has a
  `Verification` until one of its transactional batches is appended, and meanwhile its
  sequences are held to it (Kafka's VerificationStateEntry, in memory only, as there).

State is rebuilt on start from a `.snapshot` file in Kafka's binary form
(storage/producer_snapshot.py: each producer's last batch only, and no aborted transactions,
which the `.txnindex` files hold) plus a replay of the batch headers after it, as Kafka does.
`snapshot()`/`load()` are the whole state as JSON: the PostgreSQL engine's form of it (built in
SQL, storage/postgresql/producers.py) and a scratch copy's.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field

from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.records import BatchHeader, Record, build_batch, iter_records

# Kafka keeps the metadata of this many batches per producer (ProducerStateEntry.NUM_BATCHES_TO_RETAIN).
BATCHES_TO_RETAIN = 5
NO_PRODUCER_EPOCH = -1
NO_SEQUENCE = -1
NO_COORDINATOR_EPOCH = -1  # RecordBatch.NO_PARTITION_LEADER_EPOCH, ProducerStateEntry's before any marker
_INT32_MAX = 2**31 - 1

# Control record keys (Kafka's ControlRecordType): version int16, type int16.
CONTROL_ABORT = 0
CONTROL_COMMIT = 1


class EndTxnMarker:
    """A control batch's one record (Kafka's EndTransactionMarker): COMMIT or ABORT, and the
    epoch of the transaction coordinator that wrote it. A plain class: a dataclass costs
    every broker's start most of a millisecond to create."""

    __slots__ = ("control_type", "coordinator_epoch")

    def __init__(self, control_type: int, coordinator_epoch: int) -> None:
        self.control_type = control_type
        self.coordinator_epoch = coordinator_epoch


@dataclass(slots=True, frozen=True)
class BatchMetadata:
    first_seq: int
    last_seq: int
    first_offset: int
    last_offset: int
    timestamp: int


@dataclass(slots=True)
class ProducerEntry:
    epoch: int = NO_PRODUCER_EPOCH
    batches: list[BatchMetadata] = field(default_factory=list)
    current_txn_first_offset: int | None = None
    last_timestamp: int = -1
    coordinator_epoch: int = NO_COORDINATOR_EPOCH

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else NO_SEQUENCE

    def find_duplicate(self, header: BatchHeader) -> BatchMetadata | None:
        if header.producer_epoch != self.epoch:
            return None
        last_seq = _last_sequence(header)
        for batch in self.batches:
            if batch.first_seq == header.base_sequence and batch.last_seq == last_seq:
                return batch
        return None


@dataclass(slots=True)
class Verification:
    """Kafka's VerificationStateEntry: the coordinator was asked whether this producer's
    transaction includes the partition. `lowest_sequence` is the lowest sequence asked about at
    `epoch` (a higher epoch starts again, VerificationStateEntry.maybeUpdateLowestSequenceAndEpoch);
    `supports_epoch_bump` says a transaction version 2 request asked (Produce v12+), whose
    producer starts every partition at sequence 0. Expires producer.id.expiration.ms after
    `timestamp`, as ProducerStateManager.removeExpiredProducers drops it."""

    timestamp: int
    lowest_sequence: int
    epoch: int
    supports_epoch_bump: bool

    def update(self, sequence: int, epoch: int) -> None:
        if epoch == self.epoch and sequence < self.lowest_sequence:
            self.lowest_sequence = sequence
        if epoch > self.epoch:
            self.epoch, self.lowest_sequence = epoch, sequence


@dataclass(slots=True, frozen=True)
class AbortedTransaction:
    """One `.txnindex` entry: the aborted range of one producer and the LSO when it ended."""

    producer_id: int
    first_offset: int
    last_offset: int
    last_stable_offset: int


def _last_sequence(header: BatchHeader) -> int:
    # Sequences wrap at Int32.MAX_VALUE (DefaultRecordBatch.incrementSequence).
    last = header.base_sequence + header.last_offset_delta
    return last - _INT32_MAX - 1 if last > _INT32_MAX else last


def _in_sequence(last_seq: int, next_seq: int) -> bool:
    return next_seq == last_seq + 1 or (next_seq == 0 and last_seq == _INT32_MAX)


class ProducerStateManager:
    """The producer state of one partition. Not thread-safe; the log owns it."""

    def __init__(self) -> None:
        self.producers: dict[int, ProducerEntry] = {}
        # first offset -> producer id of every open transaction, oldest first.
        self.ongoing: dict[int, int] = {}
        self.aborted: list[AbortedTransaction] = []
        # producer id -> its pending verification (`start_verification`); not in snapshots.
        self.verifications: dict[int, Verification] = {}

    def start_verification(self, producer_id: int, sequence: int, epoch: int, supports_epoch_bump: bool, now_ms: int) -> None:
        """The coordinator is about to be asked about this producer's transactional batch at
        `sequence` (UnifiedLog.maybeStartTransactionVerification, for a producer with no
        transaction open here at `epoch`): its first transactional batch appended here is then
        checked against what was asked (`check`)."""
        verification = self.verifications.get(producer_id)
        if verification is None:
            self.verifications[producer_id] = Verification(now_ms, sequence, epoch, supports_epoch_bump)
        else:
            verification.update(sequence, epoch)

    def check(self, header: BatchHeader, from_client: bool = True) -> BatchMetadata | None:
        """Validate a batch before it is appended.

        Returns the original batch's metadata when this one is a retry of it (do not
        append; answer with those offsets); None when it may be appended; raises
        KafkaError for a stale epoch or a sequence that does not follow. A coordinator's own
        write (`from_client=False`, Kafka's AppendOrigin.COORDINATOR) is checked for its epoch
        only: Kafka looks for duplicates and checks sequences of a client's batches alone, and
        its CoordinatorRuntime numbers every batch from sequence 0.
        """
        if header.producer_id < 0:
            return None
        entry = self.producers.get(header.producer_id)
        if entry is None:
            entry = ProducerEntry()
        if header.producer_epoch < entry.epoch:
            # A marker too (ProducerAppendInfo.checkProducerEpoch): WriteTxnMarkers from an
            # admin client's abortTransaction may name an epoch the producer has left.
            raise KafkaError(ErrorCode.INVALID_PRODUCER_EPOCH, f"epoch {header.producer_epoch} is older than {entry.epoch}")
        if header.is_control or not from_client:
            return None
        if header.base_sequence == NO_SEQUENCE:
            return None  # transactional markers and non-idempotent producers carry no sequence
        duplicate = entry.find_duplicate(header)
        if duplicate is not None:
            return duplicate
        verification = self.verifications.get(header.producer_id)
        if verification is not None:
            # ProducerAppendInfo.checkSequence in Kafka 4.4: under transaction version 2 a
            # producer unknown here (no batch kept) starts at 0; and no batch may get ahead of
            # the lowest sequence the coordinator was asked about.
            if verification.supports_epoch_bump and header.base_sequence != 0 and not entry.batches:
                raise KafkaError(
                    ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
                    f"producer {header.producer_id} is unknown here and must start its transaction at sequence 0, "
                    f"not {header.base_sequence}",
                )
            if header.base_sequence > verification.lowest_sequence:
                raise KafkaError(
                    ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
                    f"sequence {header.base_sequence} is ahead of {verification.lowest_sequence}, the lowest verified",
                )
        if header.producer_epoch != entry.epoch:
            if header.base_sequence != 0 and entry.epoch != NO_PRODUCER_EPOCH:
                raise KafkaError(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, "a new epoch must start at sequence 0")
        elif entry.epoch != NO_PRODUCER_EPOCH and not _in_sequence(entry.last_seq, header.base_sequence):
            # Checked only at a known epoch: at -1 any sequence goes on (ProducerAppendInfo.checkSequence).
            raise KafkaError(
                ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
                f"expected sequence {entry.last_seq + 1}, got {header.base_sequence}",
            )
        if entry.current_txn_first_offset is not None and not header.is_transactional:
            # ProducerAppendInfo.updateCurrentTxnFirstOffset: it would land inside the open
            # transaction's range, and an abort would hide it.
            raise KafkaError(
                ErrorCode.INVALID_TXN_STATE,
                f"expected a transactional write from producer {header.producer_id}, whose transaction from offset "
                f"{entry.current_txn_first_offset} is open",
            )
        return None

    def record(self, header: BatchHeader, high_watermark: int, marker: EndTxnMarker | None = None) -> AbortedTransaction | None:
        """Account for a batch that was appended at `header.base_offset` (already assigned).

        `marker` is a control batch's record (`end_txn_marker`). Returns the aborted
        transaction a marker closed, if any (for the txn index).
        """
        producer_id = header.producer_id
        if producer_id < 0:
            return None
        entry = self.producers.setdefault(producer_id, ProducerEntry())
        if header.producer_epoch > entry.epoch:
            entry.epoch = header.producer_epoch
            entry.batches.clear()
        # ProducerStateEntry.addBatch and update: the latest batch's, earlier or not (expiry and
        # DescribeProducers read it).
        entry.last_timestamp = header.max_timestamp
        if header.is_transactional:
            self._end_verification(header)
        if header.is_control:
            # Every marker sets it, one for a transaction that wrote nothing here too
            # (ProducerAppendInfo.appendEndTxnMarker).
            if marker is not None:
                entry.coordinator_epoch = marker.coordinator_epoch
            return self._end_transaction(producer_id, entry, header.base_offset, marker, high_watermark)
        if header.base_sequence != NO_SEQUENCE:
            entry.batches.append(
                BatchMetadata(header.base_sequence, _last_sequence(header), header.base_offset, header.last_offset, header.max_timestamp)
            )
            del entry.batches[:-BATCHES_TO_RETAIN]
        if header.is_transactional and entry.current_txn_first_offset is None:
            entry.current_txn_first_offset = header.base_offset
            self.ongoing[header.base_offset] = producer_id
        return None

    def _end_verification(self, header: BatchHeader) -> None:
        """A transactional batch ends its producer's verification, except a transaction version
        2 marker at the verified epoch (UnifiedLog.updateProducers): such a marker carries the
        epoch its end bumped to, that of the producer's next transaction, the one verified."""
        verification = self.verifications.get(header.producer_id)
        if verification is None:
            return
        if not (verification.supports_epoch_bump and header.is_control and header.producer_epoch == verification.epoch):
            del self.verifications[header.producer_id]

    def _end_transaction(
        self, producer_id: int, entry: ProducerEntry, marker_offset: int, marker: EndTxnMarker | None, high_watermark: int
    ) -> AbortedTransaction | None:
        first = entry.current_txn_first_offset
        if first is None:
            return None  # a marker for a transaction that wrote nothing here
        entry.current_txn_first_offset = None
        del self.ongoing[first]
        if marker is None or marker.control_type != CONTROL_ABORT:
            return None
        aborted = AbortedTransaction(producer_id, first, marker_offset, self.last_stable_offset(high_watermark))
        self.aborted.append(aborted)
        return aborted

    def has_ongoing_transaction(self, producer_id: int, producer_epoch: int) -> bool:
        """Whether this producer, at this epoch, has a transaction open here: its later
        batches need no verification by the coordinator (ProducerStateManager in Kafka)."""
        entry = self.producers.get(producer_id)
        return entry is not None and entry.epoch == producer_epoch and entry.current_txn_first_offset is not None

    def last_stable_offset(self, high_watermark: int, log_start_offset: int = 0) -> int:
        """The first offset of the oldest open transaction, or the high watermark; never below
        `log_start_offset` (Kafka's maybeIncrementFirstUnstableOffset): a transaction open since
        before a DeleteRecords or retention would otherwise point readers at offsets gone."""
        if self.ongoing:
            return max(min(next(iter(self.ongoing)), high_watermark), log_start_offset)
        return max(high_watermark, log_start_offset)

    def aborted_between(self, start_offset: int, end_offset: int) -> list[AbortedTransaction]:
        """Aborted transactions that overlap [start_offset, end_offset), for a read_committed fetch."""
        return [a for a in self.aborted if a.first_offset < end_offset and a.last_offset >= start_offset]

    def truncate_before(self, log_start_offset: int) -> None:
        """Forget aborted ranges that retention or DeleteRecords removed entirely."""
        self.aborted = [a for a in self.aborted if a.last_offset >= log_start_offset]

    def expire(self, now_ms: int, expiration_ms: int) -> None:
        """Drop producers silent for `producer.id.expiration.ms` or longer (Kafka's
        isProducerExpired: `now - lastTimestamp >= expiration`) and holding no open transaction,
        and verifications started that long ago."""
        for producer_id, entry in list(self.producers.items()):
            if entry.current_txn_first_offset is None and now_ms - entry.last_timestamp >= expiration_ms:
                del self.producers[producer_id]
        self.verifications = {pid: v for pid, v in self.verifications.items() if now_ms - v.timestamp < expiration_ms}

    def snapshot(self) -> bytes:
        """This whole state as JSON, every batch kept and the aborted transactions included, as
        `load` reads it (not a `.snapshot` file's form: storage/producer_snapshot.py)."""
        return json.dumps(
            {
                "producers": {
                    str(pid): [
                        e.epoch, e.current_txn_first_offset, e.last_timestamp, [list(_batch_fields(b)) for b in e.batches], e.coordinator_epoch
                    ]
                    for pid, e in self.producers.items()
                },
                "aborted": [[a.producer_id, a.first_offset, a.last_offset, a.last_stable_offset] for a in self.aborted],
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def load(cls, data: bytes) -> "ProducerStateManager":
        """A `snapshot()`'s state; one without a producer's coordinator epoch (four fields per
        producer) reads as none known, -1."""
        raw = json.loads(data)
        state = cls()
        for pid_text, fields in raw["producers"].items():
            epoch, txn_first, last_timestamp, batches, *rest = fields
            coordinator_epoch = rest[0] if rest else NO_COORDINATOR_EPOCH
            pid = int(pid_text)
            state.producers[pid] = ProducerEntry(epoch, [BatchMetadata(*b) for b in batches], txn_first, last_timestamp, coordinator_epoch)
            if txn_first is not None:
                state.ongoing[txn_first] = pid
        state.ongoing = dict(sorted(state.ongoing.items()))
        state.aborted = [AbortedTransaction(*a) for a in raw["aborted"]]
        return state


TXN_INDEX_ENTRY_VERSION = 0
_TXN_INDEX_ENTRY = struct.Struct(">hqqqq")


def txn_index_entry(aborted: AbortedTransaction) -> bytes:
    """One entry of Kafka's `.txnindex` (AbortedTxn): version int16, producer id int64, first
    offset int64, last offset (the ABORT marker's) int64, last stable offset int64."""
    return _TXN_INDEX_ENTRY.pack(
        TXN_INDEX_ENTRY_VERSION, aborted.producer_id, aborted.first_offset, aborted.last_offset, aborted.last_stable_offset
    )


def txn_index_entries(data: bytes) -> list[AbortedTransaction]:
    """The entries of a `.txnindex` file, in file order; a torn last entry is left out."""
    usable = len(data) - len(data) % _TXN_INDEX_ENTRY.size
    return [AbortedTransaction(*fields) for _, *fields in _TXN_INDEX_ENTRY.iter_unpack(data[:usable])]


def _batch_fields(batch: BatchMetadata) -> tuple[int, int, int, int, int]:
    return (batch.first_seq, batch.last_seq, batch.first_offset, batch.last_offset, batch.timestamp)


def end_txn_marker(batch: bytes | memoryview) -> EndTxnMarker:
    """A control batch's marker: its one record's key is (version int16, type int16), its
    value (version int16, coordinator epoch int32), as Kafka's EndTransactionMarker. A value
    too short for the epoch reads as -1."""
    for record in iter_records(batch):
        key = bytes(record.key or b"")
        if len(key) >= 4:
            value = bytes(record.value or b"")
            epoch = int.from_bytes(value[2:6], "big", signed=True) if len(value) >= 6 else NO_COORDINATOR_EPOCH
            return EndTxnMarker(int.from_bytes(key[2:4], "big", signed=True), epoch)
    raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "a control batch without a control record")


def control_type(batch: bytes | memoryview) -> int:
    """The marker type of a control batch (CONTROL_ABORT or CONTROL_COMMIT)."""
    return end_txn_marker(batch).control_type


def control_batch(producer_id: int, producer_epoch: int, commit: bool, timestamp: int, coordinator_epoch: int = 0) -> bytes:
    """A COMMIT or ABORT marker batch as Kafka's EndTransactionMarker writes it."""
    key = (0).to_bytes(2, "big") + (CONTROL_COMMIT if commit else CONTROL_ABORT).to_bytes(2, "big")
    value = (0).to_bytes(2, "big") + coordinator_epoch.to_bytes(4, "big", signed=True)
    return build_batch(
        [Record(0, timestamp, key, value)],
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        transactional=True,
        control=True,
    )
