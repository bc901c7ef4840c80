"""The broker's log.cleaner.dedupe.buffer.size, log.cleaner.threads and
log.cleaner.io.buffer.load.factor bound the keys a compaction pass maps, as Kafka's cleaner
sizes its SkimpyOffsetMap: a pass over more keys than that stops where its map filled."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ottla.server.config import BrokerConfig
from ottla.server.log_maintenance import LogMaintenance
from ottla.storage import PartitionLog, Storage
from ottla.storage.compaction import offset_map_capacity
from ottla.wire.records import Record, build_batch


def _keyed(key: str) -> bytes:
    return build_batch([Record(0, 1000, key.encode(), b"v")])


async def _one_pass(maintenance: LogMaintenance) -> None:
    maintenance.start()
    try:
        maintenance._start_compaction(100_000)
        assert maintenance._compaction is not None
        await maintenance._compaction
    finally:
        maintenance.stop()


def _log_of_five_keys(storage: Storage) -> PartitionLog:
    """Keys a, b, c, a, b at offsets 0-4 in a closed segment, z in the active one."""
    storage.create_topic("c", 1, {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0"})
    log = storage.partition("c", 0)
    for key in "abcab":
        log.append(_keyed(key))
    log.roll()
    log.append(_keyed("z"))
    return log


def test_the_cleaner_settings_bound_a_pass_as_kafkas_map(tmp_path: Path) -> None:
    # 2 keys: 120 bytes over 2 threads is 60 bytes each, 2 entries of 24, all of them at a load factor of 1.
    settings = {"log.cleaner.dedupe.buffer.size": "120", "log.cleaner.threads": "2", "log.cleaner.io.buffer.load.factor": "1.0",
                "log.cleaner.backoff.ms": "3600000"}
    storage = Storage(tmp_path)
    try:
        log = _log_of_five_keys(storage)
        maintenance = LogMaintenance(storage, BrokerConfig.from_settings(settings))
        assert maintenance.map_capacity == offset_map_capacity(120, 2, 1.0) == 2
        asyncio.run(_one_pass(maintenance))
        # a and b mapped; c found the map full: the pass covers offsets 0 and 1 alone, which hold
        # the latest a and b of that map, and the next pass starts at 2.
        assert log.first_dirty_offset == 2
    finally:
        storage.close()


def test_kafkas_defaults_map_every_key_of_a_small_log(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    try:
        log = _log_of_five_keys(storage)
        asyncio.run(_one_pass(LogMaintenance(storage, BrokerConfig.from_settings({"log.cleaner.backoff.ms": "3600000"}))))
        assert log.first_dirty_offset == 5
    finally:
        storage.close()
