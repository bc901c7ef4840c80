"""Replacing a file so that a crash, power loss included, leaves the old one or the new one.

rename(2) changes the directory, not the file: until the directory itself is fsynced, a
power loss may undo a rename that already returned, and bring back the old contents (a
producer-id block already handed out, a checkpoint DeleteRecords moved past). So every
replacement ends with an fsync of the directory, as Kafka's Utils.atomicMoveWithFallback
does by default. Every file the storage (and the broker beside it) replaces goes through here.
"""

from __future__ import annotations

import errno
import fcntl
import os
import pathlib
import shutil

TEMPORARY_SUFFIX = ".tmp"
# Kafka's LogFileUtils.DELETED_FILE_SUFFIX: a deleted segment's file waiting out file.delete.delay.ms.
DELETED_SUFFIX = ".deleted"
# Kafka's LogManager.LockFileName: held by the one process using a log directory.
LOCK_FILE = ".lock"


def replace_file(path: pathlib.Path, data: bytes, sync: bool = True) -> None:
    """Make `data` the contents of `path`: write `<path>.tmp`, fsync it, then `rename_durably`.
    A `.tmp` left by a crash is the caller's to remove when it next loads the directory.
    `sync=False` leaves both fsyncs to the caller, who does them later (a rolled segment's
    producer snapshot, storage/flusher.py) and reads a torn file back as unreadable."""
    temporary = path.with_name(path.name + TEMPORARY_SUFFIX)
    with open(temporary, "wb") as file:
        file.write(data)
        if sync:
            file.flush()
            os.fsync(file.fileno())
    if sync:
        rename_durably(temporary, path)
    else:
        os.replace(temporary, path)


def rename_durably(source: pathlib.Path, target: pathlib.Path) -> None:
    """Rename `source` over `target` (same directory, contents already fsynced by the caller),
    then fsync the directory so that the rename survives a power loss."""
    os.replace(source, target)
    fsync_directory(target.parent)


def remove_paths(paths: list[pathlib.Path]) -> None:
    """Remove files and directory trees already set aside (renamed out of every reader's way);
    missing ones are skipped. It touches the file system alone, so any thread may run it:
    removing a large file can hold the disk for a while."""
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def fsync_directory(directory: pathlib.Path) -> None:
    """Make the directory's entries (creations, renames, removals) durable."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class DirectoryLocks:
    """The log directories' `.lock` files this process holds, as Kafka's LogManager holds
    them: a second broker on the same directory would hand out the offsets the first did and
    overwrite its records. Releasing them (or the process ending: the kernel drops them)
    lets another process take the directories."""

    def __init__(self) -> None:
        self._descriptors: list[int] = []

    def take(self, directory: pathlib.Path) -> None:
        """Lock `directory`, or raise OSError naming its lock file when another holds it."""
        path = directory / LOCK_FILE
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            raise OSError(errno.EWOULDBLOCK, "in use by another broker, which holds its lock", str(path)) from None
        except OSError:
            os.close(descriptor)
            raise
        self._descriptors.append(descriptor)

    def release(self) -> None:
        for descriptor in self._descriptors:
            os.close(descriptor)
        self._descriptors.clear()
