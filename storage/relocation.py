"""Moving a partition's log to another log directory (AlterReplicaLogDirs), as Kafka does:
a "future" log `<topic>-<partition>.<uuid>-future` in the destination directory fills up
while the current log keeps taking appends and serving reads; once it has caught up, the
two swap (Kafka's ReplicaAlterLogDirsThread, then LogManager.replaceCurrentWithFutureLog).

Where Kafka's future log is a replica fetching batches from the current one, here the
future directory mirrors the current one's files byte for byte: segments, indexes, producer
snapshots, partition.metadata. That holds because every file of a partition only grows at
its end or is replaced whole under a new inode (a compaction swap, an index or snapshot
rewrite), so a file is copied on from where the last step stopped unless its inode changed.
An inode number freed by a replacement can come back for the next file of that name, so a
copy is continued only if its last bytes still match the source's at the same place, and
`finish` checks that of every file (a stale index would send readers to wrong positions).
The mirror is exact once the caller stops appends (the event loop runs `finish` in one go),
so the in-memory log, its indexes and producer state stay valid over the copy: only paths
change (PartitionLog.switch_directory).

Crash safety, with `finish`'s order (future fsynced, renamed to the partition's name, then
the old directory renamed `-delete`): a crash before the first rename leaves the old log
whole beside an incomplete `-future` (the engine starts the move again); a crash between
the renames leaves two whole copies of the log, identical but for an unflushed tail the old
one may have lost (the engine keeps the one with the larger log end offset).
"""

from __future__ import annotations

import os
import pathlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from ottla.storage.files import DELETED_SUFFIX, TEMPORARY_SUFFIX, fsync_directory
from ottla.storage.log import PartitionLog
from ottla.storage.segment import CLEANED_SUFFIX, SWAP_SUFFIX

# Kafka's LocalLog.FutureDirSuffix and its pattern for a future log's directory name.
FUTURE_DIR_SUFFIX = "-future"
FUTURE_DIR_PATTERN = re.compile(r"(.+)-(\d+)\.([0-9a-f]{32})-future")
# Files that are never mirrored: transient or on their way out.
_TRANSIENT = (TEMPORARY_SUFFIX, DELETED_SUFFIX, CLEANED_SUFFIX, SWAP_SUFFIX)


def future_directory_name(topic: str, partition: int) -> str:
    """Kafka's LocalLog.logFutureDirName: `<topic>-<partition>.<uuid>-future`."""
    import uuid  # only when a log moves: a broker's start does without it

    return f"{topic}-{partition}.{uuid.uuid4().hex}{FUTURE_DIR_SUFFIX}"


@dataclass(slots=True)
class _Copied:
    inode: int
    size: int
    synced: bool
    # The source's modification time when last copied: unchanged, the copy is current.
    modified_ns: int = -1


# How much of a copy's end is compared with the source's to tell a file grown from one replaced.
_CHECKED_TAIL = 4096


