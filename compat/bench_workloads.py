"""The workloads of compat.bench, each pointed at a bootstrap address: Ottla's or Kafka's alike.

Throughput and latency use confluent-kafka (librdkafka), as Kafka users do. The small-request rate
uses raw sockets with frames from ottla.wire.protocol, one request in flight per connection, so the same
client can drive the plain asyncio echo server of compat.bench_limits for the machine's ceiling.
Every loop is bounded by a count and a deadline.
"""

from __future__ import annotations

import asyncio
import os
import struct
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from ottla.wire.protocol import decode_response, encode_request
from ottla.wire.records import Record, build_batch

# librdkafka logs every disconnect at level 6 (info); the bench prints its own errors.
_QUIET = {"log_level": 3, "log.connection.close": False}
_SIZE = struct.Struct(">i")
PRODUCE, METADATA = 0, 3
# Versions both Ottla and Kafka 4 serve: Produce v9 and Metadata v12 are flexible (KIP-482),
# as the requests of current clients are.
PRODUCE_VERSION, METADATA_VERSION = 9, 12


@dataclass(slots=True, frozen=True)
class Throughput:
    records: int
    bytes: int
    seconds: float

    @property
    def mb_s(self) -> float:
        return self.bytes / self.seconds / 1e6

    @property
    def records_s(self) -> float:
        return self.records / self.seconds

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "mb_s": self.mb_s, "records_s": self.records_s}


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    """Create `name` and wait until Metadata gives every partition a leader: Kafka's CreateTopics
    answers before its broker serves the partitions, and a timed run must not wait for that."""
    admin = AdminClient({"bootstrap.servers": bootstrap, **_QUIET})
    # The broker's default.replication.factor: 1, or every node of `bench --nodes N`.
    for future in admin.create_topics([NewTopic(name, partitions)], request_timeout=30).values():
        future.result(timeout=30)
    deadline = time.monotonic() + 30
    while True:
        topic = admin.list_topics(name, timeout=10).topics.get(name)
        if topic is not None and topic.error is None and len(topic.partitions) == partitions:
            if all(p.error is None and p.leader >= 0 for p in topic.partitions.values()):
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"topic {name} has no leader for every partition after 30 s: {topic}")
        time.sleep(0.05)


def delete_topics(bootstrap: str, names: list[str]) -> None:
    """Delete `names` and wait for the broker's answer (the files may go later, as Kafka's do)."""
    admin = AdminClient({"bootstrap.servers": bootstrap, **_QUIET})
    for future in admin.delete_topics(names, operation_timeout=30, request_timeout=30).values():
        future.result(timeout=60)


def produce(bootstrap: str, topic: str, *, partitions: int, size: int, acks: str, count: int, seconds: float, min_seconds: float = 0.0) -> Throughput:
    """Send at least `count` records of `size` random bytes round-robin over the partitions, and
    more until the run will have lasted `min_seconds`, for at most `seconds`; timed from the first
    send to the last acknowledgement.

    The client queues up to 1 GiB ahead of the broker, so once `count` is sent, records are added
    only while those in flight, at the rate acknowledged since the first acknowledgement, would be
    done before `min_seconds`: a step then lasts `min_seconds` and little more whatever the
    broker's speed, rather than that plus a full queue's drain."""
    failures: list[str] = []
    acked = 0
    first_ack = 0.0

    def delivered(error: Any, _message: Any) -> None:
        nonlocal acked, first_ack
        if not acked:
            first_ack = time.perf_counter()
        acked += 1
        if error is not None and len(failures) < 3:
            failures.append(str(error))

    producer = Producer({
        "bootstrap.servers": bootstrap, "linger.ms": 5, "batch.size": 1 << 20, "acks": acks,
        "queue.buffering.max.kbytes": 1 << 20, "queue.buffering.max.messages": 1_000_000, **_QUIET,
    })
    value = os.urandom(size)
    sent = 0
    started = time.perf_counter()
    deadline = started + seconds
    floor = started + min_seconds
    while (now := time.perf_counter()) < deadline and (sent < count or now < floor):
        if sent >= count and now > first_ack > 0 and now + (sent - acked) * (now - first_ack) / acked >= floor:
            producer.poll(0.001)  # enough in flight to reach the floor
            continue
        for _ in range(min(1000, count - sent) if sent < count else 1000):
            try:
                producer.produce(topic, value, partition=sent % partitions, on_delivery=delivered)
            except BufferError:
                producer.poll(0.001)
                break
            sent += 1
        producer.poll(0)
    unsent = producer.flush(max(seconds, 30))
    elapsed = time.perf_counter() - started
    if unsent or failures:
        raise RuntimeError(f"produce to {topic}: {unsent} not acknowledged; errors {failures}")
    return Throughput(sent, sent * size, elapsed)


