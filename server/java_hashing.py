"""The order in which java.util.HashMap and HashSet iterate their keys, for ports of Kafka code
whose choices follow that order (assignors, a classic group's protocol vote, which of a
request's feature updates is refused, the SASL mechanisms a handshake lists): by bucket, the
spread hash's low bits, then by insertion within a bucket (a resize splits buckets keeping that
order). Hashes are Java's hashCode of the key's type, as unsigned 32-bit ints. Also the
order of the Scala maps KafkaApis answers from (`response_map_order`: ShareFetch, Produce)."""

from __future__ import annotations

import functools
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


# hash4j's XXH3-64 (seed 0, the default secret), with which Kafka's group coordinator hashes the
# topics a group subscribes to (KIP-1101: Utils.computeTopicHash, computeGroupHash).
_M64 = (1 << 64) - 1
_XXH_PRIME32_1, _XXH_PRIME32_2, _XXH_PRIME32_3 = 0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D
_XXH_PRIME64_1, _XXH_PRIME64_2, _XXH_PRIME64_3, _XXH_PRIME64_4, _XXH_PRIME64_5 = (
    0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5)
_XXH_PRIME_MX1, _XXH_PRIME_MX2 = 0x165667919E3779F9, 0x9FB21C651E98DF25
_XXH_SECRET = bytes.fromhex(
    "b8fe6c3923a44bbe7c01812cf721ad1cded46de9839097db7240a4a4b7b3671fcb79e64eccc0e578825ad07dccff7221b8084674f743248ee03590e6813a264c"
    "3c2852bb91c300cb88d0658b1b532ea371644897a20df94e3819ef46a9deacd8a8fa763fe39c343ff9dcbbc7c70b4f1d8a51e04bcdb45931c89f7ec9d9787364"
    "eac5ac8334d3ebc3c581a0fffa1363eb170ddd51b7f0da49d316552629d4689e2b16be587d47a1fc8ff8b8d17ad031ce45cb3a8f95160428afd7fbcabb4b407e")


def _le64(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 8], "little")


def _le32(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 4], "little")


def _fold64(a: int, b: int) -> int:
    """The 128-bit product of two 64-bit ints, its halves xored."""
    product = a * b
    return (product & _M64) ^ (product >> 64)


def _xxh3_avalanche(h: int) -> int:
    h ^= h >> 37
    h = (h * _XXH_PRIME_MX1) & _M64
    return h ^ (h >> 32)


def _xxh64_avalanche(h: int) -> int:
    h ^= h >> 33
    h = (h * _XXH_PRIME64_2) & _M64
    h ^= h >> 29
    h = (h * _XXH_PRIME64_3) & _M64
    return h ^ (h >> 32)


def _mix16(data: bytes, at: int, secret_at: int) -> int:
    return _fold64(_le64(data, at) ^ _le64(_XXH_SECRET, secret_at), _le64(data, at + 8) ^ _le64(_XXH_SECRET, secret_at + 8))


