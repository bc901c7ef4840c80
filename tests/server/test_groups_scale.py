"""Many groups at once cost timers, not tasks: a stable group holds no task of its own and
one timer per member, however many groups there are (issue 4: nothing polls)."""

from __future__ import annotations

import asyncio

from compat.bench_groups import Connection
from ottla.server.broker import Broker
from ottla.wire.api import ApiKey

GROUPS = 200


async def _stable_member(connection: Connection, group: str) -> None:
    joined = await connection.call(ApiKey.JOIN_GROUP, 3, {
        "group_id": group, "session_timeout_ms": 30_000, "rebalance_timeout_ms": 30_000, "member_id": "",
        "protocol_type": "consumer", "protocols": [{"name": "range", "metadata": b""}],
    })
    assert joined["error_code"] == 0
    synced = await connection.call(ApiKey.SYNC_GROUP, 3, {
        "group_id": group, "generation_id": joined["generation_id"], "member_id": joined["member_id"], "group_instance_id": None,
        "assignments": [{"member_id": joined["member_id"], "assignment": b"all"}],
    })
    assert synced["error_code"] == 0


async def test_stable_groups_hold_no_tasks_and_one_timer_per_member():
    async with Broker(port=0, data_dir=None, group_initial_rebalance_delay_ms=0) as broker:
        connections = [await Connection.open(broker.bootstrap_servers) for _ in range(GROUPS)]
        await asyncio.sleep(0)
        tasks_before = len(asyncio.all_tasks())
        await asyncio.gather(*(_stable_member(c, f"group-{i}") for i, c in enumerate(connections)))
        assert len(asyncio.all_tasks()) == tasks_before
        assert len(broker.groups.groups) == GROUPS
        for group in broker.groups.groups.values():
            assert group.state.value == "Stable"
            assert group.join_timer is None and group.sync_timer is None and not group.pending_members
            (member,) = group.members.values()
            assert member.heartbeat_timer is not None
        for connection in connections:
            connection.close()
