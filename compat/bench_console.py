"""A console left open during `python -m compat.bench --console`: what its pages ask of the broker.

The console (server/http/static/console.js, whose cadences are read from the file itself)
polls at two paces: every POLL_MS the overview's live charts (GET /api/stats) and an open
group's page (GET /api/groups/{id}: members, committed offsets, lag), and every TAIL_MS a
message browser with live tail on (GET /api/topics/{topic}/messages?newest=50). `ConsolePoller`
stands in for the browser: one thread per page, each on one kept-alive connection as a
browser's tab is, all three pages at once, more than the one page a developer looks at. The
tail follows the topic being written, as a developer watching for their messages would: each
POLL_MS it reloads the topic list (GET /api/topics) and tails the topic that grew most.

The bench runs each pass of its workloads twice on the same broker, without then with the
poller, and prints the two side by side (`table`).
"""

from __future__ import annotations

import http.client
import json
import re
import statistics
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

from confluent_kafka import ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from compat import bench_workloads as work

CONSOLE_JS = Path(__file__).resolve().parents[1] / "server" / "http" / "static" / "console.js"
GROUP = "bench-console-group"
PAGES = ("overview", "group", "tail")
_PAGE_ASKS = {
    "overview": "/api/stats every {poll:g} s",
    "group": f"/api/groups/{GROUP} every {{poll:g}} s",
    "tail": "a live tail every {tail:g} s (with /api/topics every {poll:g} s to follow the topic being written)",
}
TOPIC = "bench-console"
_TAIL_QUERY = urllib.parse.urlencode({"encoding": "base64", "limit": 50, "newest": 50})


def cadences() -> dict[str, float]:
    """The console's polling intervals in seconds, as its script declares them."""
    script = CONSOLE_JS.read_text()
    found = {name: int(value) / 1000 for name, value in re.findall(r"^const (POLL_MS|TAIL_MS) = (\d+);", script, re.M)}
    if set(found) != {"POLL_MS", "TAIL_MS"}:
        raise RuntimeError(f"{CONSOLE_JS} no longer declares POLL_MS and TAIL_MS")
    return found


def prepare(bootstrap: str) -> None:
    """A group with lag for the group page to show: 100 records in TOPIC, committed at 10."""
    work.create_topic(bootstrap, TOPIC, 1)
    producer = Producer({"bootstrap.servers": bootstrap, "log_level": 3})
    for index in range(100):
        producer.produce(TOPIC, f'{{"n": {index}}}'.encode())
    if producer.flush(30):
        raise RuntimeError(f"records to {TOPIC} not acknowledged within 30 s")
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    for future in admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(GROUP, [TopicPartition(TOPIC, 0, 10)])]).values():
        future.result(timeout=30)


class _Page(threading.Thread):
    """One open page: `ask()` every `interval` seconds on one HTTP connection until stopped."""

    def __init__(self, poller: ConsolePoller, name: str, interval: float) -> None:
        super().__init__(name=f"console-{name}", daemon=True)
        self.poller = poller
        self.page = name
        self.interval = interval
        self.connection: http.client.HTTPConnection | None = None

    def get(self, path: str) -> Any:
        started = time.perf_counter()
        try:
            if self.connection is None:
                self.connection = http.client.HTTPConnection(self.poller.host, self.poller.port, timeout=30)
            self.connection.request("GET", path)
            answer = self.connection.getresponse()
            body = answer.read()
            if answer.status != 200:
                raise RuntimeError(f"GET {path}: {answer.status} {body[:200]!r}")
            return json.loads(body)
        except Exception as exc:
            if self.connection is not None:
                self.connection.close()
                self.connection = None
            self.poller.failed(f"{self.page}: {exc}")
            return None
        finally:
            self.poller.answered(self.page, time.perf_counter() - started)

    def ask(self) -> None:
        poller = self.poller
        if self.page == "overview":
            self.get("/api/stats")
        elif self.page == "group":
            self.get(f"/api/groups/{GROUP}")
        else:
            listed = self.get("/api/topics") if time.monotonic() >= poller.next_topic_list else None
            if listed is not None:
                poller.next_topic_list = time.monotonic() + poller.poll_s
                poller.follow(listed["topics"])
            self.get(f"/api/topics/{urllib.parse.quote(poller.tailed, safe='')}/messages?{_TAIL_QUERY}")

    def run(self) -> None:
        next_at = time.monotonic()
        while not self.poller.stopped.is_set():
            self.ask()
            next_at += self.interval
            self.poller.stopped.wait(max(0.0, next_at - time.monotonic()))
        if self.connection is not None:
            self.connection.close()


