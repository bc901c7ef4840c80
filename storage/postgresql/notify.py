"""What brokers over one database tell each other, by PostgreSQL's NOTIFY on one channel.

The channel is named after the schema the engine works in (`channel_of`), so databases shared
by several schemas (tests) do not hear each other. Each notification is one kind of news, from
one node (a broker skips its own):

* APPENDS: partitions' new bounds after appends, `topic id, partition, high watermark, log
  start offset` per partition, as many as fit in a payload (PostgreSQL's limit is 8000 bytes).
  A listener moves its cached bounds forward (they only grow) and wakes parked fetches.
* CATALOGUE: topics were created, deleted, grew partitions or changed configs: reload them.
* LEADERS: leadership claims changed leader epochs: reload them.
* BROKERS: a broker registered or left: read the live set now rather than at the next renewal.
* METADATA: one of metadata.py's tables (SCRAM credentials, ACLs, client quotas, group configs)
  changed; the payload names it: read it again.

NOTIFY is delivered only when the sender's transaction commits, and to connections LISTENing
then: a listener that reconnects reloads what it may have missed rather than trusting the
channel to have kept it.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import asyncpg

# PostgreSQL refuses payloads of 8000 bytes or more; leave room for the header.
_PAYLOAD_LIMIT = 7900
_NOTIFY = "SELECT pg_notify($1, $2)"


class News(enum.Enum):
    APPENDS = "a"
    CATALOGUE = "c"
    LEADERS = "l"
    BROKERS = "b"
    METADATA = "m"


@dataclass(slots=True, frozen=True)
class Bounds:
    """A partition's bounds as an append (or DeleteRecords) left them."""

    topic_id: uuid.UUID
    partition_index: int
    high_watermark: int
    log_start_offset: int


async def channel_of(pool: asyncpg.Pool) -> str:
    """The channel of the schema the pool's connections work in (at most 63 bytes, as
    PostgreSQL keeps identifiers)."""
    schema = await pool.fetchval("SELECT current_schema()")
    return f"ottla {schema}".encode()[:63].decode(errors="ignore")


def append_payloads(node_id: int, bounds: Iterable[Bounds]) -> Iterator[str]:
    """APPENDS notifications for `bounds`, split to fit the payload limit."""
    header = f"{News.APPENDS.value}|{node_id}|"
    entries: list[str] = []
    size = len(header)
    for entry in (f"{b.topic_id.hex},{b.partition_index},{b.high_watermark},{b.log_start_offset}" for b in bounds):
        if entries and size + len(entry) + 1 > _PAYLOAD_LIMIT:
            yield header + ";".join(entries)
            entries, size = [], len(header)
        entries.append(entry)
        size += len(entry) + 1
    if entries:
        yield header + ";".join(entries)


def news_payload(news: News, node_id: int, subject: str = "") -> str:
    """A CATALOGUE, LEADERS or BROKERS notification, or a METADATA one naming its table in `subject`."""
    return f"{news.value}|{node_id}|{subject}"


@dataclass(slots=True, frozen=True)
class Notification:
    news: News
    node_id: int
    bounds: tuple[Bounds, ...]
    # What METADATA news is about: the table that changed.
    subject: str = ""


def parse(payload: str) -> Notification | None:
    """A notification as sent by `append_payloads` or `news_payload`; None for anything else."""
    try:
        kind, node, body = payload.split("|", 2)
        news = News(kind)
        bounds: list[Bounds] = []
        if news is News.APPENDS:
            for entry in body.split(";"):
                topic_id, index, high_watermark, log_start_offset = entry.split(",")
                bounds.append(Bounds(uuid.UUID(hex=topic_id), int(index), int(high_watermark), int(log_start_offset)))
        return Notification(news, int(node), tuple(bounds), body if news is News.METADATA else "")
    except ValueError:
        return None


async def send(pool: asyncpg.Pool, channel: str, payloads: Iterable[str]) -> None:
    """NOTIFY each payload on the channel (one round trip each)."""
    for payload in payloads:
        await pool.execute(_NOTIFY, channel, payload)
