"""A gate that holds a piece of the broker's file work wherever it runs, for tests that show the
event loop serves other clients meanwhile, and a producer writing one record to each partition."""

from __future__ import annotations

import asyncio
import threading

from confluent_kafka import Producer


class Gate:
    """Once `armed`, the gated work calls `hold`: it notes whether it runs on an event loop's
    thread (`on_loop`), sets `entered`, and waits until `released` is set (30 s at most)."""

    def __init__(self) -> None:
        self.armed, self.entered, self.released = threading.Event(), threading.Event(), threading.Event()
        self.on_loop: list[bool] = []

    def hold(self) -> None:
        self.on_loop.append(on_a_loop())
        self.entered.set()
        self.released.wait(30)


def on_a_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def produce_to_every_partition(bootstrap: str, topic: str, partitions: int, value: bytes = b"v") -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "topic.metadata.refresh.interval.ms": 1000})
    errors: list[object] = []
    for partition in range(partitions):
        producer.produce(topic, value, partition=partition, on_delivery=lambda error, _: error and errors.append(error))
    assert producer.flush(30) == 0
    assert errors == []
