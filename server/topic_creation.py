"""New topics' and new partitions' files written and their logs opened on a thread, deleted
topics' directories renamed on one; the event loop only files the opened logs, or forgets the
deleted ones.

A topic's creation fsyncs a partition.metadata per partition and its topic file (two fsyncs
each: 10-20 ms for eight partitions on a journaling file system), creates three files per
partition (each a journaled directory change, which on a busy disk may wait out a journal
commit) and opens each partition (500 of them: tens of milliseconds); on the loop, every
other client's requests would wait all that out. CreateTopics and Metadata's auto-creation
reserve the names (Storage.reserve_topic), hand the writing and opening to the loop's default
executor and make the topics visible when it is done, all partitions at once; CreatePartitions
does the same with a topic's growth (Storage.reserve_partitions). DeleteTopics of 500
partitions spent 30-60 ms unlinking the topic file, renaming the directories and fsyncing
twice: the topic goes at once (Storage.begin_deletion) and that file work runs on the executor
too (`rename_deleted`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from ottla.storage.engine import PartitionGrowth, Storage, TopicDeletion, TopicInfo
from ottla.wire.errors import ErrorCode, KafkaError


async def write_and_open(
    storage: Storage, reserved: Sequence[TopicInfo], opened: Callable[[TopicInfo], None] | None = None
) -> list[TopicInfo | KafkaError | None]:
    """Write the reserved topics' files and open their logs on a thread, then make each a topic
    (and call `opened` with it) on the loop. For each: the topic; None if the storage closed
    before it could be made one; or KAFKA_STORAGE_ERROR if its files could not be written or
    its logs opened (every name released). The creation completes even if the awaiting task is
    cancelled (its client gone), so a name stays reserved only while its files are written."""
    loop = asyncio.get_running_loop()
    try:
        written = loop.run_in_executor(None, storage.write_topic_files, list(reserved))
    except BaseException:  # the executor has shut down: the names must not stay taken
        _release(storage, reserved)
        raise
    done: asyncio.Future[list[TopicInfo | KafkaError | None]] = loop.create_future()

    def open_topics(writing: asyncio.Future[None]) -> None:
        error = writing.exception()
        if error is not None:
            _release(storage, reserved)
            done.set_result([_storage_error(error)] * len(reserved))
            return
        outcomes: list[TopicInfo | KafkaError | None] = []
        for info in reserved:
            topic = storage.open_reserved_topic(info)
            if topic is not None and opened is not None:
                opened(topic)
            outcomes.append(topic)
        done.set_result(outcomes)

    written.add_done_callback(open_topics)
    return await asyncio.shield(done)


def write_and_grow(
    storage: Storage, growth: PartitionGrowth, grown: Callable[[TopicInfo], None] | None = None
) -> asyncio.Future[TopicInfo | KafkaError | None]:
    """Start writing a reserved growth's files and opening its new logs on a thread now, and add
    those partitions to the topic (and call `grown` with it) on the loop when they are done. The
    future answers the grown topic; None if the storage closed first; or a KafkaError
    (KAFKA_STORAGE_ERROR, the topic left as it was). Started at once and completed by callbacks, not by the awaiting task, so a
    growth never stays reserved (Storage.finish_growth waits on it) for a cancelled client."""
    loop = asyncio.get_running_loop()
    try:
        written = loop.run_in_executor(None, storage.write_partition_files, growth)
    except BaseException:  # the executor has shut down: the topic must not stay growing
        storage.release_growth(growth)
        raise
    done: asyncio.Future[TopicInfo | KafkaError | None] = loop.create_future()

    def open_partitions(writing: asyncio.Future[None]) -> None:
        if writing.cancelled():
            storage.release_growth(growth)  # never run: the topic must not stay growing
        else:
            writing.exception()  # retrieved here: the growth holds it
        try:
            topic = storage.open_grown_partitions(growth)
        except KafkaError as exc:
            done.set_result(exc)
            return
        if topic is not None and grown is not None:
            grown(topic)
        done.set_result(topic)

    written.add_done_callback(open_partitions)
    return done


def rename_deleted(storage: Storage, deletions: Sequence[TopicDeletion]) -> asyncio.Future[None]:
    """Start the deletions' file work (TopicDeletion.run, in order) on a thread now, and finish
    each (Storage.finish_deletion) on the loop when it is done. Completed by a callback, not by
    the awaiting task, so that a client gone meanwhile leaves nothing half done; the future
    is done once every deletion's files are. Runs them here when the executor has shut down."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def finish(renaming: asyncio.Future[None] | None) -> None:
        failure = None if renaming is None or renaming.cancelled() else renaming.exception()
        for deletion in deletions:
            if failure is None:
                deletion.run()  # a no-op once run: work here only if the executor never ran it
            storage.finish_deletion(deletion)
        if failure is not None:
            done.set_exception(failure)
        else:
            done.set_result(None)

    try:
        renaming = loop.run_in_executor(None, _run_all, deletions)
    except RuntimeError:  # the executor has shut down
        finish(None)
    else:
        renaming.add_done_callback(finish)
    return done


def _run_all(deletions: Sequence[TopicDeletion]) -> None:
    for deletion in deletions:
        deletion.run()


def _storage_error(error: BaseException) -> KafkaError:
    if isinstance(error, KafkaError):
        return error
    if isinstance(error, OSError):
        return KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, f"the topic's files could not be written: {error.strerror}")
    raise error


def _release(storage: Storage, reserved: Sequence[TopicInfo]) -> None:
    for info in reserved:
        storage.release_topic(info)
