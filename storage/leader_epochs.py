"""Kafka's LeaderEpochFileCache.endOffsetFor over a partition's epoch history, shared by the
engines and by the cluster's view of its partitions."""

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
