"""ShareFetch with a BatchSize of 0 or less: Ottla answers one range, by choice.

Kafka 4.4 neither refuses it (the reference broker answered it without an error) nor
answers it well: asked of the reference broker (v1 and v2, BatchSize 0 and -1, three log batches
of three records) it answered [(0, -1), (0, 2), (3, 5), (6, 8)], an empty range first, as
SharePartition.createBatches (kafka_2.13-4.4.0.jar) cuts a range wherever a log batch starts
`batchSize` or more records after the last cut, 0 records after it included. A client sends a
positive BatchSize, so Ottla does not copy the malformed answer: the new records form one
in-flight batch.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ottla.testing import ThreadedBroker, running_broker
from share_member import ShareFetcher


@pytest.fixture(scope="module")
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=None) as running:
        yield running


@pytest.mark.parametrize(("version", "batch_size"), [(1, 0), (2, -1)])
def test_batch_size_not_positive_acquires_one_range(broker: ThreadedBroker, version: int, batch_size: int) -> None:
    fetcher = ShareFetcher(broker, f"batch-size-{version}-{-batch_size}", version=version)
    for _ in range(3):
        fetcher.produce_batch(count=3)
    assert fetcher.fetch(batch_size=batch_size)[::2] == ([(0, 8, 1)], [0, 3, 6])
    fetcher.member.close()
