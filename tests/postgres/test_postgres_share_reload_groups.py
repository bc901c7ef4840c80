"""A broker over PostgreSQL that gains a `__consumer_offsets` partition reads the share groups it
then coordinates from the share state log within that partition's load: a share group joined as
soon as the broker serves the partition is kept, not forgotten by a read of the share state that
began before its first record was written (its members then answered GROUP_ID_NOT_FOUND forever).
The broker starts serving while its start-up loads of the partitions are still under way, so
members that join at once land in each partition's load."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import cast

import pytest

from ottla.server.coordinator import OFFSETS, SHARE_GROUP_STATE
from ottla.server.coordinator.database import Journal, Journals
from ottla.storage.postgresql.engine import PostgresStorage
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.errors import ErrorCode
from ottla.wire.records.record import Record, build_batch
from share_member import ShareMember

pytestmark = pytest.mark.external

_TOPIC = "kept-work"
_GROUPS = 16
_DEADLINE_S = 30.0
# Retriable while the broker takes its partitions over: it leads none yet, or still loads the group's.
_NOT_SERVED_YET = {ErrorCode.NOT_COORDINATOR, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS}


def _groups_of_distinct_partitions(broker: ThreadedBroker) -> list[str]:
    """Share group ids, each of a `__consumer_offsets` partition of its own."""
    assert broker.broker is not None and broker.broker.groups is not None
    groups, partitions = [], set()
    for n in range(1000):
        group_id = f"kept-{n}"
        partition = broker.broker.groups.offsets_partition(group_id)
        if partition not in partitions:
            partitions.add(partition)
            groups.append(group_id)
        if len(groups) == _GROUPS:
            return groups
    raise AssertionError("too few __consumer_offsets partitions")


def _join(member: ShareMember, group_id: str, deadline: float) -> int:
    """The member's epoch once it joined, asking again at once while the group's partition is
    not served yet: so it joins as soon as the partition's load ends."""
    while time.monotonic() < deadline:
        joined = member.heartbeat(group_id, 0, [_TOPIC])
        if joined["error_code"] == 0:
            return int(joined["member_epoch"])
        assert joined["error_code"] in _NOT_SERVED_YET, joined
    raise AssertionError(f"{group_id} not joined")


def test_share_groups_joined_while_the_broker_loads_its_partitions_are_kept(postgres_url: str) -> None:
    with running_broker(storage_url=postgres_url) as broker:
        groups = _groups_of_distinct_partitions(broker)
        members = {group_id: ShareMember(cast(ThreadedBroker, SimpleNamespace(bootstrap_servers=broker.bootstrap_servers))) for group_id in groups}
        try:
            deadline = time.monotonic() + _DEADLINE_S
            with ThreadPoolExecutor(len(groups)) as pool:
                epochs = dict(zip(groups, pool.map(lambda group_id: _join(members[group_id], group_id, deadline), groups)))
            broker.create_topic(_TOPIC, 1)
            assigned: set[str] = set()
            while len(assigned) < len(groups) and time.monotonic() < deadline:
                for group_id in [group_id for group_id in groups if group_id not in assigned]:
                    beat = members[group_id].heartbeat(group_id, epochs[group_id], [_TOPIC])
                    assert beat["error_code"] == 0, (group_id, beat)
                    epochs[group_id] = beat["member_epoch"]
                    if (beat["assignment"] or {}).get("topic_partitions"):
                        assigned.add(group_id)
                time.sleep(0.05)
            assert sorted(assigned) == sorted(groups)
        finally:
            for member in members.values():
                member.close()


async def test_a_partitions_load_reads_the_journals_loaded_with_it_before_its_replay(postgres_url: str) -> None:
    """The journal's side: the share state's journal, `loaded_with` `__consumer_offsets`, is read
    again within each load of one of its partitions, after the share state batches this broker
    queued before the load, and the partition is loading (its keys refused) until the replay,
    which finds that read. Batches of ~600 KB go one a statement, so the queue takes five."""
    storage = await PostgresStorage.connect(postgres_url, asyncio.Lock, None)
    journals = Journals(storage, lambda topic, index: None, lambda topic, index: True, 5000, 1)
    try:
        await journals.open(OFFSETS, 1)
        await journals.open(SHARE_GROUP_STATE, 1, owners_write=True, loaded_with=OFFSETS.name)
        offsets, share_state = storage.coordinator_journals[OFFSETS.name], storage.coordinator_journals[SHARE_GROUP_STATE.name]
        assert isinstance(offsets, Journal) and isinstance(share_state, Journal)
        for n in range(5):
            share_state.append(0, build_batch([Record(offset=0, timestamp=0, key=b"group", value=b"%d" % n + b"x" * 600_000, headers=())]))
        replayed: list[bytes] = []
        journals.leader_changed(OFFSETS.name, 0, lambda index: replayed.append(share_state.loaded(0).data))
        while not replayed:
            assert offsets.loading(0)
            await asyncio.sleep(0.01)
        assert not offsets.loading(0)
        assert [replayed[0].count(b"%dxxxx" % n) for n in range(5)] == [1] * 5
    finally:
        await journals.close(5)
        await storage.close_database()
