"""A coordinator's state as records in an internal, compacted topic, replayed at load.

Kafka keeps coordinator state this way and rebuilds its memory from the records when a
broker takes over a partition (CoordinatorRuntime, GroupMetadataManager.replay,
TransactionStateManager.loadTransactionMetadata); we reuse the same log engine and do
the same at start-up. A change is acknowledged only after its record is in the log, so a
process killed right after an acknowledgement still finds it on restart.

Transactional batches (TxnOffsetCommit writes them into `__consumer_offsets`) reach a
coordinator in one of two ways. `load_in_log_order` gives every record where it stands, with
its log offset and producer, and each marker, as Kafka's CoordinatorLoaderImpl does: the
group coordinator keeps them pending itself and compares record offsets when a marker
commits them (OffsetMetadataManager.replayEndTransactionMarker). `load` applies them at
their producer's COMMIT marker, drops them at an ABORT, and leaves those with no marker
yet in `open_transactions`, for coordinators whose records are never transactional.

When the storage keeps the topic in a database (its appends are coroutines), the broker opens a
journal for it first (server/coordinator/database.py): appends stay synchronous here and are
written by the journal in order, the broker holding each answer until they are, and the load
replays what the journal read from the database: at start, and again for a partition whose
leadership this broker gains from another broker over the same database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ottla.server.config import BrokerConfig
from ottla.server.coordinator.topics import TRANSACTION_STATE, InternalTopic
from ottla.server.java_hashing import string_hash
from ottla.storage import FileRegion, Storage, TopicInfo
from ottla.storage.producer_state import CONTROL_COMMIT, control_type
from ottla.wire.errors import ErrorCode
from ottla.wire.records import NO_PRODUCER_ID, BatchHeader, Record, build_batch, iter_records, scan_batches

if TYPE_CHECKING:
    from ottla.storage.postgresql.coordinator_topics import CoordinatorJournal

log = logging.getLogger("ottla.coordinator")

_REPLAY_READ_BYTES = 1 << 20

KeyValue = tuple[bytes, bytes | None]  # a None value is a tombstone


class RecordFormatError(ValueError):
    """A record in a coordinator's topic that does not parse; loading skips it."""


def store_error(error: ErrorCode) -> ErrorCode:
    """GroupMetadataManager.appendGroupMetadataErrorToResponseError: what a failed write of a
    coordinator's records tells the client."""
    if error in (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.NOT_ENOUGH_REPLICAS, ErrorCode.REQUEST_TIMED_OUT):
        return ErrorCode.COORDINATOR_NOT_AVAILABLE
    if error in (ErrorCode.NOT_LEADER_FOR_PARTITION, ErrorCode.KAFKA_STORAGE_ERROR):
        return ErrorCode.NOT_COORDINATOR
    if error in (ErrorCode.MESSAGE_SIZE_TOO_LARGE, ErrorCode.RECORD_LIST_TOO_LARGE, ErrorCode.INVALID_FETCH_SIZE):
        return ErrorCode.UNKNOWN_SERVER_ERROR
    return error


def java_string_hash(text: str) -> int:
    """Java's String.hashCode over UTF-16 code units, as a signed 32-bit int."""
    value = string_hash(text)
    return value - (1 << 32) if value >= 1 << 31 else value


def default_setting(name: str) -> Any:
    """A broker setting at its default: what an internal topic's configs derive from when no
    broker configuration is given (`InternalTopic.configs`)."""
    return BrokerConfig().value(name)


def ensure_internal_topic(storage: Storage, topic: InternalTopic, partitions: int, configs: Mapping[str, str]) -> TopicInfo:
    """The coordinator's topic, created with `partitions` partitions and `configs` (its
    `InternalTopic.configs`) if missing. Kafka creates each internal topic on first use, not at
    start-up: a fresh broker lists no topics until a coordinator is first looked up
    (KafkaApis.getCoordinator asks AutoTopicCreationManager for it) or written to. Over a
    database the broker opens the topics at start-up (server/coordinator/database.py), so they
    are never missing there."""
    info = storage.topic(topic.name)
    if info is None:
        info = storage.create_topic(topic.name, partitions, dict(configs))
    return info


