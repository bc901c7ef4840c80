"""Where Kafka's message definitions come from.

Apache Kafka defines every message as JSON (`clients/src/main/resources/common/message`).
kafka-python 3.x ships those files as package data, with the fields of versions Kafka 4
dropped restored; we read them from its install directory without importing kafka-python
(importing it would pull its whole client into the broker's start-up). Definitions it lacks,
or that we must correct, live beside this file in the same form and take precedence.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from pathlib import Path
from typing import Any

_COMMENT = re.compile(r"(?m)^\s*//.*$")
_OURS = Path(__file__).parent


@functools.cache
def _kafka_python_dir() -> Path | None:
    spec = importlib.util.find_spec("kafka")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "protocol" / "schemas" / "resources"
    return path if path.is_dir() else None


def source_path(name: str) -> Path:
    """The JSON file that defines message `name` (e.g. "FetchRequest")."""
    ours = _OURS / f"{name}.json"
    if ours.exists():
        return ours
    theirs = _kafka_python_dir()
    if theirs is not None and (theirs / f"{name}.json").exists():
        return theirs / f"{name}.json"
    raise LookupError(f"no definition for {name}")


def parse_definition(text: str) -> dict[str, Any]:
    """Kafka's JSON with `//` comments stripped and common structs resolved in place."""
    data: dict[str, Any] = json.loads(_COMMENT.sub("", text))
    common = {s["name"]: s["fields"] for s in data.get("commonStructs", [])}
    _resolve(data.get("fields", []), common)
    return data


@functools.cache
def load(name: str) -> dict[str, Any]:
    return parse_definition(source_path(name).read_text(encoding="utf-8"))


def _resolve(fields: list[dict[str, Any]], common: dict[str, list[dict[str, Any]]]) -> None:
    for field in fields:
        inner = field["type"].removeprefix("[]")
        if "fields" not in field and inner in common:
            field["fields"] = common[inner]
        if "fields" in field:
            _resolve(field["fields"], common)
