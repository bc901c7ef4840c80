"""The sequence rules of a verified transactional batch (KIP-890) on the PostgreSQL engine, as
tests/server/test_txn_verified_sequences.py pins them on the local one: Kafka 4.4's
ProducerAppendInfo.checkSequence against the partition's VerificationStateEntry
(`supportsEpochBump() && seq != 0 && currentEntry.isEmpty()`, `seq > lowestSequence()`:
OUT_OF_ORDER_SEQUENCE_NUMBER), over a broker in its own process on a real server."""

from __future__ import annotations

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from txn_wire import TxnClient

from compat.harness import OttlaBroker
from ottla.wire.errors import ErrorCode

pytestmark = pytest.mark.external

TOPIC = "pg-verified"


def test_a_verified_first_batch_is_held_to_what_was_verified(postgres_url: str) -> None:
    with OttlaBroker(storage=postgres_url, ready_timeout=60, stop_timeout=30) as broker:
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        try:
            admin.create_topics([NewTopic(TOPIC, 2, 1)])
        finally:
            admin.close()
        with TxnClient(broker.bootstrap, TOPIC) as client:
            # Transaction version 2: a producer unknown to the partition starts at 0.
            producer_id, epoch = client.init("tv2")
            assert client.produce(12, "tv2", producer_id, epoch, 3) is ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
            assert client.produce(12, "tv2", producer_id, epoch, 0) is ErrorCode.NONE
            assert client.produce(12, "tv2", producer_id, epoch, 1) is ErrorCode.NONE
            # Transaction version 1: the refused batch at 0 left its verification, which the
            # batch at 5 may not get ahead of; once the batch at 0 is in, it is used up.
            producer_id, epoch = client.init("tv1")
            assert client.produce(11, "tv1", producer_id, epoch, 0, partition=1) is ErrorCode.TRANSACTION_ABORTABLE
            assert client.add_partition("tv1", producer_id, epoch, 1) is ErrorCode.NONE
            assert client.produce(11, "tv1", producer_id, epoch, 5, partition=1) is ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
            assert client.produce(11, "tv1", producer_id, epoch, 0, partition=1) is ErrorCode.NONE
            assert client.produce(11, "tv1", producer_id, epoch, 1, partition=1) is ErrorCode.NONE
