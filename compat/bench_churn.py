"""One big consumer group under constant churn, on Ottla and (on ask) on the reference Kafka.

    python -m compat.bench_churn [--members 60] [--partitions 120] [--seconds 60] [--against kafka]

N real librdkafka consumers (confluent-kafka, one thread each, client defaults: eager
range/roundrobin, session 45 s, heartbeat 3 s) share ONE group on one topic while a producer
keeps writing. The group first forms; then, for `--seconds`, every member closes (LeaveGroup)
after a random 5-20 s and a fresh consumer takes its place. Then churn stops and the members
left should converge: one generation, every partition assigned exactly once, holding for
`--hold` seconds. Measured per broker, from the clients' own rebalance callbacks:

  generations     distinct generations whose assignment reached a member during churn
  assigned        share of member-seconds spent holding a non-empty assignment
  stable          share of DescribeGroups samples (every 0.5 s) reporting Stable
  records/s       consumed during churn, beside the rate produced
  join            a fresh member's subscribe() to its first assignment (median / p90 / max)
  rejoin          a member's revoke to its next assignment (median / p90 / max)
  never assigned  members that left without ever receiving an assignment
  overlaps        partitions handed to two members in the same generation (must be 0)
  settle          seconds from the end of churn until the group converged, or "never"

Reading the figures: Kafka reads one request at a time per connection (SocketServer's
Processor mutes a channel from REQUEST_RECEIVED until RESPONSE_SENT), so the LeaveGroup
that librdkafka's close() sends behind its parked JoinGroup lands just after the join phase
completes and breaks the new generation before its SyncGroup; Ottla works on pipelined
requests at once, so the leave takes the member out of the join phase instead.

Both brokers run with Kafka's default group settings; group.initial.rebalance.delay.ms is
passed explicitly (Kafka's default 3000 unless `--initial-delay-ms`), because compat.kafka
starts the reference Kafka with 0. Runs one broker after the other, never both at once.
Loopback only; every wait is bounded.
"""

from __future__ import annotations

import argparse
import random
import statistics
import struct
import sys
import threading
import time
from collections import Counter, defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Callable

from confluent_kafka import Consumer, KafkaException, Producer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError

from compat.harness import OttlaBroker
from compat.kafka import ReferenceKafka, fetch

TOPIC = "churn"
GROUP = "churn-group"
LIFETIME_S = (5.0, 20.0)
# librdkafka's serialised ConsumerGroupMetadata: magic, then the generation id (native int32).
_CGMD_MAGIC = b"CGMDv2:"
_GENERATION = struct.Struct("=i")


def _generation(consumer: Consumer) -> int:
    metadata = consumer.consumer_group_metadata()
    assert metadata.startswith(_CGMD_MAGIC), metadata
    return int(_GENERATION.unpack_from(metadata, len(_CGMD_MAGIC))[0])


@dataclass
class Holding:
    """A live member's latest assignment as its rebalance callback reported it."""

    generation: int = -1
    partitions: frozenset[int] = frozenset()
    since: float = 0.0


@dataclass
class Ledger:
    """What the member threads saw; every field under `lock`."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    live: dict[int, Holding] = field(default_factory=dict)  # member serial -> holding
    # generation -> partition -> the members it was handed to (a member may be told twice)
    assigned_by_generation: dict[int, dict[int, set[int]]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(set)))
    joins: list[float] = field(default_factory=list)
    rejoins: list[float] = field(default_factory=list)
    never_assigned: int = 0
    members_started: int = 0
    consumed: int = 0
    alive_s: float = 0.0
    assigned_s: float = 0.0
    churn: tuple[float, float] = (0.0, 0.0)  # the window the time shares and rates count

    def credit(self, start: float, end: float, assigned: bool) -> None:
        """Add a stretch of one member's life, clipped to the churn window."""
        if not self.churn[0]:
            return
        start, end = max(start, self.churn[0]), min(end, self.churn[1] or end)
        if end > start:
            self.alive_s += end - start
            if assigned:
                self.assigned_s += end - start


class _Log:
    """librdkafka's log lines (errors only) counted by the bench instead of printed."""

    def __init__(self, sink: Callable[[str], None]) -> None:
        self.sink = sink

    def log(self, level: int, fmt: str, facility: str = "", name: str = "", message: str = "") -> None:
        self.sink(f"{facility}: {message}")


