"""Client drivers: one small program per stock client, run as a subprocess.

The JSON contract (the Node drivers in compat/node/ follow the same one):

    <driver> --bootstrap HOST:PORT --topic T --action create|produce|consume
             [--partitions N] [--count N] [--timeout SECONDS]

prints one JSON object on stdout and exits 0, or prints {"error": "..."} and exits 1:

    create   {"created": true}                 topic with N partitions, via the client's admin API
    produce  {"produced": N, "delivered": [[key, partition, offset], ...] | null}
             records key k{i}, value v{i} for i in 0..N-1, sent in order; null when the
             client does not report where each record went (kcat)
    consume  {"partitions": P, "records": [[partition, offset, key, value], ...]}
             P from the client's own metadata; every partition read by assignment (no group)
             from its earliest offset up to the end offset listed when the read began

The drivers only speak to the broker; checking what came back is the scenario's job.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from typing import Any, Callable


def key(i: int) -> str:
    return f"k{i}"


def value(i: int) -> str:
    return f"v{i}"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--action", required=True, choices=["create", "produce", "consume"])
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=30.0)
    return parser.parse_args()


def main(actions: dict[str, Callable[[argparse.Namespace], dict[str, Any]]]) -> None:
    args = parse_args()
    try:
        result = actions[args.action](args)
    except Exception as exc:
        traceback.print_exc()  # stderr: kept by the runner for diagnosis
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        sys.exit(1)
    print(json.dumps(result))
