"""Load and soak: many real clients against `ottla serve` while it is SIGKILLed and restarted.

    python -m compat.soak [--seconds N] [--connections N] [--kills N] [--quick]
                          [--storage local|postgresql] [--brokers N] [--keep DIR]

Idempotent acks=all producers record every acknowledged (topic, partition, offset, value); group
consumers join and leave, committing after processing; admin clients describe topics and groups.
The broker is killed with SIGKILL `--kills` times and restarted on the same port and data dir.
At the end the whole log is read back: every acknowledged record must be present exactly once at
its acknowledged offset, in order per partition per producer, and the group's committed offsets
must not be ahead of what the group consumed, and once the clients are gone the broker's memory
must be back within MEMORY_SLACK_BYTES per broker of the brokers restarted idle on the same data. Exits 1 if
anything was lost or wrong, or a client was still in a call 90 s after the clients were told to stop.
With `--storage postgresql` the brokers (`--brokers`, node ids 1..N) share one private
PostgreSQL (compat/postgres.py) and form one cluster; the clients bootstrap from all of them, the
kills go round the brokers in turn (each restarted with its node id and port), and the memory
figures are sums over the brokers.
A load the brokers cannot keep up with shows as delivery failures and then duplicates: a librdkafka
producer whose request waits past its delivery timeout bumps its epoch and sends again, as new, what
may already be stored (against Kafka too). On 2 cores the default 200 connections do that even
without kills: the clients' own process takes most of the CPU. `--keep DIR` leaves what traces it.
Loopback only; every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from contextlib import ExitStack
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError

from compat import procfs
from compat.harness import READY_RE, REPO_ROOT
from compat.postgres import PrivatePostgres

TOPICS = ("soak-a", "soak-b")
PARTITIONS = 4
GROUP_SIZE = 6  # members per group; small groups keep records flowing, though one 60-member group under this churn still settles once it stops, on Ottla and Kafka alike (compat.bench_churn)
MEMORY_SLACK_BYTES = 8 << 20  # per broker process: each has its own heap and allocator slack
# After the clients stop, time for the groups' sessions to end and for the broker's heap
# check (every 5 s, server/memory.py) to hand freed memory back before RSS is read.
SETTLE_S = 8
# A short broker lease on PostgreSQL, so a killed broker's partitions and coordinators move within
# seconds (Kafka's default session is 9 s); a restart under the same node id takes them back.
POSTGRES_LEASE = ("--set", "broker.session.timeout.ms=3000", "--set", "broker.heartbeat.interval.ms=500")
QUIET = {"log_level": 0, "logger": lambda *_: None}  # broker outages are expected; keep stderr readable


class Broker:
    """`ottla serve` as a subprocess that can be SIGKILLed and restarted on the same port and data:
    its own data dir, or with `storage_args` (PostgreSQL URL, node id) the shared database."""

    def __init__(self, work_dir: Path, storage_args: tuple[str, ...] = ()) -> None:
        work_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = work_dir / "data"
        self.log_path = work_dir / "broker.log"
        self.storage_args = storage_args
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        start_at = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            # COMPAT_EVENT_LOOP=uvloop soaks the broker on uvloop, as it does compat.harness's.
            event_loop = os.environ.get("COMPAT_EVENT_LOOP")
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ottla", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                 "--data-dir", str(self.data_dir), *self.storage_args,
                 *(["--event-loop", event_loop] if event_loop else [])],
                cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            )
        deadline = time.monotonic() + 60
        while not (match := READY_RE.search(self.log_path.read_bytes()[start_at:])):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError(f"broker did not become ready; see {self.log_path}")
            time.sleep(0.02)
        self.port = int(match["port"])

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9

    def rss_bytes(self) -> int:
        return procfs.rss_bytes(self.proc.pid)

    def established(self) -> int:
        return procfs.established(self.port)


class Ledger:
    """What every client saw, shared by the client threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.acked: dict[bytes, tuple[str, int, int]] = {}
        self.failed = 0
        self.producer_fatal = 0
        self.consumed: dict[tuple[str, str, int], int] = defaultdict(lambda: -1)  # (group, tp) -> highest
        self.consumed_count = 0
        self.commits = 0
        self.joins = 0
        self.admin_calls = 0


