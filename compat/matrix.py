"""Run clients × scenarios against a broker and render the result as a table and as REPORT.md."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import time
import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from compat.clients import CLIENTS, Client, NotInstalled
from compat.harness import REPO_ROOT, BrokerError, OttlaBroker, PostgresBrokers, Target
from compat.scenarios import CLUSTER_SCENARIOS, SCENARIOS, ScenarioFailure, not_applicable

PASS, FAIL, NOT_INSTALLED, NOT_APPLICABLE = "pass", "FAIL", "not installed", "n/a"
# Why the cluster columns are not run against a broker without a cluster factory.
NO_CLUSTER = "the broker runs one node here (compat.kafka starts one reference Kafka broker)"

# Given a work dir for data and logs, a started broker that stops when the block ends.
TargetFactory = Callable[[Path], AbstractContextManager[Target]]


@dataclass(frozen=True)
class Result:
    client: str
    scenario: str
    status: str
    reason: str = ""
    detail: str = ""
    seconds: float = 0.0
    requests: dict[str, list[int]] | None = None  # API -> versions sent, when the broker logs them
    seen: str = ""  # what the client reported, for scenarios that expect a refusal


def run_scenario(client: Client, scenario: str, target: Target) -> Result:
    """One scenario against a running broker; never raises for a client or broker failure."""
    began = time.monotonic()
    try:
        seen = SCENARIOS[scenario](client, target)
    except ScenarioFailure as exc:
        return Result(client.name, scenario, FAIL, exc.reason, exc.detail, time.monotonic() - began)
    return Result(client.name, scenario, PASS, seconds=time.monotonic() - began, seen=seen or "")


def run_matrix(
    clients: Iterable[Client], scenarios: Sequence[str], new_target: TargetFactory, work_dir: Path,
    progress: Callable[[Result], None] = lambda _: None, new_cluster: TargetFactory | None = None,
    no_cluster: str = NO_CLUSTER,
) -> tuple[dict[str, str], list[Result]]:
    """Every scenario gets a fresh broker, so one client's failure cannot leak into the next row;
    the cluster scenarios get theirs from `new_cluster` (not run without one: `no_cluster` says why)."""
    versions: dict[str, str] = {}
    results = []
    for client in clients:
        try:
            versions[client.name] = client.version()
        except NotInstalled as exc:
            versions[client.name] = "—"
            for scenario in scenarios:
                results.append(Result(client.name, scenario, NOT_INSTALLED, str(exc)))
                progress(results[-1])
            continue
        for scenario in scenarios:
            why_not = not_applicable(client, scenario)
            if why_not is None and scenario in CLUSTER_SCENARIOS and new_cluster is None:
                why_not = no_cluster
            if why_not is not None:
                results.append(Result(client.name, scenario, NOT_APPLICABLE, why_not))
                progress(results[-1])
                continue
            run_dir = work_dir / _slug(client.name) / scenario
            result = None
            try:
                with (new_cluster if new_cluster is not None and scenario in CLUSTER_SCENARIOS else new_target)(run_dir) as target:
                    result = run_scenario(client, scenario, target)
                    if result.status == FAIL:
                        # The broker's side of the story is usually the telling half.
                        result = replace(result, detail=f"{result.detail}\n{target.log_tail()}")
                    if isinstance(target, OttlaBroker) and target.log_level == "debug":
                        result = replace(result, requests=target.requests_seen())
            except BrokerError as exc:
                # Did not start, crashed, or did not stop cleanly: keep the client's story too.
                broken = Result(client.name, scenario, FAIL, f"broker: {exc.reason}", exc.detail)
                if result is not None and result.status == FAIL:
                    broken = replace(result, reason=f"{result.reason}; {broken.reason}")
                result = broken
            results.append(result)
            progress(result)
    return versions, results


# Why the cluster columns are not run on the PostgreSQL engine here.
NO_POSTGRES_CLUSTER = "one broker on its own database here (several brokers on one database are their own rows)"
POSTGRES_SECTION = "## PostgreSQL engine, one broker"
# Why the cluster columns are not run on several brokers over one database either.
NO_POSTGRES_CLUSTER_API = ("they stop nodes and set faults through `ottla serve --nodes 3`'s HTTP API, which separate "
                           "brokers on one database do not share")


POSTGRES_CLUSTER_SECTION = "## PostgreSQL engine, three brokers"
POSTGRES_CLUSTER_NODES = 3
# The produce/consume, group and transaction rows: what a cluster of brokers over one database
# must get right between them (leaders and coordinators spread over the brokers, a rolling
# restart). The rest of the matrix asks nothing of a second broker.
POSTGRES_CLUSTER_SCENARIOS = (
    "produce-consume-restart", "group-split-leave-evict", "group-resume-second-group", "group-static-membership",
    "group-split-leave-evict-consumer-protocol", "group-resume-second-group-consumer-protocol",
    "group-static-membership-consumer-protocol", "transactions-isolation", "consume-transform-produce",
)


def on_postgres(url: str, nodes: int = 1, **broker: Any) -> TargetFactory:
    """Brokers on the PostgreSQL engine at `url` (a database this process may create schemas in):
    each cell gets a schema of its own, so no cell sees another's topics, and keeps it across the
    scenario's restarts; with `nodes` above 1 the cell is that many brokers on its schema, one
    cluster (compat.harness.PostgresBrokers); `broker` are OttlaBroker's further arguments."""
    cells = itertools.count()

    def new_target(work_dir: Path) -> OttlaBroker | PostgresBrokers:
        schema = f"cell_{next(cells)}_{uuid.uuid4().hex[:8]}"
        asyncio.run(create_schema(url, schema))
        storage = f"{url}?search_path={schema}"
        if nodes > 1:
            return PostgresBrokers(work_dir, storage, nodes, **broker)
        return OttlaBroker(work_dir, storage=storage, **broker)

    return new_target


