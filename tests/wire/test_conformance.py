"""Our structs against Apache Kafka's own message definitions, at every declared version.

Kafka's JSON is read here by an interpreter independent of `wire/`, and compared with what
`wire.schema` actually built, by introspecting the construct objects: field names, order,
types, nullability, compact or classic encoding, tagged fields and their tags, defaults. Like
franz-go's `generate/validate_test.go`, this catches a wrong or stale definition
(kafka-python's packaged JSON, or one of ours in `wire/messages/`) before a client does.

Each version is checked against the oldest definitions that have it: `../shared/kafka-protocol`
where it is beside the checkout, else Kafka 3.9's (compat.message_definitions; Kafka 4 dropped
versions Ottla still serves), then the reference Kafka's (4.4) for the versions added since.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Iterator

import pytest

from compat import message_definitions as definitions
from compat.kafka import KAFKA_VERSION, LIB
from ottla.wire.api import DECLARED_VERSIONS, ApiKey, message_name
from ottla.wire.primitives import Array, Bool, Bytes, Fixed, String, Uuid
from ottla.wire.schema import Message, NullableStruct, is_flexible, message_struct


def _kafka_message_dir() -> Path | None:
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "kafka-protocol" / "message"
        if candidate.is_dir():
            return candidate
    return None


def _shared_definitions() -> dict[str, dict[str, Any]]:
    """The definitions in `../shared/kafka-protocol/message`, by message name."""
    directory = _kafka_message_dir()
    if directory is None:
        return {}
    return {path.stem: definitions.parse(path.read_text(encoding="utf-8")) for path in sorted(directory.glob("*.json"))}


def _by_key(by_name: dict[str, dict[str, Any]]) -> dict[tuple[int, str], dict[str, Any]]:
    return {(data["apiKey"], data["type"]): data for data in by_name.values() if data["type"] in ("request", "response")}


# The oldest versions we serve are checked against `../shared` where it is beside the checkout,
# else against the last 3.x release's definitions (compat.message_definitions); what those lack
# against the reference Kafka's (4.4). Under CI both jars are fetched by compat.install.
OLDER = _shared_definitions() or definitions.read_jar(definitions.OLDEST_JAR)
NEWEST = definitions.read_jar(LIB / f"kafka-clients-{KAFKA_VERSION}.jar")
if not OLDER or not NEWEST:
    WHY_ABSENT = ("Kafka's message definitions are not here: run `python -m compat.message_definitions --fetch` "
                  "and `python -m compat.kafka --fetch`")
    if os.environ.get("CI") == "true":
        raise RuntimeError(WHY_ABSENT)
    pytest.skip(WHY_ABSENT, allow_module_level=True)
KAFKA = _by_key(OLDER)
NEWER = _by_key(NEWEST)
HEADERS = {name: OLDER[name] for name in ("RequestHeader", "ResponseHeader")}


def _versions(spec: str | None) -> range:
    """Kafka's version spec ("3+", "1-4", "2", "none") as a range."""
    if spec is None or spec == "none":
        return range(0)
    if spec.endswith("+"):
        return range(int(spec[:-1]), 1 << 15)
    low, _, high = spec.partition("-")
    return range(int(low), int(high or low) + 1)


def _snake(name: str) -> str:
    # Written apart from wire.schema.snake_case on purpose; acronyms fold like Kafka's
    # own Java accessors (`ISRNodes` -> `isr_nodes`, `TopicID` -> `topic_id`).
    out = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", out).lower()


_FIXED = {"int8", "int16", "uint16", "int32", "uint32", "int64", "float64"}


