"""The PostgreSQL engine under compat.bench: the database of a run, and PostgreSQL's side of a profile.

`python -m compat.bench --storage postgresql` runs the broker under test as `ottla serve --storage`
on a PostgreSQL started for the run (compat.postgres: fsync on, as deployed), beside a broker on
the local engine: the same workloads on both, back to back; with `--brokers N`, N such brokers on
the one database (`--node-id 1..N`) are the cluster under test. Each broker gets a schema of its own,
created before it is launched, so cold start is the broker's alone: the database is already up.

`python -m compat.bench --storage postgresql --profile WORKLOAD` samples the broker with py-spy
(compat.bench_profile) and reports, for the same window, PostgreSQL's side: the statements by
total execution time (pg_stat_statements, loaded at the server's start), the WAL written and
its syncs with their time (pg_stat_wal: an acks=1 produce waits for its commit's WAL flush),
commits, and the CPU time of PostgreSQL's processes beside the wall time sampled.

`python -m compat.bench_postgres [--scale F]` measures what each megabyte costs: one broker on a
fresh database, then compat.bench's produce (acks=1) and consume rows, each followed by the
broker's and PostgreSQL's CPU seconds per MB, the WAL bytes per MB (from the WAL position, which
no statistics delay), and the append and read statements it took: their count and mean time (a
partition's row lock is held that long). CPU figures hold on a loaded machine; rates do not.
compat/SCALING-postgresql.md reads them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import asyncpg

from compat import bench_profile, bench_workloads as work, procfs
from compat.harness import OttlaBroker
from compat.matrix import create_schema
from compat.postgres import PrivatePostgres

_SETTINGS = {
    "shared_preload_libraries": "'pg_stat_statements'",
    "track_io_timing": "on",
    "track_wal_io_timing": "on",
}


class BenchDatabase:
    """One PrivatePostgres for a benchmark run, with pg_stat_statements and WAL I/O timing on."""

    def __init__(self) -> None:
        self.server = PrivatePostgres()
        self._batches_at_reset = 0

    def start(self) -> BenchDatabase:
        try:
            self.server.start()
            # shared_preload_libraries takes effect at the server's start only.
            self.server.psql(*(f"ALTER SYSTEM SET {key} = {value}" for key, value in _SETTINGS.items()))
            self.server.stop()
            self.server.start_again()
            self.server.psql("CREATE EXTENSION pg_stat_statements")
        except BaseException:
            self.server.close()
            raise
        return self

    @property
    def version(self) -> str:
        return f"PostgreSQL {self.server.bin_dir.parent.name}"

    def new_url(self) -> str:
        """The URL of a new, empty schema: one broker's database."""
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        asyncio.run(create_schema(self.server.url, schema))
        return f"{self.server.url}?search_path={schema}"

    def reset_statistics(self) -> None:
        self.server.psql("SELECT pg_stat_statements_reset()", "SELECT pg_stat_reset_shared('wal')", "SELECT pg_stat_reset()")
        # pg_stat_reset is psql's database's (template1), and the brokers' role may not call it.
        self._batches_at_reset = self._batches_stored()

    def _batches_stored(self) -> int:
        """Rows ever inserted into every schema's `batches` in the brokers' database."""
        query = "SELECT coalesce(sum(n_tup_ins), 0) FROM pg_stat_user_tables WHERE relname = 'batches'"
        return int(asyncio.run(_fetch(self.server.url, query)))

    def statements(self, pattern: str) -> tuple[int, float]:
        """Calls and total execution time (ms) of the statements LIKE `pattern` since the reset."""
        calls, total = self.server.psql(_STATEMENTS.format(database=self.server.database, pattern=pattern)).strip().split("|")
        return int(calls), float(total)

    def quiet(self, pattern: str, still_s: float = 1.0, timeout_s: float = 60.0) -> None:
        """Wait until no statement LIKE `pattern` has run for `still_s`: what a row counts is its
        own work, not the broker's coordinator loads after its start (each coordinator partition
        read again once the broker's lease makes it the leader) nor a fetch of the previous row's
        consumer still answering after it closed."""
        deadline = time.monotonic() + timeout_s
        calls, still_since = self.statements(pattern)[0], time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - still_since < still_s:
            time.sleep(0.1)
            now = self.statements(pattern)[0]
            if now != calls:
                calls, still_since = now, time.monotonic()

    def wal_position(self) -> int:
        """The server's WAL insert position in bytes: what it has written since any earlier one."""
        return int(self.server.psql("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn").strip())

    def cpu_seconds(self) -> float:
        """CPU time of the postmaster, of its children that exited (the backends of a broker that
        stopped: cutime and cstime) and of those still running."""
        postmaster = self.server.postmaster_pid()
        if postmaster is None:
            return 0.0
        total = sum(_stat(postmaster)[11:15]) / os.sysconf("SC_CLK_TCK")
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = _stat(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
            if fields[1] == postmaster:
                total += sum(fields[11:13]) / os.sysconf("SC_CLK_TCK")
        return total

    def report(self, seconds: float, cpu: float, top: int = 8) -> str:
        """PostgreSQL's side of a window of `seconds` wall time in which its processes used `cpu`."""
        database = self.server.database
        statements = self.server.psql(
            "SELECT calls, round(total_exec_time::numeric, 1), round(mean_exec_time::numeric, 3), rows, wal_bytes, "
            "left(regexp_replace(query, '\\s+', ' ', 'g'), 110) FROM pg_stat_statements "
            f"WHERE dbid = (SELECT oid FROM pg_database WHERE datname = '{database}') "
            f"ORDER BY total_exec_time DESC LIMIT {top}",
        )
        wal = self.server.psql(
            "SELECT wal_records, wal_bytes, wal_write, wal_sync, round(wal_write_time::numeric, 1), round(wal_sync_time::numeric, 1) "
            "FROM pg_stat_wal",
        ).strip().split("|")
        commits = self.server.psql(f"SELECT xact_commit FROM pg_stat_database WHERE datname = '{database}'").strip()
        # Group commit: the batches stored (every schema's `batches`) per append statement.
        stored = self._batches_stored() - self._batches_at_reset
        appends = self.server.psql(
            f"SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = '{database}') "
            "AND query LIKE '%INSERT INTO batches%'",
        ).strip()
        executed = 0.0
        lines = [
            f"PostgreSQL ({self.version}, fsync on) over the same {seconds:.0f} s: its processes used {cpu:.1f} s of CPU "
            f"({cpu / seconds:.0%} of one core); {commits} commits ({int(commits or 0) / seconds:,.0f}/s)",
            f"WAL: {int(wal[0]):,} records, {int(wal[1]) / 1e6:,.1f} MB, {wal[2]} writes ({wal[4]} ms), {wal[3]} syncs ({wal[5]} ms)",
            f"batches stored: {stored:,} by {int(appends):,} append statements, one commit each "
            f"({stored / max(int(appends), 1):.1f} batches a commit: a partition's appends queued meanwhile go together)",
            "", "statements by total execution time (calls, total ms, mean ms, rows, WAL bytes, statement):",
        ]
        for row in statements.strip().splitlines():
            calls, total, mean, rows, wal_bytes, query = row.split("|", 5)
            executed += float(total)
            lines.append(f"  {int(calls):>8,} {float(total):>10,.1f} {float(mean):>8.3f} {int(rows):>9,} {int(wal_bytes):>12,}  {query}")
        lines.append(f"  the top {top} statements executed for {executed / 1000:.1f} s in all ({executed / 1000 / seconds:.0%} of the wall time)")
        return "\n".join(lines)

    def close(self) -> None:
        self.server.close()

    def __enter__(self) -> BenchDatabase:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Figure(Protocol):
    """One of compat.bench's rows: a metric's figure for the broker under test."""

    @property
    def metric(self) -> str: ...

    @property
    def unit(self) -> str: ...

    @property
    def ottla(self) -> float: ...

    @property
    def lower_is_better(self) -> bool: ...


def local_view(result: dict[str, Any]) -> dict[str, Any]:
    """compat.bench's result with the local-engine broker's figures, its perf-test tools' too,
    in the place of the broker under test's: what `rows` reads for the local column."""
    view = {**result, "ottla": result["local"]}
    if "perf_tools" in result:
        view["perf_tools"] = {**result["perf_tools"], "ottla": result["perf_tools"]["local"]}
    return view


def beside_local(version: str, on_postgres: Sequence[Figure], on_local: Sequence[Figure], brokers: int = 1) -> str:
    """compat.bench's figures for the `brokers` brokers on `version` beside the local engine's
    one, same metric by metric, with the ratio and whether the database is ahead or behind."""
    local = {(row.metric, row.unit): row.ottla for row in on_local}
    header = f"{'metric':44} {'unit':6} {'PostgreSQL':>11} {'local':>10} {'PG/local':>16}"
    cluster = "one broker" if brokers == 1 else f"{brokers} brokers on one database"
    lines = [f"the PostgreSQL engine ({version}, fsync on, {cluster}) beside the local engine, in the same passes:", header, "-" * len(header)]
    for row in on_postgres:
        theirs = local.get((row.metric, row.unit))
        ratio = ""
        if theirs and row.ottla:
            share = row.ottla / theirs
            ahead = share < 1 if row.lower_is_better else share > 1
            ratio = f"{share:.2f} {'ahead' if ahead else 'behind'}"
        lines.append(f"{row.metric:44} {row.unit:6} {_number(row.ottla):>11} {_number(theirs):>10} {ratio:>16}")
    return "\n".join(lines)


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:,.0f}" if value >= 1000 else f"{value:.3g}" if value < 10 else f"{value:.1f}"


