"""The order in which Kafka 4.4 serves a share session's partitions, so that a ShareFetch whose
max_records runs out hands records out from the same partitions Kafka's would.

* Each request after the first rotates the session's partitions left by its epoch modulo
  their count (`PartitionRotateStrategy.rotateRoundRobin`; those of unknown topics or not
  authorized are left out before the rotation).
* `DelayedShareFetch.tryComplete` first reads only the partitions whose next fetch offset has
  moved since a fetch last looked at them (`SharePartition.fetchOffsetMetadata` no longer
  matches), then reads the others and acquires from those first (`combineLogReadResponse`
  appends what it had read to what it reads last).
* A later request's answer moves each partition that got records to the end of the session
  (`ShareSessionContext.PartitionIterator`), in the order of the answer's partition map: a
  scala mutable HashMap turned into an immutable Map (`toMap`), so by the partitions' hashes
  (java_hashing.response_map_order).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


def rotated(partitions: Sequence[K], epoch: int) -> list[K]:
    """PartitionRotateStrategy.rotateRoundRobin: left by epoch modulo the count, from epoch 1."""
    if len(partitions) < 2 or epoch < 1:
        return list(partitions)
    shift = epoch % len(partitions)
    return [*partitions[shift:], *partitions[:shift]]


def looked_at_last(partitions: Sequence[K], moved: Callable[[K], bool]) -> list[K]:
    """The order acquisition takes: those whose next fetch offset had not moved, then those
    that had (read first, by tryComplete, and appended after the rest)."""
    return [key for key in partitions if not moved(key)] + [key for key in partitions if moved(key)]
