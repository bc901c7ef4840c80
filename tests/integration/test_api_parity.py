"""ApiVersions parity with the reference Kafka: every API key Kafka defines is served by Ottla at
Kafka's newest version, or listed with its reason in the README's "API coverage" table.

That table is the single list of what Ottla does not serve. A key or newest version Kafka's
broker advertises that Ottla neither serves nor lists fails here, and so does a row whose
versions are no longer what the brokers advertise (a stale row, once its API is served). Keys a
Kafka broker does not advertise (KRaft controller and inter-broker APIs, the ZooKeeper-era ones
Kafka 4.0 removed) come from the message definitions in Kafka's client jar, so every key Kafka
defines is accounted for.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from compat.differential import advertised
from compat.harness import OttlaBroker
from compat.kafka import KAFKA_VERSION, LIB
from unavailable import unavailable

README = Path(__file__).resolve().parents[2] / "README.md"
CONTROLLER_ONLY = "KRaft controller / inter-broker only"
REMOVED = "ZooKeeper-era inter-broker API, removed in Kafka 4.0"

# An inclusive (lowest, highest) version range; None where there is no version at all.
Versions = tuple[int, int] | None


@dataclass(frozen=True, slots=True)
class Row:
    """One row of the README's API coverage table."""

    key: int
    name: str
    kafka: Versions
    ottla: Versions
    reason: str


@dataclass(frozen=True, slots=True)
class Definition:
    """A request as Kafka's JSON defines it: its name, versions and the listeners that take it."""

    name: str
    versions: Versions
    listeners: tuple[str, ...]


def parse_versions(cell: str) -> Versions:
    """'0–5' -> (0, 5), '3' -> (3, 3); 'none' (Kafka defines no version) and '—' -> None."""
    if cell in ("none", "—"):
        return None
    low, _, high = cell.replace("–", "-").partition("-")
    return int(low), int(high or low)


def format_versions(versions: Versions) -> str:
    if versions is None:
        return "—"
    low, high = versions
    return str(low) if low == high else f"{low}–{high}"


def coverage_rows(readme: str) -> dict[int, Row]:
    """The API coverage table by key; a missing table, a malformed or a repeated row is an error."""
    match = re.search(r"<!-- api-coverage:[^>]*-->\n(.*?)\n<!-- /api-coverage -->", readme, re.S)
    assert match, "the README has lost its API coverage table markers"
    header, rule, *lines = match.group(1).splitlines()
    assert header == "| Key | API | Kafka 4.4 | Ottla | Why not served |" and rule == "|---|---|---|---|---|"
    rows: dict[int, Row] = {}
    for line in lines:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        assert len(cells) == 5 and cells[0].isdigit() and cells[4], f"malformed API coverage row: {line}"
        row = Row(int(cells[0]), cells[1], parse_versions(cells[2]), parse_versions(cells[3]), cells[4])
        assert row.key not in rows, f"API key {row.key} has two rows"
        rows[row.key] = row
    return rows


def kafka_definitions() -> dict[int, Definition]:
    """Every request the reference Kafka's client jar defines, by API key."""
    jar = LIB / f"kafka-clients-{KAFKA_VERSION}.jar"
    if not jar.exists():
        why = f"reference Kafka {KAFKA_VERSION} not fetched: run `python -m compat.kafka --fetch`"
        unavailable(why)
    definitions = {}
    with zipfile.ZipFile(jar) as archive:
        for entry in archive.namelist():
            if entry.startswith("common/message/") and entry.endswith("Request.json"):
                text = re.sub(r"(?m)^\s*//.*$", "", archive.read(entry).decode("utf-8"))
                data = json.loads(text)
                if data["type"] == "request":
                    definitions[data["apiKey"]] = Definition(
                        data["name"].removesuffix("Request"),
                        parse_versions(data["validVersions"]),
                        tuple(data.get("listeners") or ()),
                    )
    return definitions


