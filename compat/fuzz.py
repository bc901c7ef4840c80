"""`python -m compat.fuzz`: a reproducible fuzz run of the request decoder (issue 8, item 1).

    python -m compat.fuzz [--count N] [--seed S] [--jobs J] [--live [--live-count M]] [--replay I]

`--replay I` decodes input I of the seed alone and shows its failure (with `--live`, sends it
to a fresh broker and prints the broker's log).

Input `i` of a run depends on (seed, i) alone: a request generated from the schema of one
API version (edge integers, nulls, unicode, tagged fields, record batches), then, mostly,
corrupted, either while it is encoded (a bytes, array or string that lies about its length,
text that is not UTF-8, record batches with lying lengths, counts or CRCs) or afterwards
(bit flips, truncation, inserted or deleted bytes, int16/int32 lengths set to hostile values,
varints of 6+ bytes, unknown tagged fields), or plain garbage after a valid header.

Each input is decoded the way the broker does it (`peek_api`, the version check, then
`decode_request`), and the records of a decoded Produce go where storage sends them
(`convert_legacy` / `iter_batches`, then `iter_records`). Outcomes: decoded, rejected
(MalformedFrame from the decoder, KafkaError from the records), or other: any other
exception, or an unmutated request that does not decode to what was encoded (or that
`encode_request` does not encode byte for byte as the interpreted builder did). "other" is a
bug; each is printed with the command that replays it.

In-process, every API version `wire/` declares is fuzzed (a superset of what the broker
advertises: the decoder does not depend on the handler table). `--live` also sends a sample
of inputs for the APIs an `ottla serve` subprocess advertises over real sockets, each followed
by an ApiVersions probe on the same connection: a decodable request must be answered with
a well-formed response (or, acks=0, not at all: closed if it failed, as Kafka closes it), an
undecodable one must close the connection; the broker must never hang, log a traceback, or
stop serving produce/fetch.
A fetch, share fetch, join or sync that is still parked after a second is hung up on, as a
client would.
"""

from __future__ import annotations

import argparse
import collections
import io
import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from compat.sockets import read_frame
from ottla.wire.api import DECLARED_VERSIONS, ApiKey
from ottla.wire.errors import KafkaError, MalformedFrame
from ottla.wire.header import RequestHeader, decode_request_header, encode_request_header, peek_api, request_header_version
from ottla.wire.primitives import Array, Bool, Bytes, Fixed, String, Uuid, encode_uvarint
from ottla.wire.protocol import decode_request, decode_response, encode_request, request_struct
from ottla.wire.records import (
    CRC,
    CRC_OFFSET,
    Compression,
    Record,
    batch_magic,
    build_batch,
    compute_crc,
    convert_legacy,
    iter_batches,
    iter_records,
)
from ottla.wire.schema import Message, NullableStruct
from ottla.wire.structs import fresh_default

Target = tuple[int, int]  # (api_key, version)

DECODED, REJECTED, OTHER = "decoded", "rejected", "other"