def run_producer(bootstrap: str, ledger: Ledger, stop: threading.Event, name: str, rate: float, debug_log: Path | None = None) -> None:
    """Produces `name-<instance>-<seq>` values; a producer hit by a fatal error is replaced.
    With `debug_log`, librdkafka's idempotence and produce debug lines go to that file."""
    logs: dict[str, object] = dict(QUIET)
    if debug_log is not None:
        logger = logging.getLogger(f"soak.{name}")
        handler = logging.FileHandler(debug_log)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        logs = {"logger": logger, "debug": "eos,msg,broker,topic,metadata"}
    instance = 0
    while not stop.is_set():
        fatal = threading.Event()

        def on_delivery(err, msg) -> None:
            with ledger.lock:
                if err is None:
                    ledger.acked[msg.value()] = (msg.topic(), msg.partition(), msg.offset())
                else:
                    ledger.failed += 1
                    if err.fatal():
                        fatal.set()

        producer = Producer({
            "bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
            "linger.ms": 5, "message.timeout.ms": 30000, **logs,
        })
        seq = 0
        while not stop.is_set() and not fatal.is_set():
            value = f"{name}-{instance}-{seq:08d}".encode()
            try:
                producer.produce(random.choice(TOPICS), value=value, key=value, on_delivery=on_delivery)
                seq += 1
            except BufferError:
                pass
            producer.poll(0)
            time.sleep(1 / rate)
        producer.flush(40)
        if fatal.is_set():
            with ledger.lock:
                ledger.producer_fatal += 1
        instance += 1


def run_consumer(bootstrap: str, ledger: Ledger, stop: threading.Event, group: str) -> None:
    """Group members that join, consume and commit for a random while, then leave; and again."""
    while not stop.is_set():
        consumer = Consumer({
            "bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "session.timeout.ms": 10000, **QUIET,
        })
        consumer.subscribe(list(TOPICS))
        with ledger.lock:
            ledger.joins += 1
        leave_at = time.monotonic() + random.uniform(8, 30)
        while not stop.is_set() and time.monotonic() < leave_at:
            batch = [m for m in consumer.consume(100, timeout=0.5) if m.error() is None]
            if not batch:
                continue
            with ledger.lock:
                for m in batch:
                    key = (group, m.topic(), m.partition())
                    ledger.consumed[key] = max(ledger.consumed[key], m.offset())
                ledger.consumed_count += len(batch)
            try:
                consumer.commit(asynchronous=False)
                with ledger.lock:
                    ledger.commits += 1
            except KafkaException:
                pass  # broker down or rebalance; the next batch commits again
        try:
            consumer.close()
        except (KafkaException, RuntimeError):
            pass


def run_admin(bootstrap: str, ledger: Ledger, stop: threading.Event, groups: list[str]) -> None:
    """kafka-python's admin: librdkafka 2.16's AdminClient can abort the process (eonce assertion)
    when the broker dies under an in-flight admin request."""
    admin = None
    while not stop.wait(random.uniform(0.5, 1.5)):
        try:
            admin = admin or KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
            admin.describe_topics(list(TOPICS))
            admin.list_groups()
            admin.describe_groups(groups)
            with ledger.lock:
                ledger.admin_calls += 3
        except (KafkaError, OSError):
            pass  # broker down; kafka-python reconnects on the next call
    if admin:
        admin.close()


Stored = list[tuple[str, int, int, bytes]]


def read_back(bootstrap: str, groups: list[str]) -> tuple[Stored, dict[tuple[str, str, int], int]]:
    """Every stored record, and each group's committed offsets."""
    parts = [TopicPartition(t, p, OFFSET_BEGINNING) for t in TOPICS for p in range(PARTITIONS)]
    committed = {}
    for group in groups:
        reader = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
        committed.update({(group, tp.topic, tp.partition): tp.offset for tp in reader.committed(parts, timeout=10)})
        reader.close()
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "soak-verify", "enable.auto.commit": False})
    ends = {(tp.topic, tp.partition): consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in parts}
    consumer.assign(parts)
    records = []
    remaining = {key for key, end in ends.items() if end > 0}
    deadline = time.monotonic() + 120
    while remaining and time.monotonic() < deadline:
        for m in consumer.consume(1000, timeout=1):
            if m.error() is None:
                key = (m.topic(), m.partition())
                records.append((*key, m.offset(), m.value()))
                if m.offset() + 1 >= ends[key]:
                    remaining.discard(key)
    consumer.close()
    if remaining:
        raise RuntimeError(f"could not read back {sorted(remaining)} within 120 s")
    return records, committed


