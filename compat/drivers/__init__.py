"""Client drivers: one small program per stock client, run as a subprocess.

The JSON contract (the Node drivers in compat/node/ follow the same one):

    <driver> --bootstrap HOST:PORT --topic T --action create|produce|consume|member
             [--partitions N] [--count N] [--timeout SECONDS]
             [--group G] [--instance-id I] [--session-timeout-ms MS] [--group-protocol P]
             [--security JSON]

prints one JSON object on stdout and exits 0, or prints {"error": "..."} and exits 1:

    create   {"created": true}                 topic with N partitions, via the client's admin API
    produce  {"produced": N, "delivered": [[key, partition, offset], ...] | null}
             records key k{i}, value v{i} for i in 0..N-1, sent in order; null when the
             client does not report where each record went (kcat)
    consume  {"partitions": P, "records": [[partition, offset, key, value], ...]}
             P from the client's own metadata; every partition read by assignment (no group)
             from its earliest offset up to the end offset listed when the read began
    member   a consumer-group member of --group (static with --instance-id) subscribed to T, with
             session.timeout.ms --session-timeout-ms and heartbeats every second, reading from the
             earliest offset and committing after each batch. With --group-protocol consumer
             (KIP-848; confluent-kafka, java and franz-go) it joins with group.protocol=consumer instead,
             its session timeout and heartbeat interval then the broker's group configs.
             It streams JSON lines on stdout:
               {"event": "assigned", "partitions": [P, ...]}   its whole assignment, after each rebalance
               {"event": "records", "records": [[partition, offset, key, value], ...]}   read and committed
             until a "close" line on stdin (or its end); then it closes the consumer, leaving the
             group, and prints {"closed": true}. The scenarios drive it (compat/group_member.py).
    admin    through the client's admin API: create T with 1 partition and ADMIN_CONFIGS, describe
             them, set retention.ms to ADMIN_ALTERED_RETENTION (incrementally where the client can),
             describe again, grow T to ADMIN_PARTITIONS, write ADMIN_RECORDS records to partition 0
             and delete those below ADMIN_DELETE_BEFORE, describe the cluster, commit offset
             ADMIN_COMMITTED on partition 0 for group "T-admin", then list, describe and delete it
             (the describes after the alter and the growth repeat until they show it, for at most
             ADMIN_SETTLES_WITHIN seconds, as Kafka applies both a moment after answering):
               {"configs": {"created": {name: [value, source]}, "altered": {...}}, "partitions": N,
                "low_watermark": L, "brokers": [id, ...], "controller": id,
                "group": {"listed": bool, "state": S, "deleted": bool | null}}
             (source as Kafka names it, e.g. DYNAMIC_TOPIC_CONFIG; deleted null: no such API).
             kcat has no admin API: its admin is `kcat -L`, {"brokers": [id, ...], "topics": {T: N}}.
    idempotent  an idempotent producer sends k{i}/v{i}, i < N, to partition 0 of T, awaiting each
             acknowledgement before the next (a dropped response is retried by the client, alone):
               {"produced": N, "delivered": [[key, partition, offset], ...]}
    transactions  a transactional producer (transactional id "T-txn") writes k{i}/a{i} for i < N
             and aborts, then k{i}/c{i} for i < N and commits, to partition 0 of T; then T is read
             from the earliest offset (by assignment, until idle) read_committed and read_uncommitted:
               {"committed": [[partition, offset, key, value], ...], "uncommitted": [...]}
    ctp      consume-transform-produce: T holds N records; group "T-ctp" reads partition 0 and a
             transactional producer (transactional id "T-ctp-txn", not the group id, so the group's
             and the transaction's coordinators may be different brokers) writes each value v{i}
             as out-v{i} to "T-out", sending the consumer's offsets in the transaction: the first
             TXN_BATCH records commit, the next TXN_BATCH abort. Then the group's committed offset on T-0 and "T-out" read_committed:
               {"committed_offset": X, "output": [value, ...]}
    codecs   for each codec the client can write, N records k{i}/v{i} compressed with it to
             "T-<codec>" (auto-created), read back by assignment:
               {"codecs": {codec: [[partition, offset, key, value], ...]}, "unavailable": {codec: why}}

--security is how to connect when the listener is not PLAINTEXT, one JSON object (`Security`):
    {"protocol": "SASL_SSL" | "SASL_PLAINTEXT" | "SSL", "mechanism": "PLAIN" | "SCRAM-SHA-512" | null,
     "username": U, "password": P, "ca": CA_PEM, "cert": CLIENT_CERT_PEM | null, "key": CLIENT_KEY_PEM | null}
(cert and key: mutual TLS). A refused connection must end the action with an error naming what the
client reported (its exception or error code), within --timeout: an authentication or
authorization failure is an answer, never a hang.

The drivers only speak to the broker; checking what came back is the scenario's job.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass
from typing import Any, Callable, TypeVar


# The admin action's fixed plan (see above), shared by the drivers and the scenario that checks them.
ADMIN_CONFIGS = {"retention.ms": "3600000", "cleanup.policy": "compact,delete"}
ADMIN_ALTERED_RETENTION = "7200000"
ADMIN_PARTITIONS = 3
ADMIN_RECORDS = 10
ADMIN_DELETE_BEFORE = 4
ADMIN_COMMITTED = 5
ADMIN_SETTLES_WITHIN = 5.0
_T = TypeVar("_T")
# The ctp action's transaction size (its first transaction commits, its second aborts).
TXN_BATCH = 5
CODECS = ("gzip", "snappy", "lz4", "zstd")


def once_shown(read: Callable[[], _T], shown: Callable[[_T], bool]) -> _T:
    """What `read` returns once `shown` holds of it, or after ADMIN_SETTLES_WITHIN seconds as it
    is then (the scenario names what is wrong): Kafka's broker applies an alter or a partition
    growth when it replays the controller's record, a moment after answering the request."""
    deadline = time.monotonic() + ADMIN_SETTLES_WITHIN
    while not shown(answer := read()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return answer


def key(i: int) -> str:
    return f"k{i}"


def value(i: int) -> str:
    return f"v{i}"


@dataclass(frozen=True)
class Security:
    """A secured listener's connection settings, as the harness passes them (see above)."""

    protocol: str
    mechanism: str | None = None
    username: str | None = None
    password: str | None = None
    ca: str | None = None
    cert: str | None = None
    key: str | None = None

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def security(args: argparse.Namespace) -> Security | None:
    return Security(**json.loads(args.security)) if args.security else None


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--action", required=True, choices=["create", "produce", "consume", "member", "admin", "idempotent", "transactions", "ctp", "codecs"])
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--group")
    parser.add_argument("--instance-id")
    parser.add_argument("--session-timeout-ms", type=int, default=6000)
    parser.add_argument("--group-protocol", choices=["classic", "consumer"], default="classic")
    parser.add_argument("--security", help="a Security as JSON; absent: PLAINTEXT")
    return parser.parse_args()


def emit(event: dict[str, Any]) -> None:
    """One line of a member's event stream."""
    print(json.dumps(event), flush=True)


def close_requested() -> threading.Event:
    """Set once stdin says "close" or ends: the member's cue to leave its group."""
    requested = threading.Event()

    def watch() -> None:
        for line in sys.stdin:
            if line.strip() == "close":
                break
        requested.set()

    threading.Thread(target=watch, name="stdin", daemon=True).start()
    return requested


def main(actions: dict[str, Callable[[argparse.Namespace], dict[str, Any]]]) -> None:
    args = parse_args()
    try:
        result = actions[args.action](args)
    except Exception as exc:
        traceback.print_exc()  # stderr: kept by the runner for diagnosis
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        sys.exit(1)
    print(json.dumps(result))