@dataclass(frozen=True, slots=True)
class Advertised:
    """What each broker's ApiVersions v3 lists, by API key."""

    kafka: dict[int, tuple[int, int]]
    ottla: dict[int, tuple[int, int]]

    def kafka_versions(self, key: int, definitions: dict[int, Definition]) -> Versions:
        """What Kafka's broker advertises or, for a key it does not advertise, what it defines."""
        return self.kafka.get(key) or definitions[key].versions


def served_at_newest(ottla: tuple[int, int] | None, kafka: Versions) -> bool:
    return ottla is not None and kafka is not None and ottla[1] >= kafka[1]


@pytest.fixture(scope="module")
def rows() -> dict[int, Row]:
    return coverage_rows(README.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def definitions() -> dict[int, Definition]:
    return kafka_definitions()


@pytest.fixture(scope="module")
def brokers(reference_kafka: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Advertised]:
    with OttlaBroker(tmp_path_factory.mktemp("api-parity") / "ottla") as ottla:
        yield Advertised(kafka=advertised(reference_kafka), ottla=advertised(ottla.bootstrap))


def test_rows_name_kafkas_keys_with_a_reason(rows: dict[int, Row], definitions: dict[int, Definition]) -> None:
    for row in rows.values():
        assert row.key in definitions, f"API key {row.key} ({row.name}) is not one Kafka {KAFKA_VERSION} defines"
        definition = definitions[row.key]
        assert row.name == definition.name, f"API key {row.key} is {definition.name} in Kafka, not {row.name}"
        if definition.versions is None:
            assert row.reason == REMOVED, f"{row.name}: Kafka {KAFKA_VERSION} defines no version of it"
        elif "broker" not in definition.listeners:
            assert row.reason == CONTROLLER_ONLY, f"{row.name}: only {list(definition.listeners)} listeners take it"


def test_every_key_kafka_advertises_is_served_at_its_newest_or_listed(brokers: Advertised, rows: dict[int, Row],
                                                                       definitions: dict[int, Definition]) -> None:
    missing = [
        f"{key} {definitions[key].name}: Kafka advertises {format_versions(versions)}, "
        f"Ottla {format_versions(brokers.ottla.get(key))}"
        for key, versions in sorted(brokers.kafka.items())
        if not served_at_newest(brokers.ottla.get(key), versions) and key not in rows
    ]
    why = "serve these, or list them with the reason in README's API coverage table:\n"
    assert missing == [], why + "\n".join(missing)


def test_every_key_kafka_defines_but_does_not_advertise_is_listed(brokers: Advertised, rows: dict[int, Row],
                                                                  definitions: dict[int, Definition]) -> None:
    missing = [
        f"{key} {definition.name} ({format_versions(definition.versions)}, listeners {list(definition.listeners)})"
        for key, definition in sorted(definitions.items())
        if key not in brokers.kafka and key not in rows
        and not served_at_newest(brokers.ottla.get(key), definition.versions)
    ]
    assert missing == [], "list these in README's API coverage table with the reason:\n" + "\n".join(missing)


def test_no_row_lists_a_key_ottla_serves_at_kafkas_newest(brokers: Advertised, rows: dict[int, Row],
                                                        definitions: dict[int, Definition]) -> None:
    stale = [
        f"{row.key} {row.name}: Ottla serves {format_versions(brokers.ottla[row.key])}"
        for row in rows.values()
        if served_at_newest(brokers.ottla.get(row.key), brokers.kafka_versions(row.key, definitions))
    ]
    assert stale == [], "stale rows in README's API coverage table, remove them:\n" + "\n".join(stale)


def test_rows_state_the_versions_each_broker_advertises(brokers: Advertised, rows: dict[int, Row],
                                                        definitions: dict[int, Definition]) -> None:
    wrong = [
        f"{row.key} {row.name}: the row says Kafka {format_versions(row.kafka)}, Ottla {format_versions(row.ottla)}; "
        f"they advertise {format_versions(brokers.kafka_versions(row.key, definitions))}, "
        f"{format_versions(brokers.ottla.get(row.key))}"
        for row in rows.values()
        if (row.kafka, row.ottla) != (brokers.kafka_versions(row.key, definitions), brokers.ottla.get(row.key))
    ]
    assert wrong == [], "correct these rows of README's API coverage table:\n" + "\n".join(wrong)
