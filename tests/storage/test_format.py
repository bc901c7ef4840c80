"""Byte-level proof that a partition directory is what Kafka's format specifies:
.log, .index and .timeindex compared with fixtures computed by hand from the
format and from the indexing rule of Kafka's LogSegment.append, not from our writer."""

from __future__ import annotations

import pathlib

from conftest import hand_batch

from ottla.storage import Storage

# Six appends of one batch each (null keys, 2-byte values): a record is 9 bytes, so a
# batch of n records is 61 + 9n bytes. Timestamps per append, offsets assigned 0..6:
APPENDS = [[1000, 1001], [990], [2000], [1500], [3000], [4000]]
#   append  offsets  position  size  unindexed bytes before it  index entry?
#   A1      0-1      0         79    0                          no
#   A2      2        79        70    79                         no (79 <= 100)
#   A3      3        149       70    149                        yes: (3, 149); time (2000, 3)
#   A4      4        219       70    70                         no
#   A5      5        289       70    140                        yes: (5, 289); time (3000, 5)
#   A6      6        359       70    70                         no
# On close Kafka's LogSegment.close appends the final max timestamp: (4000, 6).
EXPECTED_INDEX = bytes.fromhex("00000003" "00000095" "00000005" "00000121")
EXPECTED_TIMEINDEX = bytes.fromhex(
    "00000000000007d0" "00000003"
    "0000000000000bb8" "00000005"
    "0000000000000fa0" "00000006"
)


def test_partition_files_match_hand_computed_fixtures(tmp_path: pathlib.Path) -> None:
    storage = Storage.open(tmp_path)
    storage.create_topic("fixture", 1, {"index.interval.bytes": "100"})
    log = storage.partition("fixture", 0)
    for timestamps in APPENDS:
        # Producers send base offset 0 and partition leader epoch -1.
        log.append(hand_batch(0, -1, timestamps))
    storage.close()

    # The log holds the producer's bytes with only baseOffset and the leader epoch (0) rewritten.
    expected_log = b"".join(
        hand_batch(base, 0, timestamps) for base, timestamps in zip([0, 2, 3, 4, 5, 6], APPENDS)
    )
    assert [len(hand_batch(0, 0, t)) for t in APPENDS] == [79, 70, 70, 70, 70, 70]
    directory = tmp_path / "fixture-0"
    assert (directory / "00000000000000000000.log").read_bytes() == expected_log
    assert (directory / "00000000000000000000.index").read_bytes() == EXPECTED_INDEX
    assert (directory / "00000000000000000000.timeindex").read_bytes() == EXPECTED_TIMEINDEX


def test_recovery_rebuilds_the_same_index_bytes(tmp_path: pathlib.Path) -> None:
    """Kafka's recovery indexes batch by batch; with one batch per append that is the
    same rule as appending, so deleting both indexes must give back the fixtures
    (the final time index entry comes back when the reopened log is closed)."""
    storage = Storage.open(tmp_path)
    storage.create_topic("fixture", 1, {"index.interval.bytes": "100"})
    for timestamps in APPENDS:
        storage.partition("fixture", 0).append(hand_batch(0, -1, timestamps))
    storage.close()
    directory = tmp_path / "fixture-0"
    (directory / "00000000000000000000.index").unlink()
    (directory / "00000000000000000000.timeindex").unlink()
    Storage.open(tmp_path).close()
    assert (directory / "00000000000000000000.index").read_bytes() == EXPECTED_INDEX
    assert (directory / "00000000000000000000.timeindex").read_bytes() == EXPECTED_TIMEINDEX