async def create_schema(url: str, schema: str) -> None:
    """CREATE SCHEMA in the database at `url`, owned by the URL's user."""
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        await connection.execute(f"CREATE SCHEMA {schema}")
    finally:
        await connection.close()


def rerun_failures(
    results: list[Result], new_target: TargetFactory, work_dir: Path, progress: Callable[[Result], None] = lambda _: None,
) -> tuple[list[Result], list[Result]]:
    """Each failed cell once more, alone, on a fresh broker (a failure under a loaded machine is
    believed only when it fails again): the results with each cell that passed on its rerun
    marked so, and the full run's failures of those cells."""
    settled, flaky = [], []
    for result in results:
        if result.status != FAIL:
            settled.append(result)
            continue
        _, (again,) = run_matrix([CLIENTS[result.client]], [result.scenario], new_target, work_dir / "rerun", progress)
        if again.status == PASS:
            flaky.append(result)
            again = replace(again, seen="on a rerun alone; see Not passing")
        settled.append(again)
    return settled, flaky


def _slug(name: str) -> str:
    return name.strip("@").replace("/", "-")


def _cell(result: Result) -> str:
    if result.status == FAIL:
        return f"FAIL: {result.reason}"
    return f"{result.status} ({result.seen})" if result.seen else result.status


def table(versions: dict[str, str], results: list[Result], scenarios: list[str]) -> list[list[str]]:
    """Rows of [client, version, one cell per scenario], the header row first."""
    cells = {(r.client, r.scenario): r for r in results}
    rows = [["client", "version", *scenarios]]
    for client, version in versions.items():
        rows.append([client, version, *(_cell(cells[client, s]) for s in scenarios)])
    return rows


