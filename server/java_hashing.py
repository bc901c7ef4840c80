"""The order in which java.util.HashMap and HashSet iterate their keys, for ports of Kafka code
whose choices follow that order (assignors, a classic group's protocol vote, which of a
request's feature updates is refused, the SASL mechanisms a handshake lists): by bucket, the
spread hash's low bits, then by insertion within a bucket (a resize splits buckets keeping that
order). Hashes are Java's hashCode of the key's type, as unsigned 32-bit ints."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
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