def _expected_default(field: dict[str, Any], version: int) -> Any:
    """Kafka's default for a scalar field, or `...` where we do not compare defaults."""
    kind, raw = field["type"], field.get("default")
    nullable = version in _versions(field.get("nullableVersions"))
    if kind in _FIXED:
        if raw is None or raw == "":
            return 0.0 if kind == "float64" else 0
        return float(raw) if kind == "float64" else int(str(raw), 0)
    if kind == "bool":
        return raw is True or raw == "true"
    if kind == "string":
        if raw == "null":
            return None if nullable else ...
        return raw or ""
    if kind == "uuid":
        return bytes(16)
    return ...


def _expected(fields: list[dict[str, Any]], version: int, flexible: bool, common: dict[str, Any]) -> dict[str, Any]:
    """The shape Kafka's definition gives a struct at `version`."""
    regular: list[tuple[str, Any, Any]] = []
    tagged: list[tuple[int, str, Any, Any]] = []
    for field in fields:
        if version not in _versions(field["versions"]):
            continue
        kind = field["type"]
        is_array = kind.startswith("[]")
        inner = kind.removeprefix("[]")
        compact = flexible and version in _versions(field.get("flexibleVersions", "0+"))
        nullable = version in _versions(field.get("nullableVersions"))
        sub = field.get("fields") or common.get(inner)
        if sub is not None:
            element: Any = _expected(sub, version, flexible, common)
            if nullable and not is_array:
                element = ("nullable", element)  # KIP-893
        elif inner in _FIXED or inner in ("bool", "uuid"):
            element = inner
        else:
            assert inner in ("string", "bytes", "records"), f"unknown Kafka type {inner}"
            element = (inner, compact, nullable and not is_array)
        shape = ("array", compact, nullable, element) if is_array else element
        default = ... if is_array or sub is not None else _expected_default(field, version)
        name = _snake(field["name"])
        if flexible and version in _versions(field.get("taggedVersions")):
            tagged.append((field["tag"], name, shape, default))
        else:
            regular.append((name, shape, default))
    return {"flexible": flexible, "fields": regular, "tagged": sorted(tagged, key=lambda t: t[0])}


def _shape(con: Any) -> Any:
    """The same shape, read off the construct objects wire.schema built."""
    if isinstance(con, Message):
        return {
            "flexible": con.flexible,
            "fields": [(name, _shape(c), default) for name, c, default in con.fields],
            "tagged": [(tag, name, _shape(c), default) for tag, name, c, default in con.tagged],
        }
    if isinstance(con, NullableStruct):
        return ("nullable", _shape(con.struct))
    if isinstance(con, Array):
        return ("array", con.compact, con.nullable, _shape(con.element))
    if isinstance(con, String):
        return ("string", con.compact, con.nullable)
    if isinstance(con, Bytes):
        assert con.wide, "bytes and records carry an int32 length in classic versions"
        return ("records" if con.zero_copy else "bytes", con.compact, con.nullable)
    if isinstance(con, (Fixed, Bool, Uuid)):
        return con.type_name
    raise AssertionError(f"unexpected construct {con!r}")


def _diff(expected: Any, actual: Any, path: str) -> Iterator[str]:
    if isinstance(expected, dict) and isinstance(actual, dict):
        if expected["flexible"] != actual["flexible"]:
            yield f"{path}: flexible {actual['flexible']}, Kafka says {expected['flexible']}"
        names = [f[0] for f in expected["fields"]], [f[0] for f in actual["fields"]]
        if names[0] != names[1]:
            yield f"{path}: fields {names[1]}, Kafka has {names[0]}"
        else:
            for (name, want, want_default), (_, got, got_default) in zip(expected["fields"], actual["fields"]):
                yield from _diff(want, got, f"{path}.{name}")
                if want_default is not ... and (want_default != got_default or type(want_default) is not type(got_default)):
                    yield f"{path}.{name}: default {got_default!r}, Kafka says {want_default!r}"
        tags = [(t[0], t[1]) for t in expected["tagged"]], [(t[0], t[1]) for t in actual["tagged"]]
        if tags[0] != tags[1]:
            yield f"{path}: tagged fields {tags[1]}, Kafka has {tags[0]}"
        else:
            for (_, name, want, want_default), (_, _, got, got_default) in zip(expected["tagged"], actual["tagged"]):
                yield from _diff(want, got, f"{path}.{name}")
                if want_default is not ... and want_default != got_default:
                    yield f"{path}.{name}: tagged default {got_default!r}, Kafka says {want_default!r}"
    elif isinstance(expected, tuple) and isinstance(actual, tuple) and expected[0] == actual[0] == "array":
        if expected[1:3] != actual[1:3]:
            yield f"{path}: array (compact, nullable) {actual[1:3]}, Kafka says {expected[1:3]}"
        yield from _diff(expected[3], actual[3], f"{path}[]")
    elif isinstance(expected, tuple) and isinstance(actual, tuple) and expected[0] == actual[0] == "nullable":
        yield from _diff(expected[1], actual[1], path)
    elif expected != actual:
        yield f"{path}: {actual!r}, Kafka says {expected!r}"


