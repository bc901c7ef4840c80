"""Values in a schema registry's wire format, decoded for the message browser: Avro written by
fastavro and Protobuf written by Google's protobuf runtime read back without sockets, then a
broker with `console.schema.registry.url` pointed at a registry served over HTTP here (the
Confluent-compatible `GET /schemas/ids/{id}` only), read through `/api/` as the console reads it:
decoded values, a cache that asks once per schema, and bounded failures."""

from __future__ import annotations

import base64
import io
import json
import struct
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import fastavro
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from kafka import KafkaProducer

from ottla.server.http.schemas import FETCH_SECONDS, NotDecoded, ProtoFile, Schema, _parse
from ottla.testing import running_broker

AVRO = {
    "type": "record", "name": "Reading", "namespace": "dev.ottla",
    "fields": [
        {"name": "sensor", "type": "string"}, {"name": "value", "type": "long"},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "raw", "type": ["null", "bytes"], "default": None},
    ],
}
PROTO = """
syntax = "proto3";
package dev.ottla; // a comment { with a brace
import "google/protobuf/timestamp.proto";

/* The first message: index 0. */
message Other { string unused = 1; }

message Reading {
  enum Unit { UNIT_UNSPECIFIED = 0; CELSIUS = 1; KELVIN = 2; }
  message Place { string room = 1; sint32 floor = 2; }
  string sensor = 1;
  int64 value = 2 [json_name = "v"];
  repeated int32 samples = 3;
  Unit unit = 4;
  Place place = 5;
  map<string, double> limits = 6;
  oneof source { string device = 7; uint32 channel = 8; }
  int32 delta = 10;
  bytes raw = 11;
  google.protobuf.Timestamp at = 12;
}
"""
JSON_SCHEMA = json.dumps({"type": "object", "properties": {"n": {"type": "integer"}}})


def _wire(schema: int, payload: bytes) -> bytes:
    return struct.pack(">bI", 0, schema) + payload


def _reading_classes() -> tuple[Any, Any]:
    """The PROTO file's Reading (and a field 9 it does not declare), built from descriptors as
    protoc would build them; with Timestamp's file so the import resolves."""
    from google.protobuf import timestamp_pb2

    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(timestamp_pb2.DESCRIPTOR.serialized_pb)
    proto = descriptor_pb2.FileDescriptorProto(name="reading.proto", package="dev.ottla", syntax="proto3", dependency=["google/protobuf/timestamp.proto"])
    proto.message_type.add(name="Other").field.add(name="unused", number=1, type=9, label=1)
    reading = proto.message_type.add(name="Reading")
    unit = reading.enum_type.add(name="Unit")
    for number, name in enumerate(["UNIT_UNSPECIFIED", "CELSIUS", "KELVIN"]):
        unit.value.add(name=name, number=number)
    place = reading.nested_type.add(name="Place")
    place.field.add(name="room", number=1, type=9, label=1)
    place.field.add(name="floor", number=2, type=17, label=1)
    entry = reading.nested_type.add(name="LimitsEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=9, label=1)
    entry.field.add(name="value", number=2, type=1, label=1)
    reading.oneof_decl.add(name="source")
    T = descriptor_pb2.FieldDescriptorProto
    for name, number, kind, label, type_name in [
        ("sensor", 1, T.TYPE_STRING, 1, ""), ("value", 2, T.TYPE_INT64, 1, ""), ("samples", 3, T.TYPE_INT32, 3, ""),
        ("unit", 4, T.TYPE_ENUM, 1, ".dev.ottla.Reading.Unit"), ("place", 5, T.TYPE_MESSAGE, 1, ".dev.ottla.Reading.Place"),
        ("limits", 6, T.TYPE_MESSAGE, 3, ".dev.ottla.Reading.LimitsEntry"), ("delta", 10, T.TYPE_INT32, 1, ""),
        ("raw", 11, T.TYPE_BYTES, 1, ""), ("at", 12, T.TYPE_MESSAGE, 1, ".google.protobuf.Timestamp"),
        ("undeclared", 9, T.TYPE_STRING, 1, ""),
    ]:
        reading.field.add(name=name, number=number, type=kind, label=label, **({"type_name": type_name} if type_name else {}))
    for name, number, kind in [("device", 7, T.TYPE_STRING), ("channel", 8, T.TYPE_UINT32)]:
        reading.field.add(name=name, number=number, type=kind, label=1, oneof_index=0)
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("dev.ottla.Reading")), message_factory.GetMessageClass(pool.FindMessageTypeByName("dev.ottla.Reading.Place"))