class ConsolePoller:
    """Console pages (all of PAGES unless `pages` says) polling `http_url`, the broker's HTTP
    listener, while entered."""

    def __init__(self, http_url: str, pages: tuple[str, ...] = PAGES) -> None:
        address = urllib.parse.urlsplit(http_url)
        self.host, self.port = address.hostname or "127.0.0.1", address.port or 80
        found = cadences()
        self.poll_s, self.tail_s = found["POLL_MS"], found["TAIL_MS"]
        self.stopped = threading.Event()
        self.tailed = TOPIC
        self.next_topic_list = 0.0
        self._sizes: dict[str, int] = {}
        self._lock = threading.Lock()
        self._answers: dict[str, list[float]] = {}
        self._errors: list[str] = []
        self._pages = [_Page(self, page, self.tail_s if page == "tail" else self.poll_s) for page in pages]

    def follow(self, topics: list[dict[str, Any]]) -> None:
        """Tail the bench topic that grew most since the last list (the one being written)."""
        grown = {t["name"]: t["messages_estimate"] - self._sizes.get(t["name"], 0) for t in topics if t["name"].startswith("bench-")}
        self._sizes = {t["name"]: t["messages_estimate"] for t in topics}
        if grown and max(grown.values()) > 0:
            self.tailed = max(grown, key=lambda name: grown[name])

    def answered(self, page: str, seconds: float) -> None:
        with self._lock:
            self._answers.setdefault(page, []).append(seconds * 1000)

    def failed(self, why: str) -> None:
        with self._lock:
            self._errors.append(why)

    def __enter__(self) -> ConsolePoller:
        for page in self._pages:
            page.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        for page in self._pages:
            page.join(timeout=60)

    def report(self) -> dict[str, Any]:
        """Per page: requests made and how long their answers took (ms); the errors, if any."""
        with self._lock:
            pages = {
                page: {"requests": len(times), "median_ms": statistics.median(times), "max_ms": max(times)}
                for page, times in self._answers.items()
            }
            return {"poll_s": self.poll_s, "tail_s": self.tail_s, "pages": pages, "errors": list(self._errors[:20]), "error_count": len(self._errors)}


def table(quiet: list[Any], polled: list[Any], polls: list[dict[str, Any]]) -> str:
    """`quiet` and `polled` are compat.bench's rows of the same passes without and with the
    console polling (`polls`: each pass's `report()`); "kept" is the polled figure's share of
    the quiet one (for latencies the quiet over the polled), so 100% is no loss."""
    header = f"{'metric':44} {'unit':6} {'no console':>11} {'console open':>12} {'kept':>6}"
    lines = [
        "console open: " + "; ".join(_PAGE_ASKS[page].format(poll=polls[0]["poll_s"], tail=polls[0]["tail_s"]) for page in PAGES if page in polls[0]["pages"]),
        header, "-" * len(header),
    ]
    by_metric = {(row.metric, row.unit): row for row in polled}
    for row in quiet:
        other = by_metric.get((row.metric, row.unit))
        # Cold start and idle RSS are measured once, before any page is open.
        if other is None or row.metric.startswith(("cold start", "idle RSS")):
            continue
        kept = (row.ottla / other.ottla if other.ottla else 0.0) if row.lower_is_better else (other.ottla / row.ottla if row.ottla else 0.0)
        lines.append(f"{row.metric:44} {row.unit:6} {row.ottla:>11,.1f} {other.ottla:>12,.1f} {kept:>6.0%}")
    for index, poll in enumerate(polls):
        answers = ", ".join(f"{page} {figures['requests']} requests, median {figures['median_ms']:.1f} ms, max {figures['max_ms']:.1f} ms" for page, figures in poll["pages"].items())
        errors = f"{poll['error_count']} errors" + (f" (first: {poll['errors'][0]})" if poll["errors"] else "")
        lines.append(f"console answers, pass {index + 1}: {answers}; {errors}")
    return "\n".join(lines)
