"""compat.bench starts each timed run from the same disk state (settle_disk): a broker set as the
bench sets it (DELETE_AT_ONCE) removes a deleted topic's files without the 60 s default wait,
so the wait for them before the next step ends; a directory that stays makes the wait fail
rather than hang the run."""

from __future__ import annotations

from pathlib import Path

import pytest

from compat import bench_workloads as work
from compat.bench import DELETE_AT_ONCE, settle_disk
from compat.harness import OttlaBroker


def test_a_deleted_topics_files_are_gone_once_settled() -> None:
    with OttlaBroker(settings=DELETE_AT_ONCE) as broker:
        work.create_topic(broker.bootstrap, "settle-me", 2)
        work.produce(broker.bootstrap, "settle-me", partitions=2, size=1024, acks="1", count=1000, seconds=30)
        assert any(broker.data_dir.glob("settle-me-*"))
        work.delete_topics(broker.bootstrap, ["settle-me"])
        settle_disk([broker.data_dir], timeout=30)
        assert not any(broker.data_dir.glob("settle-me-*"))


def test_a_deleted_directory_that_stays_fails_the_wait(tmp_path: Path) -> None:
    (tmp_path / "topic-0.0123456789abcdef-delete").mkdir()
    with pytest.raises(RuntimeError, match="still in"):
        settle_disk([tmp_path], timeout=0.2)
