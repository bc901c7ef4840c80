"""Rebalance time of the group coordinator, for groups of 2 and 10 members.

    python -m compat.bench_groups [--members 2 10] [--runs 30]

The broker is an `ottla serve --memory` process with group.initial.rebalance.delay.ms=0.
Each member is its own connection speaking the classic protocol (the codec of wire/):

  rebalance  a stable group of N members; one rejoins (as a consumer does when its topics
             change) and the others, told by their next Heartbeat (REBALANCE_IN_PROGRESS),
             rejoin; the leader assigns. From the first JoinGroup sent to the last SyncGroup
             answered: N JoinGroups held and released together, N SyncGroups, one log append.
  form       N members holding member ids (KIP-394) join an empty group at once; with no initial
             delay the first join may close a generation before the rest arrive, and those
             then rejoin through Heartbeat: the figure includes that, and the generations it took.

Beside them, one ApiVersions round trip on the same loopback: the floor for any request.
Real clients add their heartbeat interval (3 s by default) before they notice a rebalance;
that wait is the client's, not measured here.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import struct
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ottla.wire.api import ApiKey
from ottla.wire.protocol import decode_response, encode_request

REPO = Path(__file__).resolve().parents[1]
SIZE = struct.Struct(">i")
JOIN_VERSION, SYNC_VERSION, HEARTBEAT_VERSION = 9, 5, 4
MEMBER_ID_REQUIRED, REBALANCE_IN_PROGRESS = 79, 27
TIMEOUT_MS = 30_000


class Connection:
    """One socket, one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.correlation_id = 0

    @classmethod
    async def open(cls, bootstrap: str) -> "Connection":
        host, port = bootstrap.rsplit(":", 1)
        return cls(*await asyncio.open_connection(host, int(port)))

    async def call(self, api: ApiKey, version: int, body: dict[str, Any]) -> dict[str, Any]:
        self.correlation_id += 1
        self.writer.write(encode_request(api, version, self.correlation_id, body, client_id="bench"))
        (size,) = SIZE.unpack(await self.reader.readexactly(4))
        _, response = decode_response(api, version, await self.reader.readexactly(size))
        return response

    def close(self) -> None:
        self.writer.close()


@dataclass
class Member:
    connection: Connection
    member_id: str = ""
    generation: int = -1
    leads: bool = False


@dataclass
class Round:
    """What the members of one timed rebalance have reported so far."""

    size: int
    group: str
    sizes: dict[int, int] = field(default_factory=dict)  # generation -> members in it (from the leader)
    synced: dict[int, int] = field(default_factory=dict)  # generation -> members whose SyncGroup answered
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def complete(self, generation: int) -> bool:
        return self.sizes.get(generation) == self.size and self.synced.get(generation) == self.size


async def _join(member: Member, group: str) -> dict[str, Any]:
    return await member.connection.call(ApiKey.JOIN_GROUP, JOIN_VERSION, {
        "group_id": group, "session_timeout_ms": TIMEOUT_MS, "rebalance_timeout_ms": TIMEOUT_MS, "member_id": member.member_id,
        "group_instance_id": None, "protocol_type": "consumer", "protocols": [{"name": "range", "metadata": b"\x00\x00"}], "reason": None,
    })


async def _join_and_sync(member: Member, round_: Round) -> None:
    """Join (again) until a SyncGroup succeeds, then keep heartbeating until the round is
    complete, rejoining whenever the coordinator says a rebalance is on."""
    while not round_.done.is_set():
        joined = await _join(member, round_.group)
        if joined["error_code"] == MEMBER_ID_REQUIRED:
            member.member_id = joined["member_id"]
            continue
        assert joined["error_code"] == 0, joined
        member.member_id, member.generation = joined["member_id"], joined["generation_id"]
        member.leads = bool(joined["members"])
        assignments = [{"member_id": m["member_id"], "assignment": b"\x00"} for m in joined["members"]]
        if joined["members"]:
            round_.sizes[member.generation] = len(joined["members"])
        synced = await member.connection.call(ApiKey.SYNC_GROUP, SYNC_VERSION, {
            "group_id": round_.group, "generation_id": member.generation, "member_id": member.member_id,
            "group_instance_id": None, "protocol_type": "consumer", "protocol_name": "range", "assignments": assignments,
        })
        if synced["error_code"] == REBALANCE_IN_PROGRESS:
            continue
        assert synced["error_code"] == 0, synced
        round_.synced[member.generation] = round_.synced.get(member.generation, 0) + 1
        if round_.complete(member.generation):
            round_.done.set()
        while not round_.done.is_set():
            if await _heartbeat(member, round_.group) == REBALANCE_IN_PROGRESS:
                break
            await asyncio.sleep(0.001)