def format_text(rows: list[list[str]], width: int = 60) -> str:
    clipped = [[c if len(c) <= width else c[: width - 1] + "…" for c in row] for row in rows]
    widths = [max(len(row[i]) for row in clipped) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in clipped]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def report(
    versions: dict[str, str], results: list[Result], scenarios: list[str], broker: str, command: str,
) -> str:
    rows = table(versions, results, scenarios)
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        "# Compatibility matrix",
        "",
        f"Stock Kafka clients against {broker}, {when}, written by `{command}`.",
        "Every client runs as its own process over a real socket; a client that is not installed is",
        "reported as such, never as passed.",
        "",
        "| " + " | ".join(rows[0]) + " |",
        "|" + "---|" * len(rows[0]),
        *("| " + " | ".join(_markdown_cell(c) for c in row) + " |" for row in rows[1:]),
        "",
        "## Scenarios",
        "",
        *(f"- **{name}**: {' '.join((SCENARIOS[name].__doc__ or '').split())}" for name in scenarios),
    ]
    skipped = [r for r in results if r.status == NOT_APPLICABLE]
    if skipped:
        out += ["", "## Not run", ""]
        out += [f"- **{r.client} / {r.scenario}**: {_markdown_cell(r.reason)}" for r in skipped]
    out += ["", "## Client notes", ""]
    out += [f"- **{name}**: {CLIENTS[name].notes}" for name in versions if CLIENTS[name].notes]
    traced = [r for r in results if r.requests is not None]
    if traced:
        out += ["", "## Request versions each client sent", "",
                "From the broker's debug log; kcat's row includes the kafka-python admin client that created its topic.", "",
                "| client | scenario | requests (API versions) |", "|---|---|---|"]
        out += [f"| {r.client} | {r.scenario} | {_requests(r.requests) or 'none logged'} |" for r in traced]
    problems = [r for r in results if r.status not in (PASS, NOT_APPLICABLE)]
    if problems:
        out += ["", "## Not passing", ""]
        out += [f"- **{r.client} / {r.scenario}** ({r.status}): {_markdown_cell(r.reason)}" for r in problems]
    return "\n".join(out) + "\n"


def postgres_section(
    versions: dict[str, str], results: list[Result], scenarios: list[str], broker: str, database: str, command: str,
    flaky: Sequence[Result] = (), nodes: int = 1,
) -> str:
    """REPORT.md's section for a matrix run on the PostgreSQL engine with `nodes` brokers (1, or
    POSTGRES_CLUSTER_NODES): the table, then each cell that did not pass, or passed only on its
    rerun alone (`flaky`: the full run's failures), with its reason (the scenarios and the n/a
    reasons are the main report's)."""
    rows = table(versions, results, scenarios)
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if nodes == 1:
        out = [
            POSTGRES_SECTION, "",
            f"Written by `{command}` on {when}: the same clients and scenarios against {broker} on",
            f"`ottla serve --storage postgresql://...` over one private {database} (compat.postgres), each cell's broker",
            "with a fresh schema of its own (kept across the scenario's restarts) and a fresh data dir for what the",
            "engine keeps locally (storage/postgresql/engine.py says what is in the database).", "",
        ]
    else:
        out = [
            POSTGRES_CLUSTER_SECTION, "",
            f"Written by `{command}` on {when}: the produce/consume, group and transaction scenarios against",
            f"{nodes} brokers of {broker}, `ottla serve --storage postgresql://... --node-id N` (N = 1..{nodes}), over",
            f"one private {database} (compat.postgres): one cluster, the client given all {nodes} addresses as its",
            "bootstrap list. Each cell's brokers share a fresh schema of their own and each has its own data dir",
            "(compat.harness.PostgresBrokers); a scenario's broker restart is a rolling restart, one broker after",
            "the other, and the consumer-protocol rows' settings are applied the same way. Which broker leads a",
            "partition and coordinates a group or a transactional id follows from names random in each cell, so a",
            "failure that depends on where those land may pass on its rerun alone. The README's \"Limits of the",
            "PostgreSQL engine\" says what such a cluster does not do yet.", "",
        ]
    out += [
        "| " + " | ".join(rows[0]) + " |",
        "|" + "---|" * len(rows[0]),
        *("| " + " | ".join(_markdown_cell(c) for c in row) + " |" for row in rows[1:]),
    ]
    problems = [r for r in results if r.status not in (PASS, NOT_APPLICABLE)]
    if problems or flaky:
        out += ["", "Not passing (a failed cell runs once more alone; only a second failure is a FAIL):", ""]
        out += [f"- **{r.client} / {r.scenario}** ({r.status}): {_markdown_cell(r.reason)}" for r in problems]
        out += [f"- **{r.client} / {r.scenario}** (FAIL in the full run, pass on a rerun alone): {_markdown_cell(r.reason)}" for r in flaky]
    return "\n".join(out) + "\n"


def _requests(requests: dict[str, list[int]] | None) -> str:
    return ", ".join(f"{api} {'/'.join(map(str, versions))}" for api, versions in (requests or {}).items())


def git_revision() -> str:
    proc = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO_ROOT, capture_output=True, text=True)
    return proc.stdout.strip() or "unknown revision"