def _protobuf_value() -> bytes:
    reading_class, _ = _reading_classes()
    reading = reading_class(sensor="hall", value=-5_000_000_000, samples=[1, -2, 300], unit=2, delta=-7, raw=b"\x00\xff", channel=3, undeclared="extra")
    reading.place.room = "lab"
    reading.place.floor = -3
    reading.limits["high"] = 40.5
    reading.at.seconds = 1700000000
    # Message indexes [1]: the file's second message, Reading (a zigzag count, then the index).
    return b"\x02\x02" + reading.SerializeToString()


def test_avro_reads_as_fastavro_wrote_it() -> None:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(AVRO), {"sensor": "hall", "value": -3, "tags": ["a", "b"], "raw": b"\x01\x02"})
    schema = Schema(7, "AVRO", json.dumps(AVRO), 0, _parse(7, "AVRO", json.dumps(AVRO)))
    assert schema.decode(out.getvalue()) == {"type": "AVRO", "value": {"sensor": "hall", "value": -3, "tags": ["a", "b"], "raw": "AQI="}}
    with pytest.raises(NotDecoded, match="bytes beyond"):
        schema.decode(out.getvalue() + b"\x00")


def test_protobuf_reads_as_the_protobuf_runtime_wrote_it_named_from_the_proto() -> None:
    decoded = ProtoFile.parse(PROTO).decode(_protobuf_value())
    assert decoded["message"] == "dev.ottla.Reading"
    assert decoded["value"] == {
        "sensor": "hall", "value": -5_000_000_000, "samples": [1, -2, 300], "unit": "KELVIN",
        "place": {"room": "lab", "floor": -3}, "limits": {"high": 40.5}, "channel": 3, "delta": -7, "raw": "AP8=",
        "at": {"1": [1700000000]}, "9": ["extra"],
    }
    # What it could not name, it says: the imported Timestamp and the undeclared field 9.
    assert "google.protobuf.Timestamp is not in the registered .proto" in decoded["note"]
    assert "shown by number" in decoded["note"]


def test_protobuf_registered_as_a_base64_descriptor_is_named_from_it() -> None:
    """confluent-kafka's ProtobufSerializer registers the FileDescriptorProto, base64-encoded."""
    reading_class, _ = _reading_classes()
    descriptor = descriptor_pb2.FileDescriptorProto()
    reading_class.DESCRIPTOR.file.CopyToProto(descriptor)
    proto = _parse(2, "PROTOBUF", base64.b64encode(descriptor.SerializeToString()).decode())
    decoded = proto.decode(_protobuf_value())
    assert decoded["message"] == "dev.ottla.Reading"
    assert decoded["value"]["undeclared"] == "extra" and decoded["value"]["unit"] == "KELVIN"
    assert decoded["value"]["limits"] == {"high": 40.5} and decoded["value"]["place"] == {"room": "lab", "floor": -3}
    assert decoded["value"]["at"] == {"1": [1700000000]}  # Timestamp's file is an import, not in this descriptor
    with pytest.raises(NotDecoded, match="neither .proto text nor"):
        _parse(2, "PROTOBUF", "not base64!")


def test_protobuf_message_indexes_pick_nested_messages_and_a_lone_zero_the_first() -> None:
    _, place_class = _reading_classes()
    proto = ProtoFile.parse(PROTO)
    place = place_class(room="attic", floor=9).SerializeToString()
    assert proto.decode(b"\x04\x02\x00" + place) == {"type": "PROTOBUF", "message": "dev.ottla.Reading.Place", "value": {"room": "attic", "floor": 9}}
    assert proto.decode(b"\x00" + b"\x0a\x01x")["message"] == "dev.ottla.Other"
    with pytest.raises(NotDecoded, match="name no message"):
        proto.decode(b"\x02\x08")


