"""Kafka message definitions (JSON) interpreted into `construct` structs, one per version.

A definition lists fields with the versions they exist in, the versions they may be
null in, and the versions they travel as tagged fields. `message_struct` walks it once
for a given version and caches the result. Parsed messages are plain dicts keyed by
snake_case field names (`TopicId` -> `topic_id`), so a grep finds Kafka's names in ours.

`decode`, `encode` and `encode_parts` run code generated from each struct by
`wire.compiler` (interpreting construct costs more than a loopback round trip on a hot
request); the `*_interpreted` functions run the structs themselves, the reference the
generated code is tested against.
"""

from __future__ import annotations

import functools
import io
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from construct import Construct, ConstructError

from ottla.wire import messages
from ottla.wire.compiler import compile_message
from ottla.wire.errors import MalformedFrame
from ottla.wire.primitives import Array, Bool, Bytes, Fixed, ParseContext, ParseParams, PartsStream, Region, String, Uuid
from ottla.wire.structs import Field, TaggedField
# Re-exported: the structs are what callers of message_struct get.
from ottla.wire.structs import Message as Message, NullableStruct as NullableStruct


class VersionRange:
    """Kafka's version spec: "3+", "1-4", "2", "none"."""

    __slots__ = ("low", "high")

    def __init__(self, spec: str | None) -> None:
        if spec is None or spec == "none":
            self.low, self.high = 1, 0
        elif spec.endswith("+"):
            self.low, self.high = int(spec[:-1]), 1 << 15
        elif "-" in spec:
            low, high = spec.split("-")
            self.low, self.high = int(low), int(high)
        else:
            self.low = self.high = int(spec)

    def __contains__(self, version: int) -> bool:
        return self.low <= version <= self.high


def snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def _default(field: dict[str, Any], version: int) -> Any:
    kind = field["type"]
    raw = field.get("default")
    if raw is not None and not isinstance(raw, str):
        raw = json.dumps(raw)  # Kafka's files also write `"default": -1` and `false` unquoted
    nullable = version in VersionRange(field.get("nullableVersions"))
    if kind.startswith("[]"):
        return None if raw == "null" and nullable else []
    if raw == "null" and nullable:
        return None
    if "fields" in field:
        return {}
    if kind == "bool":
        return raw == "true"
    if kind in ("string",):
        return raw or ""
    if kind in ("bytes", "records"):
        return None if nullable else b""
    if kind == "uuid":
        return bytes(16)
    if kind == "float64":
        return float(raw or 0)
    return int(raw, 0) if raw else 0


def _element(kind: str, compact: bool, nullable: bool, zero_copy: bool = False) -> Construct:
    if kind == "bool":
        return Bool()
    if kind == "uuid":
        return Uuid()
    if kind == "string":
        return String(compact, nullable)
    if kind == "bytes":
        return Bytes(compact, nullable)
    if kind == "records":
        return Bytes(compact, nullable, zero_copy=True)
    return Fixed(kind)


def _min_size(con: Construct) -> int:
    """The fewest bytes one element can occupy: bounds array counts before allocation."""
    if isinstance(con, Message):
        regular = sum(_min_size(c) for _, c, _ in con.fields)
        return regular + (1 if con.flexible else 0)
    if isinstance(con, (Fixed, Bool, Uuid)):
        return con._sizeof(None, "")
    if isinstance(con, (String, Bytes)):
        return 1 if con.compact else (4 if con.wide else 2)
    if isinstance(con, Array):
        return 1 if con.compact else 4
    return 1


def build_struct(fields: Iterable[dict[str, Any]], version: int, flexible: bool) -> Message:
    regular: list[Field] = []
    tagged: list[TaggedField] = []
    for field in fields:
        if version not in VersionRange(field["versions"]):
            continue
        name = snake_case(field["name"])
        # A field may opt out of flexible encoding (the request header's ClientId does).
        field_flexible = flexible and version in VersionRange(field.get("flexibleVersions", "0+"))
        nullable = version in VersionRange(field.get("nullableVersions"))
        kind = field["type"]
        inner = kind.removeprefix("[]")
        element: Construct
        if "fields" in field:
            struct = build_struct(field["fields"], version, flexible)
            element = NullableStruct(struct) if nullable and not kind.startswith("[]") else struct
        else:
            element = _element(inner, field_flexible, nullable and not kind.startswith("[]"))
        if kind.startswith("[]"):
            con: Construct = Array(element, field_flexible, nullable, _min_size(element))
        else:
            con = element
        default = _default(field, version)
        if flexible and version in VersionRange(field.get("taggedVersions")):
            tagged.append((field["tag"], name, con, default))
        else:
            regular.append((name, con, default))
    tagged.sort(key=lambda entry: entry[0])
    return Message(regular, tagged, flexible, compile_message)


@functools.cache
def message_struct(name: str, version: int) -> Message:
    """The struct for message `name` (e.g. "FetchResponse") at `version`, built once."""
    definition = messages.load(name)
    flexible = version in VersionRange(definition.get("flexibleVersions"))
    return build_struct(definition["fields"], version, flexible)


def is_flexible(name: str, version: int) -> bool:
    return version in VersionRange(messages.load(name).get("flexibleVersions"))


def decode(struct: Message, data: memoryview | bytes, offset: int = 0) -> tuple[dict[str, Any], int]:
    """Parse `data[offset:]`; returns the message and the offset just past it.

    Anything that does not decode raises MalformedFrame (truncation, bad lengths,
    invalid UTF-8, overlong varints).
    """
    return struct.codec.parse(data, offset)


def encode(struct: Message, value: Mapping[str, Any]) -> bytes:
    try:
        return struct.codec.build(value)
    except Exception:
        # Generated code leaves type checks to Python's own errors; the interpreted
        # struct raises the one that names the rule (e.g. null in a non-nullable field).
        encode_interpreted(struct, value)
        raise


def encode_parts(struct: Message, value: Mapping[str, Any]) -> list[bytes | Region]:
    """Like `encode`, but `Spliced` values stay as their parts (for zero-copy sending)."""
    try:
        return struct.codec.build_parts(value)
    except Exception:
        encode_parts_interpreted(struct, value)
        raise


def decode_interpreted(struct: Message, data: memoryview | bytes, offset: int = 0) -> tuple[dict[str, Any], int]:
    stream = io.BytesIO(data)
    stream.seek(offset)
    context = ParseContext(ParseParams(len(data), memoryview(data)))  # so `records` slices never copy
    try:
        value = struct._parse(stream, context, "")
    except (ConstructError, UnicodeDecodeError, ValueError, OverflowError) as exc:
        raise MalformedFrame(str(exc)) from exc
    return value, stream.tell()


def encode_interpreted(struct: Message, value: Mapping[str, Any]) -> bytes:
    stream = io.BytesIO()
    struct._build(value, stream, None, "")
    return stream.getvalue()


def encode_parts_interpreted(struct: Message, value: Mapping[str, Any]) -> list[bytes | Region]:
    stream = PartsStream()
    struct._build(value, stream, None, "")
    return stream.finish()
