"""MirrorMaker 2 (compat/mirror.py) mirroring an Ottla onto another Ottla and onto the reference Kafka.

Release 4.3.1 in dedicated mode: Maven Central does not serve `connect-mirror` 4.4.0. One
MirrorMaker JVM per test: keyed records with headers must arrive as `ottla.<topic>` at the same
offsets, and a source group's committed offsets must be translated and synced to the target, where
a consumer of the group resumes with exactly the records the source group had not read.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from compat import mirror
from compat.harness import OttlaBroker
from tests.integration.conftest import unavailable

pytestmark = pytest.mark.slow


@pytest.fixture
def built() -> None:
    if not mirror.is_built():
        unavailable("compat/java/mirror is not built: run `python -m compat.install` (needs mvn)")


@pytest.mark.usefixtures("built")
def test_mirror_maker_mirrors_records_and_group_offsets_between_two_ottlas(ottla_serve: OttlaBroker, tmp_path: Path) -> None:
    assert mirror.mirror(ottla_serve.bootstrap, tmp_path, "mm2-ottla") == []


@pytest.mark.usefixtures("built")
def test_mirror_maker_mirrors_records_and_group_offsets_from_ottla_to_the_reference_kafka(reference_kafka: str, tmp_path: Path) -> None:
    assert mirror.mirror(reference_kafka, tmp_path, "mm2-to-kafka") == []
