"""A raw Kafka connection whose requests and responses are encoded and decoded by
kafka-python's generated protocol classes: an independent codec to check ours against,
and a way to send any API at any version over a real socket."""

from __future__ import annotations

import socket
import struct
from typing import Any

from kafka.record.memory_records import MemoryRecords, MemoryRecordsBuilder

from compat.sockets import read_frame


class RawClient:
    def __init__(self, bootstrap: str, client_id: str = "ottla-tests") -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.client_id = client_id
        self.correlation_id = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "RawClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, request: Any, version: int) -> None:
        self.correlation_id += 1
        request.with_header(correlation_id=self.correlation_id, client_id=self.client_id)
        self.sock.sendall(bytes(request.encode(version=version, header=True, framed=True)))

    def receive_frame(self) -> bytes:
        frame = read_frame(self.sock)
        if frame is None:
            raise ConnectionError("broker closed the connection")
        return frame

    def call(self, request: Any, version: int, response_class: Any) -> Any:
        """Send `request` at `version`; decode the answer as `response_class` at the same version."""
        self.send(request, version)
        frame = self.receive_frame()
        (correlation_id,) = struct.unpack_from(">i", frame)
        assert correlation_id == self.correlation_id
        return response_class.decode(frame, version=version, header=True)



def build_records(magic: int, pairs: list[tuple[bytes, bytes]], timestamp: int = 1_700_000_000_000) -> bytes:
    """A record batch (magic 2) or message set (magic 0/1) built by kafka-python."""
    builder = MemoryRecordsBuilder(magic=magic, compression_type=0, batch_size=1 << 20)
    for key, value in pairs:
        builder.append(timestamp=timestamp if magic > 0 else None, key=key, value=value)
    builder.close()
    return bytes(builder.buffer())


def read_records(data: bytes) -> list[tuple[int, bytes, bytes]]:
    """(offset, key, value) of every record in fetched bytes, decoded by kafka-python."""
    records = MemoryRecords(data)
    out = []
    while True:
        batch = records.next_batch()
        if batch is None:
            return out
        for record in batch:
            out.append((record.offset, record.key, record.value))


def make(message_class: Any, values: dict[str, Any]) -> Any:
    """A kafka-python message (or nested struct) built from plain dicts and lists."""
    kwargs = {}
    for name, value in values.items():
        field = message_class.fields[name]
        if field.is_struct_array() and value is not None:
            value = [make(field.array_of.data_class, item) for item in value]
        elif field.is_struct() and value is not None:
            value = make(field.data_class, value)
        kwargs[name] = value
    return message_class(**kwargs)


class WireClient:
    """A raw connection that encodes requests and decodes answers with Ottla's own codec
    (`ottla.wire.protocol`), bodies as plain dicts: for tests of what the broker answers,
    not of the codec. A closed connection fails the call's assertion."""

    def __init__(self, bootstrap: str, client_id: str = "ottla-tests", timeout: float = 10) -> None:
        host, port = bootstrap.split(",")[0].rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.client_id = client_id
        self.correlation_id = 0

    def close(self) -> None:
        self.sock.close()

    def call(self, api: Any, version: int, body: dict[str, Any]) -> dict[str, Any]:
        from ottla.wire.protocol import decode_response, encode_request

        self.correlation_id += 1
        self.sock.sendall(encode_request(api, version, self.correlation_id, body, client_id=self.client_id))
        frame = read_frame(self.sock)
        assert frame is not None, f"{api.name} v{version}: the broker closed the connection"
        return decode_response(api, version, frame)[1]
