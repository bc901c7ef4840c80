"""Values in Confluent's schema-registry wire format, decoded for the message browser.

A serializer of Confluent's (and Apicurio's in its Confluent mode) writes a magic byte 0, the
schema's id as a 4-byte big-endian integer, then the payload: Avro binary, a JSON document, or,
for Protobuf, the message indexes (which message of the .proto: a zigzag varint count, then
that many zigzag varints; a lone 0 means the first message) and the message's wire bytes
(Confluent's `MessageIndexes`, schema-registry's protobuf serde). With
`console.schema.registry.url` set, the JSON API fetches each schema by id from the registry's
Confluent-compatible API (`GET {url}/schemas/ids/{id}`) and adds the decoded value beside the
raw one, or the reason it could not.

Bounded: one fetch waits at most `FETCH_SECONDS`, a schema text larger than
`MAX_SCHEMA_BYTES` is refused, at most `MAX_SCHEMAS` schemas are cached (least recently used
leave first) and a failed fetch is remembered for `FAILURE_SECONDS`, so a page of messages
from a registry that is down waits once, not once per message.

Avro needs fastavro (the optional extra `ottla[avro]`); without it an Avro value says so.
Protobuf is decoded from its wire format and named from the registered schema: a
FileDescriptorProto in base64 (as confluent-kafka registers it) read with google.protobuf, or
.proto text by a light parse (messages, nested messages, enums, oneofs, maps). Fields of
types from imported files (schema references) and of unknown numbers are shown by field
number with their wire value; groups (wire types 3 and 4) and extensions are not supported.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import dataclasses
import datetime
import decimal
import io
import json
import re
import urllib.parse
import struct
import time
import uuid
from typing import Any

import aiohttp

FETCH_SECONDS = 2.0
MAX_SCHEMA_BYTES = 256 << 10
MAX_SCHEMAS = 256
FAILURE_SECONDS = 10.0
MAGIC = 0
_HEADER = struct.Struct(">bI")


class NotDecoded(Exception):
    """Why a value in the wire format is shown raw; the message is the reason."""


def schema_id(data: bytes | bytearray | memoryview | None) -> int | None:
    """The schema id of a value in Confluent's wire format, else None."""
    if data is None or len(data) < _HEADER.size or data[0] != MAGIC:
        return None
    return int(_HEADER.unpack_from(data)[1])


@dataclasses.dataclass(slots=True, frozen=True)
class Schema:
    """One registered schema: its id, type (AVRO, JSON or PROTOBUF) and text, parsed once."""

    id: int
    type: str
    text: str
    references: int
    parsed: Any

    def decode(self, payload: bytes) -> dict[str, Any]:
        """`{"type", "value"}` (and `"message"`, `"note"` where they apply) for the payload
        after the 5-byte header; raises NotDecoded."""
        if self.type == "AVRO":
            return {"type": self.type, "value": _decode_avro(self.parsed, payload)}
        if self.type == "JSON":
            try:
                return {"type": self.type, "value": json.loads(payload)}
            except (ValueError, UnicodeDecodeError) as exc:
                raise NotDecoded(f"the payload is not JSON: {exc}") from None
        return self.parsed.decode(payload)


