"""Transaction markers in what a ShareFetch acquires.

The expected answers are the reference Kafka 4.4's to the same requests (asked of it with
`compat.kafka`, the same kafka-python transactional producer and raw ShareFetch v1), and what
its jar does (kafka_2.13-4.4.0.jar, kafka.server.share.SharePartition.acquire and
acquireNewBatchRecords, decompiled): every batch read is acquired, control batches too, so
the acquired ranges run over the markers' offsets and the response carries the markers'
batches; the Java consumer (ShareCompletedFetch.fetchRecords) skips control records and
acknowledges their offsets as GAP. With share.isolation.level read_committed the data
batches of an aborted transaction are archived and left out of the ranges
(filterAbortedTransactionalAcquiredRecords), its abort marker is not.

The log of each test: a committed transaction of two records (0-1, marker 2), an aborted one
(marker after it), a committed one of one record (marker last).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # type: ignore[import-untyped]

from ottla.testing import ThreadedBroker, running_broker
from share_member import ShareFetcher

ACCEPT, RELEASE, GAP = 1, 2, 0


@pytest.fixture(scope="module")
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=None) as running:
        yield running


def _produce_transactions(fetcher: ShareFetcher, aborted_records: int) -> None:
    """Commit two records, abort `aborted_records`, commit one; return once every marker
    is in the log."""
    producer = KafkaProducer(bootstrap_servers=fetcher.bootstrap, transactional_id=f"{fetcher.topic}-tx", linger_ms=0)
    producer.init_transactions()
    for values, commit in (([b"a0", b"a1"], True), ([b"b%d" % i for i in range(aborted_records)], False), ([b"c0"], True)):
        producer.begin_transaction()
        for value in values:
            producer.send(fetcher.topic, value, partition=0)
        producer.flush()
        producer.commit_transaction() if commit else producer.abort_transaction()
    producer.close()
    end = 3 + aborted_records + 1 + 2
    consumer = KafkaConsumer(bootstrap_servers=fetcher.bootstrap)
    partition = TopicPartition(fetcher.topic, 0)
    deadline = time.monotonic() + 30
    while consumer.end_offsets([partition])[partition] < end:
        assert time.monotonic() < deadline, "the transaction markers were not written"
    consumer.close()


def _fetcher(broker: ThreadedBroker, name: str, isolation: str) -> ShareFetcher:
    """Acquiring per log batch (batch size 1), so that each marker is a range of its own."""
    return ShareFetcher(broker, f"markers-{name}", batch_size=1, group_configs={"share.isolation.level": isolation})


def test_markers_are_acquired_and_sent_and_taken_back_as_gaps(broker: ThreadedBroker) -> None:
    """0-1 data, 2 commit, 3 aborted data, 4 abort, 5 data, 6 commit (read_uncommitted)."""
    fetcher = _fetcher(broker, "uncommitted", "read_uncommitted")
    _produce_transactions(fetcher, aborted_records=1)
    assert fetcher.fetch(1) == ([(0, 1, 1), (2, 2, 1), (3, 3, 1), (4, 4, 1), (5, 5, 1), (6, 6, 1)], 0, [0, 2, 3, 4, 5, 6])
    # Released, they are all acquired again, markers included.
    ranges, error, _ = fetcher.fetch(2, acknowledgements=[(0, 6, RELEASE)])
    assert (ranges, error) == ([(0, 1, 2), (2, 2, 2), (3, 3, 2), (4, 4, 2), (5, 5, 2), (6, 6, 2)], 0)
    # The consumer's acknowledgement: data accepted, markers as gaps; nothing is left.
    acks = [(0, 1, ACCEPT), (2, 2, GAP), (3, 3, ACCEPT), (4, 4, GAP), (5, 5, ACCEPT), (6, 6, GAP)]
    assert fetcher.fetch(3, max_wait_ms=0, acknowledgements=acks) == ([], 0, [])
    assert fetcher.fetch(4, max_wait_ms=0) == ([], 0, [])
    fetcher.member.close()


def test_read_committed_archives_aborted_data_but_acquires_its_marker(broker: ThreadedBroker) -> None:
    """0-1 data, 2 commit, 3-4 aborted data, 5 abort, 6 data, 7 commit (read_committed)."""
    fetcher = _fetcher(broker, "committed", "read_committed")
    _produce_transactions(fetcher, aborted_records=2)
    ranges, error, _ = fetcher.fetch(1)
    assert (ranges, error) == ([(0, 1, 1), (2, 2, 1), (5, 5, 1), (6, 6, 1), (7, 7, 1)], 0)
    # The aborted records are not held: acknowledging them is refused (INVALID_RECORD_STATE).
    assert fetcher.fetch(2, max_wait_ms=0, acknowledgements=[(3, 4, GAP)])[1] == 121
    fetcher.member.close()


def test_a_marker_alone_is_acquired() -> None:
    """A fetch that reads only a marker (written after the data was acquired) acquires it, as
    Kafka 4.4 answered a fetch made between the commit's answer and its marker."""
    with running_broker(data_dir=None) as broker:
        fetcher = _fetcher(broker, "alone", "read_uncommitted")
        producer = KafkaProducer(bootstrap_servers=fetcher.bootstrap, transactional_id="alone-tx", linger_ms=0)
        producer.init_transactions()
        producer.begin_transaction()
        producer.send(fetcher.topic, b"a0", partition=0)
        producer.flush()
        assert fetcher.fetch(1)[0] == [(0, 0, 1)]
        producer.commit_transaction()
        producer.close()
        assert fetcher.fetch(2, acknowledgements=[(0, 0, ACCEPT)]) == ([(1, 1, 1)], 0, [1])
        fetcher.member.close()