class Member:
    """One consumer's life: subscribe, consume until `leave_at` (or `stop`), close."""

    def __init__(self, serial: int, bootstrap: str, ledger: Ledger, log_line: Callable[[str], None]) -> None:
        self.serial, self.ledger = serial, ledger
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap, "group.id": GROUP, "auto.offset.reset": "earliest",
            "client.id": f"churn-{serial}", "log_level": 3, "logger": _Log(log_line),
        })
        self.holding = Holding(since=time.monotonic())
        self.revoked_at: float | None = None
        self.subscribed_at = 0.0
        self.ever_assigned = False

    def _on_assign(self, consumer: Consumer, partitions: list[Any]) -> None:
        now = time.monotonic()
        generation = _generation(consumer)
        held = frozenset(tp.partition for tp in partitions)
        with self.ledger.lock:
            self._close_stretch(now)
            self.holding = Holding(generation, held, now)
            self.ledger.live[self.serial] = self.holding
            by_partition = self.ledger.assigned_by_generation[generation]
            for partition in held:
                by_partition[partition].add(self.serial)
            if not self.ever_assigned:
                self.ledger.joins.append(now - self.subscribed_at)
            elif self.revoked_at is not None:
                self.ledger.rejoins.append(now - self.revoked_at)
        self.ever_assigned = True
        self.revoked_at = None

    def _on_revoke(self, consumer: Consumer, partitions: list[Any]) -> None:
        now = time.monotonic()
        with self.ledger.lock:
            self._close_stretch(now)
            self.holding = Holding(-1, frozenset(), now)
            self.ledger.live[self.serial] = self.holding
        self.revoked_at = now

    def _close_stretch(self, now: float) -> None:
        self.ledger.credit(self.holding.since, now, bool(self.holding.partitions))

    def run(self, leave_at: Callable[[], float], stop: threading.Event) -> None:
        with self.ledger.lock:
            self.ledger.live[self.serial] = self.holding
            self.ledger.members_started += 1
        self.subscribed_at = time.monotonic()
        self.consumer.subscribe([TOPIC], on_assign=self._on_assign, on_revoke=self._on_revoke)
        while not stop.is_set() and time.monotonic() < leave_at():
            count = sum(1 for m in self.consumer.consume(200, timeout=0.2) if m.error() is None)
            if count:
                with self.ledger.lock:
                    if self.ledger.churn[0] and not self.ledger.churn[1]:
                        self.ledger.consumed += count
        try:
            self.consumer.close()
        except (KafkaException, RuntimeError):
            pass
        with self.ledger.lock:
            self._close_stretch(time.monotonic())
            self.ledger.live.pop(self.serial, None)
            if not self.ever_assigned:
                self.ledger.never_assigned += 1


@dataclass
class Phase:
    """Shared switches of a run."""

    churning: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)


def _slot(slot: int, bootstrap: str, ledger: Ledger, phase: Phase, serials: Callable[[], int], log_line: Callable[[str], None]) -> None:
    """A member's place in the group: while churning, each occupant leaves after 5-20 s and
    a fresh consumer takes over; after churn the occupant stays until the run stops."""
    rng = random.Random(slot)
    while not phase.stop.is_set():
        lifetime = rng.uniform(*LIFETIME_S)
        born = time.monotonic()

        def leave_at() -> float:
            # Before churn starts the founders stay; their lifetime counts from its start.
            if not phase.churning.is_set():
                return float("inf")
            return max(born, ledger.churn[0]) + lifetime

        Member(serials(), bootstrap, ledger, log_line).run(leave_at, phase.stop)


def _settled(ledger: Ledger, members: int, partitions: int) -> int | None:
    """The generation every live member holds, if all `members` hold it and it covers every
    partition exactly once; else None."""
    with ledger.lock:
        holdings = list(ledger.live.values())
    if len(holdings) != members or len({h.generation for h in holdings}) != 1 or holdings[0].generation < 0:
        return None
    held = [p for h in holdings for p in h.partitions]
    return holdings[0].generation if len(held) == partitions and set(held) == set(range(partitions)) else None


