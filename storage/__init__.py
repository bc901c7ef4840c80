"""Log storage engine: Kafka's on-disk layout, no knowledge of requests, sockets or asyncio.

`Storage.open(data_dir)` (None: in memory) holds the topics; `partition(topic, i)` is a
`PartitionLog` with `append`, `read`, `offset_for_timestamp`, `max_timestamp` and
`delete_records`. Errors are `KafkaError`s carrying the code a response needs.

Nothing here runs by itself: the broker calls, on its own schedule,
`enforce_retention(now_ms)` (log.retention.check.interval.ms), `compact(now_ms)`
(log.cleaner.backoff.ms), `flush_if_due(now_ms)` (flush.ms), `delete_expired_files(now_ms)`
or `take_expired_files(now_ms)` (deleted segments and topics are renamed at once and removed
file.delete.delay.ms later, so fetch answers cut from them are sent whole),
`checkpoint_recovery_points(now_ms)` (log.flush.offset.checkpoint.interval.ms) and `close()`
on shutdown. The one thread of its own is the flusher: it fsyncs rolled segments
(storage/flusher.py), so a roll never waits for the disk.

Modules: engine (topics, checkpoints), log (a partition's segments), segment (a .log
and its indexes, on disk or in memory), index (.index/.timeindex), compaction,
producer_state, handles (bounded descriptors), files (durable replacement), flusher
(fsyncs after a roll), config (topic settings).
"""

from ottla.storage.config import LogConfig
from ottla.storage.engine import Storage, TopicInfo
from ottla.storage.log import AppendResult, PartitionLog, ReadResult
from ottla.storage.segment import Chunk, FileRegion

__all__ = ["AppendResult", "Chunk", "FileRegion", "LogConfig", "PartitionLog", "ReadResult", "Storage", "TopicInfo"]
