"""Scenarios: what each client must do against a broker, and the checks that decide pass or fail.

A scenario takes a client and a `Target` (bootstrap address plus `restart()`), drives the client's
driver and raises `ScenarioFailure` with a short reason (for the table) and a detail (driver
stderr, broker log) for diagnosis. The checks live here, not in the drivers, so every client is
judged by the same rules.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter, defaultdict
from typing import Any, Callable

from compat.clients import KAFKA_PYTHON, Client, DriverError
from compat.harness import BrokerError, Target

PARTITIONS = 3
RECORDS = 1000


class ScenarioFailure(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


def _topic(client: Client, scenario: str) -> str:
    slug = re.sub(r"[^a-zA-Z0-9._-]+", "-", client.name).strip("-")
    return f"compat-{slug}-{scenario}-{uuid.uuid4().hex[:8]}"


def _step(what: str, fn: Callable[[], Any]) -> Any:
    """Run one step; a driver or broker failure becomes a ScenarioFailure naming the step."""
    try:
        return fn()
    except (DriverError, BrokerError) as exc:
        raise ScenarioFailure(f"{what}: {exc.reason}", exc.detail) from None


def check_read(read: dict[str, Any], delivered: list[list[Any]] | None) -> list[str]:
    """Problems with one full read of the topic; empty when it is exactly what was produced.

    Per partition, offsets must run 0, 1, 2, ... with no gap (a fresh, non-transactional topic)
    and records must come in the order they were sent. When the producer reported where each
    record went, the read must agree with it.
    """
    problems = []
    if read["partitions"] != PARTITIONS:
        problems.append(f"metadata shows {read['partitions']} partitions, want {PARTITIONS}")
    records = read["records"]
    seen = Counter(k for _, _, k, _ in records)
    expected = {f"k{i}" for i in range(RECORDS)}
    missing = expected - seen.keys()
    if missing:
        problems.append(f"{len(missing)} of {RECORDS} records missing (e.g. {sorted(missing)[:3]})")
    dupes = [k for k, n in seen.items() if n > 1]
    if dupes:
        problems.append(f"{len(dupes)} records seen more than once (e.g. {dupes[:3]})")
    strangers = seen.keys() - expected
    if strangers:
        problems.append(f"{len(strangers)} unexpected keys (e.g. {sorted(strangers)[:3]})")
    wrong = [(k, v) for _, _, k, v in records if k in expected and v != "v" + k[1:]]
    if wrong:
        problems.append(f"{len(wrong)} wrong values (e.g. {wrong[:3]})")

    by_partition: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for partition, offset, k, _ in records:
        by_partition[partition].append((offset, k))
    for partition, rows in sorted(by_partition.items()):
        offsets = [o for o, _ in rows]
        if offsets != list(range(len(rows))):
            at = next(i for i, o in enumerate(offsets) if o != i)
            problems.append(f"partition {partition}: offsets not 0..{len(rows) - 1} in order "
                            f"(position {at} has offset {offsets[at]})")
        sent = [int(k[1:]) for _, k in rows if k in expected]
        if sent != sorted(sent):
            problems.append(f"partition {partition}: records out of send order")

    if delivered is not None:
        acked = {k: (p, o) for k, p, o in delivered}
        moved = [(k, (p, o), acked[k]) for p, o, k, _ in records if k in acked and acked[k] != (p, o)]
        if moved:
            k, got, want = moved[0]
            problems.append(f"{len(moved)} records not where Produce said (e.g. {k} at {got}, acked {want})")
    return problems


def _summary(problems: list[str]) -> str:
    more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
    return "; ".join(problems[:3]) + more


def produce_consume_restart(client: Client, target: Target) -> None:
    """Create a 3-partition topic (the client's admin API; kafka-python's for kcat), produce 1,000
    records keyed k{i} with value v{i}, read every partition by assignment (no group) from the
    earliest to the end offset, restart the broker and read again. Passes when each read holds
    every record exactly once with its value, offsets 0..n-1 per partition in send order, where
    the producer's acks put them, and both reads agree."""
    topic = _topic(client, "pcr")
    creator = client if client.has_admin else KAFKA_PYTHON
    _step(f"create via {creator.name}", lambda: creator.run(target.bootstrap, topic, "create", partitions=PARTITIONS))
    produced = _step("produce", lambda: client.run(target.bootstrap, topic, "produce", count=RECORDS))
    if produced["produced"] != RECORDS:
        raise ScenarioFailure(f"produce: {produced['produced']} of {RECORDS} records acknowledged")
    delivered = produced["delivered"]

    first = _step("read", lambda: client.run(target.bootstrap, topic, "consume"))
    problems = check_read(first, delivered)
    if problems:
        raise ScenarioFailure("read: " + _summary(problems))

    _step("restart", target.restart)

    second = _step("read after restart", lambda: client.run(target.bootstrap, topic, "consume"))
    problems = check_read(second, delivered)
    if problems:
        raise ScenarioFailure("read after restart: " + _summary(problems))
    before = {tuple(r) for r in first["records"]}
    changed = [r for r in second["records"] if tuple(r) not in before]
    if changed:
        raise ScenarioFailure(f"read after restart: {len(changed)} records at other offsets (e.g. {changed[0]})")


SCENARIOS: dict[str, Callable[[Client, Target], None]] = {
    "produce-consume-restart": produce_consume_restart,
}
