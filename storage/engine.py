"""The storage engine: topics, their partition logs, and the metadata that survives restarts.

Layout of a data directory (Kafka's, so its tools can read the partitions):
  <topic>-<partition>/00000000000000000000.log|.index|.timeindex
  <topic>-<partition>/partition.metadata   Kafka's topic-id file (PartitionMetadataFile.java)
  <topic>.topic.json                        ours: topic id, partition count, config overrides
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
import uuid
from dataclasses import dataclass, field

from storage.config import LogConfig
from storage.log import PartitionLog
from wire.errors import ErrorCode, KafkaError

_TOPIC_SUFFIX = ".topic.json"
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


def _write_atomically(path: pathlib.Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def validate_topic_name(name: str) -> None:
    if name in (".", "..") or not _LEGAL_TOPIC.fullmatch(name):
        raise KafkaError(ErrorCode.INVALID_TOPIC, f"illegal topic name {name!r}")


class Storage:
    """All topics of one broker. `data_dir=None` keeps everything in memory."""

    def __init__(self, data_dir: pathlib.Path | None) -> None:
        self.data_dir = data_dir
        self._topics: dict[str, TopicInfo] = {}
        self._by_id: dict[bytes, TopicInfo] = {}
        self._logs: dict[tuple[str, int], PartitionLog] = {}

    @classmethod
    def open(cls, data_dir: pathlib.Path | None) -> Storage:
        storage = cls(data_dir)
        if data_dir is not None:
            data_dir.mkdir(parents=True, exist_ok=True)
            storage._load()
        return storage

    def _load(self) -> None:
        assert self.data_dir is not None
        for path in sorted(self.data_dir.glob("*" + _TOPIC_SUFFIX)):
            stored = json.loads(path.read_bytes())
            info = TopicInfo(stored["name"], bytes.fromhex(stored["topic_id"]), stored["partitions"], stored["configs"])
            self._register(info)

    def _register(self, info: TopicInfo) -> None:
        self._topics[info.name] = info
        self._by_id[info.topic_id] = info
        config = LogConfig.from_overrides(info.configs)
        for index in range(info.partitions):
            directory = None if self.data_dir is None else self.data_dir / f"{info.name}-{index}"
            self._logs[(info.name, index)] = PartitionLog(directory, config)
            if directory is not None:
                _write_partition_metadata(directory, info.topic_id)

    def create_topic(self, name: str, partitions: int, configs: dict[str, str] | None = None) -> TopicInfo:
        validate_topic_name(name)
        if name in self._topics:
            raise KafkaError(ErrorCode.TOPIC_ALREADY_EXISTS, f"topic {name!r} already exists")
        if partitions <= 0:
            raise KafkaError(ErrorCode.INVALID_PARTITIONS, f"number of partitions must be positive, got {partitions}")
        overrides = dict(configs or {})
        LogConfig.from_overrides(overrides)
        info = TopicInfo(name, _new_topic_id(), partitions, overrides)
        if self.data_dir is not None:
            stored = {"name": name, "topic_id": info.topic_id.hex(), "partitions": partitions, "configs": overrides}
            _write_atomically(self.data_dir / (name + _TOPIC_SUFFIX), json.dumps(stored, indent=1).encode())
        self._register(info)
        return info

    def delete_topic(self, name: str) -> None:
        info = self._topics.pop(name, None)
        if info is None:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"unknown topic {name!r}")
        del self._by_id[info.topic_id]
        if self.data_dir is not None:
            # The topic file goes first: a crash after it leaves orphan partition
            # directories that no topic claims, never a topic with missing data.
            (self.data_dir / (name + _TOPIC_SUFFIX)).unlink()
        for index in range(info.partitions):
            self._logs.pop((name, index)).delete()
            if self.data_dir is not None:
                shutil.rmtree(self.data_dir / f"{name}-{index}", ignore_errors=True)

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

    def flush(self) -> None:
        for log in self._logs.values():
            log.flush()

    def close(self) -> None:
        for log in self._logs.values():
            log.close()
        self._logs.clear()


def _write_partition_metadata(directory: pathlib.Path, topic_id: bytes) -> None:
    """Kafka's partition.metadata: version 0 and the topic id in Kafka's base64 (Uuid.toString)."""
    path = directory / "partition.metadata"
    text = f"version: 0\ntopic_id: {base64.urlsafe_b64encode(topic_id).rstrip(b'=').decode()}\n"
    if not path.exists():
        _write_atomically(path, text.encode())
