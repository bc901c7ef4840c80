"""Golden bytes: our codec against a real client's encoder and decoder.

kafka-python 3.x interprets the JSON definitions with its own generated code, so for
every declared API and version we fill a message with seeded sample values, encode it
with kafka-python, decode it with `wire.schema`, compare the values, and require our
re-encoding to be byte-identical; then the other way round (our bytes decoded by
kafka-python). Both read the same JSON files, whose faithfulness to Kafka 4.0 is
test_conformance's job. Hand-written hex vectors below pin the header layouts and the
corner cases a shared misunderstanding could hide.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import random
import uuid
from pathlib import Path
from typing import Any

import kafka.protocol
import pytest
from kafka.protocol.api_message import ApiMessage
from kafka.protocol.schemas.fields.codecs import BitField

from ottla.wire.api import DECLARED_VERSIONS, ApiKey, message_name
from ottla.wire.errors import MalformedFrame
from ottla.wire.primitives import Array, Uuid
from ottla.wire.schema import Message, NullableStruct, decode, encode, is_flexible, message_struct

from wire_codecs import Codec, both_codecs, sample

SEEDS = range(6)


def _kafka_python_classes() -> dict[tuple[int, str], type[ApiMessage]]:
    for module in pkgutil.walk_packages(kafka.protocol.__path__, "kafka.protocol."):
        # `old` holds the hand-written pre-3.0 protocol classes; the generator is a script.
        if not module.name.startswith(("kafka.protocol.old", "kafka.protocol.generate_stubs")):
            importlib.import_module(module.name)
    found: dict[tuple[int, str], type[ApiMessage]] = {}
    pending = list(ApiMessage.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__dict__.get("_class_version") is None and "_json" in cls.__dict__:
            found[(cls.API_KEY, cls.type)] = cls
    return found


KAFKA_PYTHON = _kafka_python_classes()

def _same_field(ours: str, theirs: str) -> bool:
    # kafka-python splits every capital (`ISRNodes` -> `i_s_r_nodes`); MetadataResponse
    # renames both AuthorizedOperations fields to `authorized_operations` (json_patch).
    return ours.replace("_", "") == theirs.replace("_", "") or (
        ours.endswith("authorized_operations") and theirs == "authorized_operations"
    )


def _pairs(con: Message, kstruct: Any, version: int) -> tuple[list[Any], list[Any]]:
    """Our fields beside kafka-python's: regular ones by position, tagged ones by tag."""
    theirs = kstruct.untagged_fields(version)
    regular = []
    for (name, c, _), kfield in zip(con.fields, theirs, strict=True):
        assert _same_field(name, kfield.name), (name, kfield.name)
        regular.append((name, c, kfield))
    by_tag = {f.tag: f for f in kstruct.tagged_fields(version)._fields}
    tagged = [(name, c, by_tag[tag], default) for tag, name, c, default in con.tagged]
    assert len(by_tag) == len(con.tagged)
    assert all(_same_field(name, kfield.name) for name, _, kfield, _ in tagged)
    return regular, tagged


def _to_kafka(value: Any, con: Any, kfield: Any, version: int) -> Any:
    """Our value as kafka-python's objects (uuid.UUID, bit sets, data classes)."""
    if value is None:
        return None
    if isinstance(con, NullableStruct):
        con = con.struct
    if isinstance(con, Message):
        regular, tagged = _pairs(con, kfield, version)
        kwargs = {kf.name: _to_kafka(value[name], c, kf, version) for name, c, kf in regular}
        for name, c, kf, _ in tagged:
            if name in value:
                kwargs[kf.name] = _to_kafka(value[name], c, kf, version)
        return kfield.data_class(version=version, **kwargs)
    if isinstance(con, Array):
        return [_to_kafka(item, con.element, kfield.array_of, version) for item in value]
    if isinstance(con, Uuid):
        return uuid.UUID(bytes=value)
    if getattr(kfield, "_type", None) is BitField:
        bits = BitField.from_32_bit_field(value & 0xFFFFFFFF)
        return None if bits == {31} else bits
    return value


