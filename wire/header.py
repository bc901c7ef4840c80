"""Request and response headers (Kafka's RequestHeader v0-2, ResponseHeader v0-1).

Request header v2 belongs to flexible request versions and adds tagged fields, but its
ClientId stays a classic int16-length string. The response header is v1 for flexible
versions, except that ApiVersions responses always use v0 so that a client which does
not yet know the broker's versions can read the answer (KIP-511).
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass

from ottla.wire.api import ApiKey, message_name
from ottla.wire.errors import MalformedFrame
from ottla.wire.primitives import encode_uvarint
from ottla.wire.schema import is_flexible

_FIXED_PART = struct.Struct(">hhi")
_WITH_CLIENT_ID = struct.Struct(">hhih")  # header v1+: the fixed part, then ClientId's length
_INT16 = struct.Struct(">h")
# A response frame's size prefix and header in one: size, correlation id, and for
# header v1 an empty tagged-field section.
_RESPONSE_V0 = struct.Struct(">ii")
_RESPONSE_V1 = struct.Struct(">iib")


# Not frozen: a frozen dataclass sets each field through object.__setattr__, which makes
# building one, once per request, cost 4x as much (about 1 µs).
@dataclass(slots=True)
class RequestHeader:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    version: int


# Both run for every request; deriving them (ApiKey, the message's JSON) costs microseconds.
@functools.lru_cache(maxsize=4096)
def request_header_version(api_key: int, api_version: int) -> int:
    if api_key == ApiKey.CONTROLLED_SHUTDOWN and api_version == 0:
        return 0
    return 2 if is_flexible(message_name(ApiKey(api_key)) + "Request", api_version) else 1


@functools.lru_cache(maxsize=4096)
def response_header_version(api_key: int, api_version: int) -> int:
    if api_key == ApiKey.API_VERSIONS:
        return 0
    return 1 if is_flexible(message_name(ApiKey(api_key)) + "Response", api_version) else 0


def peek_api(frame: bytes | bytearray | memoryview) -> tuple[int, int, int]:
    """api_key, api_version and correlation_id: readable before the header version is known."""
    if len(frame) < 8:
        raise MalformedFrame(f"a request of {len(frame)} bytes has no header")
    return _FIXED_PART.unpack_from(frame)


def decode_request_header(frame: bytes | bytearray | memoryview, header_version: int) -> tuple[RequestHeader, int]:
    """The header and the offset where the request body starts."""
    if header_version == 0:
        api_key, api_version, correlation_id = peek_api(frame)
        return RequestHeader(api_key, api_version, correlation_id, None, 0), 8
    if len(frame) < 10:
        raise MalformedFrame(f"a request header of {len(frame)} bytes is truncated")
    api_key, api_version, correlation_id, length = _WITH_CLIENT_ID.unpack_from(frame)
    position = 10
    client_id = None
    if length >= 0:
        if position + length > len(frame):
            raise MalformedFrame("client_id runs past the end")
        try:
            client_id = str(frame[position : position + length], "utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedFrame("client_id is not UTF-8") from exc
        position += length
    elif length != -1:
        raise MalformedFrame(f"invalid client_id length {length}")
    if header_version >= 2:
        if position < len(frame) and frame[position] == 0:
            position += 1  # no tagged fields, the usual case
        else:
            position = skip_tagged_fields(frame, position)
    return RequestHeader(api_key, api_version, correlation_id, client_id, header_version), position


def _uvarint_at(data: bytes | bytearray | memoryview, position: int) -> tuple[int, int]:
    result = shift = 0
    for index in range(position, min(position + 5, len(data))):
        byte = data[index]
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, index + 1
        shift += 7
    raise MalformedFrame("bad varint in tagged fields")


def skip_tagged_fields(data: bytes | bytearray | memoryview, position: int) -> int:
    count, position = _uvarint_at(data, position)
    for _ in range(count):
        _, position = _uvarint_at(data, position)
        size, position = _uvarint_at(data, position)
        position += size
        if position > len(data):
            raise MalformedFrame("tagged field runs past the end")
    return position


def encode_request_header(header: RequestHeader) -> bytes:
    out = _FIXED_PART.pack(header.api_key, header.api_version, header.correlation_id)
    if header.version >= 1:
        if header.client_id is None:
            out += _INT16.pack(-1)
        else:
            data = header.client_id.encode("utf-8")
            out += _INT16.pack(len(data)) + data
    if header.version >= 2:
        out += encode_uvarint(0)
    return out


def response_frame_prefix(correlation_id: int, header_version: int, body_size: int) -> bytes:
    """What goes before a response body of `body_size` bytes: the frame's size, then the header."""
    if header_version >= 1:
        return _RESPONSE_V1.pack(body_size + 5, correlation_id, 0)
    return _RESPONSE_V0.pack(body_size + 4, correlation_id)