def consume(bootstrap: str, topic: str, *, partitions: int, records: int, size: int, seconds: float, min_seconds: float = 0.0) -> Throughput:
    """Read the `records` records of `topic` from offset 0 of every partition (assigned, no group),
    again from offset 0 each time they are all read, until at least `min_seconds` have passed
    (at most `seconds`): the rate is over every record read, the topic at least once.

    librdkafka stops fetching a partition for fetch.queue.backoff.ms (1 s by default) whenever
    its queue holds queued.min.messages (100,000) records: 100-byte records reach that within a
    second of reading, so the run measured those pauses (the same 11 s for Ottla and the
    minimal responder), and a slower broker, whose answers never filled the queue, came out
    faster. A 1 ms backoff keeps the client fetching, so the broker is what is measured."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": "ottla-bench", "enable.auto.commit": False, "fetch.queue.backoff.ms": 1, **_QUIET,
    })
    start = [TopicPartition(topic, partition, 0) for partition in range(partitions)]
    try:
        started = time.perf_counter()
        consumer.assign(start)
        got = read = 0  # records read in all, and since the last assignment
        deadline = started + seconds
        floor = started + min_seconds
        while (now := time.perf_counter()) < deadline and (got < records or now < floor):
            if read == records:
                # A new assignment from offset 0; librdkafka drops what it fetched for the old one.
                consumer.assign(start)
                read = 0
            # consume(n) waits for all n or its timeout: never ask for more than remain.
            for message in consumer.consume(min(10_000, records - read), 0.5):
                if message.error():
                    raise KafkaException(message.error())
                read += 1
                got += 1
        elapsed = time.perf_counter() - started
    finally:
        consumer.close()
    if got < records:
        raise RuntimeError(f"consume from {topic}: {got} of {records} records within {seconds:.0f}s")
    return Throughput(got, got * size, elapsed)


def latency(bootstrap: str, topic: str, *, rate: int, seconds: float, warmup: float) -> dict[str, float]:
    """Produce 100-byte records at a steady `rate` for `seconds` (acks=1, linger.ms=0) and consume
    them in another thread; each record carries its send time. Timing starts once a probe record
    has gone through (both clients connected and fetching); the first `warmup` seconds of paced
    records are not counted either."""
    total = int(rate * (seconds + warmup))
    skip = int(rate * warmup)
    samples: list[int] = []
    failures: list[str] = []
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "ottla-bench", "enable.auto.commit": False, **_QUIET})
    consumer.assign([TopicPartition(topic, 0, 0)])
    done = threading.Event()
    probed = threading.Event()

    def receive() -> None:
        got = -1  # the probe
        # poll, not consume(n): consume waits for n messages or its timeout, which would be the latency.
        while got < total and not done.is_set():
            message = consumer.poll(0.05)
            if message is None:
                continue
            now = time.perf_counter_ns()
            if message.error():
                failures.append(str(message.error()))
                return
            sent_at, index = struct.unpack_from(">qq", message.value())
            if index >= skip:
                samples.append(now - sent_at)
            probed.set()
            got += 1

    receiver = threading.Thread(target=receive, name="bench-latency-consumer")
    receiver.start()
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "acks": "1", **_QUIET})
    padding = bytes(100 - 16)
    try:
        producer.produce(topic, struct.pack(">qq", time.perf_counter_ns(), -1) + padding, partition=0)
        producer.flush(30)
        if not probed.wait(30):
            raise RuntimeError(f"latency on {topic}: the probe record was not consumed within 30 s")
        started = time.perf_counter()
        sent = 0
        while sent < total:
            due = min(total, int((time.perf_counter() - started) * rate) + 1)
            while sent < due:
                producer.produce(topic, struct.pack(">qq", time.perf_counter_ns(), sent) + padding, partition=0)
                sent += 1
            producer.poll(0)
            time.sleep(0.0002)
        producer.flush(30)
        receiver.join(timeout=30)
    finally:
        done.set()
        receiver.join()
        consumer.close()
    if failures or len(samples) < total - skip:
        raise RuntimeError(f"latency on {topic}: {len(samples)} of {total - skip} records seen; errors {failures[:3]}")
    samples.sort()
    return {"rate": rate, "records": len(samples), **{name: _percentile(samples, q) / 1e6 for name, q in _QUANTILES.items()}}


_QUANTILES = {"p50_ms": 0.50, "p99_ms": 0.99, "p999_ms": 0.999}


def _percentile(sorted_samples: list[int], q: float) -> float:
    return sorted_samples[min(len(sorted_samples) - 1, int(q * len(sorted_samples)))]


def produce_frame(topic: str) -> bytes:
    """A Produce request (acks=1) carrying one 100-byte record to partition 0."""
    batch = build_batch([Record(0, int(time.time() * 1000), None, bytes(100))])
    partition = {"index": 0, "records": batch}
    body = {"transactional_id": None, "acks": 1, "timeout_ms": 30_000, "topic_data": [{"name": topic, "partition_data": [partition]}]}
    return encode_request(PRODUCE, PRODUCE_VERSION, 1, body, client_id="ottla-bench")


def metadata_frame(topic: str) -> bytes:
    body = {
        "topics": [{"topic_id": bytes(16), "name": topic}],
        "allow_auto_topic_creation": False,
        "include_topic_authorized_operations": False,
    }
    return encode_request(METADATA, METADATA_VERSION, 1, body, client_id="ottla-bench")


def check_produce_response(frame: bytes) -> None:
    _, body = decode_response(PRODUCE, PRODUCE_VERSION, frame)
    codes = [p["error_code"] for t in body["responses"] for p in t["partition_responses"]]
    if codes != [0]:
        raise RuntimeError(f"single-record produce answered error codes {codes}")


def check_metadata_response(frame: bytes) -> None:
    _, body = decode_response(METADATA, METADATA_VERSION, frame)
    codes = [t["error_code"] for t in body["topics"]]
    if codes != [0]:
        raise RuntimeError(f"metadata answered error codes {codes}")


class _OneInFlight(asyncio.Protocol):
    """Sends `frame`, waits for one size-prefixed response, sends it again, until `deadline`."""

    def __init__(self, frame: bytes, deadline: float, done: asyncio.Future[None]) -> None:
        self.frame = frame
        self.deadline = deadline
        self.done = done
        self.buffer = bytearray()
        self.responses = 0
        self.first: bytes | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.transport.write(self.frame)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= 4:
            end = 4 + _SIZE.unpack_from(self.buffer)[0]
            if len(self.buffer) < end:
                return
            if self.first is None:
                self.first = bytes(self.buffer[4:end])
            del self.buffer[:end]
            self.responses += 1
            if time.perf_counter() >= self.deadline:
                self.transport.close()
                return
            self.transport.write(self.frame)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done.done():
            return
        if time.perf_counter() >= self.deadline:
            self.done.set_result(None)
        else:
            self.done.set_exception(ConnectionError(f"connection lost after {self.responses} responses: {exc}"))


async def _request_rate(host: str, port: int, frame: bytes, connections: int, seconds: float) -> tuple[int, float, bytes]:
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    clients = []
    for _ in range(connections):
        done: asyncio.Future[None] = loop.create_future()
        client = _OneInFlight(frame, started + seconds, done)
        await loop.create_connection(lambda client=client: client, host, port)  # type: ignore[misc]
        clients.append(client)
    await asyncio.wait_for(asyncio.gather(*(c.done for c in clients)), seconds + 30)
    elapsed = time.perf_counter() - started
    first = clients[0].first
    assert first is not None
    return sum(c.responses for c in clients), elapsed, first


def leader_address(bootstrap: str, topic: str) -> str:
    """"host:port" of the node leading partition 0 of `topic`: the one raw Produce requests must
    reach when the bootstrap lists a cluster's nodes (`bench --nodes N`)."""
    admin = AdminClient({"bootstrap.servers": bootstrap, **_QUIET})
    metadata = admin.list_topics(topic, timeout=10)
    broker = metadata.brokers[metadata.topics[topic].partitions[0].leader]
    return f"{broker.host}:{broker.port}"