async def dump_batches(url: str, path: Path) -> None:
    """Every stored batch's place and producer fields, by partition and offset: which retries the
    brokers took as new (another epoch, or the same sequence twice)."""
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(
            "SELECT t.name, b.partition_index, b.base_offset, b.last_offset, b.producer_id, b.producer_epoch,"
            " b.base_sequence, b.last_sequence, b.max_timestamp FROM batches b JOIN topics t USING (topic_id)"
            " ORDER BY t.name, b.partition_index, b.base_offset"
        )
    finally:
        await connection.close()
    with open(path, "w") as out:
        for row in rows:
            print(*row.values(), sep="\t", file=out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compat.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--connections", type=int, default=200, help="target; the measured count is printed")
    parser.add_argument("--kills", type=int, default=4)
    parser.add_argument("--rate", type=float, default=20, help="records/s per producer")
    parser.add_argument("--quick", action="store_true", help="about 30 s in all")
    parser.add_argument("--storage", choices=("local", "postgresql"), default="local",
                        help="postgresql: the brokers share a private PostgreSQL (compat/postgres.py)")
    parser.add_argument("--brokers", type=int, default=1, help="brokers in the cluster (more than 1 needs postgresql)")
    parser.add_argument("--keep", type=Path, help="work in DIR and leave there the brokers' logs, "
                        "--debug-producers' librdkafka debug logs, the stored batches and the duplicates (default: a temporary directory, removed)")
    parser.add_argument("--debug-producers", type=int, default=3, metavar="N",
                        help="with --keep, the first N producers write librdkafka's eos, msg, broker, topic and metadata debug lines there")
    args = parser.parse_args(argv)
    if args.brokers > 1 and args.storage != "postgresql":
        parser.error("--brokers above 1 needs --storage postgresql: local brokers do not form one cluster")
    if args.quick:
        args.seconds, args.kills = 18, 2
    # Measured: about 1.5 established connections per client (librdkafka's bootstrap one closes).
    producers = max(1, round(args.connections * 0.35))
    consumers = max(1, round(args.connections * 0.3))
    admins = max(1, args.connections // 50)

    with ExitStack() as stack:
        tmp = args.keep or stack.enter_context(tempfile.TemporaryDirectory(prefix="ottla-soak-"))
        if args.storage == "postgresql":
            url = stack.enter_context(PrivatePostgres()).url
            brokers = [Broker(Path(tmp) / f"node-{n}", ("--storage", url, "--node-id", str(n), *POSTGRES_LEASE))
                       for n in range(1, args.brokers + 1)]
        else:
            brokers = [Broker(Path(tmp))]
        # Registered after the database, so a run that fails halfway leaves no broker behind it.
        stack.callback(lambda: [broker.kill() for broker in brokers if broker.proc and broker.proc.poll() is None])
        for broker in brokers:
            broker.start()
        bootstrap = ",".join(f"127.0.0.1:{broker.port}" for broker in brokers)
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in TOPICS])
        admin.close()
        time.sleep(1)
        rss_idle = sum(broker.rss_bytes() for broker in brokers)

        ledger, stop = Ledger(), threading.Event()
        # Daemons: a client stuck in a call with no timeout of its own (librdkafka's synchronous
        # commit waits for a coordinator however long) must not keep the soak from ending.
        threads = [threading.Thread(target=run_producer, args=(bootstrap, ledger, stop, f"p{i}", args.rate,
                                                               args.keep / f"p{i}.log" if args.keep and i < args.debug_producers else None),
                                    daemon=True)
                   for i in range(producers)]
        groups = [f"soak-group-{i}" for i in range(max(1, consumers // GROUP_SIZE))]
        threads += [threading.Thread(target=run_consumer, args=(bootstrap, ledger, stop, groups[i % len(groups)]), daemon=True)
                    for i in range(consumers)]
        threads += [threading.Thread(target=run_admin, args=(bootstrap, ledger, stop, groups), daemon=True) for _ in range(admins)]
        for thread in threads:
            thread.start()

        started = time.monotonic()
        kill_at = [started + args.seconds * (i + 1) / (args.kills + 1) for i in range(args.kills)]
        peak_conns = rss_peak = restarts = 0
        while (now := time.monotonic()) < started + args.seconds:
            if kill_at and now >= kill_at[0]:
                kill_at.pop(0)
                victim = brokers[restarts % len(brokers)]
                victim.kill()
                print(f"{time.strftime('%H:%M:%S')} killed {victim.log_path.parent.name}", flush=True)
                time.sleep(1)
                victim.start()
                restarts += 1
            peak_conns = max(peak_conns, sum(broker.established() for broker in brokers))
            rss_peak = max(rss_peak, sum(broker.rss_bytes() for broker in brokers))
            time.sleep(0.5)
        stop.set()
        join_by = time.monotonic() + 90
        for thread in threads:
            thread.join(max(0.0, join_by - time.monotonic()))
        stuck = sum(thread.is_alive() for thread in threads)
        elapsed = time.monotonic() - started
        time.sleep(SETTLE_S)
        rss_final = sum(broker.rss_bytes() for broker in brokers)
        stop_code = max((broker.stop() for broker in brokers), key=abs)
        # The idle level to return to is that of a broker holding this same data, not of the first
        # incarnation on an empty directory: indexes and group state grow with what was stored.
        for broker in brokers:
            broker.start()
        time.sleep(1)
        rss_idle_same_data = sum(broker.rss_bytes() for broker in brokers)

        records, committed = read_back(bootstrap, groups)
        for broker in brokers:
            broker.stop()
        if args.keep and args.storage == "postgresql":
            asyncio.run(dump_batches(url, args.keep / "batches.tsv"))

    stored: dict[bytes, list[tuple[str, int, int]]] = defaultdict(list)
    for topic, partition, offset, value in records:
        stored[value].append((topic, partition, offset))
    lost = [v for v, where in ledger.acked.items() if where not in stored.get(v, [])]
    copies = Counter(v for *_, v in records)
    duplicates = sum(n - 1 for n in copies.values() if n > 1)
    if args.keep:
        # Each value stored more than once, where, and where it was acknowledged: read beside the brokers' logs.
        with open(args.keep / "duplicates.txt", "w") as out:
            for value, n in copies.items():
                if n > 1:
                    print(value.decode(), sorted(stored[value]), "acked", ledger.acked.get(value), file=out)
    out_of_order = 0
    last_seq: dict[tuple[str, str, int], int] = {}
    for topic, partition, _offset, value in sorted(records, key=lambda r: (r[0], r[1], r[2])):
        instance, seq = value.decode().rsplit("-", 1)
        key = (instance, topic, partition)
        if last_seq.get(key, -1) >= int(seq):
            out_of_order += 1
        last_seq[key] = int(seq)
    ahead = {key: off for key, off in committed.items() if off >= 0 and off > ledger.consumed[key] + 1}

    mib = 1 << 20
    print(f"command: python -m compat.soak {' '.join(argv if argv is not None else sys.argv[1:])}")
    print(f"brokers: {len(brokers)} on {args.storage} storage")
    print(f"clients: {producers} producers, {consumers} consumer slots in {len(groups)} groups, {admins} admin")
    print(f"connections (peak established to the brokers): {peak_conns}")
    print(f"run: {elapsed:.0f} s, restarts survived: {restarts} (SIGKILL), final SIGTERM exit {stop_code}")
    print(f"clients still in a call 90 s after the stop (left behind): {stuck}")
    print(f"records acknowledged: {len(ledger.acked)} ({len(ledger.acked) / elapsed:.0f}/s); "
          f"delivery failures: {ledger.failed}; producers replaced after fatal error: {ledger.producer_fatal}")
    print(f"records stored: {len(records)}; consumed by the groups: {ledger.consumed_count}; "
          f"group joins: {ledger.joins}; commits: {ledger.commits}; admin calls: {ledger.admin_calls}")
    print(f"records lost: {len(lost)}")
    print(f"duplicates: {duplicates}; out of order per producer and partition: {out_of_order}")
    print(f"committed offsets ahead of consumption: {len(ahead)} {ahead or ''}")
    print(f"broker RSS MiB: idle on empty data {rss_idle / mib:.1f}, peak {rss_peak / mib:.1f}, "
          f"after the load {rss_final / mib:.1f}, idle restarted on the same data {rss_idle_same_data / mib:.1f}")
    slack = MEMORY_SLACK_BYTES * len(brokers)
    memory_back = rss_final <= rss_idle_same_data + slack
    print(f"memory back to idle (within {slack / mib:.0f} MiB): {'yes' if memory_back else 'NO'}")
    return 1 if lost or duplicates or out_of_order or ahead or stuck or stop_code != 0 or not memory_back else 0


if __name__ == "__main__":
    sys.exit(main())
