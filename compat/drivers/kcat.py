"""kcat driver: wraps the `kcat` binary (contract in compat/drivers/__init__.py).

kcat has no admin API, so `create` is not offered: the scenario creates the topic with
kafka-python's admin client instead. kcat does not print delivery reports, so `delivered` is null.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from typing import Any

from compat.drivers import CODECS, key, main, security, value


def connection(args: argparse.Namespace) -> list[str]:
    """kcat's flags for where and how to connect (--security, see the contract): librdkafka's
    own properties, as -X name=value."""
    secured = security(args)
    if secured is None:
        return ["-b", args.bootstrap]
    settings = {"security.protocol": secured.protocol, "ssl.ca.location": secured.ca,
                "ssl.certificate.location": secured.cert, "ssl.key.location": secured.key}
    if secured.sasl:
        settings.update({"sasl.mechanism": secured.mechanism, "sasl.username": secured.username, "sasl.password": secured.password})
    return ["-b", args.bootstrap, *(arg for name, value in settings.items() if value for arg in ("-X", f"{name}={value}"))]


def kcat(args: argparse.Namespace, *flags: str, stdin: str | None = None) -> str:
    proc = subprocess.run(
        ["kcat", *connection(args), *flags], input=stdin, capture_output=True, text=True,
        timeout=args.timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"kcat {' '.join(flags)} exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return proc.stdout


def produce(args: argparse.Namespace) -> dict[str, Any]:
    # -K sets the key delimiter; keyed lines go through librdkafka's default partitioner.
    lines = "".join(f"{key(i)}:{value(i)}\n" for i in range(args.count))
    kcat(args, "-P", "-t", args.topic, "-K", ":", stdin=lines)
    return {"produced": args.count, "delivered": None}


def consume(args: argparse.Namespace) -> dict[str, Any]:
    metadata = json.loads(kcat(args, "-L", "-J", "-t", args.topic))
    (topic,) = [t for t in metadata["topics"] if t["topic"] == args.topic]
    if topic.get("error"):
        raise RuntimeError(f"metadata for {args.topic}: {topic['error']}")
    partitions = sorted(p["partition"] for p in topic["partitions"])
    records = []
    for p in partitions:
        # -p assigns one partition (no group); -e exits once it reaches the end offset.
        out = kcat(args, "-C", "-t", args.topic, "-p", str(p), "-o", "beginning", "-e",
                   "-f", r"%p\t%o\t%k\t%s\n")
        for line in out.splitlines():
            partition, offset, k, v = line.split("\t")
            records.append([int(partition), int(offset), k, v])
    return {"partitions": len(partitions), "records": records}


def admin(args: argparse.Namespace) -> dict[str, Any]:
    """kcat's one admin view: `-L`, the cluster metadata (see the contract)."""
    metadata = json.loads(kcat(args, "-L", "-J"))
    return {
        "brokers": sorted(b["id"] for b in metadata["brokers"]),
        "topics": {t["topic"]: len(t["partitions"]) for t in metadata["topics"] if not t.get("error")},
    }


def codecs(args: argparse.Namespace) -> dict[str, Any]:
    results = {}
    for name in CODECS:  # librdkafka builds all four in; the topic is auto-created by Metadata
        topic = argparse.Namespace(**{**vars(args), "topic": f"{args.topic}-{name}"})
        lines = "".join(f"{key(i)}:{value(i)}\n" for i in range(args.count))
        kcat(topic, "-P", "-t", topic.topic, "-p", "0", "-K", ":", "-z", name, stdin=lines)
        results[name] = consume(topic)["records"]
    return {"codecs": results, "unavailable": {}}


if __name__ == "__main__":
    main({"produce": produce, "consume": consume, "admin": admin, "codecs": codecs})
