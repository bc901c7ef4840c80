"""Kafka structs as `construct` classes, and the generated codec each one carries.

`wire.schema` builds these from the JSON definitions; `wire.compiler` walks them to
generate their codec. Both import this module and neither imports the other: the
schema hands each struct the compiler's function, called on the struct's first use.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Mapping
from typing import Any

from construct import Construct, ConstructError, StreamError

from ottla.wire.primitives import BuildStream, ParseContext, Region, encode_uvarint, read_exact, read_uvarint, remaining

_MISSING = object()


def fresh_default(default: Any) -> Any:
    """A tagged field's default for one message: mutable ones copied, so that whoever changes
    one message's value does not change every later message's."""
    return default.copy() if isinstance(default, (dict, list)) else default

# A struct's fields at one version: (name, construct, default) for regular fields, and
# (tag, name, construct, default) for tagged ones.
Field = tuple[str, Construct, Any]
TaggedField = tuple[int, str, Construct, Any]


class Codec:
    """The generated functions of one message version, and their source for reading."""

    __slots__ = ("parse", "build", "build_parts", "source")

    def __init__(
        self,
        parse: Callable[[bytes | memoryview, int], tuple[dict[str, Any], int]],
        build: Callable[[Mapping[str, Any]], bytes],
        build_parts: Callable[[Mapping[str, Any]], list[bytes | Region]],
        source: str,
    ) -> None:
        self.parse = parse
        self.build = build
        self.build_parts = build_parts
        self.source = source


class Message(Construct):
    """A struct at one version: regular fields in order, then (if flexible) tagged fields."""

    def __init__(
        self,
        fields: list[Field],
        tagged: list[TaggedField],
        flexible: bool,
        compile_codec: Callable[[Message], Codec],
    ) -> None:
        super().__init__()
        self.fields = fields
        self.tagged = tagged
        self.tags = {tag: (name, con) for tag, name, con, _ in tagged}
        self.flexible = flexible
        self.type_name = "struct"
        self._compile_codec = compile_codec

    @functools.cached_property
    def codec(self) -> Codec:
        """Parse and build functions generated for this struct, on first use."""
        return self._compile_codec(self)

    def _parse(self, stream: io.BytesIO, context: ParseContext, path: str) -> dict[str, Any]:
        out = {name: con._parse(stream, context, path) for name, con, _ in self.fields}
        if self.flexible:
            for _, name, _, default in self.tagged:
                out[name] = fresh_default(default)
            for _ in range(read_uvarint(stream)):
                tag = read_uvarint(stream)
                size = read_uvarint(stream)
                if size > remaining(stream, context):
                    raise StreamError(f"tagged field {tag} of {size} bytes runs past the end")
                end = stream.tell() + size
                known = self.tags.get(tag)
                if known is not None:
                    out[known[0]] = known[1]._parse(stream, context, path)
                    if stream.tell() != end:
                        raise StreamError(f"tagged field {tag} is not {size} bytes long")
                else:
                    stream.seek(end)  # unknown tags are skipped, as KIP-482 requires
        return out

    def _build(self, obj: Mapping[str, Any], stream: BuildStream, context: object, path: str) -> Mapping[str, Any]:
        get = obj.get
        for name, con, default in self.fields:
            value = get(name, _MISSING)
            con._build(default if value is _MISSING else value, stream, context, path)
        if self.flexible:
            present = []
            for tag, name, con, default in self.tagged:
                value = get(name, _MISSING)
                if value is not _MISSING and value != default:
                    present.append((tag, con, value))
            stream.write(encode_uvarint(len(present)))
            for tag, con, value in present:
                body = io.BytesIO()
                con._build(value, body, context, path)
                data = body.getvalue()
                stream.write(encode_uvarint(tag) + encode_uvarint(len(data)) + data)
        return obj

    def _sizeof(self, context: object, path: str) -> int:
        raise ConstructError("variable length")


class NullableStruct(Construct):
    """A struct Kafka lets be null (KIP-893): int8 -1 for null, 1 before a present struct.

    Kafka's generated readers take any negative marker as null (`readByte() < 0`).
    """

    def __init__(self, struct: Message) -> None:
        super().__init__()
        self.struct = struct
        self.type_name = "struct?"

    def _parse(self, stream: io.BytesIO, context: ParseContext, path: str) -> dict[str, Any] | None:
        if read_exact(stream, 1)[0] >= 0x80:
            return None
        return self.struct._parse(stream, context, path)

    def _build(self, obj: Mapping[str, Any] | None, stream: BuildStream, context: object, path: str) -> Mapping[str, Any] | None:
        if obj is None:
            stream.write(b"\xff")
            return None
        stream.write(b"\x01")
        return self.struct._build(obj, stream, context, path)

    def _sizeof(self, context: object, path: str) -> int:
        raise ConstructError("variable length")
