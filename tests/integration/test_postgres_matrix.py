"""A representative slice of the compat matrix on the PostgreSQL engine (`python -m compat
--storage postgresql` runs all of it and writes REPORT.md's section; `--brokers 3` the rows of
three brokers over one database): one private PostgreSQL for every cell, each cell's broker, or
three brokers behind one bootstrap list, on a schema of its own, and proof that the records went
there."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from unavailable import unavailable

from compat.clients import CLIENTS, NotInstalled
from compat.harness import READY_RE
from compat.matrix import PASS, POSTGRES_CLUSTER_NODES, POSTGRES_CLUSTER_SECTION, POSTGRES_SECTION, on_postgres, run_matrix
from compat.report_sections import RUNNER_SECTIONS
from compat.postgres import PostgresUnavailable, PrivatePostgres

# Produce, restart and read back; transactions (producer state, markers, LSO); idempotence; the
# admin API (configs, partitions, DeleteRecords); a JVM client: about 30 s on a quiet machine.
CELLS = {
    "kafka-python": ("produce-consume-restart", "transactions-isolation"),
    "confluent-kafka": ("admin", "idempotent-retries"),
    "java": ("produce-consume-restart",),
}
# On three brokers: records read back across a rolling restart, and a group whose coordinator
# moves in that restart resuming from its committed offsets.
CLUSTER_CELLS = {
    "kafka-python": ("produce-consume-restart",),
    "confluent-kafka": ("group-resume-second-group",),
}


async def _schemas_with_records(url: str) -> list[str]:
    """The schemas with a partition whose log end offset moved: records were appended there."""
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        schemas = [row["table_schema"] for row in await connection.fetch(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = 'partitions' ORDER BY table_schema")]
        return [schema for schema in schemas if await connection.fetchval(f"SELECT count(*) FROM {schema}.partitions WHERE next_offset > 0")]
    finally:
        await connection.close()


@pytest.mark.slow
@pytest.mark.external
def test_matrix_cells_pass_with_their_records_in_postgresql(tmp_path: Path) -> None:
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        unavailable("asyncpg is not installed: pip install -e '.[test]'")
    for name in CELLS:
        try:
            CLIENTS[name].version()
        except NotInstalled as exc:
            unavailable(f"{name} is not installed: {exc}")
    try:
        server = PrivatePostgres()
    except PostgresUnavailable as exc:
        unavailable(str(exc))
    with server:
        new_target = on_postgres(server.url, log_level="debug")
        results = [result for name, scenarios in CELLS.items()
                   for result in run_matrix([CLIENTS[name]], scenarios, new_target, tmp_path)[1]]
        on_three = on_postgres(server.url, POSTGRES_CLUSTER_NODES, log_level="debug")
        results += [result for name, scenarios in CLUSTER_CELLS.items()
                    for result in run_matrix([CLIENTS[name]], scenarios, on_three, tmp_path / "three-brokers")[1]]
        failed = [f"{r.client} / {r.scenario}: {r.reason}\n{r.detail}" for r in results if r.status != PASS]
        assert not failed, "\n\n".join(failed)
        # Every cell wrote its records to its own schema, none to the local engine alone.
        written = asyncio.run(_schemas_with_records(server.url))
    assert len(written) == len(results), written


def test_a_matrix_run_keeps_the_postgresql_section() -> None:
    """`python -m compat` rewrites REPORT.md whole; the PostgreSQL runs' sections must survive it."""
    assert POSTGRES_SECTION in RUNNER_SECTIONS and POSTGRES_CLUSTER_SECTION in RUNNER_SECTIONS


def test_the_ready_line_of_a_broker_on_postgresql_gives_its_http_and_listeners() -> None:
    line = (b"ottla ready bootstrap=127.0.0.1:9092 data=/tmp/d storage=postgresql http=http://127.0.0.1:8092 "
            b"listeners=PLAINTEXT://127.0.0.1:9092,SSL://127.0.0.1:9093")
    match = READY_RE.search(line)
    assert match is not None
    assert (match["data"], match["http"], match["listeners"]) == (
        b"/tmp/d", b"http://127.0.0.1:8092", b"PLAINTEXT://127.0.0.1:9092,SSL://127.0.0.1:9093")