def request_rate(address: str, frame: bytes, *, connections: int, seconds: float) -> tuple[int, float, bytes]:
    """Requests answered and seconds taken over `connections` connections with one request in
    flight each, and the first response frame (without its size prefix) to check."""
    host, port = address.rsplit(":", 1)
    return asyncio.run(_request_rate(host, int(port), frame, connections, seconds))


def small_requests(bootstrap: str, topic: str, *, connections: int, seconds: float) -> dict[str, float]:
    """Single-record acks=1 Produce and Metadata requests per second against a broker; the
    produce count is checked against the partition's high watermark."""
    create_topic(bootstrap, topic, 1)
    leader = leader_address(bootstrap, topic)
    produced, produce_seconds, first = request_rate(leader, produce_frame(topic), connections=connections, seconds=seconds)
    check_produce_response(first)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "ottla-bench", **_QUIET})
    try:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)
    finally:
        consumer.close()
    if high != produced:
        raise RuntimeError(f"{produced} single-record produces acknowledged but {topic} holds {high} records")
    answered, metadata_seconds, first = request_rate(leader, metadata_frame(topic), connections=connections, seconds=seconds)
    check_metadata_response(first)
    return {"connections": connections, "produce_rps": produced / produce_seconds, "metadata_rps": answered / metadata_seconds}


def first_produce(bootstrap: str, topic: str) -> None:
    """One record, acks=1, to a topic the broker auto-creates: what a test suite does first."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "1", "linger.ms": 0, **_QUIET})
    errors: list[Any] = []
    producer.produce(topic, b"first", on_delivery=lambda error, _message: errors.append(error))
    if producer.flush(30) or errors != [None]:
        raise RuntimeError(f"first produce to {topic} not acknowledged: {errors}")
