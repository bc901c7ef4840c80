"""A topic's deletion in steps (Storage.begin_deletion, TopicDeletion.run on any thread,
Storage.finish_deletion): the topic is gone at the first step; its files are renamed by the
second, which whoever needs them done runs first (a topic created under the name, `close`);
a region cut before reads its own bytes throughout."""

from __future__ import annotations

import pathlib

from conftest import batch

from ottla.storage import FileRegion, Storage


def _region(storage: Storage, topic: str) -> FileRegion:
    [region] = storage.partition(topic, 0).read(0, 1 << 20).chunks
    assert isinstance(region, FileRegion)
    return region


def test_the_topic_goes_at_once_and_its_files_follow_the_rename(tmp_path: pathlib.Path) -> None:
    storage = Storage.open(tmp_path)
    storage.create_topic("t", 1)
    storage.partition("t", 0).append(batch(3, value_size=50))
    region = _region(storage, "t")
    before = region.read()
    deletion = storage.begin_deletion("t", now_ms=0)
    assert deletion is not None and storage.topic("t") is None
    assert (tmp_path / "t-0").is_dir() and (tmp_path / "t.topic.json").exists()
    assert region.read() == before  # still under its old name
    deletion.run()
    assert not (tmp_path / "t-0").exists() and not (tmp_path / "t.topic.json").exists()
    assert region.path.parent.name.endswith("-delete") and region.read() == before
    storage.finish_deletion(deletion)
    assert storage.delete_expired_files(now_ms=10**12) == 1
    storage.close()


def test_a_topic_created_under_the_name_runs_the_deletion_first(tmp_path: pathlib.Path) -> None:
    storage = Storage.open(tmp_path)
    storage.create_topic("t", 2)
    storage.partition("t", 0).append(batch(3, value_size=50))
    region = _region(storage, "t")
    before = region.read()
    deletion = storage.begin_deletion("t", now_ms=0)
    assert deletion is not None
    reserved = storage.reserve_topic("t", 1)
    assert reserved is not None
    storage.write_topic_files([reserved])  # on the creating thread, as server/topic_creation.py does
    assert storage.open_reserved_topic(reserved) is not None
    assert storage.partition("t", 0).log_end_offset == 0
    assert region.read() == before and region.path.parent.name.endswith("-delete")
    storage.finish_deletion(deletion)
    storage.close()
    reopened = Storage.open(tmp_path)
    assert reopened.topic("t") is not None and reopened.topic("t").partitions == 1
    assert reopened.partition("t", 0).log_end_offset == 0
    reopened.close()


def test_close_does_a_deletion_left_undone_so_the_topic_does_not_come_back(tmp_path: pathlib.Path) -> None:
    storage = Storage.open(tmp_path)
    storage.create_topic("t", 2)
    storage.partition("t", 1).append(batch(1))
    assert storage.begin_deletion("t", now_ms=0) is not None
    storage.close()
    reopened = Storage.open(tmp_path)
    assert reopened.topic("t") is None
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith("t")) == []
    reopened.close()
