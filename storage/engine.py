"""The storage engine: topics, their partition logs, and the metadata that survives restarts.

Layout of a log directory (Kafka's, so its tools can read the partitions):
  meta.properties                           Kafka's: the directory's `directory.id` (KIP-858), version 1
  <topic>-<partition>/00000000000000000000.log|.index|.timeindex
  <topic>-<partition>/partition.metadata   Kafka's topic-id file (PartitionMetadataFile.java)
  <topic>.topic.json                        ours: topic id, partition count, config overrides
  log-start-offset-checkpoint               Kafka's (OffsetCheckpointFile.java): moved by DeleteRecords
  cleaner-offset-checkpoint                 Kafka's: where each compacted log's dirty section starts
  recovery-point-offset-checkpoint          Kafka's: below each offset the partition is fsynced (storage/log.py)
  .kafka_cleanshutdown                      Kafka's: the directory was closed cleanly (`Storage.close`, `_load`)
  <topic>-<partition>.<uuid>-delete/        Kafka's: a deleted topic's partition, removed after file.delete.delay.ms
  <topic>-<partition>.<uuid>-future/        Kafka's: a partition on its way here (storage/relocation.py)
The topic file sits beside, not inside, the partition directories: Kafka's
LogManager only loads directories, so it ignores regular files there.

Several log directories (Kafka's JBOD, `log.dirs`): each partition lives in one of them,
placed when created in the one holding the fewest partitions (Kafka's LogManager.nextLogDirs).
The checkpoints are per directory, for the partitions in it, as Kafka keeps them; the topic
files stay in the first directory, as Kafka keeps its metadata in `metadata.log.dir` (by
default the first of `log.dirs`). A directory that fails (an I/O error on a partition's
append or read, or found gone by `check_log_dirs`) goes offline: its partitions answer
KAFKA_STORAGE_ERROR and the others go on (Kafka's LogDirFailureChannel).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import pathlib
import re
import shutil
import threading
import time
from collections.abc import Callable, Collection, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from ottla.storage.config import LogConfig
from ottla.storage.handles import DEFAULT_LIMIT, FileHandles
from ottla.storage.flusher import Flusher, FlushJob
from ottla.storage.files import TEMPORARY_SUFFIX, DirectoryLocks, fsync_directory, remove_paths, replace_file
from ottla.storage.log import DEFAULT_MAP_CAPACITY, PartitionLog, out_of_space, run_steps
from ottla.storage.relocation import FUTURE_DIR_PATTERN, LogMove, future_directory_name
from ottla.storage.segment import DiskFile, file_name, rename_directory
from ottla.wire.errors import ErrorCode, KafkaError

_TOPIC_SUFFIX = ".topic.json"
_LOG_START_CHECKPOINT = "log-start-offset-checkpoint"
_CLEANER_CHECKPOINT = "cleaner-offset-checkpoint"
_RECOVERY_POINT_CHECKPOINT = "recovery-point-offset-checkpoint"
_META_PROPERTIES = "meta.properties"
# Kafka's CleanShutdownFileHandler: written last at a clean shutdown, removed first at start-up.
_CLEAN_SHUTDOWN = ".kafka_cleanshutdown"
# Its content (CleanShutdownFileHandler.Content, as Kafka's Json writes it): Ottla has no broker
# epoch, so the one Kafka's LogManager.shutdown() writes without one.
_CLEAN_SHUTDOWN_CONTENT = b'{"version":0,"brokerEpoch":-1}'
# Kafka's LocalLog.DeleteDirSuffix: a deleted topic's partition directory waiting out file.delete.delay.ms.
_DELETE_DIR_SUFFIX = "-delete"
# Kafka's Topic.validate: legal characters and the 249-character limit.
_LEGAL_TOPIC = re.compile(r"[a-zA-Z0-9._-]+")
_MAX_TOPIC_NAME_LENGTH = 249
# A log directory's log start offsets, first dirty offsets and recovery points, by partition.
_CheckpointEntries = tuple[dict[tuple[str, int], int], dict[tuple[str, int], int], dict[tuple[str, int], int]]


@dataclass(slots=True, frozen=True)
class TopicInfo:
    name: str
    topic_id: bytes
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)


def _random_uuid() -> bytes:
    """A random version-4 UUID, made as uuid.uuid4() makes it (the uuid module, with the
    platform module it loads, would cost every broker's start milliseconds). Its version
    bits keep it from ever being the zero UUID Kafka reserves for "no id"."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40
    raw[8] = raw[8] & 0x3F | 0x80
    return bytes(raw)


@dataclass(slots=True, frozen=True)
class LogDirState:
    """One log directory as DescribeLogDirs shows it: where, its id, whether it failed."""

    path: pathlib.Path
    directory_id: bytes
    offline: bool


class FutureLog:
    """A partition's log on its way to `destination` (AlterReplicaLogDirs). A plain class: a
    dataclass costs every broker's start most of a millisecond to create, and nothing
    compares one."""

    __slots__ = ("destination", "size", "offset_lag")

    def __init__(self, destination: pathlib.Path, size: int, offset_lag: int) -> None:
        self.destination = destination
        self.size = size
        self.offset_lag = offset_lag


class PartitionGrowth:
    """A topic's growth by `Storage.reserve_partitions`: the topic before and after, whether
    `write_partition_files` is done (`written`, set on the writing thread) and how it failed
    (`failure`) or the new partitions' logs it opened (`logs`), then, once applied on the
    caller's thread, its `outcome`: the grown topic, a KafkaError, or None (the storage
    closed). A plain class, as FutureLog."""

    __slots__ = ("before", "grown", "written", "failure", "logs", "outcome")

    def __init__(self, before: TopicInfo, grown: TopicInfo) -> None:
        self.before = before
        self.grown = grown
        self.written = threading.Event()
        self.failure: BaseException | None = None
        self.logs: list[PartitionLog] = []
        self.outcome: TopicInfo | KafkaError | None = None


class TopicDeletion:
    """A topic's deletion on disk (`Storage.begin_deletion`), for any thread to `run` once: its
    topic file unlinked and the directory fsynced, then each partition's directory renamed
    `<topic>-<partition>.<uuid>-delete` with its files following (`segment.rename_directory`),
    then each log directory fsynced, and last the checkpoints told to forget it (`forget`).
    `moves` are each partition's directory and its files, `descriptors` theirs, taken out of
    the descriptor cache and closed here (FileHandles.closes_deferred); `due` when the renamed
    directories may be removed; `checkpointed` its partitions' log starts, first dirty offsets
    and checkpointed recovery points, by log directory, which that directory's checkpoints
    keep until it is in `forgotten`, once the renames are done: a crash before its topic file
    is gone brings the topic back whole, its log start and recovery point included, and one
    after leaves it deleted. None is forgotten if the topic file refused: the topic comes back
    at the next start, and must find its offsets. `renamed` the destinations reached and
    `failed` the log directories whose files refused (for `Storage.finish_deletion`, on the
    caller's thread). A partition directory that refused its rename is forgotten all the same,
    as Kafka's asyncDelete checkpoints the directory without the log whose rename failed: no
    topic claims it any more, and the next start removes it.
    Whoever needs the files done (a topic created under the same name, `Storage.close`) runs it
    too: the first caller does the work, the others wait for it. A plain class, as FutureLog."""

    __slots__ = ("name", "topic_file", "moves", "due", "checkpointed", "forget", "forgotten", "descriptors", "renamed", "failed", "_lock", "_done")

    def __init__(
        self,
        name: str,
        topic_file: pathlib.Path,
        moves: list[tuple[pathlib.Path, list[DiskFile]]],
        due: int,
        checkpointed: dict[pathlib.Path, _CheckpointEntries],
        forget: Callable[[TopicDeletion], None],
        descriptors: list[int],
    ) -> None:
        self.name = name
        self.topic_file = topic_file
        self.moves = moves
        self.due = due
        self.checkpointed = checkpointed
        self.forget = forget
        self.forgotten: set[pathlib.Path] = set()
        self.descriptors = descriptors
        self.renamed: list[pathlib.Path] = []
        self.failed: dict[pathlib.Path, OSError] = {}
        self._lock = threading.Lock()
        self._done = False

    def run(self) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
            for descriptor in self.descriptors:
                os.close(descriptor)
            # The topic file goes first, durably, as Kafka's controller commits a topic's
            # removal before any broker renames its logs: a crash after it leaves orphan
            # partition directories that no topic claims (a restart removes them, a new topic
            # of the name clears them), never a topic with missing data.
            try:
                self.topic_file.unlink()
                fsync_directory(self.topic_file.parent)
            except OSError as error:
                self.failed[self.topic_file.parent] = error
                return
            renamed_in: dict[pathlib.Path, None] = {}
            for source, files in self.moves:
                if source.parent in self.failed:
                    continue
                destination = source.parent / _deletion_directory_name(self.name, int(source.name.rpartition("-")[2]))
                try:
                    rename_directory(source, destination, files)
                except OSError as error:
                    self.failed[source.parent] = error
                    continue
                self.renamed.append(destination)
                renamed_in[source.parent] = None
            # The renames made durable, once per log directory, as Kafka's LocalLog.renameDir
            # (Utils.atomicMoveWithFallback) makes each one.
            for log_dir in renamed_in:
                try:
                    fsync_directory(log_dir)
                except OSError as error:
                    self.failed.setdefault(log_dir, error)
            # Then the checkpoints, as Kafka's LogManager.asyncDelete writes its log start
            # offsets after renaming the log `-delete`.
            self.forget(self)


def invalid_topic_message(name: str) -> str | None:
    """Why Kafka's Topic.validate refuses `name`, in its words, or None for a legal name."""
    if not name:
        reason = "the empty string is not allowed"
    elif name in (".", ".."):
        reason = f"'{name}' is not allowed"
    elif len(name) > _MAX_TOPIC_NAME_LENGTH:
        reason = f"the length of '{name}' is longer than the max allowed length {_MAX_TOPIC_NAME_LENGTH}"
    elif not _LEGAL_TOPIC.fullmatch(name):
        reason = f"'{name}' contains one or more characters other than ASCII alphanumerics, '.', '_' and '-'"
    else:
        return None
    return f"Topic name is invalid: {reason}"


def validate_topic_name(name: str) -> None:
    """INVALID_TOPIC, in Topic.validate's words, for a name Kafka refuses."""
    message = invalid_topic_message(name)
    if message is not None:
        raise KafkaError(ErrorCode.INVALID_TOPIC, message)


class Storage:
    """All topics of one broker. `data_dir=None` keeps everything in memory; otherwise it is
    the first log directory, where the topic files live, and `more_dirs` the other ones.

    `is_async` is the engine seam's one switch: False here, where every call answers at once
    and handlers call inline; an engine whose partitions answer with coroutines
    (storage/postgresql/engine.py) says True, and handlers gather those.
    """

    is_async: ClassVar[bool] = False

    def __init__(
        self,
        data_dir: pathlib.Path | None,
        max_open_files: int = DEFAULT_LIMIT,
        defaults: Mapping[str, str] | None = None,
        more_dirs: Sequence[pathlib.Path] = (),
        producer_expiration_ms: int | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.log_dirs: list[pathlib.Path] = [] if data_dir is None else [data_dir, *more_dirs]
        if len({os.path.abspath(path) for path in self.log_dirs}) != len(self.log_dirs):
            raise ValueError(f"a log directory is named twice in {[str(path) for path in self.log_dirs]}")
        self.directory_ids: dict[pathlib.Path, bytes] = {}
        # While `_load` runs, the log directories whose clean-shutdown marker it found (Kafka's
        # hadCleanShutdownFlags): their partitions load as after a clean shutdown, not those created later.
        self._cleanly_shut_down: set[pathlib.Path] = set()
        # Failed directories, and the partitions that were in them (offline until a restart).
        self.offline_dirs: set[pathlib.Path] = set()
        self._offline: dict[tuple[str, int], pathlib.Path | None] = {}
        # The directory.id each partition was last placed in, from the topic files (several
        # directories only): a partition whose directory is gone (an unmounted disk) is
        # offline, not created again empty elsewhere, as Kafka's controller marks a replica
        # in a lost directory.
        self._assigned: dict[tuple[str, int], bytes] = {}
        # Each directory's identity when opened: a directory removed (or replaced) under the broker has failed.
        self._identities: dict[pathlib.Path, tuple[int, int]] = {}
        self._moves: dict[tuple[str, int], LogMove] = {}
        # The log directories cordoned.log.dirs names (KIP-1066): no new partition goes there
        # while another online one may take it (`set_cordoned_log_dirs`).
        self.cordoned_dirs: frozenset[pathlib.Path] = frozenset()
        # Broker-level values of topic configs (log.retention.hours, ...), under each topic's overrides.
        self.defaults = dict(defaults or {})
        # producer.id.expiration.ms, for the producers a log's snapshot holds at load (storage/log.py).
        self._producer_expiration_ms = producer_expiration_ms
        self._handles = FileHandles(max_open_files)
        self._topics: dict[str, TopicInfo] = {}
        self._by_id: dict[bytes, TopicInfo] = {}
        self._logs: dict[tuple[str, int], PartitionLog] = {}
        self._checkpointed_starts: dict[pathlib.Path, dict[tuple[str, int], int]] = {}
        self._checkpointed_dirty: dict[pathlib.Path, dict[tuple[str, int], int]] = {}
        self._checkpointed_recovery: dict[pathlib.Path, dict[tuple[str, int], int]] = {}
        # Held over the log start and cleaner checkpoints' writes, the recovery-point checkpoint's
        # hand-over to the flusher, and what `_checkpointed_*` say of them: a deletion's thread
        # rewrites them too (`_forget_deleted`), and deletions' `forgotten` says which to keep.
        self._checkpoint_lock = threading.RLock()
        # Takes the fsyncs of rolled segments off the caller's thread (storage/flusher.py).
        self._flusher = Flusher() if data_dir is not None else None
        # The recovery-point checkpoint handed to the flusher when a topic of a failed deletion's
        # name was created (see _open_partitions, `_drop_failed_deletion`).
        self._deletion_checkpoint: FlushJob | None = None
        # Deletions whose topic file refused: the checkpoints keep their entries, the topic coming
        # back at the next start, until then or until a topic of the name (`_drop_failed_deletion`).
        self._failed_deletions: dict[str, TopicDeletion] = {}
        # Where each partition found at load lives, and the duplicates a crashed move left.
        self._found: dict[tuple[str, int], list[pathlib.Path]] = {}
        self._found_futures: dict[tuple[str, int], list[pathlib.Path]] = {}
        # Partition directories of deleted topics, each with the time it may be removed.
        self._deleted_directories: list[tuple[int, pathlib.Path]] = []
        # Deletions begun whose files may not be done yet (`begin_deletion`), by topic name.
        self._deletions: dict[str, TopicDeletion] = {}
        # Topics reserved by `reserve_topic` whose files are being written: their names are taken.
        self._reserved: dict[str, TopicInfo] = {}
        # Their partitions' logs, once `write_topic_files` opened them (on its thread).
        self._opened: dict[str, list[PartitionLog]] = {}
        # Topics growing by `reserve_partitions`, their files being written (`finish_growth`).
        self._growing: dict[str, PartitionGrowth] = {}
        # How many `write_topic_files` and `write_partition_files` calls are under way, on any
        # thread: `close` waits for them.
        self._writing = 0
        self._writes_done = threading.Condition()
        self._closed = False
        # Each log directory's `.lock`, held from open to close.
        self.locks = DirectoryLocks()
        # Grows with every change to the set of topics or to one's partitions: whoever derives
        # something from the topic list (resolved regex subscriptions) recomputes it only then.
        self.topics_version = 0
        # Told of each topic deleted, once it is gone (and over a shared database, of those
        # another broker deleted): the group coordinator drops its committed offsets there.
        self.deletion_listeners: list[Callable[[TopicInfo], None]] = []

    @classmethod
    def open(
        cls,
        data_dir: pathlib.Path | None,
        max_open_files: int = DEFAULT_LIMIT,
        defaults: Mapping[str, str] | None = None,
        more_dirs: Sequence[pathlib.Path] = (),
        meta_properties: Mapping[str, str] | None = None,
        producer_expiration_ms: int | None = None,
    ) -> Storage:
        """Load (or create) log directories; `None` keeps everything in memory.
        `max_open_files` bounds the descriptors held for segments and indexes;
        `defaults` are the broker's topic config values, under each topic's overrides;
        `meta_properties` (node.id, cluster.id) go into a new directory's meta.properties;
        `producer_expiration_ms` (producer.id.expiration.ms) drops the producers expired in the
        snapshots loaded (None keeps them)."""
        storage = cls(data_dir, max_open_files, defaults, more_dirs, producer_expiration_ms)
        if data_dir is not None:
            try:
                storage._load(meta_properties or {})
            except BaseException:
                storage.locks.release()
                raise
        return storage

    def _load(self, meta_properties: Mapping[str, str]) -> None:
        """Read the topics; first remove, in every directory, what a crash or a restart left
        for deletion (Kafka's LogManager does the same with `-delete` directories) and
        interrupted replacements, and note where each partition and future log is.

        A directory's clean-shutdown marker is removed, durably, before any of its logs is
        opened (Kafka's LogManager.loadLogs deletes it first): a crash at any time
        after this start must find the directory unclean. Its partitions then load as after a
        clean shutdown (PartitionLog's `clean_shutdown`)."""
        assert self.data_dir is not None
        for log_dir in self.log_dirs:
            if not log_dir.is_dir():
                # A new log directory's entry made durable, as Kafka's LogManager.createAndValidateLogDirs.
                log_dir.mkdir(parents=True)
                fsync_directory(log_dir.parent)
            self.locks.take(log_dir)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(log_dir / _CLEAN_SHUTDOWN)
                fsync_directory(log_dir)
                self._cleanly_shut_down.add(log_dir)
            self.directory_ids[log_dir] = _directory_id(log_dir, meta_properties)
            stat = log_dir.stat()
            self._identities[log_dir] = (stat.st_dev, stat.st_ino)
            for entry in os.scandir(log_dir):
                if entry.name.endswith(_DELETE_DIR_SUFFIX) and entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                elif entry.name.endswith(TEMPORARY_SUFFIX) and entry.is_file(follow_symlinks=False):
                    os.unlink(entry.path)
                elif entry.is_dir(follow_symlinks=False):
                    future_name = FUTURE_DIR_PATTERN.fullmatch(entry.name)
                    if future_name is not None:
                        self._found_futures.setdefault((future_name[1], int(future_name[2])), []).append(log_dir / entry.name)
                    else:
                        topic, _, index = entry.name.rpartition("-")
                        if topic and index.isdigit():
                            self._found.setdefault((topic, int(index)), []).append(log_dir)
            self._checkpointed_starts[log_dir] = _read_checkpoint(log_dir / _LOG_START_CHECKPOINT)
            self._checkpointed_dirty[log_dir] = _read_checkpoint(log_dir / _CLEANER_CHECKPOINT)
            self._checkpointed_recovery[log_dir] = _read_checkpoint(log_dir / _RECOVERY_POINT_CHECKPOINT)
        for path in sorted(self.data_dir.glob("*" + _TOPIC_SUFFIX)):
            stored = json.loads(path.read_bytes())
            info = TopicInfo(stored["name"], bytes.fromhex(stored["topic_id"]), stored["partitions"], stored["configs"])
            for partition, directory_id in enumerate(stored.get("directories", [])):
                if directory_id is not None:
                    self._assigned[(info.name, partition)] = bytes.fromhex(directory_id)
            self._register(info)
        # A move a crash cut short starts again from scratch (Kafka resumes its future log).
        for key, futures in self._found_futures.items():
            log = self._logs.get(key)
            for future in futures:
                shutil.rmtree(future)
                if log is not None and log.directory is not None and future.parent != log.directory.parent:
                    self.alter_log_dir(key[0], key[1], future.parent)
        self._found.clear()
        self._found_futures.clear()
        self._cleanly_shut_down.clear()
        self._forget_stale_recovery_points()
        # The log start and cleaner checkpoints forget partitions no topic holds too (a crash
        # after a deletion's topic file went, before they forgot it): a topic created again
        # under the name would take the old offsets.
        self._write_checkpoints()

    def _forget_stale_recovery_points(self) -> None:
        """Rewrite, now, each directory's recovery-point checkpoint that names a partition the
        directory does not hold (a topic deleted just before a crash, the checkpoint that
        forgot it never written): a partition created again under that name would otherwise
        find the old point there after a crash within the checkpoint interval, and its
        unsynced segments below it would be trusted unchecked."""
        for log_dir, points in self._checkpointed_recovery.items():
            if log_dir in self.offline_dirs:
                continue
            held = {key: point for key, point in points.items() if (log := self._logs.get(key)) is not None and log.directory is not None
                    and log.directory.parent == log_dir}
            if held != points:
                try:
                    _write_checkpoint(log_dir / _RECOVERY_POINT_CHECKPOINT, held)
                except OSError as error:
                    if not out_of_space(error):
                        self.fail_log_dir(log_dir)
                    continue
                self._checkpointed_recovery[log_dir] = held

    def _register(self, info: TopicInfo) -> None:
        self._topics[info.name] = info
        self.topics_version += 1
        self._by_id[info.topic_id] = info
        config = LogConfig.from_overrides({**self.defaults, **info.configs})
        self._open_partitions(info, config, range(info.partitions))

    def _open_partitions(self, info: TopicInfo, config: LogConfig, indexes: range) -> None:
        """Open (or create) the partitions. A checkpoint still on its way to disk may be the
        one that forgets a deleted topic: a new partition of the same name waits for it, or
        a crash would find the old partition's recovery point and trust the new one's
        unsynced segments below it. The log directories where partition directories were
        created are fsynced, once each, before any record is appended: otherwise a power loss
        could take a partition's whole directory, records its flushes made durable included
        (Kafka leaves that entry to its next recovery-point checkpoint)."""
        if self._deletion_checkpoint is not None:
            self._deletion_checkpoint.wait()
        created: dict[pathlib.Path, None] = {}
        for index in indexes:
            key = (info.name, index)
            if self.data_dir is None:
                self._logs[key] = self._open_log(info, index, None, config)
                continue
            found = self._found.get(key, [])
            if len(found) > 1:
                log = self._keep_one_copy(info, index, found, config)
            else:
                log_dir = found[0] if found else self._assigned_log_dir(key)
                if log_dir is None or log_dir in self.offline_dirs:
                    self._offline[key] = log_dir
                    continue
                if not found and not (log_dir / f"{info.name}-{index}").is_dir():
                    created[log_dir] = None
                log = self._open_log(info, index, log_dir, config)
            self._logs[key] = log
            assert log.directory is not None
            _write_partition_metadata(log.directory, info.topic_id)
        for log_dir in created:
            fsync_directory(log_dir)

    def _open_log(self, info: TopicInfo, index: int, log_dir: pathlib.Path | None, config: LogConfig, fresh: bool = False) -> PartitionLog:
        """The partition's log, with its checkpointed offsets unless `fresh` (a new partition,
        its first segment already written: a deleted topic's stale log start under the same
        name would otherwise replace that segment with one starting there)."""
        key = (info.name, index)
        checkpointed = None if fresh else log_dir
        log = PartitionLog(
            None if log_dir is None else log_dir / f"{info.name}-{index}",
            config,
            self._handles,
            log_start_offset=self._checkpointed_starts.get(checkpointed, {}).get(key, 0) if checkpointed is not None else 0,
            first_dirty_offset=self._checkpointed_dirty.get(checkpointed, {}).get(key, 0) if checkpointed is not None else 0,
            on_checkpoint=self._write_checkpoints,
            topic_partition=f"{info.name}-{index}",
            flusher=self._flusher,
            recovery_point=self._checkpointed_recovery.get(checkpointed, {}).get(key, 0) if checkpointed is not None else 0,
            producer_expiration_ms=self._producer_expiration_ms,
            clean_shutdown=checkpointed in self._cleanly_shut_down,
        )
        if log_dir is not None:
            log.on_storage_error = lambda: self.fail_log_dir(log_dir)
        return log

    def _keep_one_copy(self, info: TopicInfo, index: int, found: list[pathlib.Path], config: LogConfig) -> PartitionLog:
        """A crash between the two renames of a move's swap left the partition in two
        directories, each whole (storage/relocation.py): keep the one reaching further (the
        new one, fsynced before its rename; the old may have lost an unflushed tail), and
        set the other aside for deletion as the swap would have."""
        logs = [self._open_log(info, index, log_dir, config) for log_dir in found]
        kept = max(logs, key=lambda log: log.log_end_offset)
        for log in logs:
            if log is not kept:
                assert log.directory is not None
                log.close()
                shutil.rmtree(log.directory)
        return kept

    def _assigned_log_dir(self, key: tuple[str, int]) -> pathlib.Path | None:
        """Where a partition found in no directory goes: the directory it was placed in
        (its files never made it there, or were removed), None when that directory is no
        longer among the log directories; a new partition's place (`_next_log_dir`)."""
        assigned = self._assigned.get(key)
        if assigned is None:
            return self._next_log_dir(key[0])
        return next((log_dir for log_dir, directory_id in self.directory_ids.items() if directory_id == assigned), None)

    def _next_log_dir(self, topic: str) -> pathlib.Path:
        """Kafka's LogManager.nextLogDirs: the online directory not cordoned holding the
        fewest logs, future logs counted; ties go to the first named in `log.dirs`. With one
        online directory, or every online one cordoned, the first online one (the controller
        refuses such a placement first: `has_uncordoned_dirs`). Divergence: internal topics
        (`__consumer_offsets`, `__transaction_state`, ...) go to the first directory unless
        it is cordoned, with the broker's own files, so that the coordinators' state fails
        (or survives) with the rest of it, as Kafka's metadata log lives in `metadata.log.dir`."""
        online = [log_dir for log_dir in self.log_dirs if log_dir not in self.offline_dirs]
        if not online:
            raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, "every log directory is offline")
        online = [log_dir for log_dir in online if log_dir not in self.cordoned_dirs] or online[:1]
        if len(online) == 1 or (topic.startswith("__") and online[0] == self.log_dirs[0]):
            return online[0]
        counts = dict.fromkeys(online, 0)
        for key, log_dirs in self._found.items():
            if key not in self._logs:
                for log_dir in log_dirs:
                    if log_dir in counts:
                        counts[log_dir] += 1
        for log in self._logs.values():
            if log.directory is not None and log.directory.parent in counts:
                counts[log.directory.parent] += 1
        for move in self._moves.values():
            if move.destination in counts:
                counts[move.destination] += 1
        return min(online, key=lambda log_dir: counts[log_dir])

    def create_topic(self, name: str, partitions: int, configs: dict[str, str] | None = None) -> TopicInfo:
        return self.create_topic_in_request(name, partitions, configs, ())

    def create_topic_in_request(self, name: str, partitions: int, configs: dict[str, str] | None, siblings: Collection[str]) -> TopicInfo:
        """`create_topic` for one of the topics a request creates, `siblings` those it created
        or reserved before (`check_name_free`). Called by the handlers of engines that are not
        `is_async` alone: an engine's override of `create_topic` is not consulted."""
        info = self._new_topic(name, partitions, configs, siblings)
        self._finish_deletion_of(name)
        for log_dir in self.log_dirs:
            for index in range(partitions):
                # Left by a deletion that crashed before removing its directories: a new topic starts empty.
                shutil.rmtree(log_dir / f"{name}-{index}", ignore_errors=True)
        self._write_topic_file(info)
        self._register(info)
        if len(self.log_dirs) > 1:
            self._write_topic_file(info)  # now with the directories the partitions went to
        return info

    def check_name_free(self, name: str, siblings: Collection[str] = ()) -> None:
        """KafkaError unless a topic may be created under `name`, as Kafka's
        ReplicationControlManager judges it: a legal name (INVALID_TOPIC), no topic of that name
        (TOPIC_ALREADY_EXISTS), and none that differs from it only by '.' and '_'
        (INVALID_TOPIC): their metric names would be the same. `siblings` are the topics the
        same request created (or reserved) before this one, which it never collides with: Kafka's
        controller judges every name of a CreateTopics (a broker's auto-creation sends one per
        Metadata request) against the topics it had before the request
        (validateNewTopicNames reads topicsWithCollisionChars, which the request's own topics
        join only when its records are replayed), so `t.1` and `t_1` asked together are both created."""
        validate_topic_name(name)
        if name in self._topics or name in self._reserved:
            raise KafkaError(ErrorCode.TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists.")
        if "." in name or "_" in name:
            unified = name.replace(".", "_")
            for existing in (*self._topics, *self._reserved):
                if existing.replace(".", "_") == unified and existing not in siblings:
                    raise KafkaError(ErrorCode.INVALID_TOPIC, f"Topic '{name}' collides with existing topic: {existing}")

    def _new_topic(self, name: str, partitions: int, configs: dict[str, str] | None, siblings: Collection[str]) -> TopicInfo:
        """A topic that may be created, with a new id; KafkaError if it may not."""
        self.check_name_free(name, siblings)
        if partitions <= 0:
            raise KafkaError(ErrorCode.INVALID_PARTITIONS, f"number of partitions must be positive, got {partitions}")
        overrides = dict(configs or {})
        LogConfig.from_overrides({**self.defaults, **overrides})
        self._drop_failed_deletion(name)
        return TopicInfo(name, _random_uuid(), partitions, overrides)

    @property
    def creates_in_steps(self) -> bool:
        """Whether `reserve_topic` reserves: not in memory (nothing to fsync), nor with the
        directory offline, nor over several log directories (placement reads state the
        caller's thread changes)."""
        return self.data_dir is not None and len(self.log_dirs) == 1 and not self.offline_dirs

    def reserve_topic(
        self, name: str, partitions: int, configs: dict[str, str] | None = None, siblings: Collection[str] = ()
    ) -> TopicInfo | None:
        """`create_topic` in three steps, so that its fsyncs (two per partition, two for the
        topic file) can run on another thread than the caller's: this one checks the topic and
        takes its name (KafkaError as `create_topic`), `write_topic_files` (on any thread) writes
        its files, `open_reserved_topic` (on this one) makes it a topic; `release_topic` gives
        the name back instead. None, and nothing reserved, where the topic must be created by
        `create_topic` alone (`creates_in_steps` false)."""
        if not self.creates_in_steps:
            return None
        info = self._new_topic(name, partitions, configs, siblings)
        self._reserved[name] = info
        return info

    def write_topic_files(self, topics: Sequence[TopicInfo]) -> None:
        """On any thread: reserved topics' partition directories, each with its first segment's
        files and its durable partition.metadata (`_create_partition_files`), then each topic
        file, durably (a crash between leaves directories no topic claims, as a deletion's crash
        does); then each topic's partition logs, opened (`_open_new_logs`) for
        `open_reserved_topic`. Touches no state of the storage's but those logs' place and the
        count `close` waits on. A deletion checkpoint still on its way is waited for first, as
        `_open_partitions` would, and so is the file work of a deletion of a topic of the same
        name (`_finish_deletion_of`)."""
        assert self.data_dir is not None
        with self._writing_files():
            for info in topics:
                self._finish_deletion_of(info.name)
                for index in range(info.partitions):
                    directory = self.data_dir / f"{info.name}-{index}"
                    # Left by a deletion that crashed before removing its directories: a new topic starts empty.
                    shutil.rmtree(directory, ignore_errors=True)
                    directory.mkdir()
                    _create_partition_files(directory, info.topic_id)
            for info in topics:
                self._write_topic_file(info)
            for info in topics:
                self._opened[info.name] = self._open_new_logs(info, range(info.partitions))

    def _open_new_logs(self, info: TopicInfo, indexes: range) -> list[PartitionLog]:
        """On the writing thread: the logs of new partitions over the files just written, so
        that the caller's thread (the event loop) only files them (`_adopt_logs`): opening 500
        partitions costs tens of milliseconds of listings, opens and index reads. The descriptor
        cache is the caller's thread's alone: here descriptors are opened outside it
        (FileHandles.uncached), and the logs ask for them again through it once adopted."""
        assert self.data_dir is not None
        config = LogConfig.from_overrides({**self.defaults, **info.configs})
        with self._handles.uncached():
            return [self._open_log(info, index, self.data_dir, config, fresh=True) for index in indexes]

    def _adopt_logs(self, info: TopicInfo, first: int, logs: Sequence[PartitionLog]) -> None:
        """On the caller's thread: logs `_open_new_logs` opened become partitions `first`,
        `first + 1`, ... of the topic, with its config as it is now (the broker's defaults may
        have changed meanwhile), or offline if their log directory failed meanwhile."""
        assert self.data_dir is not None
        config = LogConfig.from_overrides({**self.defaults, **info.configs})
        offline = self.data_dir in self.offline_dirs
        for index, log in enumerate(logs, first):
            if offline:
                self._offline[(info.name, index)] = self.data_dir
                continue
            if log.config != config:
                log.config = config
            self._logs[(info.name, index)] = log

    @contextlib.contextmanager
    def _writing_files(self) -> Iterator[None]:
        """On any thread, around file work for the caller's thread: counted for `close` to
        wait on (KAFKA_STORAGE_ERROR once closed), after a deletion checkpoint on its way, as
        `_open_partitions` waits for it."""
        with self._writes_done:
            if self._closed:
                raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, "the storage is closed")
            self._writing += 1
        try:
            checkpoint = self._deletion_checkpoint
            if checkpoint is not None:
                checkpoint.wait()
            yield
        finally:
            with self._writes_done:
                self._writing -= 1
                self._writes_done.notify_all()

    def open_reserved_topic(self, info: TopicInfo) -> TopicInfo | None:
        """A reserved topic whose files are written becomes a topic, its partitions the logs
        `write_topic_files` opened for it, all at once; None when the storage closed meanwhile
        (the logs, holding no descriptor, are dropped)."""
        del self._reserved[info.name]
        logs = self._opened.pop(info.name)
        if self._closed:
            return None
        self._topics[info.name] = info
        self.topics_version += 1
        self._by_id[info.topic_id] = info
        self._adopt_logs(info, 0, logs)
        return info

    def release_topic(self, info: TopicInfo) -> None:
        """Give back a reserved topic's name (its files could not be written)."""
        self._reserved.pop(info.name, None)
        self._opened.pop(info.name, None)

    def _write_topic_file(self, info: TopicInfo) -> None:
        if self.data_dir is not None:
            stored: dict[str, object] = {"name": info.name, "topic_id": info.topic_id.hex(), "partitions": info.partitions, "configs": info.configs}
            if len(self.log_dirs) > 1:
                stored["directories"] = [self._directory_id_of((info.name, index)) for index in range(info.partitions)]
            replace_file(self.data_dir / (info.name + _TOPIC_SUFFIX), json.dumps(stored, indent=1).encode())

    def _directory_id_of(self, key: tuple[str, int]) -> str | None:
        """The directory.id (hex) of the directory holding the partition, as last known."""
        log = self._logs.get(key)
        if log is not None and log.directory is not None:
            self._assigned[key] = self.directory_ids[log.directory.parent]
        assigned = self._assigned.get(key)
        return None if assigned is None else assigned.hex()

    def _existing(self, name: str) -> TopicInfo:
        info = self._topics.get(name)
        if info is None:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"unknown topic {name!r}")
        return info

    def _replace(self, info: TopicInfo) -> None:
        self._topics[info.name] = info
        self.topics_version += 1
        self._by_id[info.topic_id] = info

    def set_topic_configs(self, name: str, configs: Mapping[str, str]) -> TopicInfo:
        """Replace a topic's config overrides (persisted); every partition log uses them at once."""
        self.finish_growth(name)
        info = self._existing(name)
        overrides = dict(configs)
        config = LogConfig.from_overrides({**self.defaults, **overrides})
        updated = TopicInfo(info.name, info.topic_id, info.partitions, overrides)
        self._write_topic_file(updated)
        self._replace(updated)
        for index in range(info.partitions):
            log = self._logs.get((name, index))
            if log is not None:
                log.config = config
        return updated

    def set_defaults(self, defaults: Mapping[str, str]) -> None:
        """Replace the broker-level values of topic configs (dynamic broker configs): every
        partition log of a topic without its own override of a key uses the new value at once.
        A set the broker checked key by key may still be refused here as a whole (segment.bytes
        below Kafka's floor, say): then nothing changes and the KafkaError is raised."""
        configs = {name: LogConfig.from_overrides({**defaults, **info.configs}) for name, info in self._topics.items()}
        LogConfig.from_overrides(dict(defaults))
        self.defaults = dict(defaults)
        for (name, _), log in self._logs.items():
            log.config = configs[name]

    def set_cordoned_log_dirs(self, paths: Collection[pathlib.Path]) -> None:
        """The broker's cordoned.log.dirs as it now runs with it (LogManager
        .updateCordonedLogDirs): the log directories among `paths`, compared as absolute paths."""
        wanted = {os.path.abspath(path) for path in paths}
        self.cordoned_dirs = frozenset(log_dir for log_dir in self.log_dirs if os.path.abspath(log_dir) in wanted)

    def has_uncordoned_dirs(self) -> bool:
        """Kafka's BrokerRegistration.hasUncordonedDirs: whether a new replica may be placed
        here, some log directory (offline or not) not cordoned; always in memory (no directory)."""
        return not self.log_dirs or any(log_dir not in self.cordoned_dirs for log_dir in self.log_dirs)

    def add_partitions(self, name: str, total: int) -> TopicInfo:
        """Grow a topic to `total` partitions (CreatePartitions); existing ones are untouched.
        The topic file is written first, so a crash leaves empty partitions, never lost ones."""
        info, updated = self._growth(name, total)
        self._write_topic_file(updated)
        self._replace(updated)
        config = LogConfig.from_overrides({**self.defaults, **info.configs})
        self._open_partitions(updated, config, range(info.partitions, total))
        if len(self.log_dirs) > 1:
            self._write_topic_file(updated)
        return updated

    def _growth(self, name: str, total: int) -> tuple[TopicInfo, TopicInfo]:
        """The topic (a growth under way finished first) and what it becomes with `total`
        partitions; INVALID_PARTITIONS unless that grows it."""
        self.finish_growth(name)
        info = self._existing(name)
        if total <= info.partitions:
            raise KafkaError(ErrorCode.INVALID_PARTITIONS, f"topic {name!r} has {info.partitions} partitions, cannot grow to {total}")
        return info, TopicInfo(info.name, info.topic_id, total, info.configs)

    def reserve_partitions(self, name: str, total: int) -> PartitionGrowth | None:
        """`add_partitions` in steps, as `reserve_topic` creates a topic, so that its fsyncs
        (two for the topic file, two per new partition) can run on another thread than the
        caller's: this one checks the growth (KafkaError as `add_partitions`) and marks the
        topic growing, `write_partition_files` (on any thread) writes the files,
        `open_grown_partitions` (on this one) opens the partitions. Until then the topic keeps
        its old count, and whatever else writes its file or changes it (`set_topic_configs`,
        `delete_topic`, another growth) first waits for the files (`finish_growth`), so the
        topic file never goes back to an older content. None, and nothing reserved, where
        `add_partitions` must do it alone (`creates_in_steps` false)."""
        info, updated = self._growth(name, total)
        if not self.creates_in_steps:
            return None
        growth = PartitionGrowth(info, updated)
        self._growing[name] = growth
        return growth

    def write_partition_files(self, growth: PartitionGrowth) -> None:
        """On any thread: a reserved growth's topic file, durably, then each new partition's
        directory with its first segment's files and durable partition.metadata
        (`_create_partition_files`), and the log directory's entries (the order of
        `add_partitions` and `_open_partitions`: a crash leaves empty partitions, never lost
        ones); then the new partitions' logs, opened into `growth.logs` (`_open_new_logs`).
        Touches no state of the storage's but the count `close` waits on; a deletion checkpoint
        on its way is waited for first, as `_open_partitions` would."""
        assert self.data_dir is not None
        try:
            with self._writing_files():
                self._write_topic_file(growth.grown)
                for index in range(growth.before.partitions, growth.grown.partitions):
                    directory = self.data_dir / f"{growth.grown.name}-{index}"
                    directory.mkdir(exist_ok=True)
                    _create_partition_files(directory, growth.grown.topic_id)
                fsync_directory(self.data_dir)
                growth.logs = self._open_new_logs(growth.grown, range(growth.before.partitions, growth.grown.partitions))
        except BaseException as error:
            growth.failure = error
            raise
        finally:
            growth.written.set()

    def open_grown_partitions(self, growth: PartitionGrowth) -> TopicInfo | None:
        """Once `write_partition_files` is done: the topic grown, its new partitions the logs
        that opened, all at once; None when the storage closed meanwhile; KAFKA_STORAGE_ERROR
        when the files could not be written or the logs opened (the topic keeps its old count:
        a topic file already naming the new partitions gives empty ones after a restart).
        Applied once: after `finish_growth` applied it, the same outcome."""
        if self._growing.get(growth.grown.name) is growth:
            del self._growing[growth.grown.name]
            growth.outcome = self._apply_growth(growth)
        if isinstance(growth.outcome, KafkaError):
            raise growth.outcome
        return growth.outcome

    def release_growth(self, growth: PartitionGrowth) -> None:
        """Forget a reserved growth whose files were never handed to a thread."""
        if self._growing.get(growth.grown.name) is growth:
            del self._growing[growth.grown.name]
            growth.written.set()
            growth.outcome = KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, "the partitions' files could not be written")

    def finish_growth(self, name: str) -> None:
        """Wait for the files of the topic's growth under way, if any, and apply it. Blocks
        the caller for the rest of that file work: only a request changing the same topic
        meanwhile waits, not every request."""
        growth = self._growing.pop(name, None)
        if growth is not None:
            growth.written.wait()
            growth.outcome = self._apply_growth(growth)

    def _apply_growth(self, growth: PartitionGrowth) -> TopicInfo | KafkaError | None:
        if isinstance(growth.failure, KafkaError):
            return growth.failure
        if growth.failure is not None:
            reason = growth.failure.strerror if isinstance(growth.failure, OSError) else str(growth.failure)
            return KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, f"the partitions' files could not be written: {reason}")
        if self._closed:
            return None
        grown = growth.grown
        self._replace(grown)
        self._adopt_logs(grown, growth.before.partitions, growth.logs)
        return grown

    def delete_topic(self, name: str, now_ms: int | None = None) -> None:
        """DeleteTopics. On disk, as Kafka's LogManager.asyncDelete: each partition's directory
        is renamed `<topic>-<partition>.<uuid>-delete` at once (so the name is free for a new
        topic) and removed by `delete_expired_files` after the broker's file.delete.delay.ms,
        counted from `now_ms`, so that fetch answers already cut from it are sent whole. In
        three steps for a caller that runs the file work on another thread: `begin_deletion`,
        `TopicDeletion.run`, `finish_deletion`."""
        deletion = self.begin_deletion(name, now_ms)
        if deletion is not None:
            deletion.run()
            self.finish_deletion(deletion)

    def begin_deletion(self, name: str, now_ms: int | None = None) -> TopicDeletion | None:
        """`delete_topic`'s part on the caller's thread: the topic is gone from then on (and its
        name free), its logs ended with their descriptors and maps released
        (PartitionLog.release_for_deletion); the file work, and the checkpoints' forgetting it
        once its files are renamed, is the TopicDeletion's (None in memory, where nothing is left
        to do). A topic created under the same name runs it first (`_finish_deletion_of`)."""
        self.finish_growth(name)
        info = self._topics.pop(name, None)
        if info is None:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"unknown topic {name!r}")
        self.topics_version += 1
        del self._by_id[info.topic_id]
        for index in range(info.partitions):
            self._offline.pop((name, index), None)
            self._assigned.pop((name, index), None)
            self._cancel_move((name, index))
        logs = [(index, log) for index in range(info.partitions) if (log := self._logs.pop((name, index), None)) is not None]
        for listener in self.deletion_listeners:
            listener(info)
        if self.data_dir is None:
            for _, log in logs:
                log.delete()
            return None
        now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        due = now + LogConfig.from_overrides(self.defaults).file_delete_delay_ms
        moves: list[tuple[pathlib.Path, list[DiskFile]]] = []
        checkpointed: dict[pathlib.Path, _CheckpointEntries] = {}
        with self._handles.closes_deferred() as descriptors:
            for index, log in logs:
                assert log.directory is not None
                log_dir = self._log_dir_holding(log.directory)
                starts, dirty, recovery = checkpointed.setdefault(log_dir, ({}, {}, {}))
                _checkpoint_entries((name, index), log, starts, dirty)
                # The point on disk, not the log's latest: what a crash would find is all there is to keep.
                point = self._checkpointed_recovery.get(log_dir, {}).get((name, index))
                if point is not None:
                    recovery[(name, index)] = point
                moves.append((log.directory, log.release_for_deletion()))
        checkpointed = {log_dir: entries for log_dir, entries in checkpointed.items() if any(entries)}
        deletion = TopicDeletion(name, self.data_dir / (name + _TOPIC_SUFFIX), moves, due, checkpointed, self._forget_deleted, descriptors)
        self._deletions[name] = deletion
        # The other partitions' recovery points, as a deletion checkpoints them (the topic's own
        # kept until its files are renamed: `_remembered_entries`).
        self.checkpoint_recovery_points()
        return deletion

    def finish_deletion(self, deletion: TopicDeletion) -> None:
        """On the caller's thread, once `deletion` has run: its renamed directories are removed
        after file.delete.delay.ms, and a log directory whose files refused goes offline (a full
        disk aside), as a failed write takes it (Kafka's LogDirFailureChannel). If its topic file
        refused, the checkpoints keep its entries (`_failed_deletions`)."""
        if self._deletions.get(deletion.name) is deletion:
            del self._deletions[deletion.name]
        if set(deletion.checkpointed) - deletion.forgotten:
            with self._checkpoint_lock:
                self._failed_deletions[deletion.name] = deletion
        self._deleted_directories += [(deletion.due, destination) for destination in deletion.renamed]
        for log_dir, error in deletion.failed.items():
            if not out_of_space(error):
                self.fail_log_dir(log_dir)

    def _drop_failed_deletion(self, name: str) -> None:
        """On the caller's thread, before a topic named `name` is created: the entries a failed
        deletion of an earlier one kept go from the checkpoints, durably before the new
        partitions open (`_deletion_checkpoint`), or they would take the old offsets."""
        with self._checkpoint_lock:
            dropped = self._failed_deletions.pop(name, None)
        if dropped is not None:
            self._write_checkpoints()
            self._deletion_checkpoint = self.checkpoint_recovery_points() or self._deletion_checkpoint

    def _finish_deletion_of(self, name: str) -> None:
        """On any thread, before a topic named `name` gets files: a deletion of an earlier one
        still renaming its directories is done first (here, or waited for), so that the new
        partitions' directories never meet the old ones, nor their log starts the old ones'."""
        deletion = self._deletions.get(name)
        if deletion is not None:
            deletion.run()

    def delete_expired_files(self, now_ms: int) -> int:
        """Remove what deletions set aside (segments renamed `.deleted`, deleted topics'
        `-delete` directories) once their file.delete.delay.ms has passed at `now_ms`: the
        broker calls this on its schedule, as Kafka schedules each asynchronous delete.
        Returns the number of segments and directories removed."""
        taken = self.take_expired_files(now_ms)
        for paths in taken:
            remove_paths(paths)
        return len(taken)

    def take_expired_files(self, now_ms: int) -> list[list[pathlib.Path]]:
        """`delete_expired_files` without the removal: what is due, one list per segment or
        directory, forgotten here with descriptors released, for `files.remove_paths` to
        remove on any thread (as Kafka's scheduler thread does), the caller's going on."""
        taken = [paths for log in self._logs.values() for paths in log.take_expired_files(now_ms)]
        expired = [directory for due, directory in self._deleted_directories if due <= now_ms]
        if expired:
            self._deleted_directories = [(due, directory) for due, directory in self._deleted_directories if due > now_ms]
            taken += [[directory] for directory in expired]
        return taken

    def topic(self, name: str) -> TopicInfo | None:
        return self._topics.get(name)

    def topic_by_id(self, topic_id: bytes) -> TopicInfo | None:
        return self._by_id.get(topic_id)

    def topics(self) -> list[TopicInfo]:
        return list(self._topics.values())

    def is_database_topic(self, name: str) -> bool:
        """Whether the topic's partitions answer with coroutines (an `is_async` engine's): none here."""
        return False

    def partition(self, topic: str, index: int) -> PartitionLog:
        """The partition's log; KAFKA_STORAGE_ERROR when its log directory failed."""
        log = self._logs.get((topic, index))
        if log is None:
            if (topic, index) in self._offline:
                raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, f"partition {topic}-{index} is in an offline log directory")
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"unknown partition {topic}-{index}")
        return log

    @property
    def has_offline_partitions(self) -> bool:
        return bool(self._offline)

    def is_offline(self, topic: str, index: int) -> bool:
        """Whether the partition's log directory failed (Metadata's offline_replicas)."""
        return (topic, index) in self._offline

    def log_dir_states(self) -> list[LogDirState]:
        """The log directories in `log.dirs` order (none in memory)."""
        return [LogDirState(path, self.directory_ids[path], path in self.offline_dirs) for path in self.log_dirs]

    def log_dir_of(self, topic: str, index: int) -> pathlib.Path | None:
        """The log directory holding the partition's current log (None in memory or offline)."""
        log = self._logs.get((topic, index))
        return None if log is None or log.directory is None else log.directory.parent

    def future_log(self, topic: str, index: int) -> FutureLog | None:
        """The partition's future log while AlterReplicaLogDirs moves it, else None."""
        move = self._moves.get((topic, index))
        return None if move is None else FutureLog(move.destination, move.copied_bytes, move.offset_lag())

    def find_log_dir(self, path: str) -> pathlib.Path | None:
        """The log directory `path` names (as DescribeLogDirs reports it, or any spelling of it)."""
        try:
            wanted = pathlib.Path(path).resolve()
        except (OSError, ValueError):
            return None  # a path no file system takes (a NUL byte, a loop of links)
        return next((log_dir for log_dir in self.log_dirs if log_dir.resolve() == wanted), None)

    def alter_log_dir(self, topic: str, index: int, destination: pathlib.Path) -> None:
        """AlterReplicaLogDirs for one partition: start moving it to the log directory
        `destination` (one of `log_dirs`), replacing a move to another one under way; the
        broker's `copy_moves` does the work. Already there: nothing happens (Kafka's answer
        is NONE then too). Raises KAFKA_STORAGE_ERROR (the partition or destination
        offline), UNKNOWN_TOPIC_OR_PARTITION."""
        key = (topic, index)
        if destination in self.offline_dirs:
            raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, f"log directory {destination} is offline")
        log = self.partition(topic, index)
        assert log.directory is not None and destination in self.log_dirs
        current = self._moves.get(key)
        if current is not None and current.destination == destination:
            return
        self._cancel_move(key)
        if log.directory.parent == destination:
            return
        try:
            self._moves[key] = LogMove(log, destination / future_directory_name(topic, index))
        except OSError as error:
            if not out_of_space(error):
                self.fail_log_dir(destination)
            raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, f"cannot create a future log in {destination}: {error}") from error
        # The destination's checkpoints name the partition from now on, so a swap finds them there.
        self._write_checkpoints(force=True)

    def _cancel_move(self, key: tuple[str, int]) -> None:
        move = self._moves.pop(key, None)
        if move is not None:
            shutil.rmtree(move.future, ignore_errors=True)

    @property
    def moving(self) -> bool:
        """Whether AlterReplicaLogDirs left a partition to move (the broker then calls `copy_moves`)."""
        return bool(self._moves)

    def copy_moves(self, budget: int) -> int:
        """Copy up to `budget` bytes into future logs, shared between them; a future log
        left within its share of its current one is finished and swapped in at once, so
        appends to it wait no longer than one step's copy. Returns the bytes still to copy."""
        remaining = 0
        for key, move in list(self._moves.items()):
            share = max(budget // len(self._moves), 1)
            try:
                left = move.copy(share)
                if left <= share:
                    self._swap(key, move)
                    left = 0
            except OSError:
                # A directory gone or unwritable goes offline; any other error abandons the move.
                self.check_log_dirs()
                self._cancel_move(key)
                continue
            remaining += left
        return remaining

    def _swap(self, key: tuple[str, int], move: LogMove) -> None:
        """Kafka's LogManager.replaceCurrentWithFutureLog, crash-safe in this order: the
        future log made an exact durable copy, renamed to the partition's name, the old
        directory renamed `-delete`, removed after file.delete.delay.ms (storage/relocation.py)."""
        log = move.log
        assert log.directory is not None
        move.finish()
        target = move.destination / log.directory.name
        os.rename(move.future, target)
        fsync_directory(move.destination)
        del self._moves[key]
        source = log.directory.parent
        set_aside = source / _deletion_directory_name(*key)
        log.switch_directory(target, set_aside)
        log.on_storage_error = lambda: self.fail_log_dir(move.destination)
        os.rename(source / target.name, set_aside)
        fsync_directory(source)
        # Only now may the source's checkpoints forget the partition: until the rename both
        # copies are whole, and a restart may keep either (the destination's already name it).
        self._write_checkpoints(force=True)
        # The recovery points too, as Kafka's replaceCurrentWithFutureLog checkpoints the source's;
        # the destination's names the moved log at its point, all of it synced by `finish`, where
        # Kafka's has its future log's from the periodic checkpoint, which a copy here has not.
        self.checkpoint_recovery_points()
        self._write_topic_file(self._topics[key[0]])
        due = time.time_ns() // 1_000_000 + log.config.file_delete_delay_ms
        self._deleted_directories.append((due, set_aside))

    def fail_log_dir(self, log_dir: pathlib.Path) -> None:
        """Kafka's LogDirFailureChannel: the directory goes offline with every partition in
        it (KAFKA_STORAGE_ERROR from then on, until a restart), moves into it are dropped;
        the other directories go on."""
        if log_dir in self.offline_dirs or log_dir not in self.log_dirs:
            return
        self.offline_dirs.add(log_dir)
        for key, move in list(self._moves.items()):
            if move.destination == log_dir:
                self._cancel_move(key)
        for key, log in list(self._logs.items()):
            if log.directory is not None and log.directory.parent == log_dir:
                del self._logs[key]
                self._offline[key] = log_dir
                self._cancel_move(key)
                try:
                    log.close()
                except (OSError, KafkaError):
                    pass  # its files are out of reach: only the descriptors matter now

    def check_log_dirs(self, now_ms: int = 0) -> None:
        """Find directories removed or replaced under the broker (an unmounted disk): Kafka
        finds them at its next checkpoint write; here the broker asks every second."""
        for log_dir in self.log_dirs:
            if log_dir in self.offline_dirs:
                continue
            try:
                stat = log_dir.stat()
                alive = (stat.st_dev, stat.st_ino) == self._identities[log_dir] and os.access(log_dir, os.W_OK)
            except OSError:
                alive = False
            if not alive:
                self.fail_log_dir(log_dir)

    def enforce_retention(self, now_ms: int) -> int:
        """One pass of Kafka's retention check (log.retention.check.interval.ms is the
        server's schedule): delete segments past retention.ms / retention.bytes or
        below the log start offset. Returns the number of segments deleted."""
        return sum(log.enforce_retention(now_ms) for log in self._logs.values())

    def expire_producers(self, now_ms: int, expiration_ms: int) -> None:
        """producer.id.expiration.ms: every partition forgets producers idle that long."""
        for log in self._logs.values():
            log.expire_producers(now_ms, expiration_ms)

    def flush_if_due(self, now_ms: int) -> None:
        """Honour topics' flush.ms (Kafka's default never flushes: the OS does)."""
        for log in self._logs.values():
            log.flush_if_due(now_ms)

    def compact(self, now_ms: int) -> int:
        """One pass of the log cleaner over compacted topics (log.cleaner.backoff.ms is
        the server's schedule). Returns the number of records removed."""
        return run_steps(self.compaction_steps(now_ms))

    def compaction_steps(self, now_ms: int, map_capacity: int = DEFAULT_MAP_CAPACITY) -> Generator[None, None, int]:
        """`compact` a batch at a time (PartitionLog.clean_steps, each pass's offset map holding
        at most `map_capacity` keys), for a caller that serves clients between steps; a
        partition deleted meanwhile is passed over."""
        removed = 0
        for key, log in list(self._logs.items()):
            if self._logs.get(key) is log:
                removed += yield from log.clean_steps(now_ms, map_capacity)
        return removed

    def _write_checkpoints(self, force: bool = False) -> None:
        """Persist log start offsets that DeleteRecords moved past the first segment, and
        the cleaner's first dirty offsets, in Kafka's checkpoint files of each partition's
        directory (a future log's too, so a swap finds them there), when they change. A
        deleted topic's stay until its deletion forgets them (TopicDeletion), unless a partition
        of the same name holds them now."""
        if self.data_dir is None:
            return
        held: dict[pathlib.Path, list[tuple[tuple[str, int], PartitionLog]]] = {log_dir: [] for log_dir in self.log_dirs}
        for key, log in self._logs.items():
            if log.directory is not None:
                held[self._log_dir_holding(log.directory)].append((key, log))
        for key, move in self._moves.items():
            held[move.destination].append((key, move.log))
        failed: list[pathlib.Path] = []
        with self._checkpoint_lock:
            remembered = self._remembered_entries()
            for log_dir, logs in held.items():
                if log_dir in self.offline_dirs:
                    continue
                starts: dict[tuple[str, int], int] = {}
                dirty: dict[tuple[str, int], int] = {}
                for kept_starts, kept_dirty, _ in remembered.get(log_dir, ()):
                    starts.update(kept_starts)
                    dirty.update(kept_dirty)
                for key, log in logs:
                    starts.pop(key, None)
                    dirty.pop(key, None)
                    _checkpoint_entries(key, log, starts, dirty)
                try:
                    if force or starts != self._checkpointed_starts.get(log_dir):
                        _write_checkpoint(log_dir / _LOG_START_CHECKPOINT, starts)
                        self._checkpointed_starts[log_dir] = starts
                    if force or dirty != self._checkpointed_dirty.get(log_dir):
                        _write_checkpoint(log_dir / _CLEANER_CHECKPOINT, dirty)
                        self._checkpointed_dirty[log_dir] = dirty
                except OSError as error:
                    if not out_of_space(error):
                        failed.append(log_dir)
        for log_dir in failed:
            self.fail_log_dir(log_dir)

    def _remembered_entries(self) -> dict[pathlib.Path, list[_CheckpointEntries]]:
        """Under `_checkpoint_lock`: the entries deleted topics' partitions keep, by log
        directory, those of deletions under way or failed that the directory did not forget."""
        remembered: dict[pathlib.Path, list[_CheckpointEntries]] = {}
        for deletion in (*self._deletions.values(), *self._failed_deletions.values()):
            for log_dir, entries in deletion.checkpointed.items():
                if log_dir not in deletion.forgotten:
                    remembered.setdefault(log_dir, []).append(entries)
        return remembered

    def _forget_deleted(self, deletion: TopicDeletion) -> None:
        """On the deletion's thread, its files renamed: rewrite the checkpoints that hold its
        partitions without them (the recovery points' on the flusher, in order with the
        caller's, waited for), as Kafka's LogManager.asyncDelete checkpoints a directory's
        recovery points and log starts after the rename. A file that refuses is the deletion's
        failure (`finish_deletion`); the next write on the caller's thread, which counts the
        deletion's entries no more, tries it again."""
        jobs: list[tuple[pathlib.Path, FlushJob]] = []
        with self._checkpoint_lock:
            for log_dir, (gone_starts, gone_dirty, gone_points) in deletion.checkpointed.items():
                if log_dir in self.offline_dirs:
                    continue
                deletion.forgotten.add(log_dir)
                try:
                    for checkpoint, written, gone in ((_LOG_START_CHECKPOINT, self._checkpointed_starts, gone_starts),
                                                      (_CLEANER_CHECKPOINT, self._checkpointed_dirty, gone_dirty)):
                        if gone:
                            kept = {key: offset for key, offset in written.get(log_dir, {}).items() if key not in gone}
                            _write_checkpoint(log_dir / checkpoint, kept)
                            written[log_dir] = kept
                except OSError as error:
                    deletion.failed.setdefault(log_dir, error)
                points = self._checkpointed_recovery.get(log_dir, {})
                if self._flusher is not None and gone_points.keys() & points.keys():
                    kept = {key: point for key, point in points.items() if key not in gone_points}
                    self._checkpointed_recovery[log_dir] = kept
                    jobs.append((log_dir, self._flusher.submit(functools.partial(_write_checkpoint, log_dir / _RECOVERY_POINT_CHECKPOINT, kept))))
        for log_dir, job in jobs:
            job.wait()
            if isinstance(job.error, OSError):
                deletion.failed.setdefault(log_dir, job.error)

    def _log_dir_holding(self, directory: pathlib.Path) -> pathlib.Path:
        """The log directory a partition's directory is in; with one log directory, taken
        without taking the path apart: the checkpoints ask it for every partition (at each
        DeleteTopics too), and a Path's parent costs microseconds."""
        return self.log_dirs[0] if len(self.log_dirs) == 1 else directory.parent

    def _recovery_points(self) -> dict[pathlib.Path, dict[tuple[str, int], int]]:
        """Under `_checkpoint_lock`: each online directory's partitions and their recovery
        points (a future log has none: after a crash its partition is recovered from its
        start), and the checkpointed ones deleted topics keep (`_remembered_entries`)."""
        points: dict[pathlib.Path, dict[tuple[str, int], int]] = {
            log_dir: {} for log_dir in self.log_dirs if log_dir not in self.offline_dirs
        }
        for log_dir, remembered in self._remembered_entries().items():
            if log_dir in points:
                for _, _, kept in remembered:
                    points[log_dir].update(kept)
        for key, log in list(self._logs.items()):  # a failed fsync found here takes a directory offline
            if log.directory is not None and (log_dir := self._log_dir_holding(log.directory)) in points:
                points[log_dir][key] = log.recovery_point
        return points

    def checkpoint_recovery_points(self, now_ms: int = 0) -> FlushJob | None:
        """Kafka's log.flush.offset.checkpoint.interval.ms task: write each directory's
        recovery-point-offset-checkpoint, on the flusher (after every fsync submitted before,
        which the points already count), when the points moved. Returns the last write handed
        over (the flusher runs them in order), or None."""
        if self._flusher is None:
            return None
        job = None
        with self._checkpoint_lock:
            for log_dir, points in self._recovery_points().items():
                if points != self._checkpointed_recovery.get(log_dir):
                    self._checkpointed_recovery[log_dir] = points
                    job = self._flusher.submit(functools.partial(_write_checkpoint, log_dir / _RECOVERY_POINT_CHECKPOINT, points))
        return job

    def flush(self) -> None:
        for log in self._logs.values():
            log.flush()

    def close(self) -> None:
        """Flush, fsync and close every file, then checkpoint the recovery points (each now
        its log's end); the storage is unusable afterwards. A move under way is left as its
        `-future` directory, for the next open to start again. Topic files being written on
        another thread are waited for, so the next open finds them whole, and deletions' file
        work is done, so that no deleted topic comes back. Last, each directory still online
        gets its clean-shutdown marker, after its checkpoints, as Kafka's LogManager.shutdown
        writes it once a directory's logs are flushed and closed and its checkpoints written: a
        failed fsync (a rolled segment's on the flusher, found by the log's close) takes the
        directory offline, and without a marker it is recovered at the next open as after a crash."""
        with self._writes_done:
            self._closed = True
            self._writes_done.wait_for(lambda: self._writing == 0)
        for deletion in list(self._deletions.values()):
            deletion.run()
            self.finish_deletion(deletion)
        self._moves.clear()
        for log in list(self._logs.values()):  # a failed fsync found here takes a directory offline
            log.close()
        if self._flusher is not None:
            self._flusher.close()
            self._write_checkpoints()  # a directory whose checkpoint fails goes offline: no marker there
            with self._checkpoint_lock:
                final = self._recovery_points()
            for log_dir, points in final.items():
                try:
                    _write_checkpoint(log_dir / _RECOVERY_POINT_CHECKPOINT, points)
                    replace_file(log_dir / _CLEAN_SHUTDOWN, _CLEAN_SHUTDOWN_CONTENT)
                except OSError:
                    pass  # every segment after the last checkpointed point is recovered at the next open
        self._logs.clear()
        self._handles.close_all()
        self.locks.release()


def _directory_id(log_dir: pathlib.Path, meta_properties: Mapping[str, str]) -> bytes:
    """The directory's `directory.id` from its meta.properties (KIP-858), written with a
    new random id first if missing: Kafka's MetaProperties, version 1, with the broker's
    node.id and cluster.id beside it."""
    path = log_dir / _META_PROPERTIES
    properties: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, separator, value = line.partition("=")
            if separator and not key.startswith("#"):
                properties[key.strip()] = value.strip()
    encoded = properties.get("directory.id")
    if encoded is not None:
        try:
            return base64.urlsafe_b64decode(encoded + "==")
        except ValueError:
            pass
    directory_id = _random_uuid()
    properties = {"version": "1", **{key: str(value) for key, value in meta_properties.items()}, **properties}
    properties["directory.id"] = base64.urlsafe_b64encode(directory_id).rstrip(b"=").decode()
    replace_file(path, "".join(f"{key}={value}\n" for key, value in properties.items()).encode())
    return directory_id


def _deletion_directory_name(topic: str, partition: int) -> str:
    """Kafka's LocalLog.logDeleteDirName: the topic name is cut so the whole fits in 255 bytes."""
    suffix = f"-{partition}.{_random_uuid().hex()}{_DELETE_DIR_SUFFIX}"
    return topic[: 255 - len(suffix)] + suffix


def _checkpoint_entries(key: tuple[str, int], log: PartitionLog, starts: dict[tuple[str, int], int], dirty: dict[tuple[str, int], int]) -> None:
    """Add the partition's entries in the log start and cleaner checkpoints, if it has any."""
    if log.log_start_offset > log.segments[0].base_offset:
        starts[key] = log.log_start_offset
    if log.first_dirty_offset > 0:
        dirty[key] = log.first_dirty_offset


def _write_checkpoint(path: pathlib.Path, offsets: dict[tuple[str, int], int]) -> None:
    lines = [f"{topic} {partition} {offset}" for (topic, partition), offset in sorted(offsets.items())]
    replace_file(path, "\n".join(["0", str(len(lines)), *lines, ""]).encode())


def _read_checkpoint(path: pathlib.Path) -> dict[tuple[str, int], int]:
    """Kafka's OffsetCheckpointFile: version 0, a count, then `topic partition offset` lines."""
    if not path.exists():
        return {}
    try:
        version, count, *lines = path.read_text().splitlines()
        if version != "0" or int(count) != len(lines):
            raise ValueError(f"version {version}, {count} entries declared, {len(lines)} present")
        starts = {}
        for line in lines:
            topic, partition, offset = line.rsplit(" ", 2)
            starts[(topic, int(partition))] = int(offset)
    except ValueError:
        return {}  # unreadable: the first segments' base offsets are the safe fallback
    return starts


def _create_partition_files(directory: pathlib.Path, topic_id: bytes) -> None:
    """On the writing thread: a new partition's first segment (its empty .log and both index
    files, as PartitionLog would create them) and its partition.metadata, whose durable
    replacement fsyncs the directory and these entries with it. Each creation is a journaled
    change of the directory: on a busy disk one can wait out a journal commit, which on the
    event loop every client would wait out too. Files already there (a partition directory a
    crash left) are kept as they are, as PartitionLog keeps them."""
    for suffix in (".log", ".index", ".timeindex"):
        os.close(os.open(directory / file_name(0, suffix), os.O_WRONLY | os.O_CREAT, 0o644))
    _write_partition_metadata(directory, topic_id)


def _write_partition_metadata(directory: pathlib.Path, topic_id: bytes) -> None:
    """Kafka's partition.metadata: version 0 and the topic id in Kafka's base64 (Uuid.toString)."""
    path = directory / "partition.metadata"
    text = f"version: 0\ntopic_id: {base64.urlsafe_b64encode(topic_id).rstrip(b'=').decode()}\n"
    if not path.exists():
        replace_file(path, text.encode())
