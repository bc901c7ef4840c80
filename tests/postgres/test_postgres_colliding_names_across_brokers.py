"""Two brokers over one PostgreSQL creating names that differ only by '.' and '_' at the same
moment: Kafka 4.4's controller creates the first and refuses the second, INVALID_TOPIC "Topic
'p0_x' collides with existing topic: p0.x" (ReplicationControlManager.validateNewTopicNames),
and still creates both names of one request; of two creating one name, the second is
TOPIC_ALREADY_EXISTS "Topic 'same' already exists."; a Metadata auto-creation colliding with
another broker's new topic stays UNKNOWN_TOPIC_OR_PARTITION. Neither broker's catalogue knows the other's
topic when it judges the name, so the database must: the test's own connection holds a SHARE lock
on `topics`, which every creation's INSERT waits for, until all the requests' creations are in
the database, then lets them go."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from kafka.protocol.admin.topics import CreateTopicsRequest, CreateTopicsResponse
from kafka.protocol.metadata import MetadataRequest, MetadataResponse
from kafka_wire import RawClient, make

from compat.harness import PostgresBrokers

pytestmark = [pytest.mark.external, pytest.mark.slow]

NONE, UNKNOWN_TOPIC_OR_PARTITION, INVALID_TOPIC, TOPIC_ALREADY_EXISTS = 0, 3, 17, 36
_DEADLINE = 60.0

# Backends waiting on a lock in a topic's creation: its INSERT (behind the test's lock) or its
# advisory lock on the name's collision key (behind another creation of the same key).
_WAITING = """
SELECT count(*) FROM pg_stat_activity
WHERE wait_event_type = 'Lock' AND (query LIKE 'INSERT INTO topics%' OR query LIKE 'SELECT pg_advisory_xact_lock%')
"""


def _send_create(client: RawClient, names: list[str]) -> None:
    topics = [dict(name=name, num_partitions=1, replication_factor=1, assignments=[], configs=[]) for name in names]
    client.send(make(CreateTopicsRequest, dict(topics=topics, timeout_ms=30000, validate_only=False)), 7)


def _answers(client: RawClient) -> dict[str, tuple[int, str | None]]:
    response = CreateTopicsResponse.decode(client.receive_frame(), version=7, header=True)
    return {topic.name: (topic.error_code, topic.error_message) for topic in response.topics}


def test_colliding_names_created_at_once_through_two_brokers(postgres_url: str, tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    run: Any = loop.run_until_complete
    created: set[str] = set()
    try:
        with PostgresBrokers(tmp_path, storage=postgres_url, nodes=2) as brokers:
            clients = [RawClient(broker.bootstrap) for broker in brokers.brokers]
            # One connection holds the lock; the other watches (pg_stat_activity is read once per
            # transaction, so from inside the lock's it would not move).
            connection, watcher = run(asyncpg.connect(postgres_url)), run(asyncpg.connect(postgres_url))
            try:
                # Each round the other broker asks the '.' name. The first asks a pair of its
                # own as well, which Kafka creates both of; the second, a name both brokers ask.
                for round_, first, second in ((0, clients[0], clients[1]), (1, clients[1], clients[0])):
                    dotted, underscored = f"p{round_}.x", f"p{round_}_x"
                    own = [f"s{round_}.x", f"s{round_}_x"] if round_ == 0 else []
                    both = [] if round_ == 0 else ["same"]
                    transaction = connection.transaction()
                    run(transaction.start())
                    run(connection.execute("LOCK TABLE topics IN SHARE MODE"))
                    _send_create(first, [dotted, *own, *both])
                    _send_create(second, [underscored, *both])
                    deadline = time.monotonic() + _DEADLINE
                    while run(watcher.fetchval(_WAITING)) < 4:
                        assert time.monotonic() < deadline, "the creations never reached the database"
                        time.sleep(0.05)
                    run(transaction.rollback())
                    answers, others = _answers(first), _answers(second)
                    assert {name: answers.pop(name) for name in own} == {name: (NONE, None) for name in own}
                    if both:
                        assert sorted([answers.pop("same"), others.pop("same")]) == [(NONE, None), (TOPIC_ALREADY_EXISTS, "Topic 'same' already exists.")]
                    answers |= others
                    assert sorted(code for code, _ in answers.values()) == [NONE, INVALID_TOPIC], answers
                    winner = next(name for name, (code, _) in answers.items() if code == NONE)
                    loser = underscored if winner == dotted else dotted
                    assert answers[loser] == (INVALID_TOPIC, f"Topic '{loser}' collides with existing topic: {winner}")
                    created |= {winner, *own, *both}
                # Metadata's auto-creation after another broker's CreateTopics of a colliding
                # name, both waiting in the database: Metadata says UNKNOWN_TOPIC_OR_PARTITION,
                # whatever the controller refused (DefaultAutoTopicCreationManager).
                transaction = connection.transaction()
                run(transaction.start())
                run(connection.execute("LOCK TABLE topics IN SHARE MODE"))
                for waiting, ask in ((1, lambda: _send_create(clients[1], ["m_x"])),
                                     (2, lambda: clients[0].send(make(MetadataRequest[4], dict(topics=[dict(name="m.x")], allow_auto_topic_creation=True)), 4))):
                    ask()
                    deadline = time.monotonic() + _DEADLINE
                    while run(watcher.fetchval(_WAITING)) < waiting:
                        assert time.monotonic() < deadline, "the creations never reached the database"
                        time.sleep(0.05)
                run(transaction.rollback())
                assert _answers(clients[1])["m_x"] == (NONE, None)
                metadata = MetadataResponse[4].decode(clients[0].receive_frame(), version=4, header=True)
                assert [(topic.name, topic.error_code) for topic in metadata.topics] == [("m.x", UNKNOWN_TOPIC_OR_PARTITION)]
                created.add("m_x")
                names = {row["name"] for row in run(connection.fetch("SELECT name FROM topics"))}
                assert {name for name in names if not name.startswith("__")} == created
            finally:
                run(connection.close())
                run(watcher.close())
                for client in clients:
                    client.close()
    finally:
        loop.close()