class SchemaRegistry:
    """Schemas by id from one Confluent-compatible registry, cached; used on the broker's loop."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        # What answers name: the URL without its userinfo, whose password must never be shown.
        self.shown_url = _without_userinfo(self.url)
        self._cache: collections.OrderedDict[int, Schema] = collections.OrderedDict()
        self._failures: dict[int, tuple[float, str]] = {}
        self._pending: dict[int, asyncio.Future[Schema]] = {}
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def decode(self, data: bytes) -> dict[str, Any]:
        """What the API adds beside a value in the wire format: `{"id", "type", "value"}`, or
        `{"id", "error"}` saying why it is not decoded."""
        found = schema_id(data)
        assert found is not None
        try:
            schema = await self.schema(found)
            return {"id": found, **schema.decode(bytes(data[_HEADER.size:]))}
        except NotDecoded as exc:
            return {"id": found, "error": str(exc)}

    async def schema(self, id_: int) -> Schema:
        if id_ in self._cache:
            self._cache.move_to_end(id_)
            return self._cache[id_]
        failure = self._failures.get(id_)
        if failure is not None and time.monotonic() < failure[0]:
            raise NotDecoded(failure[1])
        pending = self._pending.get(id_)
        if pending is None:
            pending = self._pending[id_] = asyncio.ensure_future(self._fetch(id_))
        try:
            schema = await asyncio.shield(pending)
        except NotDecoded as exc:
            self._failures[id_] = (time.monotonic() + FAILURE_SECONDS, str(exc))
            raise
        finally:
            self._pending.pop(id_, None)
        self._cache[id_] = schema
        while len(self._cache) > MAX_SCHEMAS:
            self._cache.popitem(last=False)
        self._failures.pop(id_, None)
        return schema

    async def _fetch(self, id_: int) -> Schema:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=FETCH_SECONDS))
        where = f"{self.url}/schemas/ids/{id_}"
        try:
            async with self._session.get(where, headers={"Accept": "application/vnd.schemaregistry.v1+json, application/json"}) as answer:
                body = await answer.content.read(MAX_SCHEMA_BYTES + 1)
                if answer.status == 404:
                    raise NotDecoded(f"schema {id_} is not in the registry at {self.shown_url}")
                if answer.status != 200:
                    raise NotDecoded(f"the registry answered {answer.status} for schema {id_}: {body[:200].decode(errors='replace')}")
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            why = _without_userinfo_in(str(exc), self.url)
            raise NotDecoded(f"the registry at {self.shown_url} did not answer for schema {id_}: {type(exc).__name__} {why}".rstrip()) from None
        if len(body) > MAX_SCHEMA_BYTES:
            raise NotDecoded(f"schema {id_} is larger than {MAX_SCHEMA_BYTES} bytes: not fetched")
        try:
            document = json.loads(body)
            text = document["schema"]
        except (ValueError, KeyError, TypeError):
            raise NotDecoded(f"the registry's answer for schema {id_} is not a schema: {body[:200].decode(errors='replace')}") from None
        kind = document.get("schemaType") or "AVRO"
        return Schema(id_, kind, text, len(document.get("references") or ()), _parse(id_, kind, text))


def _without_userinfo(url: str) -> str:
    """`url` without the `user:password@` of its authority."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _without_userinfo_in(text: str, url: str) -> str:
    """`text` (an error's, which may quote the URL or its parts) with `url`'s userinfo taken out."""
    userinfo = urllib.parse.urlsplit(url).netloc.rpartition("@")[0]
    text = text.replace(url, _without_userinfo(url))
    for secret in (userinfo, userinfo.partition(":")[2]):
        if secret:
            text = text.replace(secret, "***")
    return text


def _parse(id_: int, kind: str, text: str) -> Any:
    if kind == "AVRO":
        try:
            import fastavro
        except ImportError:
            raise NotDecoded("Avro values need fastavro, which is not installed: pip install 'ottla[avro]'") from None
        try:
            return fastavro.parse_schema(json.loads(text))
        except Exception as exc:  # fastavro raises several kinds for a schema it cannot use
            raise NotDecoded(f"schema {id_} is not an Avro schema fastavro can read (one with references is not followed): {exc}") from None
    if kind == "JSON":
        return None
    if kind == "PROTOBUF":
        descriptor = _file_descriptor(text)
        return ProtoFile.parse(text) if descriptor is None else ProtoFile.from_descriptor(descriptor)
    raise NotDecoded(f"schema {id_} is of type {kind}, which the console does not decode")


def _file_descriptor(text: str) -> Any:
    """The FileDescriptorProto a Protobuf schema registered as base64 is (confluent-kafka's
    serializer registers that form), or None for .proto text."""
    if "{" in text:
        return None
    # protobuf ships no type information (opentelemetry-proto, a dependency, brings it in).
    from google.protobuf import descriptor_pb2  # type: ignore[import-untyped]
    from google.protobuf.message import DecodeError  # type: ignore[import-untyped]

    try:
        return descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError, DecodeError):
        raise NotDecoded("the Protobuf schema is neither .proto text nor a base64 FileDescriptorProto") from None


def _decode_avro(schema: Any, payload: bytes) -> Any:
    import fastavro

    reader = io.BytesIO(payload)
    try:
        value = fastavro.schemaless_reader(reader, schema, None)
    except Exception as exc:  # a payload that does not match its schema fails in many ways
        raise NotDecoded(f"the payload does not read as its Avro schema: {type(exc).__name__} {exc}") from None
    if reader.tell() != len(payload):
        raise NotDecoded(f"the payload has {len(payload) - reader.tell()} bytes beyond its Avro value")
    return jsonable(value)


def jsonable(value: Any) -> Any:
    """A decoded value as JSON can carry it: bytes as base64, decimals, UUIDs and times as text."""
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    return value


# --- Protobuf ----------------------------------------------------------------------------------