async def _heartbeat(member: Member, group: str) -> int:
    response = await member.connection.call(ApiKey.HEARTBEAT, HEARTBEAT_VERSION, {
        "group_id": group, "generation_id": member.generation, "member_id": member.member_id, "group_instance_id": None,
    })
    return int(response["error_code"])


async def _form(members: list[Member], group: str) -> tuple[float, int]:
    """Seconds until N id-holding members are synced in one generation, and generations used."""
    for member in members:
        member.member_id, member.generation = (await _join(member, group))["member_id"], -1
    round_ = Round(len(members), group)
    began = time.perf_counter()
    await asyncio.gather(*(_join_and_sync(m, round_) for m in members))
    elapsed = time.perf_counter() - began
    final = max(g for g in round_.synced if round_.complete(g))
    return elapsed, final


async def _rebalance(members: list[Member], group: str) -> float:
    """Seconds for one full rebalance of an already stable group."""
    round_ = Round(len(members), group)
    # A follower rejoining with unchanged metadata just gets the current generation back;
    # the leader rejoining always starts a rebalance (GroupMetadataManager).
    trigger = next(m for m in members if m.leads)
    others = [m for m in members if m is not trigger]

    async def told_by_heartbeat(member: Member) -> None:
        # Its heartbeat may reach the broker before the leader's JoinGroup does.
        while await _heartbeat(member, group) != REBALANCE_IN_PROGRESS:
            await asyncio.sleep(0)
        await _join_and_sync(member, round_)

    began = time.perf_counter()
    await asyncio.gather(_join_and_sync(trigger, round_), *(told_by_heartbeat(m) for m in others))
    return time.perf_counter() - began


async def _round_trip(connection: Connection, runs: int) -> float:
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        await connection.call(ApiKey.API_VERSIONS, 3, {"client_software_name": "bench", "client_software_version": "1"})
        samples.append(time.perf_counter() - began)
    return statistics.median(samples)


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    return f"median {statistics.median(ordered) * 1000:7.2f} ms   p90 {p90 * 1000:7.2f} ms"


async def _bench(bootstrap: str, sizes: list[int], runs: int) -> None:
    probe = await Connection.open(bootstrap)
    floor = await _round_trip(probe, 200)
    probe.close()
    print(f"loopback floor: one ApiVersions round trip, median {floor * 1000:.3f} ms")
    for size in sizes:
        formed, generations, rebalanced = [], [], []
        for _ in range(runs):
            members = [Member(await Connection.open(bootstrap)) for _ in range(size)]
            group = f"bench-{uuid.uuid4().hex[:8]}"
            elapsed, generation = await _form(members, group)
            formed.append(elapsed)
            generations.append(generation)
            rebalanced.append(await _rebalance(members, group))
            for member in members:
                member.connection.close()
        print(f"{size:3d} members  rebalance {_ms(rebalanced)}")
        print(f"{size:3d} members  form      {_ms(formed)}   generations: median {statistics.median(generations):.0f}, max {max(generations)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, nargs="+", default=[2, 10])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    broker = subprocess.Popen(
        [sys.executable, "-m", "ottla", "serve", "--port", "0", "--memory", "--set", "group.initial.rebalance.delay.ms=0"],
        cwd=REPO, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert broker.stderr is not None
        bootstrap = next(line.split()[2].split("=", 1)[1] for line in broker.stderr if line.startswith("ottla ready"))
        print(f"python -m compat.bench_groups --members {' '.join(map(str, args.members))} --runs {args.runs}")
        print(f"broker: ottla serve --memory, group.initial.rebalance.delay.ms=0, at {bootstrap}; {sys.version.split()[0]}")
        asyncio.run(_bench(bootstrap, args.members, args.runs))
    finally:
        broker.terminate()
        broker.wait(30)


if __name__ == "__main__":
    main()
