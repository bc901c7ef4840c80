"""Properties of the storage engine under random workloads and random damage."""

from __future__ import annotations

import pathlib
import tempfile

from conftest import batch, read_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ottla.storage import Storage
from ottla.wire.records import scan_batches

appends = st.lists(st.tuples(st.integers(1, 5), st.integers(0, 300)), min_size=1, max_size=25)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(appends, st.integers(0, 2**31), st.sampled_from(["truncate", "flip", "zeros", "drop-indexes"]))
def test_recovery_keeps_a_valid_prefix_of_what_was_written(
    workload: list[tuple[int, int]], where: int, damage: str
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = pathlib.Path(directory)
        storage = Storage.open(root)
        storage.create_topic("p", 1, {"segment.bytes": "2000", "index.interval.bytes": "150"})
        log = storage.partition("p", 0)
        for count, size in workload:
            log.append(batch(count, value_size=size))
        written = read_all(storage)
        end_offset = log.log_end_offset
        storage.close()

        active = sorted((root / "p-0").glob("*.log"))[-1]
        data = bytearray(active.read_bytes())
        if damage == "truncate":
            del data[where % (len(data) + 1) :]
        elif damage == "flip" and data:
            # A crash tears only what follows the last index entry (what precedes it was
            # written before the entry was), and baseOffset and partitionLeaderEpoch lie
            # outside the CRC by Kafka's design: flip a byte a torn write could reach.
            index = active.with_suffix(".index").read_bytes()
            tail = int.from_bytes(index[-4:], "big") if index else 0
            position = tail + where % (len(data) - tail)
            start = max((s for s in batch_starts(bytes(data)) if s <= position), default=0)
            if not (position - start < 8 or 12 <= position - start < 16):
                data[position] ^= 0x5A
        elif damage == "zeros":
            data += bytes(where % 5000)
        active.write_bytes(bytes(data))
        if damage == "drop-indexes":
            for index in (root / "p-0").glob("*index"):
                index.unlink()

        reopened = Storage.open(root)
        log = reopened.partition("p", 0)
        recovered = read_all(reopened)
        # What survives is a prefix of what was written, batch for batch; damage past the
        # last index entry costs only the batches from the damaged one on.
        assert recovered == written[: len(recovered)]
        assert log.log_end_offset <= end_offset
        if damage in ("zeros", "drop-indexes"):
            assert recovered == written and log.log_end_offset == end_offset
        assert log.append(batch(1)).base_offset == log.log_end_offset - 1
        reopened.close()


def batch_starts(data: bytes) -> list[int]:
    starts, position = [], 0
    for header, _ in scan_batches(data):
        starts.append(position)
        position += header.size
    return starts


def read_all(storage: Storage) -> list[bytes]:
    log = storage.partition("p", 0)
    batches: list[bytes] = []
    offset = log.log_start_offset
    while offset < log.log_end_offset:
        found = list(scan_batches(read_bytes(log.read(offset, 1 << 20)), verify_crc=True))
        assert found, f"no batch at {offset} below the log end {log.log_end_offset}"
        batches += [bytes(view) for _, view in found]
        offset = found[-1][0].next_offset
    return batches