_INTERESTING_INTS = {
    "int8": (0, 1, -1, 127, -128),
    "int16": (0, 1, -1, -2, 32767, -32768),
    "uint16": (0, 1, 65535),
    "int32": (0, 1, -1, -2, 2**31 - 1, -(2**31), 1 << 20),
    "uint32": (0, 1, 2**32 - 1),
    "int64": (0, 1, -1, -2, 2**63 - 1, -(2**63), 1 << 40),
}
_TEXT_PIECES = ("a", "topic", "é", "日本", "\U0001f600", "\x00", " ", "-", "_", ".", "Ω")
# Names the live broker has topics (with records) for, so requests reach past "unknown topic".
KNOWN_TOPICS = {"topic": 3, "a": 1}
# Byte strings that are not UTF-8: a lone continuation, a truncated sequence, an overlong
# encoding, a surrogate, a code point past U+10FFFF.
_BAD_UTF8 = (b"\xff", b"\x80", b"\xc3", b"\xc3\x28", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82")


class _LyingBytes(bytes):
    """Bytes whose encoder writes a length that is not theirs."""

    lie = 0

    def __len__(self) -> int:
        return self.lie


class _LyingList(list):  # type: ignore[type-arg]
    """An array whose encoder writes a count that is not its own."""

    lie = 0

    def __len__(self) -> int:
        return self.lie


class _BadText(str):
    """A string whose UTF-8 form, as the encoder sees it, is not UTF-8 (or lies about its length)."""

    raw: bytes = b""

    def encode(self, *args: Any, **kwargs: Any) -> bytes:  # type: ignore[override]
        return self.raw


class _Generator:
    """Values for one message, drawn from `rng`; `lies` counts the corruptions planted."""

    def __init__(self, rng: random.Random, lie_rate: float) -> None:
        self.rng = rng
        self.lie_rate = lie_rate
        self.lies = 0

    def _lie(self) -> bool:
        if self.rng.random() < self.lie_rate:
            self.lies += 1
            return True
        return False

    def _hostile_count(self, actual: int, compact: bool) -> int:
        rng = self.rng
        limit = 2**32 - 2 if compact else 2**31 - 1
        return rng.choice((actual + 1, actual + rng.randint(2, 1000), max(actual - 1, 0), limit, limit // 2, 0))

    def value(self, con: Any, depth: int = 0) -> Any:
        rng = self.rng
        if isinstance(con, Message):
            out = {name: self.value(c, depth + 1) for name, c, _ in con.fields}
            for _, name, c, default in con.tagged:  # a default value is left off the wire
                out[name] = self.value(c, depth + 1) if rng.random() < 0.5 else fresh_default(default)
            return out
        if isinstance(con, NullableStruct):
            return None if rng.random() < 0.2 else self.value(con.struct, depth)
        if isinstance(con, Array):
            if con.nullable and rng.random() < 0.1:
                return None
            items = [self.value(con.element, depth + 1) for _ in range(rng.randint(0, 3 if depth < 4 else 1))]
            if self._lie():
                lying = _LyingList(items)
                lying.lie = self._hostile_count(len(items), con.compact)
                return lying
            return items
        if isinstance(con, String):
            if con.nullable and rng.random() < 0.1:
                return None
            if rng.random() < 0.3:
                text = rng.choice(tuple(KNOWN_TOPICS))
            else:
                text = "".join(rng.choice(_TEXT_PIECES) for _ in range(rng.randint(0, 6)))
            if self._lie():
                bad = _BadText(text)
                if rng.random() < 0.5:
                    bad.raw = text.encode()[: rng.randint(0, 4)] + rng.choice(_BAD_UTF8)
                else:
                    bad.raw = _LyingBytes(text.encode())
                    bad.raw.lie = self._hostile_count(len(text.encode()), con.compact) % 32768
                return bad
            return text
        if isinstance(con, Bytes):
            if con.nullable and rng.random() < 0.1:
                return None
            data = self.records() if con.zero_copy else rng.randbytes(rng.randint(0, 12))
            if self._lie():
                lying = _LyingBytes(data)
                lying.lie = self._hostile_count(len(data), con.compact)
                return lying
            return data
        if isinstance(con, Bool):
            return rng.random() < 0.5
        if isinstance(con, Uuid):
            return bytes(16) if rng.random() < 0.3 else rng.randbytes(16)
        if isinstance(con, Fixed):
            kind = con.type_name
            if kind == "float64":
                return rng.choice((0.0, -1.5, 1e300, float("inf")))
            if rng.random() < 0.6:
                return rng.choice(_INTERESTING_INTS[kind])
            bits = int(kind.removeprefix("u").removeprefix("int"))
            if kind.startswith("u"):
                return rng.randrange(2**bits)
            return rng.randrange(-(2 ** (bits - 1)), 2 ** (bits - 1))
        raise AssertionError(f"no generator for {con!r}")

    def records(self) -> bytes:
        """One to three record batches (v2), or a legacy message set, possibly lying."""
        rng = self.rng
        if rng.random() < 0.15:
            data = _legacy_set(rng, self._lie())
        else:
            data = b"".join(self._batch() for _ in range(rng.randint(1, 3)))
        if self._lie():
            cut = rng.randrange(len(data) + 1)
            data = data[:cut] if rng.random() < 0.5 else data[:cut] + rng.randbytes(rng.randint(1, 8)) + data[cut:]
        return data

    def _batch(self) -> bytes:
        rng = self.rng
        records = [
            Record(
                offset=index,
                timestamp=1_700_000_000_000 + index,
                key=None if rng.random() < 0.3 else rng.randbytes(rng.randint(0, 6)),
                value=rng.randbytes(rng.randint(0, 20)),
                headers=tuple(("h" * rng.randint(0, 3), rng.randbytes(2)) for _ in range(rng.randint(0, 2))),
            )
            for index in range(rng.randint(1, 3))
        ]
        codec = rng.choice((Compression.NONE,) * 4 + tuple(Compression))
        idempotent = rng.random() < 0.3
        batch = bytearray(
            build_batch(
                records,
                compression=codec,
                producer_id=rng.randint(0, 1000) if idempotent else -1,
                producer_epoch=0 if idempotent else -1,
                base_sequence=0 if idempotent else -1,
                transactional=idempotent and rng.random() < 0.3,
            )
        )
        if self._lie():
            # A header field set to a hostile value: length (8), magic (16), attributes (21),
            # last offset delta (23), producer id (43), base sequence (53), records count (57);
            # the CRC is fixed up half of the time so the lie gets past it.
            offset, fmt = rng.choice(((8, ">i"), (16, ">b"), (21, ">h"), (23, ">i"), (43, ">q"), (53, ">i"), (57, ">i")))
            bits = struct.calcsize(fmt) * 8
            struct.pack_into(fmt, batch, offset, rng.choice((-1, 0, 1, 2 ** (bits - 1) - 1, -(2 ** (bits - 1)), rng.randrange(-(2 ** (bits - 1)), 2 ** (bits - 1)))))
            if rng.random() < 0.5:
                CRC.pack_into(batch, CRC_OFFSET, compute_crc(batch))
        if self._lie():
            # A body byte changed, CRC recomputed: the records inside lie, the batch does not.
            position = rng.randrange(61, len(batch)) if len(batch) > 61 else 60
            batch[position] = rng.randrange(256)
            CRC.pack_into(batch, CRC_OFFSET, compute_crc(batch))
        if self._lie():
            batch[CRC_OFFSET + rng.randrange(4)] ^= 1 << rng.randrange(8)
        return bytes(batch)


def _legacy_message(rng: random.Random, magic: int, key: bytes | None, value: bytes | None, attributes: int = 0) -> bytes:
    def field(data: bytes | None) -> bytes:
        return struct.pack(">i", -1) if data is None else struct.pack(">i", len(data)) + data

    body = struct.pack(">bb", magic, attributes) + (struct.pack(">q", 1_700_000_000_000) if magic == 1 else b"") + field(key) + field(value)
    message = struct.pack(">I", zlib.crc32(body)) + body
    return struct.pack(">qi", 0, len(message)) + message


def _legacy_set(rng: random.Random, lie: bool) -> bytes:
    """A MessageSet v0/v1 (Produce v0-2), optionally gzip-wrapped, as LegacyRecord.java writes it."""
    magic = rng.randint(0, 1)
    inner = b"".join(_legacy_message(rng, magic, rng.randbytes(3), rng.randbytes(rng.randint(0, 10))) for _ in range(rng.randint(1, 3)))
    data = _legacy_message(rng, magic, None, _gzip(inner), attributes=1) if rng.random() < 0.3 else inner
    if lie:
        buffer = bytearray(data)
        offset = rng.choice((8, 12, 16, 17))  # size, crc, magic, attributes of the first message
        buffer[offset] = rng.randrange(256)
        return bytes(buffer)
    return data


def _gzip(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=31)
    return compressor.compress(data) + compressor.flush()


# --- Mutations of the encoded request (size prefix removed) --------------------------


def _position(rng: random.Random, frame: bytes) -> int:
    """Mostly in the body, so the input stays a request of the chosen API version."""
    low = 8 if len(frame) > 8 and rng.random() < 0.9 else 0
    return rng.randint(low, len(frame))


def _mutate(rng: random.Random, frame: bytes, flexible: bool) -> bytes:
    data = bytearray(frame)
    kind = rng.randrange(9)
    at = _position(rng, data)
    if kind == 0:  # bit flips
        for _ in range(rng.randint(1, 4)):
            if data:
                index = min(_position(rng, data), len(data) - 1)
                data[index] ^= 1 << rng.randrange(8)
    elif kind == 1:  # truncation
        del data[at:]
    elif kind == 2:  # inserted bytes
        data[at:at] = rng.randbytes(rng.randint(1, 16))
    elif kind == 3:  # deleted bytes
        del data[at : at + rng.randint(1, 16)]
    elif kind == 4:  # an int16 or int32 length/count overwritten with a hostile value
        fmt = rng.choice((">h", ">i"))
        bits = struct.calcsize(fmt) * 8
        value = rng.choice((-1, -2, 2 ** (bits - 1) - 1, -(2 ** (bits - 1)), len(data) - at, len(data) - at + 1))
        value = max(min(value, 2 ** (bits - 1) - 1), -(2 ** (bits - 1)))
        data[at : at + struct.calcsize(fmt)] = struct.pack(fmt, value)
    elif kind == 5:  # a varint of 6 to 11 bytes, or a huge one, in place of a byte
        length = rng.randint(6, 11) if rng.random() < 0.7 else 5
        data[at : at + 1] = bytes(0x80 | rng.randrange(128) for _ in range(length - 1)) + bytes((rng.randrange(1, 128),))
    elif kind == 6:  # bytes that are not UTF-8
        bad = rng.choice(_BAD_UTF8)
        data[at : at + len(bad)] = bad
    elif kind == 7 and flexible and data:  # unknown (or lying) tagged fields at the end of the body
        fields = []
        for _ in range(rng.randint(1, 3)):
            payload = rng.randbytes(rng.randint(0, 8))
            size = len(payload) if rng.random() < 0.7 else rng.choice((len(payload) + 1, 2**31, 2**32 - 1))
            fields.append(encode_uvarint(rng.choice((rng.randint(0, 5), 1000, 2**31 - 1))) + encode_uvarint(size) + payload)
        count = len(fields) if rng.random() < 0.8 else len(fields) + rng.randint(1, 2**31)
        data[-1:] = encode_uvarint(count) + b"".join(fields)
    else:  # a chunk duplicated elsewhere
        start = rng.randrange(len(data) + 1)
        chunk = data[start : start + rng.randint(1, 32)]
        data[at:at] = chunk
    return bytes(data)


# --- One input -------------------------------------------------------------------------


def make_input(seed: int, index: int, targets: list[Target]) -> tuple[bytes, dict[str, Any] | None]:
    """The frame (without size prefix) for input `index`, and the body it must decode to
    when nothing was corrupted (else None)."""
    rng = random.Random((seed << 40) | index)
    produce = [target for target in targets if target[0] == ApiKey.PRODUCE]
    # One input in ten is a Produce, so record batches get their share.
    api_key, version = rng.choice(produce if produce and rng.random() < 0.1 else targets)
    correlation_id = rng.randrange(-(2**31), 2**31)
    header_version = request_header_version(api_key, version)
    if rng.random() < 0.05:  # garbage after a valid header
        client_id = struct.pack(">h", 1) + b"x" if header_version >= 1 else b""
        header = struct.pack(">hhi", api_key, version, correlation_id) + client_id + (b"\x00" if header_version >= 2 else b"")
        return header + rng.randbytes(rng.randint(0, 64)), None
    generator = _Generator(rng, lie_rate=rng.choice((0.0, 0.0, 0.02, 0.1)))
    body = generator.value(request_struct(api_key, version))
    client_id = rng.choice(("ottla-fuzz", None, "", "é\U0001f600"))
    # The interpreted builder (construct's `_build`), whatever codec `encode` uses: it takes
    # the lengths it writes from len() and str.encode(), which is how the lies get in.
    stream = io.BytesIO()
    request_struct(api_key, version)._build(body, stream, None, "")
    frame = encode_request_header(RequestHeader(api_key, version, correlation_id, client_id, header_version)) + stream.getvalue()
    mutations = rng.choice((0, 0, 1, 1, 2, 3)) if not generator.lies else rng.choice((0, 0, 1))
    for _ in range(mutations):
        frame = _mutate(rng, frame, header_version >= 2)
    return frame, body if not generator.lies and not mutations else None


def decode_as_broker(frame: bytes, supported: set[Target]) -> tuple[int, int, dict[str, Any]]:
    """What the broker's dispatcher does before a handler runs; raises MalformedFrame."""
    api_key, version, _ = peek_api(frame)
    if (api_key, version) not in supported:
        raise MalformedFrame(f"unsupported API {api_key} version {version}")  # the dispatcher closes too
    _, body = decode_request(frame, request_header_version(api_key, version))
    return api_key, version, body


def check_records(records: Any) -> int:
    """What storage does with a produce partition's records; returns the records read."""
    data = convert_legacy(records) if batch_magic(records) in (0, 1) else records
    return sum(1 for _, batch in iter_batches(data) for _ in iter_records(batch))


def run_one(seed: int, index: int, targets: list[Target], supported: set[Target]) -> tuple[str, str]:
    """(decoder outcome, records outcome or "") for input `index`."""
    frame, expected = make_input(seed, index, targets)
    try:
        api_key, version, body = decode_as_broker(frame, supported)
    except MalformedFrame:
        return REJECTED, ""
    if expected is not None:
        if _normal(body) != _normal(expected):
            raise AssertionError("an uncorrupted request did not decode to what was encoded")
        header, _ = decode_request_header(frame, request_header_version(api_key, version))
        if encode_request(api_key, version, header.correlation_id, expected, header.client_id)[4:] != frame:
            raise AssertionError("encode_request disagrees with the interpreted builder")
    records = ""
    if api_key == ApiKey.PRODUCE:
        for topic in body["topic_data"]:
            for partition in topic["partition_data"]:
                if partition["records"]:
                    try:
                        check_records(partition["records"])
                        records = records or DECODED
                    except KafkaError:
                        records = REJECTED
    return DECODED, records


def _normal(value: Any) -> Any:
    """Decoded values compare to generated ones: buffers as bytes."""
    if isinstance(value, dict):
        return {key: _normal(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_normal(item) for item in value]
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def declared_targets() -> list[Target]:
    return [(int(key), version) for key, (low, high) in sorted(DECLARED_VERSIONS.items()) for version in range(low, high + 1)]


def _worker(seed: int, start: int, stop: int, targets: list[Target]) -> tuple[collections.Counter[str], list[tuple[int, str]]]:
    supported = set(targets)
    counts: collections.Counter[str] = collections.Counter()
    failures: list[tuple[int, str]] = []
    for index in range(start, stop):
        try:
            outcome, records = run_one(seed, index, targets, supported)
        except Exception as exc:  # anything but the defined errors is what we are hunting
            counts[OTHER] += 1
            if len(failures) < 20:
                failures.append((index, f"{type(exc).__name__}: {exc}"))
            continue
        counts[outcome] += 1
        if records:
            counts["records " + records] += 1
    return counts, failures


def run_in_process(seed: int, count: int, jobs: int) -> tuple[collections.Counter[str], list[tuple[int, str]], float]:
    targets = declared_targets()
    chunk = 20_000
    started = time.perf_counter()
    counts: collections.Counter[str] = collections.Counter()
    failures: list[tuple[int, str]] = []
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(_worker, seed, start, min(start + chunk, count), targets) for start in range(0, count, chunk)]
        for future in futures:
            part, found = future.result()
            counts.update(part)
            failures.extend(found)
    return counts, failures, time.perf_counter() - started


def _describe(seed: int, index: int, frame: bytes, expected: dict[str, Any] | None) -> None:
    api_key, version = peek_api(frame)[:2] if len(frame) >= 8 else (-1, -1)
    print(f"input {index} of seed {seed}: api {api_key} v{version}, {len(frame)} bytes, {'uncorrupted' if expected is not None else 'corrupted'}")
    print(frame.hex())


def replay(seed: int, index: int) -> None:
    targets = declared_targets()
    frame, expected = make_input(seed, index, targets)
    _describe(seed, index, frame, expected)
    run_one(seed, index, targets, set(targets))  # raises what the run counted as "other"
    print("no failure on replay")


def replay_live(seed: int, index: int) -> None:
    broker = _LiveBroker()
    try:
        targets = _advertised(broker.address)
        for topic, partitions in KNOWN_TOPICS.items():
            _create_with_records(broker.address, topic, partitions)
        frame, expected = make_input(seed, index, targets)
        _describe(seed, index, frame, expected)
        print(_live_one(None, broker.address, frame, set(targets))[0])
    finally:
        broker.stop()
        print("\n".join(broker.log[1:]))


# --- Live: an `ottla serve` subprocess over real sockets -----------------------------


class _LiveBroker:
    def __init__(self) -> None:
        # No initial rebalance delay: a join to a new group would wait 3 s for company.
        command = [sys.executable, "-m", "ottla", "serve", "--port", "0", "--memory", "--log-level", "warning", "--set", "group.initial.rebalance.delay.ms=0"]
        self.process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        assert self.process.stderr is not None
        line = self.process.stderr.readline()
        if not line.startswith("ottla ready"):
            self.process.kill()
            raise RuntimeError(f"ottla serve did not start:\n{line}{self.process.stderr.read()}")
        host, port = line.split("bootstrap=")[1].split()[0].rsplit(":", 1)
        self.address = (host, int(port))
        self.log: list[str] = []
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()

    def _read_log(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line.rstrip("\n"))

    def stop(self) -> int:
        self.process.terminate()
        code = self.process.wait(timeout=20)
        self._reader.join(timeout=5)
        return code


class _Conn:
    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def read_frame(self) -> bytes | None:
        """A whole response frame, or None when the broker closed the connection."""
        return read_frame(self.sock)


_PROBE_ID = 2**31 - 7


def _probe() -> bytes:
    return encode_request(ApiKey.API_VERSIONS, 0, _PROBE_ID, {})


def _call(address: tuple[str, int], api_key: int, version: int, body: dict[str, Any]) -> dict[str, Any]:
    conn = _Conn(address)
    try:
        conn.sock.sendall(encode_request(api_key, version, 1, body))
        frame = conn.read_frame()
        if frame is None:
            raise ConnectionError(f"broker closed the connection on api {api_key} v{version}")
        return decode_response(api_key, version, frame)[1]
    finally:
        conn.sock.close()


def _advertised(address: tuple[str, int]) -> list[Target]:
    body = _call(address, ApiKey.API_VERSIONS, 0, {})
    return [(entry["api_key"], version) for entry in body["api_keys"] for version in range(entry["min_version"], entry["max_version"] + 1)]


# Requests the broker may rightly hold: a fetch or share fetch (KIP-932) waiting for data, a
# join or sync waiting for the group's other members.
_MAY_PARK = {ApiKey.FETCH, ApiKey.SHARE_FETCH, ApiKey.JOIN_GROUP, ApiKey.SYNC_GROUP}
_PARK_WAIT_S = 1.0


_ACL_FIELDS = {
    ApiKey.CREATE_ACLS: ("creations", ("resource_type", "resource_pattern_type", "operation", "permission_type")),
    ApiKey.DESCRIBE_ACLS: (None, ("resource_type_filter", "pattern_type_filter", "operation", "permission_type")),
    ApiKey.DELETE_ACLS: ("filters", ("resource_type_filter", "pattern_type_filter", "operation", "permission_type")),
}


def kafka_refuses_to_parse(api_key: int, body: dict[str, Any]) -> bool:
    """Whether Kafka's request class refuses a decodable body as it is parsed, so the broker
    closes the connection unanswered: an ACL request naming UNKNOWN (code 0) for a type,
    pattern, operation or permission (CreateAclsRequest.validate, DescribeAclsRequest and
    DeleteAclsRequest.normalizeAndValidate)."""
    if api_key not in _ACL_FIELDS:
        return False
    items, fields = _ACL_FIELDS[ApiKey(api_key)]
    entries = [body] if items is None else body[items]
    return any(entry[field] == 0 for entry in entries for field in fields)


def _live_one(conn: _Conn | None, address: tuple[str, int], frame: bytes, supported: set[Target]) -> tuple[str, _Conn | None]:
    """Send one input and an ApiVersions probe behind it; judge what comes back."""
    try:
        api_key, version, body = decode_as_broker(frame, supported)
        decodable = True
    except MalformedFrame:
        api_key, version = peek_api(frame)[:2] if len(frame) >= 8 else (-1, -1)
        body, decodable = {}, False
    silent = decodable and api_key == ApiKey.PRODUCE and body.get("acks") == 0
    if conn is None:
        conn = _Conn(address)
    conn.sock.sendall(struct.pack(">i", len(frame)) + frame + _probe())
    if decodable and api_key in _MAY_PARK:
        conn.sock.settimeout(_PARK_WAIT_S)
        try:
            first = conn.read_frame()
        except TimeoutError:
            conn.sock.close()  # hang up on it: the broker must clean up what the request left
            return "parked, then hung up", None
        conn.sock.settimeout(10)
    else:
        first = conn.read_frame()
    unparsed = decodable and kafka_refuses_to_parse(api_key, body)
    if first is None:
        conn.sock.close()
        if decodable and not unparsed and not silent:
            raise AssertionError(f"the broker closed the connection on a decodable api {api_key} v{version}")
        return "closed", None
    if unparsed:
        raise AssertionError(f"the broker answered an api {api_key} v{version} request Kafka cannot parse")
    if not decodable and api_key != ApiKey.API_VERSIONS:
        raise AssertionError("the broker answered a request it cannot decode")
    (correlation_id,) = struct.unpack_from(">i", first)
    if silent:
        if correlation_id != _PROBE_ID:
            raise AssertionError("an acks=0 produce was answered")
        return "no response (acks=0)", conn
    expected_id = struct.unpack_from(">i", frame, 4)[0]
    if correlation_id != expected_id:
        raise AssertionError(f"response has correlation id {correlation_id}, request had {expected_id}")
    decode_response(api_key, version if decodable else 0, first)  # raises if not well formed
    probe = conn.read_frame()
    if probe is None or struct.unpack_from(">i", probe)[0] != _PROBE_ID:
        raise AssertionError("the probe behind the request was not answered")
    return "answered", conn


def _create_with_records(address: tuple[str, int], topic: str, partitions: int) -> None:
    """A new topic whose every partition holds one record."""
    created = _call(address, ApiKey.CREATE_TOPICS, 7, {"topics": [{"name": topic, "num_partitions": partitions, "replication_factor": 1, "assignments": [], "configs": []}], "timeout_ms": 5000, "validate_only": False})
    assert created["topics"][0]["error_code"] == 0, created
    batch = build_batch([Record(0, 1_700_000_000_000, b"k", b"still-serving")])
    data = [{"index": index, "records": batch} for index in range(partitions)]
    produced = _call(address, ApiKey.PRODUCE, 9, {"acks": -1, "timeout_ms": 5000, "topic_data": [{"name": topic, "partition_data": data}]})
    assert all(p["error_code"] == 0 for p in produced["responses"][0]["partition_responses"]), produced


def _health_check(address: tuple[str, int]) -> None:
    """Produce then fetch a record on a fresh topic: the broker still does its job."""
    topic = "fuzz-health-check"
    _create_with_records(address, topic, 1)
    fetched = _call(address, ApiKey.FETCH, 12, {"replica_id": -1, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 1 << 20, "isolation_level": 0, "session_id": 0, "session_epoch": -1, "topics": [{"topic": topic, "partitions": [{"partition": 0, "current_leader_epoch": -1, "fetch_offset": 0, "last_fetched_epoch": -1, "log_start_offset": -1, "partition_max_bytes": 1 << 20}]}], "forgotten_topics_data": [], "rack_id": ""})
    data = fetched["responses"][0]["partitions"][0]["records"]
    values = [bytes(record.value) for _, batch_view in iter_batches(data, from_client=False) for record in iter_records(batch_view) if record.value is not None]
    assert values == [b"still-serving"], values


def run_live(seed: int, count: int) -> tuple[collections.Counter[str], list[tuple[int, str]], float, list[str]]:
    broker = _LiveBroker()
    counts: collections.Counter[str] = collections.Counter()
    failures: list[tuple[int, str]] = []
    started = time.perf_counter()
    try:
        targets = _advertised(broker.address)
        supported = set(targets)
        print(f"live: `ottla serve` advertises {len({key for key, _ in targets})} APIs, {len(targets)} API versions")
        for topic, partitions in KNOWN_TOPICS.items():
            _create_with_records(broker.address, topic, partitions)
        conn: _Conn | None = None
        for index in range(count):
            frame, _ = make_input(seed, index, targets)
            mark = len(broker.log)
            try:
                outcome, conn = _live_one(conn, broker.address, frame, supported)
            except Exception as exc:
                counts[OTHER] += 1
                time.sleep(0.2)  # let the broker's traceback reach its log
                cause = [line for line in broker.log[mark:] if line and not line[0].isdigit() and not line.startswith((" ", "Traceback", "During", "The above"))]
                failures.append((index, f"{type(exc).__name__}: {exc}; broker: {cause[-1] if cause else 'nothing logged'}"))
                if conn is not None:
                    conn.sock.close()
                conn = None
                continue
            counts[outcome] += 1
        if conn is not None:
            conn.sock.close()
        elapsed = time.perf_counter() - started
        try:
            _health_check(broker.address)
        except Exception as exc:
            counts[OTHER] += 1
            failures.append((-1, f"health check after the run failed: {type(exc).__name__}: {exc}"))
    finally:
        code = broker.stop()
    bad_lines = [line for line in broker.log if "Traceback" in line or "request handling failed" in line or "handler failed" in line]
    if code != 0:
        bad_lines.append(f"ottla serve exited with {code}")
    return counts, failures, elapsed, bad_lines


def _report(title: str, counts: collections.Counter[str], elapsed: float, total: int, first: tuple[str, ...]) -> None:
    print(f"{title}: {total:,} inputs in {elapsed:.1f} s = {total / elapsed:,.0f} inputs/s")
    for name in [*first, *sorted(set(counts) - set(first))]:
        print(f"  {name:<24} {counts[name]:>12,}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compat.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="inputs decoded in-process")
    parser.add_argument("--seed", type=int, default=None, help="run seed (random if omitted; printed)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes in-process")
    parser.add_argument("--live", action="store_true", help="also send inputs to an `ottla serve` subprocess")
    parser.add_argument("--live-count", type=int, default=20_000, help="inputs sent live")
    parser.add_argument("--replay", type=int, default=None, help="decode input I of the seed alone and show its failure")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    rerun = f"python -m compat.fuzz --count {args.count} --seed {seed}" + (f" --live --live-count {args.live_count}" if args.live else "")
    if args.replay is not None:
        (replay_live if args.live else replay)(seed, args.replay)
        return 0
    print(f"seed {seed}; {len(declared_targets())} API versions (all that wire/ declares); {args.jobs} worker(s)")
    counts, failures, elapsed = run_in_process(seed, args.count, args.jobs)
    _report("decoder in-process", counts, elapsed, args.count, (DECODED, REJECTED, OTHER))
    bad = bool(failures) or counts[OTHER] > 0
    for index, message in failures:
        print(f"  OTHER input {index}: {message}\n    replay: python -m compat.fuzz --seed {seed} --replay {index}")
    if args.live:
        live_counts, live_failures, live_elapsed, bad_lines = run_live(seed, args.live_count)
        _report("live `ottla serve`", live_counts, live_elapsed, args.live_count, ("answered", "closed", OTHER))
        for index, message in live_failures:
            print(f"  OTHER live input {index}: {message}\n    replay: python -m compat.fuzz --seed {seed} --live --replay {index}")
        for line in bad_lines[:20]:
            print(f"  broker log: {line}")
        bad = bad or bool(live_failures) or bool(bad_lines)
    print(f"rerun: {rerun}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
