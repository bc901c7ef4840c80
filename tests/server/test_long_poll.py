"""A parked fetch is woken by the append it waits for, however the two interleave.

The fetch handler reads, finds too little, and parks on a later turn of the event loop; an
append landing in between used to find no waiter, so its record reached the consumer only
when the fetch's max wait ran out.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import uuid
import warnings

from confluent_kafka import Consumer, Producer, TopicPartition

from ottla import Broker
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.protocol import encode_request

# Far above any delivery time on a loaded machine, far below the fetch's own max wait: a
# record that only a timeout delivers fails the poll below it.
FETCH_MAX_WAIT_MS = 20_000
POLL_SECONDS = 8


def test_every_record_wakes_the_fetch_parked_for_it():
    """A librdkafka consumer reads one record at a time as it is produced: each arrives on its
    append, none only when fetch.wait.max.ms runs out (about 5% did before the fix)."""
    with running_broker(data_dir=None) as broker:
        topic = f"wake-{uuid.uuid4().hex[:8]}"
        broker.create_topic(topic, 1)
        producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "linger.ms": 0})
        consumer = Consumer({
            "bootstrap.servers": broker.bootstrap_servers,
            "group.id": "wake",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": FETCH_MAX_WAIT_MS,
            "socket.timeout.ms": FETCH_MAX_WAIT_MS * 3,
        })
        try:
            consumer.assign([TopicPartition(topic, 0, 0)])
            for index in range(150):
                value = str(index).encode()
                producer.produce(topic, value)
                producer.poll(0)
                message = consumer.poll(POLL_SECONDS)
                assert message is not None, f"record {index} was not delivered by its append"
                assert message.error() is None and message.value() == value
            assert producer.flush(10) == 0
        finally:
            consumer.close()


async def test_wait_returns_at_once_for_data_that_came_before_it_parked():
    async with Broker(port=0, data_dir=None) as broker:
        seen = broker.data_version
        broker.notify_data("t", 0)  # an append between the fetch's read and its park
        await asyncio.wait_for(broker.wait_for_data([("t", 0)], 30.0, seen), 5)
        assert not broker._data_waiters


async def test_a_fetch_cancelled_before_it_parks_leaves_no_stray_coroutine():
    """The client goes away in the same turn as its long-poll Fetch arrives: the parked fetch is
    cancelled before it ever ran, and nothing is left never awaited."""
    async with Broker(port=0, data_dir=None) as broker:
        broker.create_topic("quiet", 1)
        ours, theirs = socket.socketpair()
        connection = broker._accept(broker.listeners[0])
        await asyncio.get_running_loop().connect_accepted_socket(lambda: connection, ours)
        fetch = encode_request(ApiKey.FETCH, 12, 1, {
            "replica_id": -1, "max_wait_ms": 30_000, "min_bytes": 1, "max_bytes": 1 << 20, "isolation_level": 0,
            "session_id": 0, "session_epoch": -1, "forgotten_topics_data": [], "rack_id": "",
            "topics": [{"topic": "quiet", "partitions": [{
                "partition": 0, "current_leader_epoch": -1, "fetch_offset": 0, "last_fetched_epoch": -1,
                "log_start_offset": -1, "partition_max_bytes": 1 << 20}]}],
        })
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            connection._handle_frame(fetch[4:])
            assert connection.tasks, "the fetch should have parked"
            connection.connection_lost(None)
            for _ in range(3):
                await asyncio.sleep(0)
            gc.collect()
        theirs.close()
        assert not [w for w in caught if "never awaited" in str(w.message)]
