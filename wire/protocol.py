"""Whole requests and responses: header plus body, for both ends of a connection.

The broker decodes requests and encodes responses; the same functions the other way
round make `wire/` a client codec too (the CLI and the tests use them).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from ottla.wire import specialised
from ottla.wire.api import ApiKey, message_name
from ottla.wire.framing import SIZE
from ottla.wire.header import (
    RequestHeader,
    decode_request_header,
    encode_request_header,
    request_header_version,
    response_frame_prefix,
    response_header_version,
    skip_tagged_fields,
)
from ottla.wire.schema import decode, encode, encode_parts, message_struct
from ottla.wire.structs import Message


# Looked up for every request: naming the message (ApiKey, then its name) costs more
# than decoding a small body.
@functools.lru_cache(maxsize=4096)
def request_struct(api_key: int, version: int) -> Message:
    return message_struct(message_name(ApiKey(api_key)) + "Request", version)


@functools.lru_cache(maxsize=4096)
def response_struct(api_key: int, version: int) -> Message:
    return message_struct(message_name(ApiKey(api_key)) + "Response", version)


@functools.lru_cache(maxsize=4096)
def request_decoder(api_key: int, version: int) -> specialised.Decoder:
    """What decodes a request body (from an offset, to the offset past it): a specialised decoder
    where wire.specialised has one for the request's usual shape, the generated codec for the rest."""
    return specialised.request_decoder(api_key, version, functools.partial(decode, request_struct(api_key, version)))


@functools.lru_cache(maxsize=4096)
def response_encoder(api_key: int, version: int) -> specialised.Encoder:
    """What encodes a response body: a specialised encoder where wire.specialised has one for
    the answer's usual shape, the generated codec for everything else."""
    return specialised.response_encoder(api_key, version, functools.partial(encode, response_struct(api_key, version)))


def decode_request(frame: bytes | memoryview, header_version: int) -> tuple[RequestHeader, dict[str, Any]]:
    """Header and body of one request frame; raises MalformedFrame when it does not decode."""
    header, position = decode_request_header(frame, header_version)
    body, _ = request_decoder(header.api_key, header.api_version)(frame, position)
    return header, body


def encode_response(api_key: int, version: int, correlation_id: int, body: Mapping[str, Any]) -> bytes:
    """A complete response frame, size prefix included."""
    data = response_encoder(api_key, version)(body)
    return response_frame_prefix(correlation_id, response_header_version(api_key, version), len(data)) + data


def encode_response_parts(api_key: int, version: int, correlation_id: int, body: Mapping[str, Any]) -> list[Any]:
    """A response frame as parts: buffers, and the `Spliced` parts of its body left in place."""
    parts = encode_parts(response_struct(api_key, version), body)
    size = sum(len(part) if isinstance(part, bytes) else part.length for part in parts)
    return [response_frame_prefix(correlation_id, response_header_version(api_key, version), size), *parts]


def encode_request(api_key: int, version: int, correlation_id: int, body: Mapping[str, Any], client_id: str | None = "ottla") -> bytes:
    header = RequestHeader(api_key, version, correlation_id, client_id, request_header_version(api_key, version))
    payload = encode_request_header(header) + encode(request_struct(api_key, version), body)
    return SIZE.pack(len(payload)) + payload


def decode_response(api_key: int, version: int, frame: bytes | memoryview) -> tuple[int, dict[str, Any]]:
    """Correlation id and body of one response frame (without its size prefix)."""
    (correlation_id,) = SIZE.unpack_from(frame)
    position = 4
    if response_header_version(api_key, version) >= 1:
        position = skip_tagged_fields(frame, position)
    body, _ = decode(response_struct(api_key, version), frame, position)
    return correlation_id, body