class CoordinatorLog:
    """Appends coordinator records to the key's partition of an internal topic and replays
    all of them. The topic is created on first use (`ensure_topic`: the first append, or a
    FindCoordinator) with `partitions` partitions, and replays as empty until then; an
    existing topic keeps its count, since a key's partition must never move. The topic is
    created with `configs`, by default its configs at the broker's default settings."""

    def __init__(self, storage: Storage, topic: InternalTopic, partitions: int, configs: Mapping[str, str] | None = None) -> None:
        self.storage = storage
        self.internal_topic = topic
        self.topic = topic.name
        self._configured_partitions = partitions
        self._configs = topic.configs(default_setting) if configs is None else configs
        # Set when the topic is in a database: None on the local engine, whose appends are inline.
        self.journal: CoordinatorJournal | None = storage.coordinator_journals.get(topic.name) if storage.is_async else None  # type: ignore[attr-defined]
        # Producer id -> records of its transactional batches that no marker has ended yet.
        self.open_transactions: dict[int, list[KeyValue]] = {}
        # Kafka's CoordinatorRuntime (group and share coordinators) builds its batches with base
        # sequence 0, producer or not; the transaction coordinator's TransactionStateManager
        # builds them without a sequence (-1). Readers ignore it; kafka-dump-log shows it.
        self.base_sequence = -1 if topic is TRANSACTION_STATE else 0

    @property
    def partitions(self) -> int:
        """The topic's partition count once it exists, the configured count until then (what
        it will be created with), so a key maps to the same partition before and after."""
        info = self.storage.topic(self.topic)
        return self._configured_partitions if info is None else info.partitions

    def ensure_topic(self) -> TopicInfo:
        """The topic, created now if it does not exist yet (`ensure_internal_topic`)."""
        return ensure_internal_topic(self.storage, self.internal_topic, self._configured_partitions, self._configs)

    def partition_for(self, key: str) -> int:
        """GroupCoordinatorShard.partitionFor: Utils.abs(key.hashCode()) % partitions."""
        code = java_string_hash(key)
        return (0 if code == -(1 << 31) else abs(code)) % self.partitions

    def owns(self, partition: int) -> bool:
        """Whether this broker coordinates the partition's keys: always on the local engine;
        over a database shared by brokers, while it leads the partition."""
        return self.journal is None or self.journal.leads(partition)

    def loading(self, partition: int) -> bool:
        """Whether this broker is reading the partition again, having just gained its keys
        from another broker over the same database (never on the local engine)."""
        return self.journal is not None and self.journal.loading(partition)

    def loading_any(self) -> bool:
        """Whether this broker is reading any of the topic's partitions again (`loading`)."""
        return self.journal is not None and self.journal.loading_any()

    def append(self, key: str, records: list[KeyValue], now_ms: int, producer_id: int = NO_PRODUCER_ID, producer_epoch: int = -1) -> None:
        """One batch, so a change of many records is stored whole or not at all; with a
        producer id it is a transactional batch of that producer (TxnOffsetCommit).
        Raises KafkaError from the log (KAFKA_STORAGE_ERROR, INVALID_PRODUCER_EPOCH, ...)."""
        batch = build_batch(
            [Record(offset=i, timestamp=now_ms, key=k, value=v) for i, (k, v) in enumerate(records)],
            producer_id=producer_id,
            producer_epoch=producer_epoch,
            transactional=producer_id != NO_PRODUCER_ID,
            base_sequence=self.base_sequence,
        )
        if self.journal is not None:
            self.journal.append(self.partition_for(key), batch)
            return
        self.ensure_topic()
        # Kafka's AppendOrigin.COORDINATOR: never taken for a client's retry (ProducerStateManager.check).
        self.storage.partition(self.topic, self.partition_for(key)).append(batch, from_client=False)

    def load(self, apply: Callable[[bytes, bytes | None], None], partitions: Iterable[int] | None = None) -> None:
        """Replay every record (of `partitions`, default all) into `apply`, in log order; one
        that raises RecordFormatError is skipped with a warning, so garbage a client wrote
        into the topic cannot keep the broker from starting."""
        for key, value in self.replay(partitions):
            try:
                apply(key, value)
            except RecordFormatError as exc:
                log.warning("skipping an unreadable record in %s: %s", self.topic, exc)

    def load_in_log_order(
        self,
        apply: Callable[[int, int, bytes, bytes | None], None],
        end_transaction: Callable[[int, int, bool], None],
        partitions: Iterable[int] | None = None,
    ) -> None:
        """Replay the records of `partitions` (default all) as Kafka's CoordinatorLoaderImpl
        does: every record where it stands in the log, transactional or not, as
        `apply(offset, producer_id, key, value)` (producer_id NO_PRODUCER_ID for a plain one),
        and each transaction marker as `end_transaction(partition, producer_id, commit)`;
        the coordinator keeps transactional records pending itself. A record whose `apply`
        raises RecordFormatError is skipped with a warning, as in `load`."""
        for partition, header, batch, offset in self._batches(partitions):
            if header.is_control:
                end_transaction(partition, header.producer_id, control_type(batch) == CONTROL_COMMIT)
                continue
            producer_id = header.producer_id if header.is_transactional else NO_PRODUCER_ID
            for record_offset, key, value in _keyed(batch, offset):
                try:
                    apply(record_offset, producer_id, key, value)
                except RecordFormatError as exc:
                    log.warning("skipping an unreadable record in %s: %s", self.topic, exc)

    def replay(self, partitions: Iterable[int] | None = None) -> Iterator[KeyValue]:
        """The records of `partitions` (default all); `open_transactions` then holds those
        partitions' transactional records that no marker has ended yet."""
        self.open_transactions = {}
        for _, header, batch, offset in self._batches(partitions):
            if header.is_control:
                ended = self.open_transactions.pop(header.producer_id, [])
                if control_type(batch) == CONTROL_COMMIT:
                    yield from ended
            elif header.is_transactional:
                self.open_transactions.setdefault(header.producer_id, []).extend((key, value) for _, key, value in _keyed(batch, offset))
            else:
                yield from ((key, value) for _, key, value in _keyed(batch, offset))

    def _batches(self, partitions: Iterable[int] | None) -> Iterator[tuple[int, BatchHeader, memoryview, int]]:
        """(partition, header, batch, first offset not yet replayed) of each batch of
        `partitions` (default all), in log order; none before the topic exists."""
        if self.journal is None and self.storage.topic(self.topic) is None:
            return
        for index in range(self.partitions) if partitions is None else partitions:
            partition = self.storage.partition(self.topic, index) if self.journal is None else self.journal.loaded(index)
            offset, end = partition.log_start_offset, partition.log_end_offset
            while offset < end:
                chunks = partition.read(offset, _REPLAY_READ_BYTES).chunks
                data = b"".join(chunk.read() if isinstance(chunk, FileRegion) else bytes(chunk) for chunk in chunks)
                progressed = False
                for header, batch in scan_batches(data, verify_crc=True):
                    if header.next_offset <= offset:
                        continue
                    yield index, header, batch, offset
                    offset = header.next_offset
                    progressed = True
                if not progressed:
                    log.warning("%s-%d: stopped loading at offset %d, no readable batch there", self.topic, index, offset)
                    break


def _keyed(batch: memoryview, offset: int) -> list[tuple[int, bytes, bytes | None]]:
    """(log offset, key, value) of the batch's keyed records from `offset` on."""
    return [
        (record.offset, bytes(record.key), None if record.value is None else bytes(record.value))
        for record in iter_records(batch)
        if record.offset >= offset and record.key is not None
    ]
