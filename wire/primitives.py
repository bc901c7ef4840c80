"""Kafka's primitive wire types as `construct` classes.

Classic versions use fixed-width lengths (int16 for strings, int32 for bytes and
arrays, -1 for null); flexible versions (KIP-482) use unsigned varints holding
length + 1 (0 for null) and append a tagged-field section to every struct.

Every reader checks a declared length or count against the bytes actually present
before it allocates anything, so a hostile count of 2**31 costs nothing.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence
from typing import Any, Protocol, TypeAlias

from construct import Construct, SizeofError, StreamError

_FIXED = {
    "int8": struct.Struct(">b"),
    "int16": struct.Struct(">h"),
    "uint16": struct.Struct(">H"),
    "int32": struct.Struct(">i"),
    "uint32": struct.Struct(">I"),
    "int64": struct.Struct(">q"),
    "float64": struct.Struct(">d"),
}
_INT16 = _FIXED["int16"]
_INT32 = _FIXED["int32"]

Buffer: TypeAlias = bytes | bytearray | memoryview
# Where `_build` writes: a plain byte stream, or one that keeps spliced parts apart.
BuildStream: TypeAlias = "io.BytesIO | PartsStream"


class ParseParams:
    """What a parse needs beyond the stream: the frame's size, and the frame itself so that
    `records` are sliced from it instead of copied."""

    __slots__ = ("total", "frame")

    def __init__(self, total: int, frame: memoryview) -> None:
        self.total = total
        self.frame = frame


class ParseContext:
    """The minimal context our constructs read: `_params.total` and `_params.frame`."""

    __slots__ = ("_params",)

    def __init__(self, params: ParseParams) -> None:
        self._params = params


def remaining(stream: io.BytesIO, context: ParseContext) -> int:
    """Bytes left in the message being parsed; the total travels in the parse context."""
    return context._params.total - stream.tell()


def read_exact(stream: io.BytesIO, length: int) -> bytes:
    data = stream.read(length)
    if len(data) != length:
        raise StreamError(f"wanted {length} bytes, found {len(data)}")
    return data


def read_uvarint(stream: io.BytesIO, max_bytes: int = 5) -> int:
    """Unsigned LEB128 as Kafka writes it; more than `max_bytes` bytes is malformed."""
    result = 0
    shift = 0
    for _ in range(max_bytes):
        byte = stream.read(1)
        if not byte:
            raise StreamError("varint runs past the end")
        b = byte[0]
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result
        shift += 7
    raise StreamError("varint longer than %d bytes" % max_bytes)


def encode_uvarint(value: int) -> bytes:
    if value < 0:
        raise ValueError("unsigned varint cannot hold %d" % value)
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


class Fixed(Construct):
    """A fixed-width big-endian number (int8 … int64, uint16, float64)."""

    def __init__(self, type_name: str) -> None:
        super().__init__()
        self.type_name = type_name
        self._struct = _FIXED[type_name]

    def _parse(self, stream: io.BytesIO, context: ParseContext, path: str) -> int | float:
        value: int | float = self._struct.unpack(read_exact(stream, self._struct.size))[0]
        return value

    def _build(self, obj: int | float, stream: BuildStream, context: object, path: str) -> int | float:
        stream.write(self._struct.pack(obj))
        return obj

    def _sizeof(self, context: object, path: str) -> int:
        return self._struct.size


class Bool(Construct):
    type_name = "bool"

    def _parse(self, stream: io.BytesIO, context: ParseContext, path: str) -> bool:
        return read_exact(stream, 1) != b"\x00"

    def _build(self, obj: bool, stream: BuildStream, context: object, path: str) -> bool:
        stream.write(b"\x01" if obj else b"\x00")
        return obj

    def _sizeof(self, context: object, path: str) -> int:
        return 1


class Uuid(Construct):
    """16 raw bytes; the all-zero UUID means "no id"."""

    type_name = "uuid"

    def _parse(self, stream: io.BytesIO, context: ParseContext, path: str) -> bytes:
        return read_exact(stream, 16)

    def _build(self, obj: bytes, stream: BuildStream, context: object, path: str) -> bytes:
        if len(obj) != 16:
            raise ValueError("a uuid is 16 bytes")
        stream.write(obj)
        return obj

    def _sizeof(self, context: object, path: str) -> int:
        return 16


class UVarInt(Construct):
    type_name = "uvarint"

    def _parse(self, stream: io.BytesIO, context: ParseContext, path: str) -> int:
        return read_uvarint(stream)

    def _build(self, obj: int, stream: BuildStream, context: object, path: str) -> int:
        stream.write(encode_uvarint(obj))
        return obj

    def _sizeof(self, context: object, path: str) -> int:
        raise SizeofError("varints have no fixed size")


class _Lengthed(Construct):
    """Shared length handling for strings, bytes and records.

    `compact` selects the flexible encoding (uvarint length + 1); `nullable` allows
    null (-1 classic, 0 compact). `wide` picks an int32 classic length (bytes) over int16.
    """

    type_name = "?"

    def __init__(self, compact: bool, nullable: bool, wide: bool) -> None:
        super().__init__()
        self.compact = compact
        self.nullable = nullable
        self.wide = wide

    def _read_length(self, stream: io.BytesIO, context: ParseContext) -> int:
        if self.compact:
            length = read_uvarint(stream) - 1
        else:
            (length,) = (_INT32 if self.wide else _INT16).unpack(read_exact(stream, 4 if self.wide else 2))
        if length < -1 or (length == -1 and not self.nullable):
            raise StreamError(f"invalid {self.type_name} length {length}")
        if length > remaining(stream, context):
            raise StreamError(f"{self.type_name} length {length} runs past the end")
        return length

    def _write_length(self, length: int, stream: BuildStream) -> None:
        if self.compact:
            stream.write(encode_uvarint(length + 1))
        else:
            stream.write((_INT32 if self.wide else _INT16).pack(length))

    def _null(self, stream: BuildStream) -> None:
        if not self.nullable:
            raise ValueError(f"{self.type_name} is not nullable in this version")
        self._write_length(-1, stream)
        return None

    def _sizeof(self, context: object, path: str) -> int:
        raise SizeofError("variable length")


class String(_Lengthed):
    type_name = "string"

    def __init__(self, compact: bool, nullable: bool) -> None:
        super().__init__(compact, nullable, wide=False)

    def _parse(self, stream: io.BytesIO, context: ParseContext, path: str) -> str | None:
        length = self._read_length(stream, context)
        if length < 0:
            return None
        return read_exact(stream, length).decode("utf-8")

    def _build(self, obj: str | None, stream: BuildStream, context: object, path: str) -> str | None:
        if obj is None:
            self._null(stream)
            return None
        data = obj.encode("utf-8")
        self._write_length(len(data), stream)
        stream.write(data)
        return obj


class Bytes(_Lengthed):
    """Opaque bytes. `records` fields parse to a memoryview of the frame (no copy)."""

    type_name = "bytes"

    def __init__(self, compact: bool, nullable: bool, zero_copy: bool = False) -> None:
        super().__init__(compact, nullable, wide=True)
        self.zero_copy = zero_copy

    def _parse(self, stream: io.BytesIO, context: ParseContext, path: str) -> bytes | memoryview | None:
        length = self._read_length(stream, context)
        if length < 0:
            return None
        if self.zero_copy:
            start = stream.tell()
            stream.seek(start + length)
            return context._params.frame[start : start + length]
        return read_exact(stream, length)

    def _build(self, obj: Buffer | Spliced | None, stream: BuildStream, context: object, path: str) -> Buffer | Spliced | None:
        if obj is None:
            self._null(stream)
            return None
        if isinstance(obj, Spliced):
            if not isinstance(stream, PartsStream):
                raise TypeError("Spliced bytes are encoded only by encode_parts")
            self._write_length(obj.size, stream)
            for part in obj.parts:
                stream.splice(part)
            return obj
        self._write_length(len(obj), stream)
        stream.write(obj)
        return obj


class Region(Protocol):
    """A part of a `Spliced` value that is not a buffer (a region of a file, sent by the
    caller without copying): wire/ needs only its length, to write the size before it."""

    @property
    def length(self) -> int: ...


class Spliced:
    """Bytes a response carries by reference: buffers, or regions of files the caller
    will send without copying them through Python (sendfile). Only `encode_parts`
    accepts it."""

    __slots__ = ("parts", "size")

    def __init__(self, parts: Sequence[Buffer | Region], size: int) -> None:
        self.parts = parts
        self.size = size


class PartsStream:
    """A write-only stream that keeps spliced parts apart from the encoded bytes around them."""

    def __init__(self) -> None:
        self.parts: list[bytes | Region] = []
        self._current = bytearray()

    def write(self, data: Buffer) -> None:
        self._current += data

    def splice(self, part: Buffer | Region) -> None:
        if isinstance(part, (bytes, bytearray, memoryview)):
            self._current += part
            return
        if self._current:
            self.parts.append(bytes(self._current))
            self._current = bytearray()
        self.parts.append(part)

    def finish(self) -> list[bytes | Region]:
        if self._current:
            self.parts.append(bytes(self._current))
        return self.parts


class Array(Construct):
    """A Kafka array of one element type; counts are checked against the bytes left."""

    def __init__(self, element: Construct, compact: bool, nullable: bool, min_element_size: int) -> None:
        super().__init__()
        self.element = element
        self.compact = compact
        self.nullable = nullable
        self.min_element_size = max(min_element_size, 1)

    @property
    def type_name(self) -> str:
        element: str = getattr(self.element, "type_name", "?")
        return "[]" + element

    def _parse(self, stream: io.BytesIO, context: ParseContext, path: str) -> list[Any] | None:
        if self.compact:
            count = read_uvarint(stream) - 1
        else:
            (count,) = _INT32.unpack(read_exact(stream, 4))
        if count < 0:
            if count == -1 and self.nullable:
                return None
            raise StreamError(f"invalid array count {count}")
        if count * self.min_element_size > remaining(stream, context):
            raise StreamError(f"array count {count} runs past the end")
        parse = self.element._parse
        return [parse(stream, context, path) for _ in range(count)]

    def _build(self, obj: list[Any] | None, stream: BuildStream, context: object, path: str) -> list[Any] | None:
        if obj is None:
            if not self.nullable:
                raise ValueError("array is not nullable in this version")
            stream.write(b"\x00" if self.compact else b"\xff\xff\xff\xff")
            return None
        if self.compact:
            stream.write(encode_uvarint(len(obj) + 1))
        else:
            stream.write(_INT32.pack(len(obj)))
        build = self.element._build
        for item in obj:
            build(item, stream, context, path)
        return obj

    def _sizeof(self, context: object, path: str) -> int:
        raise SizeofError("variable length")
