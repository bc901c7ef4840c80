"""The storage engine: topics, their partition logs, and the metadata that survives restarts.

Layout of a data directory (Kafka's, so its tools can read the partitions):
  <topic>-<partition>/00000000000000000000.log|.index|.timeindex
  <topic>-<partition>/partition.metadata   Kafka's topic-id file (PartitionMetadataFile.java)
  <topic>.topic.json                        ours: topic id, partition count, config overrides
  log-start-offset-checkpoint               Kafka's (OffsetCheckpointFile.java): moved by DeleteRecords
  cleaner-offset-checkpoint                 Kafka's: where each compacted log's dirty section starts
  <topic>-<partition>.<uuid>-delete/        Kafka's: a deleted topic's partition, removed after file.delete.delay.ms
The topic file sits beside, not inside, the partition directories: Kafka's
LogManager only loads directories, so it ignores regular files there.
"""

from __future__ import annotations

import base64
import json
import os
import pathlib
import re
import shutil
import time
import uuid
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field

from ottla.storage.config import LogConfig
from ottla.storage.handles import DEFAULT_LIMIT, FileHandles
from ottla.storage.files import TEMPORARY_SUFFIX, fsync_directory, replace_file
from ottla.storage.log import PartitionLog, run_steps
from ottla.wire.errors import ErrorCode, KafkaError

_TOPIC_SUFFIX = ".topic.json"
_LOG_START_CHECKPOINT = "log-start-offset-checkpoint"
_CLEANER_CHECKPOINT = "cleaner-offset-checkpoint"
# Kafka's LocalLog.DeleteDirSuffix: a deleted topic's partition directory waiting out file.delete.delay.ms.
_DELETE_DIR_SUFFIX = "-delete"
# Kafka's Topic.validate: legal characters and the 249-character limit.
_LEGAL_TOPIC = re.compile(r"[a-zA-Z0-9._-]{1,249}")


@dataclass(slots=True, frozen=True)
class TopicInfo:
    name: str
    topic_id: bytes
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)


def _new_topic_id() -> bytes:
    """A random UUID that is never the zero UUID Kafka reserves for "no id"."""
    while True:
        topic_id = uuid.uuid4().bytes
        if any(topic_id):
            return topic_id


def validate_topic_name(name: str) -> None:
    if name in (".", "..") or not _LEGAL_TOPIC.fullmatch(name):
        raise KafkaError(ErrorCode.INVALID_TOPIC, f"illegal topic name {name!r}")


