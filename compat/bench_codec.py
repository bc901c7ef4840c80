"""Parse and build cost of our schema structs on two hot messages, beside kafka-python's
generated codec on the same bytes. Not collected by pytest; run from the repo root:

    python -m tests.wire.bench_schema
"""

from __future__ import annotations

import os
import platform
import timeit
from typing import Any, Callable

from kafka.protocol.metadata import MetadataResponse
from kafka.protocol.producer import ProduceRequest

from wire.schema import decode, encode, message_struct

# One topic, one partition, a 100-byte batch: the STYLE.md reference request.
PRODUCE = {
    "transactional_id": None,
    "acks": -1,
    "timeout_ms": 30000,
    "topic_data": [{"name": "my-topic", "partition_data": [{"index": 0, "records": bytes(100)}]}],
}
# One broker, one topic of three partitions: what a client asks for on every refresh.
METADATA = {
    "throttle_time_ms": 0,
    "brokers": [{"node_id": 1, "host": "localhost", "port": 9092, "rack": None}],
    "cluster_id": "ottla-cluster",
    "controller_id": 1,
    "topics": [
        {
            "error_code": 0,
            "name": "my-topic",
            "topic_id": bytes(range(16)),
            "is_internal": False,
            "partitions": [
                {
                    "error_code": 0,
                    "partition_index": p,
                    "leader_id": 1,
                    "leader_epoch": 0,
                    "replica_nodes": [1],
                    "isr_nodes": [1],
                    "offline_replicas": [],
                }
                for p in range(3)
            ],
            "topic_authorized_operations": -(2**31),
        }
    ],
}


def best_us(stmt: Callable[[], Any], number: int = 20000) -> float:
    return min(timeit.repeat(stmt, number=number, repeat=5)) / number * 1e6


def main() -> None:
    print(f"CPython {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    for name, version, value, theirs in (
        ("ProduceRequest", 9, PRODUCE, ProduceRequest),
        ("MetadataResponse", 12, METADATA, MetadataResponse),
    ):
        struct = message_struct(name, version)
        data = encode(struct, value)
        parsed = theirs.decode(data, version=version)
        parsed._header = None  # decode() leaves it unset and encode() reads it
        print(
            f"{name} v{version} ({len(data)} B): "
            f"ours parse {best_us(lambda: decode(struct, data)):5.1f} us, build {best_us(lambda: encode(struct, value)):5.1f} us; "
            f"kafka-python parse {best_us(lambda: theirs.decode(data, version=version)):5.1f} us, "
            f"build {best_us(lambda: parsed.encode(version=version)):5.1f} us"
        )
    # decode() reads through io.BytesIO, which shares a bytes object but copies any
    # other buffer: hand it the frame as bytes.
    struct = message_struct("ProduceRequest", 9)
    mib = [{"name": "t", "partition_data": [{"index": 0, "records": bytes(1 << 20)}]}]
    big = encode(struct, {**PRODUCE, "topic_data": mib})
    for label, frame in (("bytes", big), ("memoryview", memoryview(big))):
        print(f"1 MiB ProduceRequest v9 from {label}: parse {best_us(lambda: decode(struct, frame), 200):5.1f} us")


if __name__ == "__main__":
    main()
