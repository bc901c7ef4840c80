"""New topics' files written on a thread, the topics opened on the event loop.

A topic's creation fsyncs a partition.metadata per partition and its topic file (two fsyncs
each: 10-20 ms for eight partitions on a journaling file system); on the loop, every other
client's requests would wait them out. CreateTopics and Metadata's auto-creation reserve the
names (Storage.reserve_topic), hand the writing to the loop's default executor and open the
topics when it is done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from ottla.storage.engine import Storage, TopicInfo


async def write_and_open(storage: Storage, reserved: Sequence[TopicInfo], opened: Callable[[TopicInfo], None] | None = None) -> list[TopicInfo | None]:
    """Write the reserved topics' files on a thread, then open each (and call `opened` with it)
    on the loop: the topics, None for one the storage closed before it could open. The
    creation completes even if the awaiting task is cancelled (its client gone), so a name
    stays reserved only while its files are written; if the writing fails, the names are
    released and its error raised."""
    loop = asyncio.get_running_loop()
    written = loop.run_in_executor(None, storage.write_topic_files, list(reserved))
    done: asyncio.Future[list[TopicInfo | None]] = loop.create_future()

    def open_topics(writing: asyncio.Future[None]) -> None:
        error = writing.exception()
        if error is not None:
            for info in reserved:
                storage.release_topic(info)
            if not done.cancelled():
                done.set_exception(error)
            return
        topics: list[TopicInfo | None] = []
        for info in reserved:
            topic = storage.open_reserved_topic(info)
            if topic is not None and opened is not None:
                opened(topic)
            topics.append(topic)
        done.set_result(topics)

    written.add_done_callback(open_topics)
    return await asyncio.shield(done)
