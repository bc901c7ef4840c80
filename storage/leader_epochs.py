"""Kafka's LeaderEpochFileCache over a partition's epoch history: endOffsetFor, shared by the
engines and by the cluster's view of its partitions, and the changes a log's
`leader-epoch-checkpoint` goes through (storage/log.py)."""

from __future__ import annotations

from collections.abc import Sequence


def end_offset_for(epochs: Sequence[tuple[int, int]], requested_epoch: int, log_end_offset: int) -> tuple[int, int]:
    """(epoch, end offset) of `requested_epoch` over `epochs`, (epoch, start offset) entries in
    ascending order: the latest epoch ends at the log end; an older one where the next entry
    starts, answered with the largest epoch at or below it, or itself when below them all; one
    above every entry, or -1, is undefined (-1, -1)."""
    if requested_epoch == -1:
        return -1, -1
    if epochs and epochs[-1][0] == requested_epoch:
        return requested_epoch, log_end_offset
    higher = next(((epoch, start) for epoch, start in epochs if epoch > requested_epoch), None)
    if higher is None:
        return -1, -1
    floor = [epoch for epoch, _ in epochs if epoch <= requested_epoch]
    return (floor[-1] if floor else requested_epoch), higher[1]


EPOCH_CHECKPOINT_FILE = "leader-epoch-checkpoint"
_CHECKPOINT_VERSION = 0


def parse_epoch_checkpoint(text: str) -> list[tuple[int, int]]:
    """The (epoch, start offset) entries of a `leader-epoch-checkpoint` (Kafka's
    LeaderEpochCheckpointFile: version 0, an entry count, then one "epoch offset" line each);
    ValueError when it is not one."""
    version, count, *lines = text.splitlines()
    if int(version) != _CHECKPOINT_VERSION or int(count) != len(lines):
        raise ValueError(f"not a version {_CHECKPOINT_VERSION} leader epoch checkpoint")
    entries = []
    for line in lines:
        epoch, start_offset = line.split()
        entries.append((int(epoch), int(start_offset)))
    return entries


def format_epoch_checkpoint(epochs: Sequence[tuple[int, int]]) -> str:
    return "".join(f"{line}\n" for line in (_CHECKPOINT_VERSION, len(epochs), *(f"{e} {s}" for e, s in epochs)))


def assign_epoch(epochs: Sequence[tuple[int, int]], epoch: int, start_offset: int) -> list[tuple[int, int]] | None:
    """Kafka's LeaderEpochFileCache.assign: the history with `epoch` starting at `start_offset`,
    entries of that epoch or later, or starting at or past it, replaced; None when the latest
    entry already is that epoch from no later an offset (nothing to write)."""
    if epochs and epochs[-1][0] == epoch and start_offset >= epochs[-1][1]:
        return None
    kept = [(e, s) for e, s in epochs if e < epoch and s < start_offset]
    return [*kept, (epoch, start_offset)]


def truncate_epochs_from_start(epochs: Sequence[tuple[int, int]], log_start_offset: int) -> list[tuple[int, int]] | None:
    """Kafka's LeaderEpochFileCache.truncateFromStart: entries starting at or below the new log
    start go but the last of them, which now starts there; None when nothing changes."""
    below = [entry for entry in epochs if entry[1] <= log_start_offset]
    if not below or below[-1][1] == log_start_offset and len(below) == 1:
        return None
    return [(below[-1][0], log_start_offset), *epochs[len(below) :]]