def _wait_settled(ledger: Ledger, args: argparse.Namespace, deadline: float) -> float | None:
    """When the group first converged and then held that generation for `args.hold` seconds."""
    while time.monotonic() < deadline:
        generation = _settled(ledger, args.members, args.partitions)
        if generation is None:
            time.sleep(0.1)
            continue
        at = time.monotonic()
        while time.monotonic() < at + args.hold and _settled(ledger, args.members, args.partitions) == generation:
            time.sleep(0.1)
        if time.monotonic() >= at + args.hold:
            return at
    return None


def _sample_states(bootstrap: str, stop: threading.Event, states: list[str]) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        while not stop.wait(0.5):
            try:
                states.append(admin.describe_groups([GROUP])[GROUP]["group_state"])
            except (KafkaError, OSError, KeyError):
                states.append("(no answer)")
    finally:
        admin.close()


def _produce(bootstrap: str, stop: threading.Event, rate: float, sent: list[int]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "log_level": 3})
    while not stop.wait(10 / rate):
        for _ in range(10):
            try:
                producer.produce(TOPIC, value=b"x" * 100)
                sent[0] += 1
            except BufferError:
                pass
        producer.poll(0)
    producer.flush(10)


def run(bootstrap: str, args: argparse.Namespace, say: Callable[[str], None]) -> dict[str, Any]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    admin.create_topics([NewTopic(TOPIC, args.partitions, 1)])
    admin.close()
    ledger, phase = Ledger(), Phase()
    counter = iter(range(10**9))
    serial_lock = threading.Lock()
    client_errors: Counter[str] = Counter()

    def serials() -> int:
        with serial_lock:
            return next(counter)

    def log_line(line: str) -> None:
        with serial_lock:
            client_errors[line[:100]] += 1

    states: list[str] = []
    sent = [0]
    sampler_stop = threading.Event()
    helpers = [
        threading.Thread(target=_produce, args=(bootstrap, phase.stop, args.rate, sent)),
        threading.Thread(target=_sample_states, args=(bootstrap, sampler_stop, states)),
    ]
    slots = [threading.Thread(target=_slot, args=(i, bootstrap, ledger, phase, serials, log_line)) for i in range(args.members)]
    for thread in helpers + slots:
        thread.start()
    result: dict[str, Any] = {}
    try:
        began = time.monotonic()
        formed = _wait_settled(ledger, args, began + args.form_timeout)
        result["form_s"] = None if formed is None else formed - began
        say(f"group formed: {'never' if formed is None else f'{formed - began:.1f} s'}")

        churn_start = time.monotonic()
        with ledger.lock:
            ledger.churn = (churn_start, 0.0)
            ledger.joins.clear()
            ledger.rejoins.clear()
            started_before, never_before = ledger.members_started, ledger.never_assigned
            generations_before = set(ledger.assigned_by_generation)
        states_before, sent_before = len(states), sent[0]
        phase.churning.set()
        time.sleep(args.seconds)
        churn_end = time.monotonic()
        with ledger.lock:
            for holding in ledger.live.values():
                ledger.credit(holding.since, churn_end, bool(holding.partitions))
                holding.since = churn_end
            ledger.churn = (churn_start, churn_end)
            consumed = ledger.consumed
            churn_generations = set(ledger.assigned_by_generation) - generations_before
            joins, rejoins = list(ledger.joins), list(ledger.rejoins)
            joined = ledger.members_started - started_before
        churn_states = states[states_before:]
        produced_s = (sent[0] - sent_before) / (churn_end - churn_start)
        phase.churning.clear()
        say(f"churn over after {args.seconds:.0f} s; waiting up to {args.settle_timeout:.0f} s for the group to settle")

        settled_at = _wait_settled(ledger, args, churn_end + args.settle_timeout)
        say(f"settled: {'never' if settled_at is None else f'{settled_at - churn_end:.1f} s'}")
        with ledger.lock:
            never_assigned = ledger.never_assigned - never_before
            overlaps = sum(len(holders) - 1 for by_partition in ledger.assigned_by_generation.values()
                           for holders in by_partition.values() if len(holders) > 1)
            last_generation = max(ledger.assigned_by_generation, default=-1)
        result.update({
            "generations": len(churn_generations),
            "last_generation": last_generation,
            "members_joined": joined,
            "assigned_share": ledger.assigned_s / ledger.alive_s if ledger.alive_s else 0.0,
            "stable_share": churn_states.count("Stable") / len(churn_states) if churn_states else 0.0,
            "states": Counter(churn_states),
            "records_s": consumed / (churn_end - churn_start),
            "produced_s": produced_s,
            "join": joins,
            "rejoin": rejoins,
            "never_assigned": never_assigned,
            "overlaps": overlaps,
            "settle_s": None if settled_at is None else settled_at - churn_end,
            "client_errors": client_errors.most_common(5),
        })
    finally:
        phase.stop.set()
        sampler_stop.set()
        for thread in slots + helpers:
            thread.join(90)
    return result