def xxh3_64(data: bytes) -> int:
    """XXH3's 64-bit hash of `data` (seed 0), unsigned: by length as the reference does it, up
    to 16 bytes, 128, 240, then by stripes of 64 bytes."""
    size = len(data)
    if size == 0:
        return _xxh64_avalanche(_le64(_XXH_SECRET, 56) ^ _le64(_XXH_SECRET, 64))
    if size <= 3:
        combined = (data[0] << 16) | (data[size >> 1] << 24) | data[-1] | (size << 8)
        return _xxh64_avalanche(combined ^ _le32(_XXH_SECRET, 0) ^ _le32(_XXH_SECRET, 4))
    if size <= 8:
        h = (_le32(data, size - 4) + (_le32(data, 0) << 32)) ^ _le64(_XXH_SECRET, 8) ^ _le64(_XXH_SECRET, 16)
        h ^= (((h << 49) | (h >> 15)) & _M64) ^ (((h << 24) | (h >> 40)) & _M64)
        h = (h * _XXH_PRIME_MX2) & _M64
        h ^= (h >> 35) + size
        h = (h * _XXH_PRIME_MX2) & _M64
        return h ^ (h >> 28)
    if size <= 16:
        low = _le64(data, 0) ^ _le64(_XXH_SECRET, 24) ^ _le64(_XXH_SECRET, 32)
        high = _le64(data, size - 8) ^ _le64(_XXH_SECRET, 40) ^ _le64(_XXH_SECRET, 48)
        swapped = int.from_bytes(low.to_bytes(8, "little"), "big")
        return _xxh3_avalanche((size + swapped + high + _fold64(low, high)) & _M64)
    acc = size * _XXH_PRIME64_1
    if size <= 128:
        for i in range((size - 1) // 32 + 1):
            acc += _mix16(data, 16 * i, 32 * i) + _mix16(data, size - 16 * (i + 1), 32 * i + 16)
        return _xxh3_avalanche(acc & _M64)
    if size <= 240:
        for i in range(8):
            acc += _mix16(data, 16 * i, 16 * i)
        acc = _xxh3_avalanche(acc & _M64)
        for i in range(8, size // 16):
            acc += _mix16(data, 16 * i, 16 * (i - 8) + 3)
        return _xxh3_avalanche((acc + _mix16(data, size - 16, 136 - 17)) & _M64)
    return _xxh3_long(data)


def _xxh3_accumulate(accs: list[int], data: bytes, at: int, secret_at: int) -> None:
    for i in range(8):
        value = _le64(data, at + 8 * i)
        keyed = value ^ _le64(_XXH_SECRET, secret_at + 8 * i)
        accs[i ^ 1] = (accs[i ^ 1] + value) & _M64
        accs[i] = (accs[i] + (keyed & 0xFFFFFFFF) * (keyed >> 32)) & _M64


def _xxh3_long(data: bytes) -> int:
    """XXH3-64 of more than 240 bytes: blocks of 16 stripes, each block's accumulators
    scrambled, then the last stripe and the merge."""
    size = len(data)
    accs = [_XXH_PRIME32_3, _XXH_PRIME64_1, _XXH_PRIME64_2, _XXH_PRIME64_3, _XXH_PRIME64_4, _XXH_PRIME32_2, _XXH_PRIME64_5, _XXH_PRIME32_1]
    stripes_per_block = (len(_XXH_SECRET) - 64) // 8
    block = 64 * stripes_per_block
    blocks = (size - 1) // block
    scramble_at = len(_XXH_SECRET) - 64
    for n in range(blocks):
        for stripe in range(stripes_per_block):
            _xxh3_accumulate(accs, data, n * block + 64 * stripe, 8 * stripe)
        for i in range(8):
            acc = accs[i] ^ (accs[i] >> 47) ^ _le64(_XXH_SECRET, scramble_at + 8 * i)
            accs[i] = (acc * _XXH_PRIME32_1) & _M64
    for stripe in range(((size - 1) - block * blocks) // 64):
        _xxh3_accumulate(accs, data, blocks * block + 64 * stripe, 8 * stripe)
    _xxh3_accumulate(accs, data, size - 64, scramble_at - 7)
    result = size * _XXH_PRIME64_1
    for i in range(4):
        result += _fold64(accs[2 * i] ^ _le64(_XXH_SECRET, 11 + 16 * i), accs[2 * i + 1] ^ _le64(_XXH_SECRET, 19 + 16 * i))
    return _xxh3_avalanche(result & _M64)


def _hash4j_string(value: str) -> bytes:
    """HashStream.putString: the UTF-16 code units, little-endian, then the length in them."""
    units = value.encode("utf-16-le")
    return units + (len(units) // 2).to_bytes(4, "little")


def _java_long(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def kafka_topic_hash(topic_id: bytes, name: str, partitions: int, partition_racks: Callable[[int], list[str]] = lambda partition: []) -> int:
    """Utils.computeTopicHash, as a Java long: XXH3 over a 0 byte, the topic id's two halves,
    its name, its partition count, then each partition's index and its replicas' racks sorted
    (each its length, then the string). All numbers little-endian, as hash4j puts them."""
    out = bytearray(b"\0")
    out += int.from_bytes(topic_id[:8], "big").to_bytes(8, "little") + int.from_bytes(topic_id[8:16], "big").to_bytes(8, "little")
    out += _hash4j_string(name) + (partitions & 0xFFFFFFFF).to_bytes(4, "little")
    for partition in range(partitions):
        out += partition.to_bytes(4, "little")
        for rack in sorted(partition_racks(partition), key=lambda r: r.encode("utf-16-be")):
            out += (len(rack.encode("utf-16-le")) // 2).to_bytes(4, "little") + _hash4j_string(rack)
    return _java_long(xxh3_64(bytes(out)))


@functools.lru_cache(maxsize=4096)
def kafka_topic_hash_on_rack(topic_id: bytes, name: str, partitions: int, rack: str | None) -> int:
    """`kafka_topic_hash` of a topic whose every partition has its replicas on `rack` (none
    when None), remembered: a group's hash is taken at heartbeats, and Kafka too keeps each
    topic's hash until the topic changes (a new id or partition count is a new key here)."""
    racks = [] if rack is None else [rack]
    return kafka_topic_hash(topic_id, name, partitions, lambda partition: racks)


@functools.lru_cache(maxsize=4096)
def kafka_topic_hash_of_racks(topic_id: bytes, name: str, partitions: int, racks: tuple[tuple[str, ...], ...]) -> int:
    """`kafka_topic_hash` of a topic whose partition i has replicas on `racks[i]` (one entry per
    replica that has a rack, in any order), remembered as `kafka_topic_hash_on_rack` is: a
    replica moved to another rack is a new key."""
    return kafka_topic_hash(topic_id, name, partitions, lambda partition: list(racks[partition]))


# In cluster mode, the racks of each partition's replicas of a topic (name, id, partition
# count): one tuple per partition, a rack per replica that has one.
PartitionRacks = Callable[[str, bytes, int], tuple[tuple[str, ...], ...]]


def kafka_topic_hash_placed(topic_id: bytes, name: str, partitions: int, broker_rack: str | None, partition_racks: PartitionRacks | None) -> int:
    """Utils.computeTopicHash of a topic as this broker places it: on one node every
    partition's one replica is on `broker_rack` (`partition_racks` None), in a cluster each
    partition's replicas are where `partition_racks` says (Kafka's partitionRacks reads each
    replica's registered rack)."""
    if partition_racks is None:
        return kafka_topic_hash_on_rack(topic_id, name, partitions, broker_rack)
    return kafka_topic_hash_of_racks(topic_id, name, partitions, partition_racks(name, topic_id, partitions))


def kafka_group_hash(topic_hashes: dict[str, int]) -> int:
    """Utils.computeGroupHash, as a Java long: 0 for no topics, else XXH3 over the topics'
    hashes in the order of their names (String.compareTo: by UTF-16 code unit)."""
    if not topic_hashes:
        return 0
    names = sorted(topic_hashes, key=lambda name: name.encode("utf-16-be"))
    return _java_long(xxh3_64(b"".join((topic_hashes[name] & _M64).to_bytes(8, "little") for name in names)))


def timeline_int_order(keys_inserted: list[int], slots: int) -> list[int]:
    """Integer keys as a TimelineHashMap of `slots` iterates them: `timeline_order`'s rule,
    with Integer.hashCode (the value) for the String's."""
    position = {key: index for index, key in enumerate(keys_inserted)}
    return sorted(keys_inserted, key=lambda key: (_timeline_hash_slot(int_hash(key), slots), -position[key]))


def _timeline_hash_slot(h: int, slots: int) -> int:
    """BaseHashTable.findSlot of an unsigned 32-bit hashCode."""
    signed = h - (1 << 32) if h >= 1 << 31 else h
    return ((signed * _SLOT_MULTIPLIER) & 0xFFFF_FFFF_FFFF_FFFF) >> (65 - slots.bit_length())