class LogMove:
    """The copy of one partition's log into `future` (a directory in the destination log dir)."""

    def __init__(self, log: PartitionLog, future: pathlib.Path) -> None:
        assert log.directory is not None
        self.log = log
        self.future = future
        self._copied: dict[str, _Copied] = {}
        future.mkdir()
        fsync_directory(future.parent)

    @property
    def destination(self) -> pathlib.Path:
        """The log directory the partition is moving to."""
        return self.future.parent

    def _sources(self) -> dict[str, os.stat_result]:
        assert self.log.directory is not None
        found = {}
        with os.scandir(self.log.directory) as entries:
            for entry in entries:
                if not entry.name.endswith(_TRANSIENT) and entry.is_file(follow_symlinks=False):
                    found[entry.name] = entry.stat(follow_symlinks=False)
        return found

    def _pending(self, sources: dict[str, os.stat_result]) -> int:
        total = 0
        for name, stat in sources.items():
            copied = self._copied.get(name)
            total += stat.st_size if copied is None or copied.inode != stat.st_ino else max(stat.st_size - copied.size, 0)
        return total

    def copy(self, budget: int) -> int:
        """Copy up to `budget` bytes more; returns the bytes still to copy after this step."""
        sources = self._sources()
        assert self.log.directory is not None
        for name, stat in sources.items():
            if budget <= 0:
                break
            budget -= self._copy_file(self.log.directory / name, name, stat, budget, checked=False)
        self._sync(lambda name, copied: copied.size >= sources[name].st_size if name in sources else False)
        return self._pending(self._sources())

    def _sync(self, wanted: Callable[[str, _Copied], bool]) -> None:
        """fsync the copies `wanted` picks that are not synced yet: whole files as soon as
        they are copied, so that `finish` syncs little more than the active segment."""
        for name, copied in self._copied.items():
            if not copied.synced and wanted(name, copied):
                descriptor = os.open(self.future / name, os.O_RDONLY)
                try:
                    os.fsync(descriptor)
                finally:
                    os.close(descriptor)
                copied.synced = True

    def _copy_file(self, source: pathlib.Path, name: str, stat: os.stat_result, budget: int, checked: bool) -> int:
        """Copy on what `source` gained since its last step, or all of it anew if it is another
        file than the one copied (`checked`: whatever its modification time says)."""
        copied = self._copied.get(name)
        if (not checked and copied is not None and (copied.inode, copied.size, copied.modified_ns) == (stat.st_ino, stat.st_size, stat.st_mtime_ns)):
            return 0
        source_fd = os.open(source, os.O_RDONLY)
        try:
            stat = os.fstat(source_fd)
            if copied is not None and not self._continues(copied, source_fd, stat, name, checked):
                copied = None
            if copied is not None and copied.size >= stat.st_size:
                return 0
            target = self.future / name
            if copied is None:
                copied = self._copied[name] = _Copied(stat.st_ino, 0, False)
                flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
            else:
                flags = os.O_WRONLY
            copied.modified_ns = stat.st_mtime_ns
            length = min(stat.st_size - copied.size, budget)
            target_fd = os.open(target, flags, 0o644)
            try:
                done = 0
                while done < length:
                    data = os.pread(source_fd, min(length - done, 1 << 20), copied.size + done)
                    if not data:
                        break  # the file shrank under us: its next inode is copied anew
                    os.pwrite(target_fd, data, copied.size + done)
                    done += len(data)
                copied.size += done
                copied.synced = False
            finally:
                os.close(target_fd)
        finally:
            os.close(source_fd)
        return max(done, 1)

    def _continues(self, copied: _Copied, source_fd: int, stat: os.stat_result, name: str, checked: bool) -> bool:
        """Whether the source open at `source_fd` is the file `copied` began: the same inode,
        no shorter, and, if it may have changed since, the same bytes at the copy's end."""
        if copied.inode != stat.st_ino or stat.st_size < copied.size:
            return False
        if not checked and stat.st_mtime_ns == copied.modified_ns:
            return True
        length = min(copied.size, _CHECKED_TAIL)
        position = copied.size - length
        target_fd = os.open(self.future / name, os.O_RDONLY)
        try:
            return os.pread(source_fd, length, position) == os.pread(target_fd, length, position)
        finally:
            os.close(target_fd)

    @property
    def copied_bytes(self) -> int:
        """The segment bytes the future log holds so far (DescribeLogDirs' size for it)."""
        return sum(copied.size for name, copied in self._copied.items() if name.endswith(".log"))

    def offset_lag(self) -> int:
        """How far the future log's end is behind the current one (DescribeLogDirs' lag of a
        future replica): the offsets of segments not yet copied whole."""
        assert self.log.directory is not None
        for segment in self.log.segments:
            copied = self._copied.get(f"{segment.base_offset:020d}.log")
            if copied is None or copied.size < segment.size:
                return self.log.log_end_offset - segment.base_offset
        return 0

    def finish(self) -> None:
        """Make the future directory an exact, durable copy of the current one: what is
        still to copy, then files the current log no longer has go, then an fsync of every
        file not yet synced and of the directory. The caller lets no append in meanwhile."""
        assert self.log.directory is not None
        self.log.flush()
        sources = self._sources()
        for name, stat in sources.items():
            self._copy_file(self.log.directory / name, name, stat, stat.st_size, checked=True)
        for name in list(self._copied):
            if name not in sources:
                (self.future / name).unlink(missing_ok=True)
                del self._copied[name]
        self._sync(lambda name, copied: True)
        fsync_directory(self.future)