_SCALAR_WIRE = {
    "int32": 0, "int64": 0, "uint32": 0, "uint64": 0, "sint32": 0, "sint64": 0, "bool": 0,
    "fixed64": 1, "sfixed64": 1, "double": 1, "fixed32": 5, "sfixed32": 5, "float": 5,
    "string": 2, "bytes": 2,
}
# FieldDescriptorProto.Type -> the .proto name of a scalar (11 message, 14 enum: by type_name).
_DESCRIPTOR_TYPES = {
    1: "double", 2: "float", 3: "int64", 4: "uint64", 5: "int32", 6: "fixed64", 7: "fixed32", 8: "bool",
    9: "string", 12: "bytes", 13: "uint32", 15: "sfixed32", 16: "sfixed64", 17: "sint32", 18: "sint64",
}
_TOKEN = re.compile(r'\s+|//[^\n]*|/\*.*?\*/|("(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|[A-Za-z_][\w.]*|\.[A-Za-z_][\w.]*|-?\d+|[{}\[\]()<>;=,])', re.S)


@dataclasses.dataclass(slots=True)
class ProtoField:
    name: str
    number: int
    type: str  # a scalar's name, else the type name as written
    repeated: bool
    map_types: tuple[str, str] | None = None


@dataclasses.dataclass(slots=True)
class ProtoMessage:
    full_name: str
    fields: dict[int, ProtoField]
    messages: list[ProtoMessage]  # nested, in declaration order (message indexes count these)


