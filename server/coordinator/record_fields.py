"""The fields of a coordinator record, in Kafka's generated-message byte layout.

Every coordinator's keys and values (`__consumer_offsets`' group records, KIP-848's, and
their kin) are Kafka message schemas written without a header: big-endian integers, int16-
sized strings in non-flexible versions, and in flexible ones unsigned varints for compact
strings, arrays (length + 1, 0 for null) and tagged fields. `FieldReader` raises
RecordFormatError for anything a record cannot hold, so a replay drops it instead of failing.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Self

from ottla.server.coordinator.log import RecordFormatError
from ottla.wire.primitives import encode_uvarint

_INT8 = struct.Struct(">b")
_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")
_INT64 = struct.Struct(">q")


class FieldWriter:
    """Appends fields to `out`; each method returns the writer, so fields chain. A record's
    key or value starts with its int16 version (a key's is its record type): `version`."""

    __slots__ = ("out",)

    def __init__(self, version: int | None = None) -> None:
        self.out = bytearray()
        if version is not None:
            self.int16(version)

    def int8(self, value: int) -> Self:
        self.out += _INT8.pack(value)
        return self

    def int16(self, value: int) -> Self:
        self.out += _INT16.pack(value)
        return self

    def int32(self, value: int) -> Self:
        self.out += _INT32.pack(value)
        return self

    def int64(self, value: int) -> Self:
        self.out += _INT64.pack(value)
        return self

    def string(self, value: str | None) -> Self:
        """A non-flexible version's string: int16 length, -1 for null."""
        if value is None:
            return self.int16(-1)
        encoded = value.encode()
        self.int16(len(encoded))
        self.out += encoded
        return self

    def int32_sized_bytes(self, value: bytes) -> Self:
        self.int32(len(value))
        self.out += value
        return self

    def uvarint(self, value: int) -> Self:
        self.out += encode_uvarint(value)
        return self

    def compact_string(self, value: str | None) -> Self:
        if value is None:
            return self.uvarint(0)
        encoded = value.encode()
        self.uvarint(len(encoded) + 1)
        self.out += encoded
        return self

    def compact_bytes(self, value: bytes) -> Self:
        self.uvarint(len(value) + 1)
        self.out += value
        return self

    def strings(self, values: Sequence[str]) -> Self:
        """A compact array of compact strings."""
        self.uvarint(len(values) + 1)
        for value in values:
            self.compact_string(value)
        return self

    def int32s(self, values: Sequence[int]) -> Self:
        """A compact array of int32s."""
        self.uvarint(len(values) + 1)
        for value in values:
            self.int32(value)
        return self


class FieldReader:
    """Reads fields from `data` at `position`, never past its end."""

    __slots__ = ("data", "position")

    def __init__(self, data: bytes | memoryview) -> None:
        self.data = memoryview(data)
        self.position = 0

    def take(self, size: int) -> memoryview:
        end = self.position + size
        if size < 0 or end > len(self.data):
            raise RecordFormatError("record shorter than its fields")
        chunk = self.data[self.position : end]
        self.position = end
        return chunk

    def int8(self) -> int:
        return int(_INT8.unpack(self.take(1))[0])

    def int16(self) -> int:
        return int(_INT16.unpack(self.take(2))[0])

    def int32(self) -> int:
        return int(_INT32.unpack(self.take(4))[0])

    def int64(self) -> int:
        return int(_INT64.unpack(self.take(8))[0])

    def uuid(self) -> bytes:
        return bytes(self.take(16))

    def text(self, size: int) -> str:
        try:
            return str(self.take(size), "utf-8")
        except UnicodeDecodeError as exc:
            raise RecordFormatError(str(exc)) from exc

    def nullable_string(self) -> str | None:
        size = self.int16()
        return None if size == -1 else self.text(size)

    def string(self) -> str:
        size = self.int16()
        if size < 0:
            raise RecordFormatError("null where Kafka's schema has a non-null string")
        return self.text(size)

    def int32_sized_bytes(self) -> bytes:
        return bytes(self.take(self.int32()))

    def uvarint(self) -> int:
        value = shift = 0
        while True:
            byte = self.take(1)[0]
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7
            if shift > 28:
                raise RecordFormatError("varint too long")

    def compact_string(self) -> str | None:
        size = self.uvarint()
        return None if size == 0 else self.text(size - 1)

    def required_string(self) -> str:
        value = self.compact_string()
        if value is None:
            raise RecordFormatError("null where Kafka's schema has a non-null string")
        return value

    def compact_bytes(self) -> bytes:
        size = self.uvarint() - 1
        if size < 0:
            raise RecordFormatError("null where Kafka's schema has non-null bytes")
        return bytes(self.take(size))

    def count(self) -> int:
        """A compact array's length (0 for null), never more than the bytes left could hold."""
        size = self.uvarint() - 1
        if size > len(self.data) - self.position:
            raise RecordFormatError("array longer than its record")
        return max(size, 0)

    def strings(self) -> tuple[str, ...]:
        return tuple(self.required_string() for _ in range(self.count()))

    def int32s(self) -> list[int]:
        return [self.int32() for _ in range(self.count())]

    def tagged_fields(self) -> dict[int, memoryview]:
        """The tagged fields at this point, by tag; readers use the ones they know."""
        tagged = {}
        for _ in range(self.uvarint()):
            tag = self.uvarint()
            tagged[tag] = self.take(self.uvarint())
        return tagged
