"""What fetch sessions (KIP-227) save: a consumer of many partitions, with and without them.

    python -m compat.bench_fetch_sessions [--partitions 1000] [--fetches 300]

Starts `ottla serve` (compat.harness), creates a topic of `--partitions` partitions with a few
records in 1% of them, and then, over one raw connection, sends `--fetches` Fetch v18 requests
the way a caught-up consumer does, first without a session (id 0, epoch -1: every partition in
every request and every answer), then with one (a full request, then incremental ones naming
only the partitions whose position moved, answered with only what changed). Either way the
consumer is caught up: it asks each partition from the end of what it has read. New records land in one partition before every
tenth fetch, so answers are not all empty. Prints, per fetch, the request and response sizes,
and the broker's CPU time (compat.procfs, from /proc) and the wall time per fetch.
"""

from __future__ import annotations

import argparse
import socket
import time
from typing import Any

from compat.harness import OttlaBroker
from compat.procfs import cpu_seconds
from compat.sockets import read_frame
from ottla.wire.api import ApiKey
from ottla.wire.protocol import decode_response, encode_request
from ottla.wire.records import Record, build_batch

VERSION = 18


class _Client:
    def __init__(self, bootstrap: str) -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        self.correlation_id = 0

    def call(self, api: int, version: int, body: dict[str, Any]) -> tuple[int, int, dict[str, Any]]:
        """(request bytes, response bytes, decoded response)."""
        self.correlation_id += 1
        request = encode_request(api, version, self.correlation_id, body, client_id="bench-fetch-sessions")
        self.sock.sendall(request)
        frame = read_frame(self.sock)
        assert frame is not None, "the broker closed the connection"
        return len(request), len(frame) + 4, decode_response(api, version, frame)[1]


def _fetch_body(topic_id: bytes, offsets: dict[int, int], session_id: int, epoch: int) -> dict[str, Any]:
    return {"replica_id": -1, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 1 << 20, "isolation_level": 0,
            "session_id": session_id, "session_epoch": epoch, "rack_id": "", "forgotten_topics_data": [],
            "topics": [{"topic_id": topic_id, "partitions": [
                {"partition": p, "current_leader_epoch": -1, "fetch_offset": offset, "last_fetched_epoch": -1,
                 "log_start_offset": -1, "partition_max_bytes": 1 << 20} for p, offset in offsets.items()]}] if offsets else []}


def _produce(client: _Client, topic: str, partition: int, stamp: int) -> None:
    client.call(ApiKey.PRODUCE, 9, {"acks": 1, "timeout_ms": 5000, "transactional_id": None, "topic_data": [
        {"name": topic, "partition_data": [{"index": partition, "records": build_batch([Record(0, stamp, b"k", b"v" * 100, ())])}]}]})


def _advance(answer: dict[str, Any], offsets: dict[int, int]) -> dict[int, int]:
    """Move each partition that returned records to its high watermark; those that moved."""
    moved = {p["partition_index"]: p["high_watermark"] for t in answer["responses"] for p in t["partitions"]
             if p["records"] and p["high_watermark"] != offsets[p["partition_index"]]}
    offsets.update(moved)
    return moved


def run(broker: OttlaBroker, partitions: int, fetches: int, sessions: bool, tag: str) -> dict[str, float]:
    client = _Client(broker.bootstrap)
    topic = f"bench-sessions-{tag}"
    client.call(ApiKey.CREATE_TOPICS, 5, {"timeout_ms": 5000, "validate_only": False, "topics": [
        {"name": topic, "num_partitions": partitions, "replication_factor": 1, "assignments": [], "configs": []}]})
    topic_id = client.call(ApiKey.METADATA, 12, {"topics": [{"name": topic, "topic_id": bytes(16)}]})[2]["topics"][0]["topic_id"]
    for partition in range(0, partitions, 100):
        _produce(client, topic, partition, 1)
    # A caught-up consumer: it asks each partition from its end, and a session is told only the
    # partitions whose position moved.
    offsets = dict.fromkeys(range(partitions), 0)
    moved: dict[int, int] = {}
    session_id, epoch = 0, -1
    if sessions:
        _, _, opened = client.call(ApiKey.FETCH, VERSION, _fetch_body(topic_id, offsets, 0, 0))
        session_id, epoch = opened["session_id"], 1
        assert session_id, "the broker opened no session"
        moved = _advance(opened, offsets)
    request_bytes = response_bytes = 0
    cpu_before, began = cpu_seconds(broker.pid), time.perf_counter()
    for index in range(fetches):
        if index % 10 == 0:
            _produce(client, topic, index % partitions, index)
        body = _fetch_body(topic_id, moved if sessions else offsets, session_id, epoch)
        sent, received, answer = client.call(ApiKey.FETCH, VERSION, body)
        assert answer["error_code"] == 0, answer["error_code"]
        moved = _advance(answer, offsets)
        request_bytes += sent
        response_bytes += received
        if sessions:
            epoch += 1
    wall, cpu = time.perf_counter() - began, cpu_seconds(broker.pid) - cpu_before
    client.sock.close()
    return {"request_bytes": request_bytes / fetches, "response_bytes": response_bytes / fetches,
            "broker_cpu_us": cpu / fetches * 1e6, "wall_us": wall / fetches * 1e6}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compat.bench_fetch_sessions", description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", type=int, default=1000)
    parser.add_argument("--fetches", type=int, default=300)
    args = parser.parse_args(argv)
    with OttlaBroker() as broker:
        results = {mode: run(broker, args.partitions, args.fetches, mode == "session", mode)
                   for mode in ("sessionless", "session")}
    print(f"{args.partitions} partitions, {args.fetches} fetches each (Fetch v{VERSION}), per fetch:")
    print(f"{'':<12} {'request B':>10} {'response B':>11} {'broker CPU µs':>14} {'wall µs':>9}")
    for mode, r in results.items():
        print(f"{mode:<12} {r['request_bytes']:>10,.0f} {r['response_bytes']:>11,.0f} {r['broker_cpu_us']:>14,.0f} {r['wall_us']:>9,.0f}")
    plain, kept = results["sessionless"], results["session"]
    print(f"with a session: requests {kept['request_bytes'] / plain['request_bytes']:.1%}, responses "
          f"{kept['response_bytes'] / plain['response_bytes']:.1%}, broker CPU {kept['broker_cpu_us'] / plain['broker_cpu_us']:.1%} "
          "of the sessionless figures")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