# Top-level fields Kafka renamed after 4.0 without changing their wire form: one
# definition serves both releases' versions, under the name Kafka 4.0 gave it.
_RENAMED = {("TxnOffsetCommitRequest", "generation_id_or_member_epoch"): "generation_id"}  # KIP-1319, Kafka 4.4


def _check(definition: dict[str, Any], name: str, version: int) -> None:
    common = {s["name"]: s["fields"] for s in definition.get("commonStructs", [])}
    flexible = version in _versions(definition.get("flexibleVersions"))
    expected = _expected(definition["fields"], version, flexible, common)
    expected["fields"] = [(_RENAMED.get((name, field), field), shape, default) for field, shape, default in expected["fields"]]
    problems = list(_diff(expected, _shape(message_struct(name, version)), f"{name} v{version}"))
    assert not problems, "\n".join(problems)


CASES = [
    pytest.param(key, kind, version, id=f"{message_name(key)}{kind.capitalize()}-v{version}")
    for key, (low, high) in DECLARED_VERSIONS.items()
    for kind in ("request", "response")
    for version in range(low, high + 1)
]


@pytest.mark.parametrize("key, kind, version", CASES)
def test_message_matches_kafka(key: ApiKey, kind: str, version: int) -> None:
    definition = KAFKA.get((int(key), kind))
    name = f"{message_name(key)}{kind.capitalize()}"
    if definition is None or version not in _versions(definition["validVersions"]) or definition["name"] != name:  # newer, or renamed since
        definition = NEWER.get((int(key), kind))
    assert definition is not None, f"Kafka defines no {kind} for api key {int(key)}"
    assert definition["name"] == name
    assert version in _versions(definition["validVersions"]), f"Kafka has no {name} v{version}"
    assert is_flexible(name, version) == (version in _versions(definition["flexibleVersions"]))
    _check(definition, name, version)


@pytest.mark.parametrize(
    "name, version",
    [("RequestHeader", v) for v in range(3)] + [("ResponseHeader", v) for v in range(2)],
)
def test_header_matches_kafka(name: str, version: int) -> None:
    assert version in _versions(HEADERS[name]["validVersions"])
    _check(HEADERS[name], name, version)


def test_request_header_client_id_stays_classic() -> None:
    # KIP-511: a broker must read the header of an ApiVersions request of any version,
    # so ClientId keeps its int16 length even in the flexible header v2.
    (_, client_id, _) = message_struct("RequestHeader", 2).fields[3]
    assert isinstance(client_id, String) and not client_id.compact and client_id.nullable


def test_every_declared_api_is_client_facing() -> None:
    # Inter-broker and controller APIs (listeners without "broker") are not ours to serve.
    for key in DECLARED_VERSIONS:
        listeners = (KAFKA.get((int(key), "request")) or NEWER[(int(key), "request")]).get("listeners", [])
        assert "broker" in listeners, f"{key.name} is not served by a Kafka broker ({listeners})"