class ProtoFile:
    """What the message browser needs of a .proto: its messages (nested, in order), their
    fields by number, and enums' value names, from a light parse of the schema text."""

    def __init__(self, package: str) -> None:
        self.package = package
        self.messages: list[ProtoMessage] = []
        self.by_name: dict[str, ProtoMessage] = {}
        self.enums: dict[str, dict[int, str]] = {}

    @classmethod
    def parse(cls, text: str) -> ProtoFile:
        tokens = [match for match in _TOKEN.findall(text) if match]
        package = ""
        for index, token in enumerate(tokens[:-1]):
            if token == "package":
                package = tokens[index + 1]
                break
        proto = cls(package)
        parser = _ProtoParser(tokens, proto)
        try:
            proto.messages = parser.body(package, top=True)
        except (IndexError, ValueError) as exc:
            raise NotDecoded(f"the registered .proto does not parse here ({exc}): Protobuf values are not decoded") from None
        return proto

    @classmethod
    def from_descriptor(cls, file: Any) -> ProtoFile:
        """The same from a google.protobuf FileDescriptorProto: exact, no parse needed."""
        proto = cls(file.package)

        def type_of(field: Any) -> str:
            return _DESCRIPTOR_TYPES.get(field.type) or str(field.type_name)

        def enums(descriptors: Any, scope: str) -> None:
            for enum in descriptors:
                # reversed: with allow_alias, the first name of a number is the one shown.
                proto.enums[f"{scope}.{enum.name}" if scope else enum.name] = {value.number: value.name for value in reversed(enum.value)}

        def message(descriptor: Any, scope: str) -> ProtoMessage:
            full = f"{scope}.{descriptor.name}" if scope else descriptor.name
            built = proto.by_name[full] = ProtoMessage(full, {}, [])
            enums(descriptor.enum_type, full)
            built.messages = [message(nested, full) for nested in descriptor.nested_type]
            entries = {f".{full}.{nested.name}": nested for nested in descriptor.nested_type if nested.options.map_entry}
            for field in descriptor.field:
                entry = entries.get(field.type_name)
                map_types = None if entry is None else (type_of(entry.field[0]), type_of(entry.field[1]))
                built.fields[field.number] = ProtoField(field.name, field.number, "map" if map_types else type_of(field), field.label == 3, map_types)
            return built

        enums(file.enum_type, file.package)
        proto.messages = [message(descriptor, file.package) for descriptor in file.message_type]
        return proto

    def decode(self, payload: bytes) -> dict[str, Any]:
        reader = _Reader(payload)
        try:
            count = reader.zigzag()
            indexes = [0] if count == 0 else [reader.zigzag() for _ in range(count)]
        except IndexError:
            raise NotDecoded("the payload ends inside its message indexes") from None
        choices = self.messages
        message: ProtoMessage | None = None
        for index in indexes:
            if not 0 <= index < len(choices):
                raise NotDecoded(f"message indexes {indexes} name no message of the registered .proto")
            message = choices[index]
            choices = message.messages
        assert message is not None
        notes: set[str] = set()
        try:
            value = self._message(_Reader(payload[reader.position:]), message, notes)
        except (IndexError, ValueError) as exc:
            raise NotDecoded(f"the payload does not read as {message.full_name}: {exc}") from None
        answer: dict[str, Any] = {"type": "PROTOBUF", "message": message.full_name, "value": value}
        if notes:
            answer["note"] = "; ".join(sorted(notes))
        return answer

    def _resolve(self, name: str, scope: str) -> str:
        """The full name `name` refers to from inside `scope`, as protoc's scoping rules find it."""
        if name.startswith("."):
            return name[1:]
        parts = scope.split(".") if scope else []
        while True:
            candidate = ".".join([*parts, name])
            if candidate in self.by_name or candidate in self.enums:
                return candidate
            if not parts:
                return name
            parts.pop()

    def _message(self, reader: _Reader, message: ProtoMessage, notes: set[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        while not reader.done:
            key = reader.varint()
            number, wire = key >> 3, key & 7
            if wire in (3, 4):
                raise ValueError("groups (wire types 3 and 4) are not supported")
            field = message.fields.get(number)
            if field is None:
                notes.add("fields not in the registered .proto are shown by number")
                out.setdefault(str(number), []).append(_generic(reader, wire))
                continue
            if field.map_types is not None and wire == 2:
                key_value = self._map_entry(_Reader(reader.chunk()), field, message.full_name, notes)
                out.setdefault(field.name, {})[str(key_value[0])] = key_value[1]
                continue
            values = self._values(reader, wire, field.type, message.full_name, notes)
            if field.repeated:
                out.setdefault(field.name, []).extend(values)
            else:
                out[field.name] = values[-1]
        return out

    def _map_entry(self, reader: _Reader, field: ProtoField, scope: str, notes: set[str]) -> tuple[Any, Any]:
        assert field.map_types is not None
        entry: dict[int, Any] = {}
        while not reader.done:
            key = reader.varint()
            kind = field.map_types[0] if key >> 3 == 1 else field.map_types[1]
            entry[key >> 3] = self._values(reader, key & 7, kind, scope, notes)[-1]
        return entry.get(1, ""), entry.get(2)

    def _values(self, reader: _Reader, wire: int, kind: str, scope: str, notes: set[str]) -> list[Any]:
        """One field's value(s) of type `kind` (several when a repeated scalar came packed)."""
        expected = _SCALAR_WIRE.get(kind)
        if expected is None:
            full = self._resolve(kind, scope)
            if full in self.enums:
                if wire == 2:
                    return [self.enums[full].get(v, v) for v in _packed(reader.chunk(), "int32")]
                number = _signed(reader.varint(), 64)
                return [self.enums[full].get(number, number)]
            nested = self.by_name.get(full)
            if wire != 2:
                raise ValueError(f"a {kind} field came with wire type {wire}")
            chunk = reader.chunk()
            if nested is not None:
                return [self._message(_Reader(chunk), nested, notes)]
            notes.add(f"{kind} is not in the registered .proto (an import?): its fields are shown by number")
            try:
                return [self._message(_Reader(chunk), ProtoMessage(full, {}, []), set())]
            except (IndexError, ValueError):
                return [base64.b64encode(chunk).decode()]
        if wire == 2 and expected != 2:
            return _packed(reader.chunk(), kind)
        if wire != expected:
            raise ValueError(f"a {kind} field came with wire type {wire}")
        return [_scalar(reader, kind)]


class _ProtoParser:
    def __init__(self, tokens: list[str], proto: ProtoFile) -> None:
        self.tokens = tokens
        self.at = 0
        self.proto = proto
        self.fields: dict[int, ProtoField] = {}  # of the message being read

    def next(self) -> str:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def skip_statement(self) -> None:
        """Past the next `;` or balanced `{...}` block, whichever ends the statement."""
        depth = 0
        while True:
            token = self.next()
            if token == "{":
                depth += 1
            elif token == "}":
                depth -= 1
                if depth == 0:
                    return
            elif token == ";" and depth == 0:
                return

    def body(self, scope: str, top: bool = False) -> list[ProtoMessage]:
        """Declarations up to the closing `}` (or the end of the file at the top); the
        messages declared, in order. Fields go to the message being read (`self.fields`)."""
        messages: list[ProtoMessage] = []
        while self.at < len(self.tokens):
            token = self.next()
            if token == "}":
                if top:
                    raise ValueError("unbalanced }")
                return messages
            if token == "message":
                name = self.next()
                full = f"{scope}.{name}" if scope else name
                message = ProtoMessage(full, {}, [])
                self.proto.by_name[full] = message
                if self.next() != "{":
                    raise ValueError(f"message {name} has no body")
                outer, self.fields = self.fields, message.fields
                message.messages = self.body(full)
                self.fields = outer
                messages.append(message)
            elif token == "enum":
                name = self.next()
                self.enum(f"{scope}.{name}" if scope else name)
            elif token == "oneof":
                self.next()
                self.next()  # {
                self.body(scope)
            elif token in ("syntax", "edition", "package", "import", "option", "reserved", "extensions", ";"):
                if token != ";":
                    self.skip_statement()
            elif token in ("service", "extend"):
                self.skip_statement()
            elif not top:
                self.field(token, scope, messages)
            else:
                self.skip_statement()
        if not top:
            raise ValueError("the file ends inside a message")
        return messages

    def field(self, token: str, scope: str, nested: list[ProtoMessage]) -> None:
        repeated = token == "repeated"
        if token in ("repeated", "optional", "required"):
            token = self.next()
        map_types = None
        if token == "map":
            if self.next() != "<":
                raise ValueError("map without <")
            map_types = (self.next(), "")
            self.next()  # ,
            map_types = (map_types[0], self.next())
            self.next()  # >
            repeated = True
        name = self.next()
        if self.next() != "=":
            raise ValueError(f"field {name} has no number")
        number = int(self.next())
        self.at -= 1
        self.skip_statement()
        self.fields[number] = ProtoField(name, number, token if map_types is None else "map", repeated, map_types)

    def enum(self, full: str) -> None:
        values: dict[int, str] = {}
        if self.next() != "{":
            raise ValueError(f"enum {full} has no body")
        while True:
            token = self.next()
            if token == "}":
                break
            if token in ("option", "reserved"):
                self.skip_statement()
                continue
            if token == ";":
                continue
            if self.next() != "=":
                raise ValueError(f"enum value {token} has no number")
            values.setdefault(int(self.next()), token)
            self.at -= 1
            self.skip_statement()
        self.proto.enums[full] = values


class _Reader:
    __slots__ = ("data", "position")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.position = 0

    @property
    def done(self) -> bool:
        return self.position >= len(self.data)

    def varint(self) -> int:
        result = shift = 0
        while True:
            byte = self.data[self.position]
            self.position += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7
            if shift > 63:
                raise ValueError("a varint longer than 10 bytes")

    def zigzag(self) -> int:
        value = self.varint()
        return (value >> 1) ^ -(value & 1)

    def take(self, size: int) -> bytes:
        if self.position + size > len(self.data):
            raise ValueError("the payload ends inside a field")
        chunk = self.data[self.position:self.position + size]
        self.position += size
        return chunk

    def chunk(self) -> bytes:
        return self.take(self.varint())


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _scalar(reader: _Reader, kind: str) -> Any:
    if kind in ("string", "bytes"):
        raw = reader.chunk()
        if kind == "bytes":
            return base64.b64encode(raw).decode()
        return raw.decode("utf-8", errors="replace")
    if kind in ("double", "fixed64", "sfixed64"):
        return struct.unpack("<" + {"double": "d", "fixed64": "Q", "sfixed64": "q"}[kind], reader.take(8))[0]
    if kind in ("float", "fixed32", "sfixed32"):
        return struct.unpack("<" + {"float": "f", "fixed32": "I", "sfixed32": "i"}[kind], reader.take(4))[0]
    value = reader.varint()
    if kind == "bool":
        return bool(value)
    if kind in ("sint32", "sint64"):
        return (value >> 1) ^ -(value & 1)
    if kind == "int32":
        return _signed(value, 32) if value < (1 << 32) else _signed(value, 64)
    if kind == "int64":
        return _signed(value, 64)
    return value


def _packed(data: bytes, kind: str) -> list[Any]:
    reader = _Reader(data)
    values = []
    while not reader.done:
        values.append(_scalar(reader, kind))
    return values


def _generic(reader: _Reader, wire: int) -> Any:
    """A field the .proto does not name, by wire type: an integer, or bytes shown as text when
    they are UTF-8 and as base64 otherwise."""
    if wire == 0:
        return reader.varint()
    if wire == 1:
        return struct.unpack("<q", reader.take(8))[0]
    if wire == 5:
        return struct.unpack("<i", reader.take(4))[0]
    if wire == 2:
        raw = reader.chunk()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(raw).decode()
    raise ValueError(f"wire type {wire} is not supported")
