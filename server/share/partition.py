"""One share-partition: which records of a topic partition a share group has handed out.

Kafka's SharePartition (core/.../server/share/SharePartition.java, KIP-932): the records
from the share-partition start offset (SPSO) up to the end offset are "in flight", each
AVAILABLE, ACQUIRED by one member under an acquisition lock, ACKNOWLEDGED or ARCHIVED.
Records before the SPSO are done; records from the end offset on were never handed out.
A record is acquired with its delivery count raised by one; RELEASE or an expired lock
make it AVAILABLE again unless its count reached `delivery_count_limit`, when it is
ARCHIVED, as REJECT archives it. The SPSO moves past every leading record that is done.
The in-flight window (end - SPSO) takes no new records once it holds `max_record_locks`;
short of that, the room left caps a fetch as its max records do (see `acquire`).
As Kafka's cachedState, the in-flight records fall into in-flight batches, one per range a
ShareFetch acquired new records in (or per run a snapshot restored): an acquired range never
spans two of them, and a member acquiring in whole batches takes whole in-flight batches.

The class does no I/O: the coordinator reads the log, passes the batches' offset ranges,
and persists `snapshot()` after each change it is told of.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum, IntEnum

from ottla.server.coordinator import TimerHandle, Timers, TransitionTable
from ottla.wire.errors import ErrorCode


class RecordState(Enum):
    AVAILABLE = "Available"
    ACQUIRED = "Acquired"
    ACKNOWLEDGED = "Acknowledged"
    ARCHIVED = "Archived"


RECORD_TRANSITIONS = TransitionTable(
    "share record",
    {
        RecordState.ACQUIRED: frozenset({RecordState.AVAILABLE}),
        RecordState.AVAILABLE: frozenset({RecordState.ACQUIRED}),
        RecordState.ACKNOWLEDGED: frozenset({RecordState.ACQUIRED}),
        # From AVAILABLE when the start offset is moved past it (retention, AlterShareGroupOffsets).
        RecordState.ARCHIVED: frozenset({RecordState.ACQUIRED, RecordState.AVAILABLE}),
    },
)


class AcknowledgeType(IntEnum):
    """ShareFetch/ShareAcknowledge AcknowledgeTypes (AcknowledgeType.java); RENEW from v2 (KIP-1222)."""

    GAP = 0
    ACCEPT = 1
    RELEASE = 2
    REJECT = 3
    RENEW = 4


# Why a record went to the dead-letter queue, in the words of Kafka 4.4's __dlq.errors.message header.
REJECTED = "Offset rejected by client."
DELIVERY_LIMIT = "Offset delivery count exceeded the threshold."

# Kafka 4.4's SharePartition's refusals of an acknowledgement of records the member does not
# hold: of a whole in-flight batch, and of an offset of a batch tracked offset by offset.
_BATCH_NOT_ACQUIRED = "The batch cannot be acknowledged. The batch is not in the acquired state."
_NOT_BATCH_OWNER = "Member is not the owner of batch record"
_OFFSET_NOT_ACQUIRED = "The offset cannot be acknowledged. The offset is not acquired."
_NOT_OFFSET_OWNER = "Member is not the owner of offset"


@dataclass(slots=True, eq=False)
class Acquisition:
    """Records one member acquired at once, under one lock timer."""

    member_id: str
    timer: TimerHandle | None = None


@dataclass(slots=True)
class InFlight:
    state: RecordState
    delivery_count: int
    acquisition: Acquisition | None = None


@dataclass(slots=True, frozen=True)
class AcquiredRange:
    first_offset: int
    last_offset: int
    delivery_count: int


@dataclass(slots=True, frozen=True)
class StateBatch:
    """A run of in-flight records with one state and delivery count, as persisted: an
    ACQUIRED record is stored AVAILABLE (its lock does not survive the broker), as Kafka's
    persister stores it."""

    first_offset: int
    last_offset: int
    state: RecordState
    delivery_count: int


@dataclass(slots=True)
class SharePartitionLimits:
    record_lock_duration_ms: int = 30000
    delivery_count_limit: int = 5
    max_record_locks: int = 2000


@dataclass(slots=True)
class SharePartition:
    """The in-flight records of one (group, topic, partition). `on_released` is told when
    records became AVAILABLE outside a request (a lock expired), so parked fetches wake and
    the change is persisted."""

    start_offset: int
    timers: Timers
    limits: SharePartitionLimits
    on_released: Callable[[SharePartition], None] = lambda partition: None
    end_offset: int = -1
    records: dict[int, InFlight] = field(default_factory=dict)
    # Records archived by REJECT or at the delivery-count limit, not yet taken by the
    # coordinator: (offset, delivery count, Kafka's reason), for a dead-letter queue.
    archived: list[tuple[int, int, str]] = field(default_factory=list)
    # The first offsets of the in-flight batches (Kafka's cachedState keys) from the SPSO on,
    # and that of the batch the SPSO falls in.
    batch_starts: set[int] = field(default_factory=set)
    # The starts of the in-flight batches an acknowledgement took part of (or offset by offset):
    # Kafka tracks those per offset from then on (InFlightBatch.offsetState), which words its
    # refusals (`refusal`).
    split_batches: set[int] = field(default_factory=set)
    # The next fetch offset at which a ShareFetch last looked at the partition (Kafka's
    # SharePartition.fetchOffsetMetadata): one whose next fetch offset has moved since is
    # acquired from after the others (`fetch_order`).
    looked_at: int | None = None

    def __post_init__(self) -> None:
        self.end_offset = max(self.end_offset, self.start_offset)

    # --- reading ------------------------------------------------------------------

    def next_fetch_offset(self) -> int:
        """Where the next acquisition reads the log: the first AVAILABLE in-flight record,
        else the end offset."""
        for offset in range(self.start_offset, self.end_offset):
            entry = self.records.get(offset)
            if entry is not None and entry.state is RecordState.AVAILABLE:
                return offset
        return self.end_offset

    def in_flight(self) -> int:
        return self.end_offset - self.start_offset

    def delivery_complete(self) -> int:
        """How many in-flight records are done (acknowledged or archived): Kafka's
        deliveryCompleteCount, which a share-partition's lag leaves out."""
        return sum(1 for offset in range(self.start_offset, self.end_offset)
                   if (entry := self.records.get(offset)) is None or entry.state in (RecordState.ACKNOWLEDGED, RecordState.ARCHIVED))

    def acquired_by(self, member_id: str) -> list[int]:
        return [offset for offset, entry in self.records.items()
                if entry.state is RecordState.ACQUIRED and entry.acquisition is not None and entry.acquisition.member_id == member_id]

    # --- acquiring ----------------------------------------------------------------

    def acquire(self, member_id: str, batches: list[tuple[int, int]], max_records: int, whole_batches: bool = True,
                batch_size: int | None = None, aborted: Sequence[tuple[int, int]] = ()) -> list[AcquiredRange]:
        """Acquire for `member_id` up to `max_records` records of `batches` (the (first,
        last) offsets of the log batches read from `next_fetch_offset()`): AVAILABLE
        in-flight records first, in log order, then new ones if the in-flight window
        has room. Every acquired record shares one lock. With `whole_batches` (ShareFetch's
        BATCH_OPTIMIZED acquire mode, the only one before v2), `max_records` is a soft limit
        checked only where an in-flight batch or, past the end offset, a log batch starts,
        so a member gets whole batches, and the new records form in-flight batches of
        `batch_size` records or more, cut where a log batch starts (None or not positive:
        one batch), as Kafka 4.4's SharePartition.acquire and createBatches do; RECORD_LIMIT
        stops at `max_records` exactly and the new records form one in-flight batch, which
        runs to the end of the log batch it stopped in (`_hold_back`).

        The in-flight window's room (`max_record_locks` less its size) lowers `max_records`, in
        flight records and new ones alike, so a fetch may fill the window past the limit up to
        the end of a log batch (or hold the batch's tail back); a full window takes no new
        records, only AVAILABLE ones in flight: Kafka 4.4's lastOffsetAndMaxRecordsToAcquire
        (checked against the reference broker).

        `aborted` holds the (first, last) offsets of the batches of `batches` that belong to
        aborted transactions (a read_committed group): they are acquired as any other, so they
        count toward `max_records` and the window, then archived and left out of the answer
        (`_archive_aborted`)."""
        acquisition = Acquisition(member_id)
        acquired: list[int] = []
        first_new = self.end_offset
        room = self.limits.max_record_locks - self.in_flight()
        max_records = min(max_records, room) if room > 0 else max_records
        if batches and not self._acquire_in_flight(acquisition, acquired, max(batches[0][0], self.start_offset),
                                                   min(batches[-1][1], first_new - 1), max_records, whole_batches) and room > 0:
            for first, last in batches:
                for offset in range(max(first, first_new), last + 1):
                    if len(acquired) >= max_records and (not whole_batches or offset == max(first, first_new)):
                        if offset > max(first, first_new):
                            self._hold_back(offset, last)
                        break
                    self.records[offset] = InFlight(RecordState.ACQUIRED, 1, acquisition)
                    self.end_offset = offset + 1
                    acquired.append(offset)
                else:
                    continue
                break
        new = [offset for offset in acquired if offset >= first_new]
        if new:
            self._start_batches(new, batches, batch_size if whole_batches else None)
        if aborted:
            acquired = self._archive_aborted(acquired, aborted)
        if acquired:
            acquisition.timer = self.timers.after(self.limits.record_lock_duration_ms, self._lock_expired, acquisition)
        return self._ranges(acquired)

    def _archive_aborted(self, acquired: list[int], aborted: Sequence[tuple[int, int]]) -> list[int]:
        """Archive the records of `acquired` in an `aborted` batch; the others, kept acquired.

        As Kafka 4.4's SharePartition.acquire (maybeFilterAbortedTransactionalAcquiredRecords:
        archiveRecords from ACQUIRED, then filterRecordBatchesFromAcquiredRecords), checked
        against the reference broker: an aborted transaction's records take their share of the
        fetch's max records and of the in-flight window, are archived (no dead-letter record:
        no member refused them) and are not in the answer. Unlike Kafka, the SPSO then moves
        past them at once: Kafka 4.4 leaves it in place until a later acknowledgement moves
        it, so a window the aborted records filled stays full, its partition stalled, even
        past the lock duration (as the reference broker showed)."""
        kept: list[int] = []
        for offset in acquired:
            if any(first <= offset <= last for first, last in aborted):
                self._finish(self.records[offset], RecordState.ARCHIVED)
            else:
                kept.append(offset)
        if len(kept) < len(acquired):
            self._advance_start()
        return kept

    def _acquire_in_flight(self, acquisition: Acquisition, acquired: list[int], low: int, high: int, max_records: int,
                           whole_batches: bool) -> bool:
        """Acquire into `acquired` the AVAILABLE in-flight records from `low` to `high`, in
        flight batch by in-flight batch; True when the fetch must acquire nothing more.

        Records delivered often are held back, as Kafka 4.4's SharePartition.acquire
        (shouldThrottleRecordsDelivery, acquireSubsetBatchRecords) holds them back: an in-flight
        batch with an AVAILABLE record delivered `throttle_at` times (half the delivery count
        limit, at least 2) or more is acquired only first in a fetch, which then ends. Of it, the
        records are acquired up to the first so delivered, then together no more than the
        batch's size halved once per delivery from `throttle_at` on (at least one); a record on
        its last delivery is acquired alone."""
        limit = self.limits.delivery_count_limit
        throttle_at = max(2, -(-limit // 2))
        for start, end in self._in_flight_batches(low, high):
            if len(acquired) >= max_records:
                return True
            available = [offset for offset in range(max(start, low), min(end, high) + 1)
                         if (entry := self.records.get(offset)) is not None and entry.state is RecordState.AVAILABLE]
            throttled = any(self.records[offset].delivery_count >= throttle_at for offset in available)
            if throttled and acquired:
                return True
            cap, taken = 0, 0
            for offset in available:
                entry = self.records[offset]
                if throttled:
                    if limit > 2 and entry.delivery_count == limit - 1 and taken:
                        break
                    if not cap and entry.delivery_count >= throttle_at:
                        cap = max(1, (end - start + 1) >> (entry.delivery_count - throttle_at + 1))
                RECORD_TRANSITIONS.check(entry.state, RecordState.ACQUIRED)
                entry.state = RecordState.ACQUIRED
                entry.delivery_count += 1
                entry.acquisition = acquisition
                acquired.append(offset)
                taken += 1
                if (not whole_batches and len(acquired) >= max_records) or (
                        throttled and ((limit > 2 and entry.delivery_count == limit) or taken == cap)):
                    break
            if throttled and taken:
                return True
        return False

    def _in_flight_batches(self, low: int, high: int) -> list[tuple[int, int]]:
        """The (first, last) offsets of the in-flight batches holding offsets `low` to `high`."""
        if low > high:
            return []
        starts = sorted(start for start in self.batch_starts if start <= high)
        before = [start for start in starts if start <= low]
        firsts = [before[-1] if before else low, *(start for start in starts if start > low)]
        return [(first, (firsts[i + 1] if i + 1 < len(firsts) else self.end_offset) - 1) for i, first in enumerate(firsts)]

    def _hold_back(self, first: int, last: int) -> None:
        """RECORD_LIMIT stopped at `first`, inside a log batch whose records from there are new:
        they join the in-flight window (and the in-flight batch just acquired) AVAILABLE, never
        delivered, up to the log batch's `last` offset, as Kafka 4.4's createBatches leaves
        the tail of its in-flight batch (InFlightBatch.maybeInitializeOffsetStateUpdate)."""
        for offset in range(first, last + 1):
            self.records[offset] = InFlight(RecordState.AVAILABLE, 0)
        self.end_offset = last + 1

    def _start_batches(self, new: list[int], batches: list[tuple[int, int]], batch_size: int | None) -> None:
        """Mark where the in-flight batches of the records `new` (acquired past the old end
        offset) start: at the first, then at each log batch start `batch_size` records or
        more after the last mark (Kafka's createBatches). A batch size of 0 or less marks
        none after the first: Kafka 4.4 answers it with an empty range (last offset before
        the first) and then one range per log batch, a malformed answer not copied here."""
        current = new[0]
        self.batch_starts.add(current)
        if batch_size is None or batch_size <= 0:
            return
        for first, _ in batches:
            if current < first <= new[-1] and first - current >= batch_size:
                self.batch_starts.add(first)
                current = first

    def _ranges(self, offsets: list[int]) -> list[AcquiredRange]:
        ranges: list[AcquiredRange] = []
        for offset in offsets:
            count = self.records[offset].delivery_count
            if (ranges and ranges[-1].last_offset == offset - 1 and ranges[-1].delivery_count == count
                    and offset not in self.batch_starts):
                ranges[-1] = AcquiredRange(ranges[-1].first_offset, offset, count)
            else:
                ranges.append(AcquiredRange(offset, offset, count))
        return ranges

    def _lock_expired(self, acquisition: Acquisition) -> None:
        released = False
        for offset, entry in self.records.items():
            if entry.acquisition is acquisition and entry.state is RecordState.ACQUIRED:
                self._release(offset, entry)
                released = True
        if released:
            self._advance_start()
            self.on_released(self)

    # --- acknowledging ------------------------------------------------------------

    def check_acknowledgement(self, member_id: str, first: int, last: int, types: list[int]) -> ErrorCode:
        """What `acknowledge` would answer, changing nothing, as Kafka 4.4 answers (asked of
        the reference broker): offsets before the SPSO are done already and skipped; a batch
        reaching past the last offset handed out, or with `types` neither one type for all
        nor one per offset, is INVALID_REQUEST; any other offset the member does not hold
        ACQUIRED is INVALID_RECORD_STATE."""
        if (first > last or last >= self.end_offset or len(types) not in (1, last - first + 1)
                or any(t not in AcknowledgeType._value2member_map_ for t in types)):
            return ErrorCode.INVALID_REQUEST
        for offset in range(max(first, self.start_offset), last + 1):
            entry = self.records.get(offset)
            if (entry is None or entry.state is not RecordState.ACQUIRED or entry.acquisition is None
                    or entry.acquisition.member_id != member_id):
                return ErrorCode.INVALID_RECORD_STATE
        return ErrorCode.NONE

    def refusal(self, member_id: str, first: int, last: int) -> str | None:
        """The message of the INVALID_RECORD_STATE `check_acknowledgement` answers, as Kafka
        4.4's SharePartition words it (asked of the reference broker): for the first offset
        the member does not hold, by its in-flight batch (`_whole`) or by itself."""
        for offset in range(max(first, self.start_offset), last + 1):
            entry = self.records.get(offset)
            if entry is None:
                return None
            acquired = entry.state is RecordState.ACQUIRED and entry.acquisition is not None
            if acquired and entry.acquisition is not None and entry.acquisition.member_id == member_id:
                continue
            ((start, end),) = self._in_flight_batches(offset, offset)
            if self._whole(start, end):
                return _NOT_BATCH_OWNER if acquired else _BATCH_NOT_ACQUIRED
            return _NOT_OFFSET_OWNER if acquired else _OFFSET_NOT_ACQUIRED
        return None

    def _whole(self, start: int, end: int) -> bool:
        """Whether Kafka still holds the in-flight batch `start`..`end` as one state, member
        and delivery count (no offsetState): no acknowledgement took part of it, and no
        acquisition, release or expiry left its records apart."""
        if start in self.split_batches:
            return False
        entries = [self.records.get(offset) for offset in range(max(start, self.start_offset), end + 1)]
        head = entries[0]
        return head is not None and all(entry is not None and entry.state is head.state and entry.delivery_count == head.delivery_count
                                        and entry.acquisition is head.acquisition for entry in entries)

    def acknowledge(self, member_id: str, first: int, last: int, types: list[int]) -> ErrorCode:
        """One acknowledgement batch, applied whole or not at all (`check_acknowledgement`);
        each in-flight batch it covers only in part, or offset by offset, is split from then on."""
        error = self.check_acknowledgement(member_id, first, last, types)
        if error is not ErrorCode.NONE:
            return error
        for start, end in self._in_flight_batches(max(first, self.start_offset), last):
            if start < max(first, self.start_offset) or end > last or len(types) > 1:
                self.split_batches.add(start)
        entries = [(offset, self.records[offset]) for offset in range(max(first, self.start_offset), last + 1)]
        renewed = Acquisition(member_id)
        for offset, entry in entries:
            kind = AcknowledgeType(types[0] if len(types) == 1 else types[offset - first])
            if kind is AcknowledgeType.ACCEPT:
                self._finish(entry, RecordState.ACKNOWLEDGED)
            elif kind in (AcknowledgeType.REJECT, AcknowledgeType.GAP):
                self._finish(entry, RecordState.ARCHIVED)
                if kind is AcknowledgeType.REJECT:
                    self.archived.append((offset, entry.delivery_count, REJECTED))
            elif kind is AcknowledgeType.RELEASE:
                self._release(offset, entry)
            else:
                entry.acquisition = renewed
        if any(entry.acquisition is renewed for _, entry in entries):
            renewed.timer = self.timers.after(self.limits.record_lock_duration_ms, self._lock_expired, renewed)
        self._advance_start()
        return ErrorCode.NONE

    def take_archived(self) -> list[tuple[int, int, str]]:
        """The records archived since the last call (see `archived`)."""
        taken, self.archived = self.archived, []
        return taken

    def release_member(self, member_id: str) -> bool:
        """A member left, timed out or closed its share session: what it holds is released
        now rather than when its locks expire (SharePartition.releaseAcquiredRecords)."""
        held = [(offset, entry) for offset, entry in self.records.items()
                if entry.state is RecordState.ACQUIRED and entry.acquisition is not None and entry.acquisition.member_id == member_id]
        for offset, entry in held:
            self._release(offset, entry)
        self._advance_start()
        return bool(held)

    def _release(self, offset: int, entry: InFlight) -> None:
        if entry.delivery_count >= self.limits.delivery_count_limit:
            self._finish(entry, RecordState.ARCHIVED)
            self.archived.append((offset, entry.delivery_count, DELIVERY_LIMIT))
        else:
            RECORD_TRANSITIONS.check(entry.state, RecordState.AVAILABLE)
            entry.state = RecordState.AVAILABLE
            entry.acquisition = None

    def _finish(self, entry: InFlight, state: RecordState) -> None:
        RECORD_TRANSITIONS.check(entry.state, state)
        entry.state = state
        entry.acquisition = None

    def _advance_start(self) -> None:
        """Move the SPSO past leading records that are done (or were never there). The in-flight
        batch it moves into keeps its start, as Kafka's cachedState keeps a batch whole until
        the SPSO is past it: its size rules how many of its records are held back."""
        offset = self.start_offset
        while offset < self.end_offset:
            entry = self.records.get(offset)
            if entry is not None and entry.state in (RecordState.AVAILABLE, RecordState.ACQUIRED):
                break
            self.records.pop(offset, None)
            offset += 1
        self.start_offset = offset
        passed = sorted(start for start in self.batch_starts if start < offset)
        if passed and offset < self.end_offset and offset not in self.batch_starts:
            passed.pop()
        self.batch_starts.difference_update(passed)
        self.split_batches.difference_update(passed)

    # --- moving the start offset ----------------------------------------------------

    def reset_start(self, offset: int) -> None:
        """Start from `offset` with nothing in flight (AlterShareGroupOffsets, or the log's
        start moved past the SPSO). Records held by members lose their locks."""
        for entry in self.records.values():
            if entry.acquisition is not None and entry.acquisition.timer is not None:
                entry.acquisition.timer.cancel()
        self.records.clear()
        self.batch_starts.clear()
        self.split_batches.clear()
        self.start_offset = self.end_offset = offset

    def archive_before(self, offset: int) -> None:
        """The log no longer holds records before `offset` (retention, DeleteRecords)."""
        if offset <= self.start_offset:
            return
        if offset >= self.end_offset:
            self.reset_start(offset)
            return
        for position in range(self.start_offset, offset):
            entry = self.records.pop(position, None)
            if entry is not None and entry.acquisition is not None:
                entry.acquisition = None
        self.start_offset = offset
        self._advance_start()

    # --- persistence ----------------------------------------------------------------

    def snapshot(self) -> list[StateBatch]:
        """The in-flight records as runs of one persisted state and delivery count."""
        batches: list[StateBatch] = []
        for offset in range(self.start_offset, self.end_offset):
            entry = self.records.get(offset)
            if entry is None:
                state, count = RecordState.ARCHIVED, 0
            else:
                state = RecordState.AVAILABLE if entry.state is RecordState.ACQUIRED else entry.state
                count = entry.delivery_count
            if batches and batches[-1].last_offset == offset - 1 and batches[-1].state is state and batches[-1].delivery_count == count:
                batches[-1] = StateBatch(batches[-1].first_offset, offset, state, count)
            else:
                batches.append(StateBatch(offset, offset, state, count))
        return batches

    def restore(self, start_offset: int, batches: list[StateBatch]) -> None:
        """The state a snapshot recorded; what was ACQUIRED is AVAILABLE again, unless that
        delivery was its last allowed one: then it is ARCHIVED, as a release at the limit
        archives it, so no restart delivers a record past group.share.delivery.attempt.limit."""
        self.reset_start(start_offset)
        limit = self.limits.delivery_count_limit
        for batch in batches:
            state = batch.state
            if state is RecordState.AVAILABLE and batch.delivery_count >= limit:
                state = RecordState.ARCHIVED
            if batch.last_offset >= start_offset:
                self.batch_starts.add(max(batch.first_offset, start_offset))
            for offset in range(max(batch.first_offset, start_offset), batch.last_offset + 1):
                self.records[offset] = InFlight(state, batch.delivery_count)
                self.end_offset = max(self.end_offset, offset + 1)
        self._advance_start()