def _from_kafka(obj: Any, con: Any, kfield: Any, version: int) -> Any:
    """kafka-python's decoded objects in our representation."""
    if isinstance(con, NullableStruct):
        return None if obj is None else _from_kafka(obj, con.struct, kfield, version)
    if isinstance(con, Message):
        regular, tagged = _pairs(con, kfield, version)
        out = {name: _from_kafka(getattr(obj, kf.name), c, kf, version) for name, c, kf in regular}
        present = obj.tags or ()
        for name, c, kf, default in tagged:
            out[name] = _from_kafka(getattr(obj, kf.name), c, kf, version) if kf.name in present else default
        return out
    if getattr(kfield, "_type", None) is BitField:  # None stands for INT32_MIN, "omitted" (KIP-430)
        return -(2**31) if obj is None else BitField.to_32_bit_field(obj) - ((1 << 32) if 31 in obj else 0)
    if obj is None:
        return None
    if isinstance(con, Array):
        return [_from_kafka(item, con.element, kfield.array_of, version) for item in obj]
    if isinstance(con, Uuid):
        return obj.bytes
    if isinstance(obj, memoryview):
        return obj.tobytes()
    return obj


def _plain(value: Any) -> Any:
    """Our decoded value with zero-copy memoryviews turned into bytes for comparison."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, memoryview):
        return value.tobytes()
    return value


def _with_defaults(value: Any, con: Any) -> Any:
    """What decoding returns for `value`: absent tagged fields come back as defaults."""
    if value is None:
        return None
    if isinstance(con, NullableStruct):
        return _with_defaults(value, con.struct)
    if isinstance(con, Message):
        out = {name: _with_defaults(value[name], c) for name, c, _ in con.fields}
        for _, name, c, default in con.tagged:
            out[name] = _with_defaults(value[name], c) if name in value else default
        return out
    if isinstance(con, Array):
        return [_with_defaults(item, con.element) for item in value]
    return value


# Only the versions kafka-python defines; test_conformance checks the rest against Kafka's own
# definitions.
CASES = [
    pytest.param(key, kind, version, id=f"{message_name(key)}{kind.capitalize()}-v{version}")
    for key, (low, high) in DECLARED_VERSIONS.items()
    for kind in ("request", "response")
    for version in range(low, high + 1)
    if (cls := KAFKA_PYTHON.get((int(key), kind))) is not None and cls.min_version <= version <= cls.max_version
]


@both_codecs
@pytest.mark.parametrize("key, kind, version", CASES)
def test_kafka_python_bytes_round_trip(codec: Codec, key: ApiKey, kind: str, version: int) -> None:
    cls = KAFKA_PYTHON[(int(key), kind)]
    struct = message_struct(f"{message_name(key)}{kind.capitalize()}", version)
    for seed in SEEDS:
        value = sample(struct, random.Random(f"{key.name}/{kind}/{version}/{seed}"))
        if key is ApiKey.API_VERSIONS and kind == "response":
            value["error_code"] = 0  # kafka-python reads an erroring body as v0 (KIP-511)
        expected = _with_defaults(value, struct)

        theirs = _to_kafka(value, struct, cls._struct, version).encode(version=version)
        decoded, end = codec.decode(struct, theirs)
        assert end == len(theirs), f"seed {seed}: {len(theirs) - end} bytes left over"
        assert _plain(decoded) == expected, f"seed {seed}"
        assert codec.encode(struct, decoded) == theirs, f"seed {seed}: re-encoding differs"

        ours = codec.encode(struct, value)
        assert ours == theirs, f"seed {seed}: our encoding differs from kafka-python's"
        back = cls.decode(ours, version=version)
        assert _from_kafka(back, struct, cls._struct, version) == expected, f"seed {seed}"


KAFKAJS = json.loads((Path(__file__).parent / "kafkajs_vectors.json").read_text(encoding="utf-8"))


@both_codecs
@pytest.mark.parametrize(
    "vector", KAFKAJS["vectors"], ids=[f"{v['api']}-v{v['version']}" for v in KAFKAJS["vectors"]]
)
def test_kafkajs_request_bytes(codec: Codec, vector: dict[str, Any]) -> None:
    """kafkajs's hand-written encoders (see kafkajs_vectors.mjs): decoded by us and by
    kafka-python to the same values, and re-encoded by us to the same bytes."""
    key, version = ApiKey(vector["api_key"]), vector["version"]
    name = f"{message_name(key)}Request"
    data = bytes.fromhex(vector["hex"])
    if is_flexible(name, version):
        # kafkajs writes only header v1, so its flexible bodies open with the header v2
        # tagged-field count.
        assert data[0] == 0
        data = data[1:]
    struct = message_struct(name, version)
    value, end = codec.decode(struct, data)
    assert end == len(data), f"{len(data) - end} bytes left over"
    assert codec.encode(struct, value) == data
    cls = KAFKA_PYTHON[(int(key), "request")]
    assert _from_kafka(cls.decode(data, version=version), struct, cls._struct, version) == _plain(value)


# Hand-written vectors, read off the protocol guide (kafka.apache.org/protocol) and
# Kafka's JSON, not produced by any encoder.


def _roundtrip(name: str, version: int, hex_bytes: str, expected: dict[str, Any]) -> None:
    data = bytes.fromhex(hex_bytes.replace(" ", ""))
    struct = message_struct(name, version)
    value, end = decode(struct, data)
    assert end == len(data)
    assert _plain(value) == expected
    assert encode(struct, value) == data


def test_request_header_v1() -> None:
    _roundtrip(
        "RequestHeader",
        1,
        "0003 0009 0000002a 0007 6b61666b612d70",  # Metadata v9, correlation 42, "kafka-p"
        {"request_api_key": 3, "request_api_version": 9, "correlation_id": 42, "client_id": "kafka-p"},
    )


def test_request_header_v2_keeps_classic_null_client_id() -> None:
    _roundtrip(
        "RequestHeader",
        2,
        "0001 000c 00000007 ffff 00",  # int16 -1, not the compact 0x00, then no tags
        {"request_api_key": 1, "request_api_version": 12, "correlation_id": 7, "client_id": None},
    )


def test_request_header_v0_has_no_client_id() -> None:
    _roundtrip(
        "RequestHeader",
        0,
        "0007 0000 00000001",
        {"request_api_key": 7, "request_api_version": 0, "correlation_id": 1},
    )


def test_response_headers() -> None:
    _roundtrip("ResponseHeader", 0, "7fffffff", {"correlation_id": 2**31 - 1})
    _roundtrip("ResponseHeader", 1, "80000000 00", {"correlation_id": -(2**31)})


def test_api_versions_v3_request_as_librdkafka_sends_it() -> None:
    # The first frame confluent-kafka 2.16.1 (librdkafka 2.16.0) wrote to a bare socket:
    # header v2 with a classic int16 client id, then the KIP-511 body in compact strings.
    frame = bytes.fromhex(
        "00000040"  # size prefix
        "0012 0003 00000001 0007 72646b61666b61 00"  # ApiVersions v3, corr 1, "rdkafka", no tags
        "17 636f6e666c75656e742d6b61666b612d707974686f6e"  # "confluent-kafka-python"
        "16 322e31362e312d72646b61666b612d322e31362e30"  # "2.16.1-rdkafka-2.16.0"
        "00"
    )
    assert int.from_bytes(frame[:4], "big") == len(frame) - 4
    header, offset = decode(message_struct("RequestHeader", 2), frame, 4)
    assert header == {"request_api_key": 18, "request_api_version": 3, "correlation_id": 1, "client_id": "rdkafka"}
    body, end = decode(message_struct("ApiVersionsRequest", 3), frame, offset)
    assert end == len(frame)
    assert body == {"client_software_name": "confluent-kafka-python", "client_software_version": "2.16.1-rdkafka-2.16.0"}
    assert frame[4:offset] == encode(message_struct("RequestHeader", 2), header)
    assert frame[offset:] == encode(message_struct("ApiVersionsRequest", 3), body)


def test_compact_nullable_string_null_is_a_zero_byte() -> None:
    # FindCoordinatorResponse v3: throttle, error, error_message=null, node_id, host, port.
    _roundtrip(
        "FindCoordinatorResponse",
        3,
        "00000000 0000 00 00000001 0a 6c6f63616c686f7374 00002384 00",
        {
            "throttle_time_ms": 0,
            "error_code": 0,
            "error_message": None,
            "node_id": 1,
            "host": "localhost",
            "port": 9092,
        },
    )


def test_compact_nullable_string_empty_is_not_null() -> None:
    value, _ = decode(message_struct("FindCoordinatorResponse", 3), bytes.fromhex("00000000 0000 01 00000001 01 00000000 00"))
    assert value["error_message"] == "" and value["host"] == ""


def test_tagged_fields_present() -> None:
    # ApiVersionsResponse v3 with no keys, throttle 0, then three tagged fields:
    # tag 0 SupportedFeatures [x: 1..2], tag 1 FinalizedFeaturesEpoch = 5, tag 3
    # ZkMigrationReady = true. Tag 2 (an empty array, its default) is left out, as Kafka does.
    _roundtrip(
        "ApiVersionsResponse",
        3,
        "0000 01 00000000 03  00 08 02 0278 0001 0002 00  01 08 0000000000000005  03 01 01",
        {
            "error_code": 0,
            "api_keys": [],
            "throttle_time_ms": 0,
            "supported_features": [{"name": "x", "min_version": 1, "max_version": 2}],
            "finalized_features_epoch": 5,
            "finalized_features": [],
            "zk_migration_ready": True,
        },
    )


def test_unknown_tagged_field_is_skipped() -> None:
    # HeartbeatRequest v4 defines no tagged fields: tag 9 (3 bytes) and tag 31 (empty) are skipped.
    struct = message_struct("HeartbeatRequest", 4)
    data = bytes.fromhex("02 67 00000003 02 6d 00  02  09 03 aabbcc  1f 00")
    value, end = decode(struct, data)
    assert end == len(data)
    assert value == {"group_id": "g", "generation_id": 3, "member_id": "m", "group_instance_id": None}


def test_tagged_field_shorter_than_declared_is_malformed() -> None:
    # ApiVersionsResponse v3, tag 1 (an int64) declared 9 bytes long.
    data = bytes.fromhex("0000 01 00000000 01 01 09 000000000000000500")
    with pytest.raises(MalformedFrame):
        decode(message_struct("ApiVersionsResponse", 3), data)


def test_nullable_struct_kip_893() -> None:
    # DescribeTopicPartitionsRequest v0: the Cursor struct is prefixed by int8 -1 (null) or 1.
    _roundtrip(
        "DescribeTopicPartitionsRequest",
        0,
        "02 0274 00 000007d0 ff 00",
        {"topics": [{"name": "t"}], "response_partition_limit": 2000, "cursor": None},
    )
    _roundtrip(
        "DescribeTopicPartitionsRequest",
        0,
        "01 000007d0 01 0274 00000002 00 00",
        {"topics": [], "response_partition_limit": 2000, "cursor": {"topic_name": "t", "partition_index": 2}},
    )


def test_produce_v3_records_stay_a_view_of_the_frame() -> None:
    data = bytes.fromhex("ffff ffff 00007530 00000001 0001 74 00000001 00000000 00000003 010203")
    value, end = decode(message_struct("ProduceRequest", 3), data)
    assert end == len(data)
    records = value["topic_data"][0]["partition_data"][0]["records"]
    assert isinstance(records, memoryview) and records.obj is data and records == b"\x01\x02\x03"
    assert value["transactional_id"] is None and value["acks"] == -1