def _spread(samples: list[float]) -> str:
    if not samples:
        return "-"
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    return f"{statistics.median(ordered):.1f} / {p90:.1f} / {ordered[-1]:.1f} s"


def table(results: dict[str, dict[str, Any]]) -> str:
    def seconds(value: float | None) -> str:
        return "never" if value is None else f"{value:.1f} s"

    lines: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("group formed (all members, one generation)", lambda r: seconds(r["form_s"])),
        ("members that joined during churn", lambda r: str(r["members_joined"])),
        ("generations completed during churn", lambda r: f"{r['generations']} (last {r['last_generation']})"),
        ("member time holding an assignment", lambda r: f"{r['assigned_share']:.0%}"),
        ("DescribeGroups samples Stable", lambda r: f"{r['stable_share']:.0%}"),
        ("records consumed / produced per s", lambda r: f"{r['records_s']:.0f} / {r['produced_s']:.0f}"),
        ("join: subscribe to assignment (med/p90/max)", lambda r: _spread(r["join"])),
        ("rejoin: revoke to assignment (med/p90/max)", lambda r: _spread(r["rejoin"])),
        ("members that left never assigned", lambda r: str(r["never_assigned"])),
        ("partitions doubly assigned in a generation", lambda r: str(r["overlaps"])),
        ("settle after churn stops", lambda r: seconds(r["settle_s"])),
    ]
    names = list(results)
    width = max(len(label) for label, _ in lines)
    out = [f"{'':{width}}  " + "  ".join(f"{name:>24}" for name in names)]
    for label, cell in lines:
        out.append(f"{label:{width}}  " + "  ".join(f"{cell(results[name]):>24}" for name in names))
    for name in names:
        states = ", ".join(f"{state} {n}" for state, n in results[name]["states"].most_common())
        out.append(f"{name} states sampled during churn: {states}")
        for line, n in results[name]["client_errors"]:
            out.append(f"{name} client error x{n}: {line}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compat.bench_churn", description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=60)
    parser.add_argument("--partitions", type=int, default=120)
    parser.add_argument("--seconds", type=float, default=60, help="length of the churn phase")
    parser.add_argument("--rate", type=float, default=500, help="records/s produced")
    parser.add_argument("--hold", type=float, default=10, help="a settled group must keep its generation this long")
    parser.add_argument("--form-timeout", type=float, default=120)
    parser.add_argument("--settle-timeout", type=float, default=120)
    parser.add_argument("--initial-delay-ms", type=int, default=3000, help="group.initial.rebalance.delay.ms on both brokers")
    parser.add_argument("--against", choices=["kafka"])
    args = parser.parse_args(argv)
    if args.partitions < args.members:
        parser.error("--partitions must be at least --members, or some members hold nothing by design")

    def say(text: str) -> None:
        print(f"  [{time.monotonic() - started:6.1f}s] {text}", file=sys.stderr, flush=True)

    started = time.monotonic()
    delay = {"group.initial.rebalance.delay.ms": str(args.initial_delay_ms)}
    results: dict[str, dict[str, Any]] = {}
    with OttlaBroker(settings=delay) as broker:
        say(f"ottla on {broker.bootstrap}")
        results["ottla"] = run(broker.bootstrap, args, say)
    if args.against:
        fetch()
        with ExitStack() as stack:
            kafka = stack.enter_context(ReferenceKafka(config=delay))
            say(f"kafka on {kafka.bootstrap_servers}")
            results["kafka"] = run(kafka.bootstrap_servers, args, say)
    print(table(results))
    print(f"{args.members} members, {args.partitions} partitions, lifetime {LIFETIME_S[0]:.0f}-{LIFETIME_S[1]:.0f} s, churn {args.seconds:.0f} s, "
          f"group.initial.rebalance.delay.ms={args.initial_delay_ms}, client defaults; {sys.version.split()[0]}")
    print("rerun: python -m compat.bench_churn " + " ".join(argv if argv is not None else sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
