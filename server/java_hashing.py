"""The order in which java.util.HashMap and HashSet iterate their keys, for ports of Kafka code
whose choices follow that order (assignors, a classic group's protocol vote, which of a
request's feature updates is refused, the SASL mechanisms a handshake lists): by bucket, the
spread hash's low bits, then by insertion within a bucket (a resize splits buckets keeping that
order). Hashes are Java's hashCode of the key's type, as unsigned 32-bit ints. Also the
order of the Scala maps KafkaApis answers from (`response_map_order`: ShareFetch, Produce)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import TypeVar

K = TypeVar("K")


def java_order(keys: list[K], hash_of: Callable[[K], int], capacity: int) -> list[K]:
    """The order a java.util.HashMap (or HashSet) of `capacity` buckets holding `keys`, put in
    the given order, iterates them: by bucket (the spread hash's low bits), then, within a
    bucket, in insertion order (resizes split buckets keeping that order)."""
    mask = capacity - 1
    buckets = [((h ^ (h >> 16)) & mask, i) for i, h in enumerate(map(hash_of, keys))]
    return [keys[i] for _, i in sorted(buckets)]


def chain_order(inserted: list[tuple[K, bool]], hash_of: Callable[[K], int], capacity: int) -> list[K]:
    """The order a java.util.HashMap of `capacity` buckets iterates keys added in this order,
    each flagged True when computeIfAbsent (or compute, merge) added it, which links a new key
    at its bucket's head, and False when put did, which links it at the tail."""
    mask = capacity - 1
    chains: dict[int, deque[K]] = {}
    for key, at_head in inserted:
        h = hash_of(key)
        chain = chains.setdefault((h ^ (h >> 16)) & mask, deque())
        if at_head:
            chain.appendleft(key)
        else:
            chain.append(key)
    return [key for bucket in sorted(chains) for key in chains[bucket]]


def default_capacity(size: int) -> int:
    """Buckets of a `new HashMap<>()` after `size` puts: 16, doubled past 3/4 full."""
    capacity = 16
    while size > capacity * 3 // 4:
        capacity *= 2
    return capacity


def sized_capacity(size: int) -> int:
    """Buckets of `new HashSet<>(collection)` of `size` elements: the power of two at least
    max(size / .75 + 1, 16)."""
    wanted = max(int(size / 0.75) + 1, 16)
    return 1 << (wanted - 1).bit_length()


def table_size_for(size: int) -> int:
    """HashMap.tableSizeFor: the buckets a `new HashMap<>(size)` starts with, the power of two
    at least `size` (1 at least)."""
    return 1 if size <= 1 else 1 << (size - 1).bit_length()


def copied_capacity(size: int) -> int:
    """Buckets of `new HashMap<>(map)` of `size` entries (JDK 17): tableSizeFor(size / .75 + 1),
    with no floor of 16."""
    return table_size_for(int(size / 0.75 + 1))


def string_hash(value: str) -> int:
    """java.lang.String.hashCode, over UTF-16 code units, as an unsigned 32-bit int."""
    h = 0
    units = value.encode("utf-16-be")
    for i in range(0, len(units), 2):
        h = (31 * h + (units[i] << 8 | units[i + 1])) & 0xFFFFFFFF
    return h


def uuid_hash(topic_id: bytes) -> int:
    """org.apache.kafka.common.Uuid.hashCode: the two halves xor-folded to 32 bits."""
    bits = int.from_bytes(topic_id[-16:].rjust(16, b"\0"), "big")
    hilo = (bits >> 64) ^ (bits & 0xFFFFFFFFFFFFFFFF)
    return ((hilo >> 32) ^ hilo) & 0xFFFFFFFF


def int_hash(value: int) -> int:
    """java.lang.Integer.hashCode, unsigned."""
    return value & 0xFFFFFFFF


# BaseHashTable.findSlot's multiplier (Fibonacci hashing), as an unsigned 64-bit int.
_SLOT_MULTIPLIER = 0x9E3779B97F4A7C15


def timeline_slot(key: str, slots: int) -> int:
    """The slot of a String key in Kafka's TimelineHashMap (BaseHashTable.findSlot): the top
    bits of its sign-extended hashCode times the Fibonacci multiplier, as many as `slots` (a
    power of two) needs."""
    h = string_hash(key)
    signed = h - (1 << 32) if h >= 1 << 31 else h
    return ((signed * _SLOT_MULTIPLIER) & 0xFFFF_FFFF_FFFF_FFFF) >> (65 - slots.bit_length())


# A TimelineHashMap created for no entries starts with this many slots.
TIMELINE_INITIAL_SLOTS = 2


def timeline_slots_before_put(slots: int, held: int) -> int:
    """The slots of a TimelineHashMap holding `held` entries once about to take one more
    (BaseHashTable.baseAddOrReplace): doubled when that would fill it past 0.75, even if the put
    then replaces an entry; never shrunk."""
    return slots * 2 if (held + 1) * 0.75 > slots else slots


def timeline_order(keys_inserted: list[str], slots: int) -> list[str]:
    """String keys as a TimelineHashMap of `slots` iterates them: by `timeline_slot`, and
    within a slot the later-inserted first (a slot chains its entries in insertion order, a
    replaced one keeping its place, and the iterator takes each chain from its end)."""
    position = {key: index for index, key in enumerate(keys_inserted)}
    return sorted(keys_inserted, key=lambda key: (timeline_slot(key, slots), -position[key]))


# Scala's collections, as KafkaApis builds its answer maps with them.
_MASK = 0xFFFFFFFF
# Map1 to Map4 keep their entries in insertion order; bigger immutable Maps are HashMaps.
_SMALL_MAP = 4


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