async def _fetch(url: str, query: str) -> Any:
    """The first value `query` answers in the database at `url`."""
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetchval(query)
    finally:
        await connection.close()


def _stat(pid: int) -> list[int]:
    """/proc/PID/stat's numeric fields after the command name: [1] is the parent's pid, [11:15]
    utime, stime, cutime and cstime in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return [0, *(int(field) for field in fields[1:])]


def profile(workload: str, seconds: float, *, event_loop: str | None = None, cpus: str | None = None) -> str:
    """compat.bench_profile's profile of `workload` with the broker on the PostgreSQL engine, then
    PostgreSQL's statistics over the same run."""
    with BenchDatabase() as database:
        url = database.new_url()
        database.reset_statistics()
        cpu_before, started = database.cpu_seconds(), time.perf_counter()
        broker = bench_profile.profile(workload, seconds, event_loop=event_loop, cpus=cpus, storage=url)
        cpu, wall = database.cpu_seconds() - cpu_before, time.perf_counter() - started
        # The window spans the broker's start and stop too: a second or two of the wall time.
        return f"{broker}\n\n{database.report(wall, cpu)}"


# compat.bench's throughput rows, as (label, produce or consume, record size, partitions, records).
COST_ROWS = (
    ("produce 1 KiB 1p", "produce", 1024, 1, 300_000),
    ("consume 1 KiB 1p", "consume", 1024, 1, 300_000),
    ("produce 1 KiB 8p", "produce", 1024, 8, 300_000),
    ("consume 1 KiB 8p", "consume", 1024, 8, 300_000),
    ("produce 100 B 1p", "produce", 100, 1, 2_000_000),
    ("consume 100 B 1p", "consume", 100, 1, 2_000_000),
)
# The statement of a partition's read (storage.postgresql.log), by a fetch or a coordinator's load.
_READS = "%SELECT b.data FROM batches b%"
_STATEMENTS = (
    "SELECT coalesce(sum(calls), 0), coalesce(sum(total_exec_time), 0) FROM pg_stat_statements "
    "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = '{database}') AND query LIKE '{pattern}'"
)


