"""Rebalance time of the group coordinator, for groups of 2, 10 and 60 members, in the classic
or the KIP-848 consumer protocol.

    python -m compat.bench_groups [--protocol classic consumer] [--members 2 10 60] [--runs 30]
                                  [--broker ottla|kafka | --bootstrap HOST:PORT]

The broker is an `ottla serve --memory` process with group.initial.rebalance.delay.ms=0, the
reference Kafka 4.4 with `--broker kafka` (compat.kafka sets the same delay), or the broker at
--bootstrap (the initial delay is then its own). Both protocols by default, one after the other
on the same broker.
Each member is its own connection speaking the chosen protocol (the codec of wire/).

Classic (JoinGroup/SyncGroup/Heartbeat):

  rebalance  a stable group of N members; one rejoins (as a consumer does when its topics
             change) and the others, told by their next Heartbeat (REBALANCE_IN_PROGRESS),
             rejoin; the leader assigns. From the first JoinGroup sent to the last SyncGroup
             answered: N JoinGroups held and released together, N SyncGroups, one log append.
  form       N members holding member ids (KIP-394) join an empty group at once; with no initial
             delay the first join may close a generation before the rest arrive, and those
             then rejoin through Heartbeat: the figure includes that, and the generations it took.

Consumer (ConsumerGroupHeartbeat; the broker assigns with its default assignor), over a topic
of 2N partitions; a member reports as owned what it was last assigned, so it revokes at once:

  rebalance  a stable group of N members; one more joins, and every member heartbeats until all
             are at the new assignment epoch owning their targets, every partition owned once.
  form       N members join an empty group at once and heartbeat until that same condition.

Both include group.consumer.assignment.interval.ms (KIP-1263, 1 s by default on both brokers):
a change is assigned at most that long after the group's last target assignment.

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


CONSUMER_HEARTBEAT_VERSION = 0


@dataclass
class ConsumerMember:
    connection: Connection
    member_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    epoch: int = 0
    owned: dict[bytes, list[int]] = field(default_factory=dict)


async def _consumer_heartbeat(member: ConsumerMember, group: str, topic: str) -> None:
    """One ConsumerGroupHeartbeat: a full one to join (epoch 0), else the owned partitions only."""
    joining = member.epoch == 0
    response = await member.connection.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, CONSUMER_HEARTBEAT_VERSION, {
        "group_id": group, "member_id": member.member_id, "member_epoch": member.epoch, "instance_id": None, "rack_id": None,
        "rebalance_timeout_ms": TIMEOUT_MS if joining else -1, "subscribed_topic_names": [topic] if joining else None,
        "server_assignor": None, "topic_partitions": [{"topic_id": t, "partitions": p} for t, p in member.owned.items()],
    })
    assert response["error_code"] == 0, response
    member.epoch = response["member_epoch"]
    if response["assignment"] is not None:
        member.owned = {t["topic_id"]: sorted(t["partitions"]) for t in response["assignment"]["topic_partitions"] if t["partitions"]}


def _settled(members: list[ConsumerMember], partitions: int) -> bool:
    """Every member at one epoch owning some of the 2N partitions, each owned exactly once.
    "Some" matters: a member joining within group.consumer.assignment.interval.ms of the last
    target is at that target's epoch with nothing until the next one, while the others still
    own every partition once."""
    owned = [(t, p) for m in members for t, ps in m.owned.items() for p in ps]
    return (len({m.epoch for m in members}) == 1 and all(m.owned for m in members)
            and len(owned) == len(set(owned)) == partitions)


async def _consumer_round(members: list[ConsumerMember], group: str, topic: str, partitions: int) -> float:
    """Seconds until the members settle, each heartbeating in turn as fast as answers come."""
    began = time.perf_counter()
    while True:
        await asyncio.gather(*(_consumer_heartbeat(m, group, topic) for m in members))
        if _settled(members, partitions):
            return time.perf_counter() - began
        await asyncio.sleep(0.001)


async def _bench_consumer(bootstrap: str, size: int, runs: int) -> tuple[list[float], list[float]]:
    formed, rebalanced = [], []
    admin = await Connection.open(bootstrap)
    for _ in range(runs):
        topic = group = f"bench-{uuid.uuid4().hex[:8]}"
        created = await admin.call(ApiKey.CREATE_TOPICS, 5, {"topics": [{"name": topic, "num_partitions": 2 * size, "replication_factor": 1,
                                                                         "assignments": [], "configs": []}], "timeout_ms": TIMEOUT_MS, "validate_only": False})
        assert created["topics"][0]["error_code"] == 0, created
        await _await_leaders(admin, topic, 2 * size)
        await _await_coordinator(admin, group)
        members = [ConsumerMember(await Connection.open(bootstrap)) for _ in range(size)]
        formed.append(await _consumer_round(members, group, topic, 2 * size))
        members.append(ConsumerMember(await Connection.open(bootstrap)))
        rebalanced.append(await _consumer_round(members, group, topic, 2 * size))
        for member in members:
            member.connection.close()
    admin.close()
    return formed, rebalanced


async def _await_coordinator(connection: Connection, group: str) -> None:
    """Untimed: until the group's coordinator answers for it. Kafka creates __consumer_offsets
    on the first FindCoordinator and loads its partitions after (NOT_COORDINATOR and
    COORDINATOR_LOAD_IN_PROGRESS meanwhile); Ottla answers at once."""
    deadline = time.monotonic() + 60
    while True:
        found = await connection.call(ApiKey.FIND_COORDINATOR, 4, {"key_type": 0, "coordinator_keys": [group]})
        if not found["coordinators"][0]["error_code"]:
            fetched = await connection.call(ApiKey.OFFSET_FETCH, 8, {"groups": [{"group_id": group, "topics": []}], "require_stable": False})
            if not fetched["groups"][0]["error_code"]:
                return
        assert time.monotonic() < deadline, f"no coordinator for {group} after 60 s"
        await asyncio.sleep(0.1)


async def _await_leaders(connection: Connection, topic: str, partitions: int) -> None:
    """Untimed: until every partition of a new topic has a leader (Kafka elects them a moment
    after CreateTopics answers; a member joining before is assigned nothing)."""
    deadline = time.monotonic() + 60
    while True:
        described = (await connection.call(ApiKey.METADATA, 12, {"topics": [{"name": topic, "topic_id": bytes(16)}],
                                                                  "allow_auto_topic_creation": False,
                                                                  "include_topic_authorized_operations": False}))["topics"][0]
        if not described["error_code"] and len(described["partitions"]) == partitions and all(p["leader_id"] >= 0 for p in described["partitions"]):
            return
        assert time.monotonic() < deadline, f"{topic} has no leaders after 60 s"
        await asyncio.sleep(0.1)


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


async def _bench(bootstrap: str, sizes: list[int], runs: int, protocol: str) -> None:
    probe = await Connection.open(bootstrap)
    floor = await _round_trip(probe, 200)
    probe.close()
    print(f"loopback floor: one ApiVersions round trip, median {floor * 1000:.3f} ms")
    for size in sizes:
        if protocol == "consumer":
            formed_consumer, rebalanced_consumer = await _bench_consumer(bootstrap, size, runs)
            print(f"{size:3d} members  rebalance {_ms(rebalanced_consumer)}   (one member joins a stable group)")
            print(f"{size:3d} members  form      {_ms(formed_consumer)}")
            continue
        formed, generations, rebalanced = [], [], []
        for _ in range(runs):
            members = [Member(await Connection.open(bootstrap)) for _ in range(size)]
            group = f"bench-{uuid.uuid4().hex[:8]}"
            await _await_coordinator(members[0].connection, group)
            elapsed, generation = await _form(members, group)
            formed.append(elapsed)
            generations.append(generation)
            rebalanced.append(await _rebalance(members, group))
            for member in members:
                member.connection.close()
        print(f"{size:3d} members  rebalance {_ms(rebalanced)}")
        print(f"{size:3d} members  form      {_ms(formed)}   generations: median {statistics.median(generations):.0f}, max {max(generations)}")


def _bench_each(bootstrap: str, args: argparse.Namespace) -> None:
    for protocol in args.protocol:
        print(f"protocol {protocol}")
        asyncio.run(_bench(bootstrap, args.members, args.runs, protocol))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, nargs="+", default=[2, 10, 60])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--protocol", choices=("classic", "consumer"), nargs="+", default=["classic", "consumer"])
    parser.add_argument("--broker", choices=("ottla", "kafka"), default="ottla")
    parser.add_argument("--bootstrap", help="an already running broker instead of a new one")
    args = parser.parse_args()
    print(f"python -m compat.bench_groups --protocol {' '.join(args.protocol)} --members {' '.join(map(str, args.members))} --runs {args.runs}")
    if args.bootstrap:
        print(f"broker: {args.bootstrap}; {sys.version.split()[0]}")
        _bench_each(args.bootstrap, args)
        return
    if args.broker == "kafka":
        from compat.kafka import ReferenceKafka

        with ReferenceKafka() as reference:
            print(f"broker: the reference Kafka 4.4 at {reference.bootstrap_servers}; {sys.version.split()[0]}")
            _bench_each(reference.bootstrap_servers, args)
        return
    broker = subprocess.Popen(
        [sys.executable, "-m", "ottla", "serve", "--port", "0", "--memory", "--set", "group.initial.rebalance.delay.ms=0"],
        cwd=REPO, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert broker.stderr is not None
        bootstrap = next(line.split()[2].split("=", 1)[1] for line in broker.stderr if line.startswith("ottla ready"))
        print(f"broker: ottla serve --memory, group.initial.rebalance.delay.ms=0, at {bootstrap}; {sys.version.split()[0]}")
        _bench_each(bootstrap, args)
    finally:
        broker.terminate()
        broker.wait(30)


if __name__ == "__main__":
    main()