class Storage:
    """All topics of one broker. `data_dir=None` keeps everything in memory."""

    def __init__(self, data_dir: pathlib.Path | None, max_open_files: int = DEFAULT_LIMIT, defaults: Mapping[str, str] | None = None) -> None:
        self.data_dir = data_dir
        # Broker-level values of topic configs (log.retention.hours, ...), under each topic's overrides.
        self.defaults = dict(defaults or {})
        self._handles = FileHandles(max_open_files)
        self._topics: dict[str, TopicInfo] = {}
        self._by_id: dict[bytes, TopicInfo] = {}
        self._logs: dict[tuple[str, int], PartitionLog] = {}
        self._checkpointed_starts: dict[tuple[str, int], int] = {}
        self._checkpointed_dirty: dict[tuple[str, int], int] = {}
        # Partition directories of deleted topics, each with the time it may be removed.
        self._deleted_directories: list[tuple[int, pathlib.Path]] = []
        # Grows with every change to the set of topics or to one's partitions: whoever derives
        # something from the topic list (resolved regex subscriptions) recomputes it only then.
        self.topics_version = 0

    @classmethod
    def open(cls, data_dir: pathlib.Path | None, max_open_files: int = DEFAULT_LIMIT, defaults: Mapping[str, str] | None = None) -> Storage:
        """Load (or create) a data directory; `None` keeps everything in memory.
        `max_open_files` bounds the descriptors held for segments and indexes;
        `defaults` are the broker's topic config values, under each topic's overrides."""
        storage = cls(data_dir, max_open_files, defaults)
        if data_dir is not None:
            data_dir.mkdir(parents=True, exist_ok=True)
            storage._load()
        return storage

    def _load(self) -> None:
        """Read the topics; first remove what a crash or a restart left for deletion (Kafka's
        LogManager does the same with `-delete` directories) and interrupted replacements."""
        assert self.data_dir is not None
        for entry in os.scandir(self.data_dir):
            if entry.name.endswith(_DELETE_DIR_SUFFIX) and entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            elif entry.name.endswith(TEMPORARY_SUFFIX) and entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
        self._checkpointed_starts = _read_checkpoint(self.data_dir / _LOG_START_CHECKPOINT)
        self._checkpointed_dirty = _read_checkpoint(self.data_dir / _CLEANER_CHECKPOINT)
        for path in sorted(self.data_dir.glob("*" + _TOPIC_SUFFIX)):
            stored = json.loads(path.read_bytes())
            info = TopicInfo(stored["name"], bytes.fromhex(stored["topic_id"]), stored["partitions"], stored["configs"])
            self._register(info)

    def _register(self, info: TopicInfo) -> None:
        self._topics[info.name] = info
        self.topics_version += 1
        self._by_id[info.topic_id] = info
        config = LogConfig.from_overrides({**self.defaults, **info.configs})
        self._open_partitions(info, config, range(info.partitions))

    def _open_partitions(self, info: TopicInfo, config: LogConfig, indexes: range) -> None:
        for index in indexes:
            directory = None if self.data_dir is None else self.data_dir / f"{info.name}-{index}"
            self._logs[(info.name, index)] = PartitionLog(
                directory,
                config,
                self._handles,
                log_start_offset=self._checkpointed_starts.get((info.name, index), 0),
                first_dirty_offset=self._checkpointed_dirty.get((info.name, index), 0),
                on_checkpoint=self._write_checkpoints,
                topic_partition=f"{info.name}-{index}",
            )
            if directory is not None:
                _write_partition_metadata(directory, info.topic_id)

    def create_topic(self, name: str, partitions: int, configs: dict[str, str] | None = None) -> TopicInfo:
        validate_topic_name(name)
        if name in self._topics:
            raise KafkaError(ErrorCode.TOPIC_ALREADY_EXISTS, f"topic {name!r} already exists")
        if partitions <= 0:
            raise KafkaError(ErrorCode.INVALID_PARTITIONS, f"number of partitions must be positive, got {partitions}")
        overrides = dict(configs or {})
        LogConfig.from_overrides({**self.defaults, **overrides})
        info = TopicInfo(name, _new_topic_id(), partitions, overrides)
        if self.data_dir is not None:
            for index in range(partitions):
                # Left by a deletion that crashed before removing its directories: a new topic starts empty.
                shutil.rmtree(self.data_dir / f"{name}-{index}", ignore_errors=True)
        self._write_topic_file(info)
        self._register(info)
        return info

    def _write_topic_file(self, info: TopicInfo) -> None:
        if self.data_dir is not None:
            stored = {"name": info.name, "topic_id": info.topic_id.hex(), "partitions": info.partitions, "configs": info.configs}
            replace_file(self.data_dir / (info.name + _TOPIC_SUFFIX), json.dumps(stored, indent=1).encode())

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
        info = self._existing(name)
        overrides = dict(configs)
        config = LogConfig.from_overrides({**self.defaults, **overrides})
        updated = TopicInfo(info.name, info.topic_id, info.partitions, overrides)
        self._write_topic_file(updated)
        self._replace(updated)
        for index in range(info.partitions):
            self._logs[(name, index)].config = config
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

    def add_partitions(self, name: str, total: int) -> TopicInfo:
        """Grow a topic to `total` partitions (CreatePartitions); existing ones are untouched.
        The topic file is written first, so a crash leaves empty partitions, never lost ones."""
        info = self._existing(name)
        if total <= info.partitions:
            raise KafkaError(ErrorCode.INVALID_PARTITIONS, f"topic {name!r} has {info.partitions} partitions, cannot grow to {total}")
        updated = TopicInfo(info.name, info.topic_id, total, info.configs)
        self._write_topic_file(updated)
        self._replace(updated)
        config = LogConfig.from_overrides({**self.defaults, **info.configs})
        self._open_partitions(updated, config, range(info.partitions, total))
        return updated

    def delete_topic(self, name: str, now_ms: int | None = None) -> None:
        """DeleteTopics. On disk, as Kafka's LogManager.asyncDelete: each partition's directory
        is renamed `<topic>-<partition>.<uuid>-delete` at once (so the name is free for a new
        topic) and removed by `delete_expired_files` after the broker's file.delete.delay.ms,
        counted from `now_ms`, so that fetch answers already cut from it are sent whole."""
        info = self._topics.pop(name, None)
        if info is None:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"unknown topic {name!r}")
        self.topics_version += 1
        del self._by_id[info.topic_id]
        logs = [self._logs.pop((name, index)) for index in range(info.partitions)]
        if self.data_dir is None:
            for log in logs:
                log.delete()
            return
        # The topic file goes first, durably: a crash after it leaves orphan partition
        # directories that no topic claims (create_topic clears them), never a topic with missing data.
        (self.data_dir / (name + _TOPIC_SUFFIX)).unlink()
        fsync_directory(self.data_dir)
        now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        due = now + LogConfig.from_overrides(self.defaults).file_delete_delay_ms
        for index, log in enumerate(logs):
            destination = self.data_dir / _deletion_directory_name(name, index)
            log.move_for_deletion(destination)
            self._deleted_directories.append((due, destination))
        self._write_checkpoints()

    def delete_expired_files(self, now_ms: int) -> int:
        """Remove what deletions set aside (segments renamed `.deleted`, deleted topics'
        `-delete` directories) once their file.delete.delay.ms has passed at `now_ms`: the
        broker calls this on its schedule, as Kafka schedules each asynchronous delete.
        Returns the number of segments and directories removed."""
        removed = sum(log.delete_expired_files(now_ms) for log in self._logs.values())
        expired = [directory for due, directory in self._deleted_directories if due <= now_ms]
        if expired:
            self._deleted_directories = [(due, directory) for due, directory in self._deleted_directories if due > now_ms]
            for directory in expired:
                shutil.rmtree(directory, ignore_errors=True)
        return removed + len(expired)

    def topic(self, name: str) -> TopicInfo | None:
        return self._topics.get(name)

    def topic_by_id(self, topic_id: bytes) -> TopicInfo | None:
        return self._by_id.get(topic_id)

    def topics(self) -> list[TopicInfo]:
        return list(self._topics.values())

    def partition(self, topic: str, index: int) -> PartitionLog:
        log = self._logs.get((topic, index))
        if log is None:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"unknown partition {topic}-{index}")
        return log

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

    def compaction_steps(self, now_ms: int) -> Generator[None, None, int]:
        """`compact` a batch at a time (PartitionLog.clean_steps), for a caller that
        serves clients between steps; a partition deleted meanwhile is passed over."""
        removed = 0
        for key, log in list(self._logs.items()):
            if self._logs.get(key) is log:
                removed += yield from log.clean_steps(now_ms)
        return removed

    def _write_checkpoints(self) -> None:
        """Persist log start offsets that DeleteRecords moved past the first segment, and
        the cleaner's first dirty offsets, in Kafka's checkpoint files, when they change."""
        if self.data_dir is None:
            return
        starts = {key: log.log_start_offset for key, log in self._logs.items() if log.log_start_offset > log.segments[0].base_offset}
        if starts != self._checkpointed_starts:
            _write_checkpoint(self.data_dir / _LOG_START_CHECKPOINT, starts)
            self._checkpointed_starts = starts
        dirty = {key: log.first_dirty_offset for key, log in self._logs.items() if log.first_dirty_offset > 0}
        if dirty != self._checkpointed_dirty:
            _write_checkpoint(self.data_dir / _CLEANER_CHECKPOINT, dirty)
            self._checkpointed_dirty = dirty

    def flush(self) -> None:
        for log in self._logs.values():
            log.flush()

    def close(self) -> None:
        """Flush, fsync and close every file; the storage is unusable afterwards."""
        for log in self._logs.values():
            log.close()
        self._logs.clear()
        self._handles.close_all()


def _deletion_directory_name(topic: str, partition: int) -> str:
    """Kafka's LocalLog.logDeleteDirName: the topic name is cut so the whole fits in 255 bytes."""
    suffix = f"-{partition}.{uuid.uuid4().hex}{_DELETE_DIR_SUFFIX}"
    return topic[: 255 - len(suffix)] + suffix


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


def _write_partition_metadata(directory: pathlib.Path, topic_id: bytes) -> None:
    """Kafka's partition.metadata: version 0 and the topic id in Kafka's base64 (Uuid.toString)."""
    path = directory / "partition.metadata"
    text = f"version: 0\ntopic_id: {base64.urlsafe_b64encode(topic_id).rstrip(b'=').decode()}\n"
    if not path.exists():
        replace_file(path, text.encode())