def costs(scale: float = 1.0) -> str:
    """Each of COST_ROWS (records times `scale`) on one broker over a fresh database: the
    broker's and PostgreSQL's CPU per MB, WAL per MB, and the statements that moved it."""
    lines = [
        f"{'row':18} {'MB':>6} {'broker ms/MB':>13} {'PG ms/MB':>9} {'WAL MB/MB':>10} "
        f"{'appends':>8} {'MB/append':>10} {'ms/append':>10} {'reads':>6} {'ms/read':>8}",
    ]
    with BenchDatabase() as database, OttlaBroker(storage=database.new_url()) as broker:
        produced: dict[tuple[int, int], int] = {}
        for label, kind, size, partitions, records in COST_ROWS:
            topic = f"cost-{size}b-{partitions}p"
            if kind == "produce":
                work.create_topic(broker.bootstrap, topic, partitions)
            database.quiet(_READS)
            database.reset_statistics()
            wal_at = database.wal_position()
            broker_cpu, database_cpu = procfs.on_cpu_seconds(broker.pid), database.cpu_seconds()
            if kind == "produce":
                run = work.produce(broker.bootstrap, topic, partitions=partitions, size=size, acks="1", count=int(records * scale), seconds=120)
                produced[size, partitions] = run.records
            else:
                run = work.consume(broker.bootstrap, topic, partitions=partitions, records=produced[size, partitions], size=size, seconds=120)
            broker_cpu = procfs.on_cpu_seconds(broker.pid) - broker_cpu
            database_cpu = database.cpu_seconds() - database_cpu
            wal_bytes = database.wal_position() - wal_at
            appends, append_ms = database.statements("%INSERT INTO batches%")
            reads, read_ms = database.statements(_READS)
            megabytes = run.bytes / 1e6
            lines.append(
                f"{label:18} {megabytes:>6,.0f} {broker_cpu / megabytes * 1000:>13.2f} {database_cpu / megabytes * 1000:>9.2f} "
                f"{wal_bytes / 1e6 / megabytes:>10.2f} {appends:>8} {_per(megabytes, appends):>10} {_per(append_ms, appends):>10} "
                f"{reads:>6} {_per(read_ms, reads):>8}"
            )
    return "\n".join(lines)


def _per(total: float, count: int) -> str:
    return f"{total / count:.2f}" if count else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compat.bench_postgres", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="records per row times this (0.1: a short run)")
    args = parser.parse_args(argv)
    print(costs(args.scale))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
