"""The console's message search: the newest N matches are the newest, and one request reads at
most its byte budget of log, however many partitions it searches."""

from __future__ import annotations

import json
import urllib.request
from typing import Any, Iterator

import pytest
from kafka import KafkaProducer

from ottla.server.http import api
from ottla.testing import ThreadedBroker, running_broker


@pytest.fixture
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=None, http_port=0) as handle:
        yield handle


def _messages(broker: ThreadedBroker, topic: str, query: str) -> dict[str, Any]:
    assert broker.broker is not None and broker.broker.http is not None
    with urllib.request.urlopen(f"{broker.broker.http.url}/api/topics/{topic}/messages?{query}", timeout=60) as answer:
        result: dict[str, Any] = json.load(answer)
    return result


def _produce(broker: ThreadedBroker, topic: str, values: list[tuple[int, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, linger_ms=5)
    for partition, value in values:
        producer.send(topic, value=value, partition=partition)
    producer.flush()
    producer.close()


def test_the_newest_matches_are_the_newest_of_the_log(broker: ThreadedBroker) -> None:
    broker.create_topic("seq")
    _produce(broker, "seq", [(0, f"item-{i}".encode()) for i in range(2000)])

    def values(query: str) -> list[str]:
        answer = _messages(broker, "seq", query)
        assert answer["complete"]
        return [message["value"] for message in answer["messages"]]

    assert values("newest=3") == ["item-1997", "item-1998", "item-1999"]
    assert values("newest=3&contains=item") == ["item-1997", "item-1998", "item-1999"]
    assert values("newest=3&partition=0&contains=item-5") == ["item-597", "item-598", "item-599"]
    assert values("newest=2&contains=item-0") == ["item-0"]  # the whole log searched: only one there
    assert values("newest=5&contains=absent") == []


def test_one_search_reads_at_most_its_budget_across_partitions(broker: ThreadedBroker, monkeypatch: pytest.MonkeyPatch) -> None:
    broker.create_topic("wide", partitions=4)
    filler = b"x" * 4000
    # The only match is the oldest record of the partition searched last; each partition holds ~200 KB.
    _produce(broker, "wide", [(3, b"needle")] + [(partition, filler) for partition in range(4) for _ in range(50)])

    monkeypatch.setattr(api, "MAX_READ_BYTES", 300_000)
    monkeypatch.setattr(api, "READ_CHUNK_BYTES", 32_000)
    answer = _messages(broker, "wide", "newest=1&contains=needle")
    assert answer["messages"] == [] and not answer["complete"]  # its share of the budget ends before its oldest record
    monkeypatch.setattr(api, "MAX_READ_BYTES", 100_000)
    paged = _messages(broker, "wide", "partition=3&offset=0&contains=absent")
    assert 0 < paged["scanned_to"] < 51  # a read from an offset stops at the budget too, saying where

    monkeypatch.setattr(api, "MAX_READ_BYTES", 2_000_000)
    answer = _messages(broker, "wide", "newest=1&contains=needle")
    assert [message["value"] for message in answer["messages"]] == ["needle"] and answer["complete"]
