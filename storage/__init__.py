"""Log storage engine: Kafka's on-disk layout, no knowledge of requests, sockets or asyncio."""

from storage.config import LogConfig
from storage.engine import Storage, TopicInfo
from storage.log import AppendResult, PartitionLog, ReadResult
from storage.segment import Chunk, FileRegion

__all__ = ["AppendResult", "Chunk", "FileRegion", "LogConfig", "PartitionLog", "ReadResult", "Storage", "TopicInfo"]
