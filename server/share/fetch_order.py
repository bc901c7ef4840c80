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
  scala mutable HashMap turned into an immutable Map (`toMap`), so by the partitions' hashes.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

from ottla.server.java_hashing import string_hash, uuid_hash

K = TypeVar("K", bound=Hashable)

_MASK = 0xFFFFFFFF
# Map1 to Map4 keep their entries in insertion order; bigger immutable Maps are HashMaps.
_SMALL_MAP = 4


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


def topic_id_partition_hash(topic_id: bytes, topic: str | None, index: int) -> int:
    """org.apache.kafka.common.TopicIdPartition.hashCode, as an unsigned 32-bit int."""
    topic_partition = 31 * (31 + index) + (0 if topic is None else string_hash(topic))
    return (31 * (31 + uuid_hash(topic_id)) + topic_partition) & _MASK


def response_map_order(keys: Sequence[K], hash_of: Callable[[K], int]) -> list[K]:
    """The iteration order of a ShareFetch's partition map (KafkaApis: a scala mutable HashMap
    of every partition fetched, then `toMap`): up to four entries that of the mutable map, by
    bucket and then hash; more become a CHAMP HashMap, ordered by its trie."""
    if len(keys) > _SMALL_MAP:
        return _champ_order([(_improve(hash_of(key)), key) for key in keys], 0)
    return mutable_map_order(keys, hash_of)


def mutable_map_order(keys: Sequence[K], hash_of: Callable[[K], int]) -> list[K]:
    """The iteration order of a scala mutable.HashMap holding `keys` (Java hashCodes by
    `hash_of`): by bucket of the spread hash in a table grown from 16, then by hash."""
    hashes = {key: hash_of(key) & _MASK for key in keys}
    capacity = 16
    # mutable.HashMap grows before an insert that would reach 3/4 of its table.
    while len(keys) > capacity * 3 // 4 - 1:
        capacity *= 2
    spread = {key: hashes[key] ^ (hashes[key] >> 16) for key in keys}
    return sorted(keys, key=lambda key: (spread[key] & (capacity - 1), _signed(spread[key])))


def _signed(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value


def _improve(h: int) -> int:
    """scala.collection.Hashing.improve, which immutable.HashMap applies to each key's hash."""
    h = (h + (~(h << 9) & _MASK)) & _MASK
    h ^= h >> 14
    h = (h + (h << 4)) & _MASK
    return h ^ (h >> 10)


def _champ_order(entries: list[tuple[int, K]], shift: int) -> list[K]:
    """A CHAMP node's iteration: the keys alone at their 5-bit fragment of the hash, by
    fragment, then each sub-node of keys sharing one, by fragment (same hashes: as put)."""
    if shift >= 32:
        return [key for _, key in entries]
    fragments: dict[int, list[tuple[int, K]]] = {}
    for entry in entries:
        fragments.setdefault((entry[0] >> shift) & 31, []).append(entry)
    alone = [group[0][1] for _, group in sorted(fragments.items()) if len(group) == 1]
    shared = [_champ_order(group, shift + 5) for _, group in sorted(fragments.items()) if len(group) > 1]
    return alone + [key for node in shared for key in node]
