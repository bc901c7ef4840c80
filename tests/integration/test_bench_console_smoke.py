"""`python -m compat.bench --console`'s stand-in for a browser asks what the console's pages ask,
at their cadences, and every answer is a 200: were an endpoint renamed or a cadence constant
dropped from console.js, the benchmark would measure nothing. No timing is asserted."""

from __future__ import annotations

import time

from compat import bench_console, bench_workloads as work
from compat.harness import OttlaBroker


def _settled(poller: bench_console.ConsolePoller) -> bool:
    pages = poller.report()["pages"]
    return poller.tailed == "bench-written" and len(pages) == 3 and all(page["requests"] >= 2 for page in pages.values())


def test_console_poller_asks_every_page_and_follows_the_written_topic() -> None:
    assert bench_console.cadences() == {"POLL_MS": 2.0, "TAIL_MS": 1.0}
    with OttlaBroker(serve_args=["--http-port", "0"]) as broker:
        assert broker.http is not None
        bench_console.prepare(broker.bootstrap)
        work.create_topic(broker.bootstrap, "bench-written", 2)
        with bench_console.ConsolePoller(broker.http) as poller:
            work.produce(broker.bootstrap, "bench-written", partitions=2, size=100, acks="1", count=2000, seconds=10)
            # The tail moves to the written topic at the first topic list after the produce
            # began, and each page asks again every few seconds; on a loaded machine both may
            # come late, so wait for them rather than for a fixed time.
            deadline = time.monotonic() + 30
            while not _settled(poller) and time.monotonic() < deadline:
                time.sleep(0.1)
        report = poller.report()
    assert report["error_count"] == 0, report["errors"]
    assert set(report["pages"]) == {"overview", "group", "tail"}
    assert all(page["requests"] >= 2 for page in report["pages"].values()), report["pages"]
    assert poller.tailed == "bench-written"