# --- through the broker's API, with a registry over HTTP ---------------------------------------


class Registry(ThreadingHTTPServer):
    """`GET /schemas/ids/{id}` from `schemas`; id 99 never answers in time; counts each ask."""

    def __init__(self, schemas: dict[int, dict[str, Any]]) -> None:
        self.schemas = schemas
        self.asked: list[int] = []
        self.release = threading.Event()
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                schema = int(self.path.rsplit("/", 1)[-1]) if self.path.startswith("/ccompat/schemas/ids/") else -1
                registry.asked.append(schema)
                if schema == 99:
                    registry.release.wait(FETCH_SECONDS * 5)
                body = json.dumps(registry.schemas[schema] if schema in registry.schemas else {"error_code": 40403, "message": "Schema not found"}).encode()
                self.send_response(200 if schema in registry.schemas else 404)
                self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/ccompat"


@pytest.fixture
def registry() -> Iterator[Registry]:
    server = Registry({
        1: {"schema": json.dumps(AVRO)},  # no schemaType: Avro, as Confluent's API answers
        2: {"schema": PROTO, "schemaType": "PROTOBUF"},
        3: {"schema": JSON_SCHEMA, "schemaType": "JSON"},
    })
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


def _messages(url: str, topic: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{url}/api/topics/{topic}/messages?partition=0&offset=0&encoding=hex", timeout=60) as answer:
        return json.loads(answer.read())["messages"]


def test_the_api_decodes_wire_format_values_with_the_registry_schemas(registry: Registry) -> None:
    avro = io.BytesIO()
    fastavro.schemaless_writer(avro, fastavro.parse_schema(AVRO), {"sensor": "hall", "value": 21, "tags": [], "raw": None})
    values = [
        _wire(1, avro.getvalue()), _wire(2, _protobuf_value()), _wire(3, b'{"n": 5}'), _wire(1, avro.getvalue()),
        _wire(4, b"x"), _wire(99, b"x"), _wire(99, b"x"), b'{"plain": "json"}', _wire(3, b"not json"),
    ]
    with running_broker(data_dir=None, http_port=0, console_schema_registry_url=registry.url) as broker:
        assert broker.broker is not None and broker.broker.http is not None
        broker.create_topic("readings", partitions=1)
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)
        for value in values:
            producer.send("readings", key=_wire(3, b'"k"'), value=value, partition=0)
        producer.flush()
        producer.close()
        messages = _messages(broker.broker.http.url, "readings")
        again = _messages(broker.broker.http.url, "readings")

    shown = [m.get("value_schema") for m in messages]
    assert shown[0] == {"id": 1, "type": "AVRO", "value": {"sensor": "hall", "value": 21, "tags": [], "raw": None}}
    assert shown[1]["type"] == "PROTOBUF" and shown[1]["message"] == "dev.ottla.Reading" and shown[1]["value"]["place"] == {"room": "lab", "floor": -3}
    assert shown[2] == {"id": 3, "type": "JSON", "value": {"n": 5}}
    assert shown[3] == shown[0]
    assert shown[4] == {"id": 4, "error": f"schema 4 is not in the registry at {registry.url}"}
    assert shown[5]["id"] == 99 and "did not answer" in shown[5]["error"] and shown[6] == shown[5]
    assert shown[7] is None  # not in the wire format: shown raw only
    assert "not JSON" in shown[8]["error"]
    assert all(m["key_schema"] == {"id": 3, "type": "JSON", "value": "k"} for m in messages)
    # The raw bytes are still there, as asked for.
    assert messages[2]["value"] == _wire(3, b'{"n": 5}').hex()
    # Each schema asked for once: the cache answers the rest, and the failures are remembered,
    # so a registry that never answers (id 99) costs one bounded wait, not one per message.
    assert sorted(registry.asked) == [1, 2, 3, 4, 99]
    assert again == messages
