"""The recovery-point checkpoints when a move between log directories (AlterReplicaLogDirs) swaps
the copy in: the source's forgets the partition at once, as Kafka's replaceCurrentWithFutureLog
checkpoints it, and the destination's names it at the recovery point its synced copy holds, so a
crash before the next periodic checkpoint does not recover the moved log from offset 0."""

from __future__ import annotations

import pathlib
import time
from collections.abc import Callable

from test_log_dirs import fill, open_dirs


def checkpointed(log_dir: pathlib.Path) -> dict[str, int]:
    """The entries of a directory's recovery-point-offset-checkpoint (version, count, then `topic partition offset`)."""
    path = log_dir / "recovery-point-offset-checkpoint"
    if not path.exists():
        return {}
    lines = path.read_text().splitlines()[2:]
    return {" ".join(line.split()[:2]): int(line.split()[2]) for line in lines}


def wait_for(condition: Callable[[], bool], seconds: float = 5) -> bool:
    """The checkpoints are written on the storage's flusher thread: poll for them a little."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_a_swap_checkpoints_the_recovery_points_of_both_directories(tmp_path: pathlib.Path) -> None:
    fill(tmp_path)
    storage = open_dirs(tmp_path)
    source, destination = storage.log_dirs
    assert checkpointed(source) == {"t 0": 12}
    storage.alter_log_dir("t", 0, destination)
    while storage.moving:
        storage.copy_moves(1500)
    log = storage.partition("t", 0)
    end = log.log_end_offset
    assert log.recovery_point == end, "the swap flushed the log"
    assert wait_for(lambda: checkpointed(destination) == {"t 0": end} and checkpointed(source) == {}), (
        checkpointed(source), checkpointed(destination),
    )
    storage.close()
    assert checkpointed(destination) == {"t 0": end} and checkpointed(source) == {}
    reopened = open_dirs(tmp_path)
    try:
        assert reopened.log_dir_of("t", 0) == destination and reopened.partition("t", 0).recovery_point == end
    finally:
        reopened.close()
