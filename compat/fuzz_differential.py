"""`python -m compat.fuzz_differential`: the same random valid requests to Ottla and to the
reference Kafka, answers compared.

    python -m compat.fuzz_differential [--count N] [--seed S] [--api NAME ...] [--replay I]
                                       [--messages] [--populated SHARE] [--secured] [--cluster]

Input `i` of a run depends on (seed, i) alone: one API version both brokers advertise, and a
body drawn from that version's schema by compat.fuzz's generator with no lies in it, its
values mostly plausible by field name: the set-up topics and missing or invalid names,
partition indexes in and out of range, the set-up group and groups no one made, producer ids
and epochs, small negative numbers, empty and null where nullable. Both brokers get the same
bytes (a topic id stands for each broker's own id of that topic) at once, on one connection
each.

What is compared is what a client acts on: whether the connection was closed or the request
left unanswered, every error code (top level and per entry), and the shape of the answer:
which entries each array holds, named by topic, partition, group... whatever their order (Kafka
fills many from hash maps), and how long each list of scalars is. Ids, timestamps, throttle
times, hosts and ports, offsets and free text are not compared. With --messages, free-text
messages are (error_message and any string field named for a message), beside the same error
codes only, with each broker's topic ids, member ids, other generated ids, address, timestamps
and the run's names masked; null and "" stay apart, as Kafka keeps them.

Every input must meet the same state on both brokers, so requests that would change what
later ones see are kept from doing so: creations and config changes are validate-only,
Produce and DeleteRecords write only a topic no other request reads, group and transaction
writes go to a group or transactional id of their own (fresh per input), and listings keep
only the set-up entities. A share of group APIs' inputs (--populated, drawn apart from the rest
of the input) meets a group of its own populated on both brokers just before: classic members
joined (in two steps, KIP-394) and synced, a KIP-848 member that has heartbeated, share members
(KIP-932) assigned, the first with a share session whose fetch acquired a record of each of its
partitions (held open until the input is answered), or a streams member (KIP-1071) assigned
tasks of a one-subtopology topology; the request may name their member ids and generation or
member epoch, the share session's epoch and the acquired offset (right, off by one, or wrong),
each broker's own sent. A transaction API's input (--populated too) may meet a transactional id
of its own initialised on both (InitProducerId), maybe with sink partitions added and a record
produced in each, maybe with offsets added for a group of the same name, maybe ended (committed
or aborted, awaited until complete), as a transaction version 1 or 2 (KIP-890) client; the
request may name that id, its producer id and epoch (right, one lower, one higher), and a
batch of that producer; a listing keeps that id beside the set-up entities.
APIs that change the cluster itself (broker and voter removal, SCRAM
users) and inter-broker APIs are not sent.

With --secured, both brokers run StandardAuthorizer with no ACL meaning no access
(secured_settings): the set-up goes through a PLAINTEXT listener whose anonymous principal is
a super user, which then creates the same ACLs on both (fuzzer_acls) for a user the inputs are
sent as, over a SASL_PLAINTEXT listener (PLAIN), so that each kind of refusal and the order of
the checks compare.

With --cluster, both sides are three-node clusters (compat.harness.OttlaCluster and
compat.kafka.ReferenceKafkaCluster, node ids 1..3 on both) and input `i` goes to the node
node_of draws from (seed, i), on both, so that requests meet leaders and non-leaders,
coordinators and not (NOT_LEADER_OR_FOLLOWER with its leader hints, NOT_COORDINATOR). Rather
than map leaders symbolically, the set-up places them alike, so that node ids compare as they
are: the set-up topics are created with the same explicit replicas (CLUSTER_PLACEMENT: three
replicas, one, two; the first replica leads, on every node in turn), awaited until each
partition is led by its first replica with every replica in sync; and Ottla's coordinators'
topics are given Kafka's replicas in Kafka's order, and leaders (align_coordinators), as
Kafka places them from a random start. Set-up steps that need a coordinator go to it.

The summary groups differences by API, version, field and the two answers, most frequent
first, each with the command that replays its first input on a fresh pair of brokers.
A difference the README documents as deliberate (compat.differential.DEVIATIONS) is marked so.
An input meeting a known crash of Kafka 4.4 (KNOWN_KAFKA_CRASHES: an exception answered
UNKNOWN_SERVER_ERROR, or no answer) is counted apart, by crash, with its replay command.

The brokers started here size the coordinators' topics as Kafka's defaults do on both
(COORDINATOR_PARTITIONS), so that ids meet the same partitions' neighbours.
"""

from __future__ import annotations

import argparse
import base64
import collections
import json
import random
import re
import select
import socket
import struct
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from compat.differential import Difference, _Connection, _leaders_elected, advertised, call_once
from compat.fuzz import _TEXT_PIECES, _Generator
from compat.harness import wait_for
from compat.sockets import read_frame
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.primitives import Array, Bytes, Fixed, String, Uuid
from ottla.wire.structs import fresh_default
from ottla.wire.protocol import decode_response, encode_request, request_struct
from ottla.wire.records import Record, build_batch
from ottla.wire.schema import Message, NullableStruct


def _api(name: str) -> int | None:
    member = getattr(ApiKey, name, None)
    return None if member is None else int(member)


# APIs not sent, each with why: inter-broker or controller-only, or changing the cluster in a
# way no validate-only flag prevents.
_SKIPPED_NAMES = {
    "LEADER_AND_ISR": "inter-broker", "STOP_REPLICA": "inter-broker", "UPDATE_METADATA": "inter-broker",
    "CONTROLLED_SHUTDOWN": "inter-broker", "WRITE_TXN_MARKERS": "inter-broker (writes markers)",
    "ALTER_PARTITION": "inter-broker", "ENVELOPE": "inter-broker", "FETCH_SNAPSHOT": "inter-broker",
    "BROKER_REGISTRATION": "inter-broker", "BROKER_HEARTBEAT": "inter-broker", "VOTE": "inter-broker",
    "BEGIN_QUORUM_EPOCH": "inter-broker", "END_QUORUM_EPOCH": "inter-broker", "ALLOCATE_PRODUCER_IDS": "inter-broker",
    "CONTROLLER_REGISTRATION": "inter-broker", "ASSIGN_REPLICAS_TO_DIRS": "inter-broker", "UPDATE_RAFT_VOTER": "inter-broker",
    "INITIALIZE_SHARE_GROUP_STATE": "inter-broker", "READ_SHARE_GROUP_STATE": "inter-broker",
    "WRITE_SHARE_GROUP_STATE": "inter-broker", "DELETE_SHARE_GROUP_STATE": "inter-broker",
    "READ_SHARE_GROUP_STATE_SUMMARY": "inter-broker",
    "UNREGISTER_BROKER": "may unregister the one broker", "UNREGISTER_CONTROLLER": "may unregister the one controller",
    "ADD_RAFT_VOTER": "changes the quorum", "REMOVE_RAFT_VOTER": "may remove the one voter",
    "ALTER_USER_SCRAM_CREDENTIALS": "creates users that later describes would list",
}
SKIPPED: dict[int, str] = {key: why for name, why in _SKIPPED_NAMES.items() if (key := _api(name)) is not None}

# Forced to validate-only (a version without the flag is not sent): they would change state.
_VALIDATE_ONLY = {_api(n) for n in ("CREATE_TOPICS", "CREATE_PARTITIONS", "ALTER_CONFIGS", "INCREMENTAL_ALTER_CONFIGS",
                                    "ALTER_CLIENT_QUOTAS", "UPDATE_FEATURES")}
# Writes to topics: only to the sink topic (or missing names), which no other request reads.
_WRITES_TOPICS = {_api(n) for n in ("PRODUCE", "DELETE_RECORDS")}
# Deletes topics: only missing names.
_DELETES_TOPICS = {_api("DELETE_TOPICS")}
# Change a group's or transaction's state: only fresh ids (or missing/invalid ones).
_WRITES_GROUPS = {_api(n) for n in (
    "JOIN_GROUP", "SYNC_GROUP", "HEARTBEAT", "LEAVE_GROUP", "OFFSET_COMMIT", "TXN_OFFSET_COMMIT", "OFFSET_DELETE",
    "DELETE_GROUPS", "CONSUMER_GROUP_HEARTBEAT", "SHARE_GROUP_HEARTBEAT", "STREAMS_GROUP_HEARTBEAT",
    "ALTER_SHARE_GROUP_OFFSETS", "DELETE_SHARE_GROUP_OFFSETS", "SHARE_FETCH", "SHARE_ACKNOWLEDGE", "ADD_OFFSETS_TO_TXN",
    "INIT_PRODUCER_ID", "ADD_PARTITIONS_TO_TXN", "END_TXN")}
# Requests a broker may rightly hold: cut short by capping their waits; an answer still missing
# after _ANSWER_WAIT_S (beyond the largest timeout_ms drawn) counts as "no answer".
_ANSWER_WAIT_S = 8.0

SETUP_TOPICS = {"topic": 3, "a": 1}  # each partition holds one record
SINK_PARTITIONS = 2
# With --cluster: each set-up topic's replicas by partition (the first leads), alike on both
# clusters, so that leaders spread over the nodes and sit on the same node on both. `a` has
# one replica (and min.insync.replicas 1, so that its set-up record is written), the sink two.
CLUSTER_PLACEMENT = {"topic": [[1, 2, 3], [2, 3, 1], [3, 1, 2]], "a": [[3]], "sink": [[2, 3], [3, 1]]}
# The coordinators' topics, whose leaders --cluster aligns (align_coordinators).
_COORDINATOR_TOPICS = ("__consumer_offsets", "__transaction_state")


@dataclass(frozen=True)
class Names:
    """The set-up entities of one run; `tag` keeps them apart from other users of a shared broker."""

    tag: str

    def topic(self, base: str) -> str:
        return f"fz{self.tag}-{base}"

    @property
    def sink(self) -> str:
        return self.topic("sink")

    @property
    def group(self) -> str:
        return f"fz{self.tag}-group"

    def fresh(self, index: int, n: int) -> str:
        return f"fz{self.tag}-{index}-{n}"

    def missing(self, kind: str) -> str:
        return f"fz{self.tag}-no-{kind}"

    def is_fresh(self, name: str) -> bool:
        return re.match(rf"fz{self.tag}-\d+-\d+$", name) is not None


_GROUP_OR_TXN_FIELDS = {"group_id", "groups", "groups_names", "group_ids", "key", "coordinator_keys", "transactional_id",
                        "v3_and_below_transactional_id", "transactional_ids"}


def _placeholder(name: str) -> bytes:
    """A topic id that stands for `name`'s id, replaced by each broker's own when sent."""
    return b"\xfa\xce" + name.encode()[-14:].rjust(14, b"\x00")


_ZERO_ID = bytes(16)
_UNKNOWN_ID = bytes(range(1, 17))


# A group API's input may meet a group of its own populated on both brokers beforehand (see
# populate): its member ids and generation (or member epoch) stand in the request as these
# placeholders, replaced by each broker's own when sent, like topic ids.
_GROUP_APIS = {_api(n) for n in (
    "JOIN_GROUP", "SYNC_GROUP", "HEARTBEAT", "LEAVE_GROUP", "OFFSET_COMMIT", "TXN_OFFSET_COMMIT", "OFFSET_FETCH",
    "OFFSET_DELETE", "DELETE_GROUPS", "DESCRIBE_GROUPS", "CONSUMER_GROUP_HEARTBEAT", "CONSUMER_GROUP_DESCRIBE",
    "SHARE_GROUP_HEARTBEAT", "SHARE_FETCH", "SHARE_ACKNOWLEDGE", "SHARE_GROUP_DESCRIBE", "DESCRIBE_SHARE_GROUP_OFFSETS",
    "ALTER_SHARE_GROUP_OFFSETS", "DELETE_SHARE_GROUP_OFFSETS", "STREAMS_GROUP_HEARTBEAT", "STREAMS_GROUP_DESCRIBE",
    "STREAMS_GROUP_TOPOLOGY_DESCRIPTION_UPDATE")}
_CONSUMER_APIS = {_api(n) for n in ("CONSUMER_GROUP_HEARTBEAT", "CONSUMER_GROUP_DESCRIBE")}
_SHARE_APIS = {_api(n) for n in (
    "SHARE_GROUP_HEARTBEAT", "SHARE_FETCH", "SHARE_ACKNOWLEDGE", "SHARE_GROUP_DESCRIBE", "DESCRIBE_SHARE_GROUP_OFFSETS",
    "ALTER_SHARE_GROUP_OFFSETS", "DELETE_SHARE_GROUP_OFFSETS")}
_STREAMS_APIS = {_api(n) for n in ("STREAMS_GROUP_HEARTBEAT", "STREAMS_GROUP_DESCRIBE", "STREAMS_GROUP_TOPOLOGY_DESCRIPTION_UPDATE")}
# A transaction API's input may meet a transactional id of its own populated on both brokers
# (_populate_transaction); its producer id and epoch stand in the request as these placeholders.
_TXN_APIS = {_api(n) for n in (
    "INIT_PRODUCER_ID", "ADD_PARTITIONS_TO_TXN", "ADD_OFFSETS_TO_TXN", "END_TXN", "TXN_OFFSET_COMMIT", "PRODUCE",
    "DESCRIBE_TRANSACTIONS", "LIST_TRANSACTIONS", "DESCRIBE_PRODUCERS")}
MEMBER_PLACEHOLDERS = ("<member-1>", "<member-2>")
# The generation (member epoch) less one, itself, plus one: int32 values no table draws.
GENERATION_PLACEHOLDERS = {1_999_999_999: -1, 2_000_000_000: 0, 2_000_000_001: 1}
# A populated share group's session: its next epoch less one, itself, plus one (int32); and the
# first offset the set-up fetch acquired less one, itself, plus one (int64).
SESSION_PLACEHOLDERS = {1_899_999_999: -1, 1_900_000_000: 0, 1_900_000_001: 1}
ACQUIRED_PLACEHOLDERS = {6_999_999_999_999: -1, 7_000_000_000_000: 0, 7_000_000_000_001: 1}
# A populated transaction's producer id (int64) and epoch (int16) less one, itself, plus one.
PRODUCER_ID_PLACEHOLDERS = {8_999_999_999_999: -1, 9_000_000_000_000: 0, 9_000_000_000_001: 1}
PRODUCER_EPOCH_PLACEHOLDERS = {32_000: -1, 32_001: 0, 32_002: 1}
# Records standing for a batch of the populated producer: this prefix, then its epoch's offset
# from the producer's (int8), base sequence (int32) and whether it is transactional (int8).
TXN_BATCH_PLACEHOLDER = b"\xfa\xce<txn batch>"
_TXN_BATCH_FIELDS = struct.Struct(">bib")
_TXN_TIMEOUT_MS = 60000
# compat.fuzz's idempotent batches name producer ids up to this one.
_DRAWN_PRODUCER_IDS = 1000
POPULATED_SHARE = 0.25
# The set-up members' rebalance timeout, and the cap on a populated join's: a join that makes
# the group rebalance waits up to the largest for members that do not rejoin.
_POPULATED_REBALANCE_MS = 1000


@dataclass(frozen=True)
class Population:
    """The group input `index` meets populated: classic (members joined and synced, the first
    the leader), consumer (KIP-848: one member that has heartbeated), share (KIP-932: members
    heartbeated until assigned, the first with a share session whose fetch acquired the record
    of each of its partitions) or streams (KIP-1071: one member of a one-subtopology topology
    heartbeated until assigned tasks); or a transaction (`group` its transactional id, and the
    name of the group whose offsets it adds): initialised, the sink partitions `added` each
    given a record, `offsets` added, `ended` by "commit" or "abort" (only once something was
    added: Kafka refuses to end an empty transaction), by a transaction `version2` client
    (KIP-890: partitions added by its Produce, an epoch bumped by each end) or a version 1 one."""

    group: str
    kind: str
    members: int
    added: tuple[int, ...] = ()
    offsets: bool = False
    ended: str | None = None
    version2: bool = False


def population_of(seed: int, index: int, api: int, share: float, names: Names) -> Population | None:
    """Drawn from its own generator, so the rest of the input is drawn as without populated groups."""
    if (api not in _GROUP_APIS and api not in _TXN_APIS) or share <= 0:
        return None
    rng = random.Random(f"populated {seed} {index}")
    if rng.random() >= share:
        return None
    if api in _TXN_APIS:
        added, offsets = rng.choice(((), (0,), (0, 1))), rng.random() < 0.4
        ended = rng.choice((None, "commit", "abort")) if added or offsets else None
        return Population(names.fresh(index, 0), "transaction", 0, added, offsets, ended, rng.random() < 0.5)
    if api in _SHARE_APIS:
        # One member: two split the topics by the assignor's hash of each broker's own topic
        # ids, and end at a group epoch set by how the second join meets the first's assignment.
        return Population(names.fresh(index, 0), "share", 1)
    if api in _STREAMS_APIS:
        return Population(names.fresh(index, 0), "streams", 1)
    kind = "consumer" if api in _CONSUMER_APIS or rng.random() < 0.25 else "classic"
    return Population(names.fresh(index, 0), kind, 1 if kind == "consumer" else rng.choice((1, 2)))


class _Plausible(_Generator):
    """compat.fuzz's generator, without lies, choosing most values by the field's name."""

    def __init__(self, rng: random.Random, api: int, names: Names, index: int, population: Population | None = None) -> None:
        super().__init__(rng, lie_rate=0.0)
        self.api, self.names, self.index, self.made = api, names, index, 0
        self.population = population
        writes = api in _WRITES_TOPICS
        deletes = api in _DELETES_TOPICS
        known = [] if deletes else [names.sink] if writes else [names.topic(t) for t in SETUP_TOPICS]
        if population is not None and population.kind == "transaction" and not writes:
            known = [names.sink] + known  # where the populated transaction wrote
        self.topics = known + [names.missing("topic"), "", "bad/name", "a" * 250]
        self.topic_ids = [] if deletes else [_placeholder(t) for t in known]

    def _fresh(self) -> str:
        self.made += 1
        return self.names.fresh(self.index, self.made)

    def _text(self) -> str:
        return "".join(self.rng.choice(_TEXT_PIECES) for _ in range(self.rng.randint(0, 4)))

    def value(self, con: Any, depth: int = 0, name: str = "", parent: str = "") -> Any:
        rng = self.rng
        if isinstance(con, Message):
            out = {n: self.value(c, depth + 1, n, name) for n, c, _ in con.fields}
            for _, n, c, default in con.tagged:
                out[n] = self.value(c, depth + 1, n, name) if rng.random() < 0.3 else fresh_default(default)
            return out
        if isinstance(con, NullableStruct):
            return None if rng.random() < 0.2 else self.value(con.struct, depth, name, parent)
        if isinstance(con, Array):
            if con.nullable and rng.random() < 0.15:
                return None
            count = rng.choice((0, 1, 1, 1, 2, 2, 3)) if depth < 4 else rng.randint(0, 1)
            return [self.value(con.element, depth + 1, name, parent) for _ in range(count)]
        if isinstance(con, String):
            if con.nullable and rng.random() < 0.1:
                return None
            if self.population is not None and con.nullable and name in ("group_instance_id", "instance_id") and rng.random() < 0.7:
                return None  # the set-up members are dynamic: mostly, so is the request's
            return self._string(name, parent)
        if isinstance(con, Uuid) and name == "topic_id":
            choices = self.topic_ids * 3 + [_ZERO_ID, _UNKNOWN_ID]
            return rng.choice(choices)
        # A timeout of a few ms races Kafka's controller deadline: only the table's values, which
        # time out (<= 0) or not (>= 1 s) on both brokers alike.
        if (self.population is not None and name in ("generation_id", "generation_id_or_member_epoch", "member_epoch")
                and isinstance(con, Fixed) and con.type_name == "int32"):
            return rng.choice((*GENERATION_PLACEHOLDERS, 2_000_000_000, 2_000_000_000, -1, 0))
        if self.population is not None and self.population.kind == "share" and isinstance(con, Fixed):
            if name == "share_session_epoch":
                return rng.choice((*SESSION_PLACEHOLDERS, 1_900_000_000, 1_900_000_000, 0, -1))
            if name in ("first_offset", "last_offset"):
                return rng.choice((*ACQUIRED_PLACEHOLDERS, 7_000_000_000_000, 7_000_000_000_000, -1))
        if self.population is not None and self.population.kind == "transaction" and isinstance(con, Fixed):
            if name in ("producer_id", "v3_and_below_producer_id", "producer_id_filters"):
                return rng.choice((*PRODUCER_ID_PLACEHOLDERS, 9_000_000_000_000, 9_000_000_000_000, -1))
            if name in ("producer_epoch", "v3_and_below_producer_epoch"):
                return rng.choice((*PRODUCER_EPOCH_PLACEHOLDERS, 32_001, 32_001, -1))
        if isinstance(con, Fixed) and con.type_name in ("int8", "int16", "int32", "int64") and (
                rng.random() < 0.85 or name == "timeout_ms"):
            return self._int(name, con.type_name)
        if isinstance(con, Bytes) and not con.zero_copy and rng.random() < 0.5:
            return b"" if rng.random() < 0.5 else b"\x00\x01"
        return super().value(con, depth)

    def records(self) -> bytes:
        """Mostly, given a populated transaction, a batch of its producer (TXN_BATCH_PLACEHOLDER)."""
        rng = self.rng
        if self.population is None or self.population.kind != "transaction" or rng.random() >= 0.8:
            return super().records()
        return TXN_BATCH_PLACEHOLDER + _TXN_BATCH_FIELDS.pack(rng.choice((0, 0, 0, -1, 1)), rng.choice((0, 1, 1, 2, -1)),
                                                              rng.random() < 0.85)

    def _string(self, name: str, parent: str) -> str:
        rng = self.rng
        if rng.random() < 0.1:
            text = self._text()
            # A group or transaction a write names would exist for later inputs: a fresh one instead.
            written = self.api in _WRITES_GROUPS and name in _GROUP_OR_TXN_FIELDS
            return self._fresh() if written and text else text
        topicish = name in ("topic", "topic_name", "topic_names", "subscribed_topic_names", "source_topics") or (
            name == "name" and "topic" in parent) or (name == "resource_name" and rng.random() < 0.7)
        if topicish:
            return rng.choice(self.topics)
        if name in ("group_id", "groups", "groups_names", "group_ids", "key", "coordinator_keys"):
            if self.population is not None and rng.random() < 0.8:
                return self.population.group
            if self.api in _WRITES_GROUPS:  # never the missing group's name: a write would make it for later inputs
                return rng.choice((self._fresh(), self._fresh(), self._fresh(), ""))
            return rng.choice((self.names.group, self.names.group, self.names.missing("group"), self._fresh(), ""))
        if name in ("transactional_id", "v3_and_below_transactional_id", "transactional_ids"):
            if self.population is not None and self.population.kind == "transaction" and rng.random() < 0.8:
                return self.population.group
            return rng.choice((self._fresh(), self._fresh(), ""))
        if name == "member_id" and self.population is not None:
            known = MEMBER_PLACEHOLDERS[:self.population.members]
            return rng.choice(known * 3 + ("", "fz-member", self._fresh()))
        if name in ("member_id", "group_instance_id", "instance_id"):
            return rng.choice(("", "", "fz-member", self._fresh()))
        if name in ("protocol_type",):
            return rng.choice(("consumer", "", "connect"))
        if name in ("protocol_name", "server_assignor"):
            return rng.choice(("range", "uniform", "roundrobin", ""))
        if name == "name" and parent in ("configs",):
            return rng.choice(("cleanup.policy", "retention.ms", "min.insync.replicas", "no.such.config", ""))
        if name == "value":
            return rng.choice(("compact", "delete", "1000", "-1", "x", ""))
        if name in ("states_filter", "state_filters"):
            return rng.choice(("Empty", "Stable", "Ongoing", "Dead", "nonsense", ""))
        if name == "types_filter":
            return rng.choice(("classic", "consumer", "share", "streams", "nonsense"))
        if name == "mechanism":
            return rng.choice(("PLAIN", "SCRAM-SHA-256", "GSSAPI", ""))
        if name in ("entity_type",):
            return rng.choice(("user", "client-id", "ip", "nonsense"))
        if name in ("feature",):
            return rng.choice(("metadata.version", "group.version", "transaction.version", "nonsense"))
        if name in ("principal", "principal_filter"):
            return rng.choice(("User:alice", "User:*", "alice", ""))
        if name in ("host", "host_filter"):
            return rng.choice(("*", "127.0.0.1", "", "not-an-ip"))
        return rng.choice(("", self._fresh(), self.names.missing("thing"), self._text()))

    def _int(self, name: str, kind: str) -> int:
        rng = self.rng
        small = (-1, 0, 1, 2)
        table: dict[str, tuple[int, ...]] = {
            "partition_index": (0, 0, 1, 2, 3, -1, 100), "partition": (0, 0, 1, 2, 3, -1), "index": (0, 0, 1, 2, -1),
            "partitions": (0, 1, 2, 3, -1), "partition_indexes": (0, 1, 2, 3, -1),
            "producer_id": (-1, -1, 0, 1, 1000), "v3_and_below_producer_id": (-1, 0, 1000),
            "producer_epoch": (-1, 0, 0, 1, 32767), "v3_and_below_producer_epoch": (-1, 0, 1),
            "generation_id": (-1, 0, 1), "generation_id_or_member_epoch": (-1, 0, 1), "member_epoch": (0, 0, -1, -2, 1),
            "session_timeout_ms": (10000, 45000, 1, 10**9), "rebalance_timeout_ms": (-1, 30000, 1, 10**9),
            "timeout_ms": (1000, 5000, 5000, 30000, 0, -1), "max_wait_ms": (0, 0, 10), "min_bytes": (0, 1, 1 << 20),
            "max_bytes": (0, 1 << 20, -1), "partition_max_bytes": (0, 1 << 20, -1), "acks": (-1, -1, 1, 1, 0, 2),
            "replication_factor": (-1, 1, 1, 0, 2), "num_partitions": (-1, 1, 3, 0), "count": (1, 3, 5, 0, -1),
            "resource_type": (2, 2, 4, 3, 8, 0, 1, 99), "resource_type_filter": (2, 4, 1, 0, 99),
            "resource_types": (2, 4, 16, 32, 0, 99), "timestamp": (-1, -2, -3, -4, -5, 0, 1_700_000_000_000),
            "fetch_offset": (0, 1, 2, -1, 100), "offset": (0, 1, -1, 100), "committed_offset": (0, 1, -1, 100),
            "start_offset": (0, 1, -1, 100), "log_start_offset": (-1, 0), "first_offset": (0, 1, -1),
            "last_offset": (0, 1, -1), "isolation_level": (0, 0, 0, 1, 1, 1, 2, -1), "key_type": (0, 1, 2, 3, -1),
            "replica_id": (-1, -1, 0, 1, -2), "current_leader_epoch": (-1, 0, 1), "leader_epoch": (-1, 0, 1),
            "last_fetched_epoch": (-1, 0, 1), "session_id": (0, 0, 1, -1), "session_epoch": (-1, 0, 1, 2),
            "share_session_epoch": (0, -1, 1), "max_records": (1, 500, 0, -1), "batch_size": (1, 500, 0, -1),
            "broker_ids": (1, 2, -1), "replicas": (1, 2, -1), "config_operation": (0, 1, 2, 3, 4, -1),
            "operation": (0, 1, 2, 3, 4, 99), "permission_type": (0, 1, 2, 3, 99), "pattern_type_filter": (0, 1, 2, 3, 4, 99),
            "resource_pattern_type": (0, 1, 3, 4, 99), "match_type": (0, 1, 2, 99), "max_version_level": (0, 1, 20, -1),
            "upgrade_type": (0, 1, 2, 3, 99), "election_type": (0, 1, 2, -1), "endpoint_type": (0, 1, 2, 3),
            "node_id": (-1, 1, 2), "transaction_timeout_ms": (60000, 0, -1, 10**9), "duration_filter": (-1, 0, 1000),
            "producer_id_filters": (-1, 0, 1000), "retention_time_ms": (-1, 0, 1000), "compression_type": (0, 1, 5, -1),
            "acknowledge_types": (0, 1, 2, 3, 4, -1), "share_acquire_mode": (0, 1, 2, -1), "subscription_id": (0, 1, -1),
            "response_partition_limit": (1, 2, 2000, 0, -1), "committed_leader_epoch": (-1, 0, 1),
            "max_num_offsets": (1, 0, -1), "commit_timestamp": (-1, 0, 1_700_000_000_000),
            "max_lifetime_ms": (-1, 0, 86400000), "renew_period_ms": (-1, 0), "expiry_time_period_ms": (-1, 0),
        }
        bits = {"int8": 8, "int16": 16, "int32": 32, "int64": 64}[kind]
        limit = 2 ** (bits - 1)
        choice = rng.choice(table.get(name, small))
        return choice if -limit <= choice < limit else -1


_LEGAL_TOPIC = re.compile(r"(?!\.\.?$)[a-zA-Z0-9._-]{1,249}")


def _fix_up(api: int, version: int, body: dict[str, Any], known_topics: set[str],
            population: Population | None = None) -> dict[str, Any] | None:
    """The body made safe for the run's shared state, or None when this version cannot be."""
    if population is not None and api == ApiKey.JOIN_GROUP and body.get("rebalance_timeout_ms", 0) > 0:
        body["rebalance_timeout_ms"] = min(body["rebalance_timeout_ms"], _POPULATED_REBALANCE_MS)
    if api in _VALIDATE_ONLY:
        if "validate_only" not in body:
            return None
        body["validate_only"] = True
    if api == ApiKey.METADATA and "allow_auto_topic_creation" in body:
        body["allow_auto_topic_creation"] = False  # an auto-created topic would exist for later inputs
    if api == ApiKey.METADATA and version < 4 and body["topics"]:
        # Before v4 there is no flag: a missing topic of a legal name would be auto-created.
        body["topics"] = [t for t in body["topics"] if not _LEGAL_TOPIC.fullmatch(t["name"]) or t["name"] in known_topics]
    if api == ApiKey.FETCH:  # a replica id of 0 or more is a follower's fetch: inter-broker
        if "replica_id" in body:
            body["replica_id"] = -1
        if isinstance(body.get("replica_state"), dict):
            body["replica_state"]["replica_id"] = -1
    if api in (ApiKey.FETCH, ApiKey.SHARE_FETCH) and "max_wait_ms" in body:
        body["max_wait_ms"] = min(max(body["max_wait_ms"], 0), 10)
    return body


def make_request(seed: int, index: int, targets: list[tuple[int, int]], names: Names,
                 populated: float = 0.0) -> tuple[int, int, dict[str, Any] | None, Population | None]:
    """(api, version, body, population) of input `index`: body None when that version is not
    sent; population, drawn for a `populated` share of group APIs' inputs, the group to set up."""
    rng = random.Random((seed << 40) | index)
    api, version = rng.choice(targets)
    population = population_of(seed, index, api, populated, names)
    generator = _Plausible(rng, api, names, index, population)
    body = generator.value(request_struct(api, version))
    known = {names.topic(t) for t in SETUP_TOPICS} | {names.sink}
    return api, version, _fix_up(api, version, body, known, population), population


# --- Brokers ------------------------------------------------------------------------------


@dataclass
class Peer:
    """One broker as the fuzzer sees it: a connection, and the topic ids its set-up made."""

    name: str
    bootstrap: str
    topic_ids: dict[str, bytes] = field(default_factory=dict)
    sock: socket.socket | None = None
    # With --secured: the SASL_PLAINTEXT listener the inputs go to, as FUZZ_USER (set-up and
    # populated groups stay on `bootstrap`, whose anonymous principal is a super user).
    sasl_bootstrap: str | None = None
    # The populated group of the current input: its member ids by placeholder, its generation.
    members: dict[str, str] = field(default_factory=dict)
    generation: int = 0
    # A populated share group's: the session's next epoch, the first offset its fetch acquired;
    # and the set-up members' connections, held open until the input is answered (Kafka ends a
    # share session when its connection closes).
    session_epoch: int = 0
    acquired: int = 0
    held: list[Any] = field(default_factory=list)
    # A populated transaction's producer id and epoch (-1 without one).
    producer_id: int = -1
    producer_epoch: int = -1
    # With --cluster: each node's "host:port" by node id (node 1's is `bootstrap`), and the
    # node the current input goes to.
    nodes: dict[int, str] = field(default_factory=dict)
    node: int = 1

    @classmethod
    def of(cls, name: str, bootstrap: str) -> Peer:
        """A peer of a broker, or of a cluster whose bootstrap lists its nodes 1, 2, 3... in order."""
        addresses = bootstrap.split(",")
        return cls(name, addresses[0], nodes=dict(enumerate(addresses, start=1)) if len(addresses) > 1 else {})

    def aim(self, node: int) -> None:
        """Send the next input to `node` (a new connection when it changes)."""
        if node != self.node:
            self.close()
            self.node = node

    def connect(self) -> socket.socket:
        if self.sock is None:
            host, port = (self.sasl_bootstrap or self.nodes.get(self.node, self.bootstrap)).rsplit(":", 1)
            self.sock = socket.create_connection((host, int(port)), timeout=30)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.sasl_bootstrap is not None:
                log_in_as_fuzz_user(self.sock)
        return self.sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def release(self) -> None:
        """Close the held set-up members' connections."""
        for member in self.held:
            member.sock.close()
        self.held = []

    def ids_of(self, value: Any) -> Any:
        """`value` with each placeholder topic id replaced by this broker's id of that topic."""
        if isinstance(value, dict):
            return {k: self.ids_of(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.ids_of(v) for v in value]
        if isinstance(value, bytes) and len(value) == 16 and value[:2] == b"\xfa\xce":
            return next((tid for name, tid in self.topic_ids.items() if _placeholder(name) == value), _UNKNOWN_ID)
        if isinstance(value, str) and value in MEMBER_PLACEHOLDERS:
            return self.members.get(value, "fz-member-not-made")
        if isinstance(value, int) and not isinstance(value, bool) and value in GENERATION_PLACEHOLDERS:
            return self.generation + GENERATION_PLACEHOLDERS[value]
        if isinstance(value, int) and not isinstance(value, bool) and value in SESSION_PLACEHOLDERS:
            return self.session_epoch + SESSION_PLACEHOLDERS[value]
        if isinstance(value, int) and not isinstance(value, bool) and value in ACQUIRED_PLACEHOLDERS:
            return self.acquired + ACQUIRED_PLACEHOLDERS[value]
        if isinstance(value, int) and not isinstance(value, bool) and value in PRODUCER_ID_PLACEHOLDERS:
            return self.producer_id + PRODUCER_ID_PLACEHOLDERS[value]
        if isinstance(value, int) and not isinstance(value, bool) and value in PRODUCER_EPOCH_PLACEHOLDERS:
            return self.producer_epoch + PRODUCER_EPOCH_PLACEHOLDERS[value]
        if isinstance(value, bytes) and value.startswith(TXN_BATCH_PLACEHOLDER):
            epoch, sequence, transactional = _TXN_BATCH_FIELDS.unpack_from(value, len(TXN_BATCH_PLACEHOLDER))
            return self.batch(self.producer_epoch + epoch, sequence, bool(transactional))
        return value

    def batch(self, epoch: int, sequence: int, transactional: bool) -> bytes:
        """One record of the populated producer, stamped now (the sink keeps it past retention checks)."""
        return build_batch([Record(0, int(time.time() * 1000), b"k", b"v")], producer_id=self.producer_id,
                           producer_epoch=epoch, base_sequence=sequence, transactional=transactional)

    def id_name(self, topic_id: bytes) -> str:
        named = {tid: name for name, tid in self.topic_ids.items()}
        return f"<id of {named[topic_id]}>" if topic_id in named else "<zero id>" if topic_id == _ZERO_ID else "<other id>"


_PROBE_ID = 2**31 - 7


def log_in_as_fuzz_user(sock: socket.socket) -> None:
    """SaslHandshake v1 and SaslAuthenticate v2 (KIP-152) with PLAIN as FUZZ_USER, before anything else."""
    user, password = FUZZ_USER
    for correlation_id, (api, version, body) in enumerate((
            (ApiKey.SASL_HANDSHAKE, 1, {"mechanism": "PLAIN"}),
            (ApiKey.SASL_AUTHENTICATE, 2, {"auth_bytes": f"\0{user}\0{password}".encode()})), start=_PROBE_ID - 2):
        sock.sendall(encode_request(api, version, correlation_id, body, client_id="ottla-fuzz-differential"))
        frame = read_frame(sock)
        answer = None if frame is None else decode_response(api, version, frame)[1]
        if answer is None or answer["error_code"]:
            raise RuntimeError(f"fuzz: {ApiKey(api).name} as {user} answered {answer}")


def exchange(peers: tuple[Peer, Peer], api: int, version: int, body: dict[str, Any], correlation_id: int) -> list[dict[str, Any]]:
    """Send the request to both brokers at once; per broker the decoded answer, or
    {"<connection>": "closed"} / {"<connection>": "no answer"}. An acks=0 Produce is followed by
    an ApiVersions probe, which tells "not answered" (as it should be) from "closed"."""
    silent = api == ApiKey.PRODUCE and body.get("acks") == 0
    probe = encode_request(ApiKey.API_VERSIONS, 0, _PROBE_ID, {}) if silent else b""
    for peer in peers:
        frame = encode_request(api, version, correlation_id, peer.ids_of(body), client_id="ottla-fuzz-differential")
        try:
            peer.connect().sendall(frame + probe)
        except OSError:
            peer.close()
    return [_answer(peer, api, version, silent) for peer in peers]


def _answer(peer: Peer, api: int, version: int, silent: bool) -> dict[str, Any]:
    if peer.sock is None:
        return {"<connection>": "closed"}
    sock = peer.sock
    ready, _, _ = select.select([sock], [], [], _ANSWER_WAIT_S)
    if not ready:
        peer.close()  # hang up, as a client whose request timed out would
        return {"<connection>": "no answer"}
    try:
        frame = read_frame(sock)
    except OSError:
        frame = None
    if frame is None:
        peer.close()
        return {"<connection>": "closed"}
    if silent:
        if struct.unpack_from(">i", frame)[0] == _PROBE_ID:
            return {"<connection>": "not answered (acks=0)"}
        peer.close()  # the probe's answer is still coming: start afresh
    return decode_response(api, version, frame)[1]


def _produce_one(conns: list[_Connection], topic: str, partitions: int) -> None:
    """One record in each partition, through whichever node of `conns` leads it. Kafka's replica
    manager may lead a new partition a moment after Metadata names its leader, and answers
    NOT_LEADER_OR_FOLLOWER until then. Stamped now: Kafka deletes a record older than
    retention.ms (7 days) at its first retention check, 30 s after it starts."""
    batch = build_batch([Record(0, int(time.time() * 1000), b"k", b"v")])
    pending = list(range(partitions))

    def produced() -> bool:
        for conn in conns:
            if not pending:
                break
            answer = conn.call(ApiKey.PRODUCE, 9, {"acks": -1, "timeout_ms": 5000, "transactional_id": None, "topic_data": [
                {"name": topic, "partition_data": [{"index": p, "records": batch} for p in pending]}]})
            for entry in answer["responses"][0]["partition_responses"]:
                if entry["error_code"] == 0:
                    pending.remove(entry["index"])
                elif entry["error_code"] not in (ErrorCode.NOT_LEADER_FOR_PARTITION, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION):
                    raise RuntimeError(f"fuzz set-up: Produce to {topic} answered {answer}")
        return not pending

    if not wait_for(produced, timeout=30):
        raise RuntimeError(f"fuzz set-up: partitions {pending} of {topic} not led after 30 s")


_STARTING = (ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, ErrorCode.COORDINATOR_NOT_AVAILABLE, ErrorCode.NOT_COORDINATOR)


def _spread_ids(names: Names) -> list[str]:
    """Transactional ids no input draws, enough to hash to each of Kafka's 50 __transaction_state
    partitions: Kafka loads each partition on its own and answers NOT_COORDINATOR for an id of one
    not yet loaded, so one ready id does not make every fresh id ready."""
    return [names.missing(f"txn-{n}") for n in range(1000)]


def _creation(topic: str, partitions: int, placement: list[list[int]] | None) -> dict[str, Any]:
    """CreateTopics' entry for a set-up topic: one replica, or on a cluster as placed."""
    if placement is None:
        return {"name": topic, "num_partitions": partitions, "replication_factor": 1, "assignments": [], "configs": []}
    return {"name": topic, "num_partitions": -1, "replication_factor": -1,
            "assignments": [{"partition_index": i, "broker_ids": replicas} for i, replicas in enumerate(placement)],
            "configs": [{"name": "min.insync.replicas", "value": "1"}] if len(placement[0]) == 1 else []}


def _layout(conn: _Connection, topics: Any) -> dict[tuple[str, int], tuple[int, list[int], list[int]]]:
    """(leader, sorted replicas, sorted ISR) of each partition of `topics`, as Metadata gives them."""
    answer = conn.call(ApiKey.METADATA, 12, {"topics": [{"name": name, "topic_id": bytes(16)} for name in topics],
                                             "allow_auto_topic_creation": False, "include_topic_authorized_operations": False})
    return {(t["name"], p["partition_index"]): (p["leader_id"], sorted(p["replica_nodes"]), sorted(p["isr_nodes"]))
            for t in answer.get("topics", ()) if not t["error_code"] for p in t["partitions"]}


def _placed(conn: _Connection, placement: dict[str, list[list[int]]]) -> bool:
    """Whether every partition is led by its first replica, with every replica in sync."""
    layout = _layout(conn, placement)
    return all(layout.get((topic, index)) == (replicas[0], sorted(replicas), sorted(replicas))
               for topic, partitions in placement.items() for index, replicas in enumerate(partitions))


def align_coordinators(ottla: Peer, kafka: Peer) -> None:
    """Each partition of Ottla's coordinators' topics given the replicas of Kafka's, in Kafka's
    order, and its first replica's leadership (AlterPartitionReassignments, then a PREFERRED
    ElectLeaders): Kafka places these topics from a random start, and so a group or
    transactional id has then the same coordinator on both, and a request meets it, or
    NOT_COORDINATOR, on the same node of each cluster; an ElectLeaders input changes neither."""
    ours, theirs = _Connection(ottla.bootstrap), _Connection(kafka.bootstrap)
    try:
        wanted = _replicas(theirs, _COORDINATOR_TOPICS)
        if len(wanted) < 2 or any(leader < 0 for leader, _ in wanted.values()):
            raise RuntimeError(f"fuzz set-up: Kafka's coordinators' topics not all led: {wanted}")
        before = _replicas(ours, _COORDINATOR_TOPICS)
        moved = sorted(key for key, placed in wanted.items() if before.get(key) != placed)
        by_topic = {topic: [index for t, index in moved if t == topic] for topic, _ in moved}
        reassigned = ours.call(ApiKey.ALTER_PARTITION_REASSIGNMENTS, 0, {"timeout_ms": 30000, "topics": [
            {"name": topic, "partitions": [{"partition_index": i, "replicas": wanted[(topic, i)][1]} for i in indexes]}
            for topic, indexes in by_topic.items()]})
        if reassigned.get("error_code") or any(p["error_code"] for t in reassigned.get("responses", ()) for p in t["partitions"]):
            raise RuntimeError(f"fuzz set-up: Ottla's AlterPartitionReassignments answered {reassigned}")
        ours.call(ApiKey.ELECT_LEADERS, 2, {"election_type": 0, "timeout_ms": 30000, "topic_partitions": [
            {"topic": topic, "partitions": indexes} for topic, indexes in by_topic.items()]})
        if not wait_for(lambda: _replicas(ours, _COORDINATOR_TOPICS) == wanted, timeout=30):
            current = _replicas(ours, _COORDINATOR_TOPICS)
            raise RuntimeError(f"fuzz set-up: Ottla's coordinators not aligned: {sorted(set(current.items()) ^ set(wanted.items()))}")
    finally:
        ours.close()
        theirs.close()


def _replicas(conn: _Connection, topics: Any) -> dict[tuple[str, int], tuple[int, list[int]]]:
    """(leader, replicas in order) of each partition of `topics`."""
    answer = conn.call(ApiKey.METADATA, 12, {"topics": [{"name": name, "topic_id": bytes(16)} for name in topics],
                                             "allow_auto_topic_creation": False, "include_topic_authorized_operations": False})
    return {(t["name"], p["partition_index"]): (p["leader_id"], list(p["replica_nodes"]))
            for t in answer.get("topics", ()) if not t["error_code"] for p in t["partitions"]}


def node_of(seed: int, index: int, nodes: int) -> int:
    """The node input `index` goes to: node 1 of a single broker, else drawn from its own generator."""
    return 1 if nodes <= 1 else random.Random(f"node {seed} {index}").randint(1, nodes)


def set_up(peer: Peer, names: Names) -> None:
    """The same state on each broker: the set-up topics with a record in each partition, the
    sink topic, a group with committed offsets, and coordinators and producer ids ready. On a
    cluster the topics are placed by CLUSTER_PLACEMENT, and ready once each partition is led by
    its first replica with every replica in sync; a coordinator counts as ready once some node
    serves it (the others rightly answer NOT_COORDINATOR)."""
    conns = [_Connection(address) for address in (peer.nodes or {1: peer.bootstrap}).values()]
    conn = conns[0]
    try:
        topics = {names.topic(t): n for t, n in SETUP_TOPICS.items()} | {names.sink: SINK_PARTITIONS}
        placement = {names.topic(t): p for t, p in CLUSTER_PLACEMENT.items()} if peer.nodes else {}
        created = conn.call(ApiKey.CREATE_TOPICS, 5, {"timeout_ms": 5000, "validate_only": False, "topics": [
            _creation(t, n, placement.get(t)) for t, n in topics.items()]})
        if any(t["error_code"] for t in created["topics"]):
            raise RuntimeError(f"fuzz set-up: CreateTopics answered {created}")
        peer.topic_ids = _leaders_elected(conn, topics)
        if placement and not wait_for(lambda: _placed(conn, placement), timeout=60):
            raise RuntimeError(f"fuzz set-up: {peer.name}'s set-up topics not led and in sync as placed after 60 s: {_layout(conn, placement)}")
        for name, partitions in SETUP_TOPICS.items():
            _produce_one(conns, names.topic(name), partitions)

        def ready() -> bool:
            if (conn.call(ApiKey.FIND_COORDINATOR, 3, {"key": names.group, "key_type": 0})["error_code"]
                    or conn.call(ApiKey.FIND_COORDINATOR, 3, {"key": names.fresh(0, 0), "key_type": 1})["error_code"]
                    # on each node: Kafka's first producer id of a node is COORDINATOR_LOAD_IN_PROGRESS
                    # while its RPCProducerIdManager asks the controller for a block
                    or any(c.call(ApiKey.INIT_PRODUCER_ID, 0, {"transactional_id": None, "transaction_timeout_ms": 60000})["error_code"] for c in conns)
                    or all(c.call(ApiKey.OFFSET_FETCH, 8, {"groups": [{"group_id": names.group, "topics": []}],
                                                           "require_stable": False})["groups"][0]["error_code"] in _STARTING for c in conns)):
                return False
            served = {state["transactional_id"] for c in conns for state in c.call(ApiKey.DESCRIBE_TRANSACTIONS, 0, {
                "transactional_ids": _spread_ids(names)})["transaction_states"] if state["error_code"] not in _STARTING}
            return len(served) == len(_spread_ids(names))

        if not wait_for(ready, timeout=60):
            raise RuntimeError(f"fuzz set-up: coordinators or producer ids of {peer.name} not ready after 60 s")
        for c in conns:  # past the ids compat.fuzz draws for idempotent batches: no populated producer shares one
            for _ in range(2 * _DRAWN_PRODUCER_IDS):
                if c.call(ApiKey.INIT_PRODUCER_ID, 0, {"transactional_id": None, "transaction_timeout_ms": 60000})["producer_id"] > _DRAWN_PRODUCER_IDS:
                    break
            else:
                raise RuntimeError(f"fuzz set-up: {peer.name}'s producer ids stay at or below {_DRAWN_PRODUCER_IDS}")
        coordinator = conn.call(ApiKey.FIND_COORDINATOR, 3, {"key": names.group, "key_type": 0})["node_id"]
        committed = conns[list(peer.nodes).index(coordinator) if peer.nodes else 0].call(
            ApiKey.OFFSET_COMMIT, 2, {"group_id": names.group, "generation_id_or_member_epoch": -1, "member_id": "",
                                                        "retention_time_ms": -1, "topics": [
            {"name": names.topic("topic"), "partitions": [{"partition_index": 0, "committed_offset": 1, "committed_metadata": ""}]}]})
        if committed["topics"][0]["partitions"][0]["error_code"]:
            raise RuntimeError(f"fuzz set-up: OffsetCommit answered {committed}")
    finally:
        for c in conns:
            c.close()


# --- Secured (--secured) ----------------------------------------------------------------------

# The restricted user the inputs are sent as, on the SASL_PLAINTEXT listener (PLAIN).
FUZZER = "fuzzer"
FUZZ_USER = (FUZZER, "fuzzer-secret")
STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
# Kafka's AclOperation, AclPermissionType, ResourceType and PatternType codes.
_ALL, _READ, _WRITE, _CREATE, _DELETE, _ALTER, _DESCRIBE, _DESCRIBE_CONFIGS = 2, 3, 4, 5, 6, 7, 8, 10
_DENY, _ALLOW = 2, 3
_TOPIC, _GROUP, _CLUSTER, _TRANSACTIONAL_ID = 2, 3, 4, 5
_LITERAL, _PREFIXED = 3, 4


def secured_settings(host: str, plaintext: int, sasl: int) -> dict[str, str]:
    """Broker properties alike on both: StandardAuthorizer, nothing allowed without an ACL, a
    PLAINTEXT listener whose anonymous principal is a super user (set-up, ACLs) and a
    SASL_PLAINTEXT listener knowing only FUZZ_USER (PLAIN)."""
    user, password = FUZZ_USER
    ports = {"PLAINTEXT": plaintext, "SASL_PLAINTEXT": sasl}
    return {
        "listeners": ",".join(f"{name}://{host}:{port}" for name, port in ports.items()),
        "advertised.listeners": ",".join(f"{name}://{host}:{port}" for name, port in ports.items()),
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": "PLAIN",
        "listener.name.sasl_plaintext.sasl.enabled.mechanisms": "PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config":
            f'org.apache.kafka.common.security.plain.PlainLoginModule required user_{user}="{password}";',
        "authorizer.class.name": STANDARD_AUTHORIZER,
        "allow.everyone.if.no.acl.found": "false",
        "super.users": "User:ANONYMOUS",
    }


def fuzzer_acls(names: Names) -> list[tuple[int, str, int, int, int]]:
    """FUZZER's ACLs, (resource type, name, pattern type, operation, permission), chosen so that
    each kind of refusal is reachable. Topics: ALL on `topic` (but a DENY of ALTER) and on the
    sink, only DESCRIBE on `a`, CREATE on the missing names' prefix. Groups: READ on the set-up
    group's prefix and on the prefix of the fresh ids of inputs 1, 1x, 1xx, 1xxx, less a DENY
    on 11's prefix; only DESCRIBE on the missing group. Transactional ids: WRITE on the same
    fresh prefix less 12's. The cluster: DESCRIBE_CONFIGS only (no IDEMPOTENT_WRITE: an
    idempotent producer is allowed by its WRITE on a topic, KIP-679)."""
    tag = f"fz{names.tag}-"
    return [
        (_TOPIC, names.topic("topic"), _LITERAL, _ALL, _ALLOW),
        (_TOPIC, names.topic("topic"), _LITERAL, _ALTER, _DENY),
        (_TOPIC, names.sink, _LITERAL, _ALL, _ALLOW),
        (_TOPIC, names.topic("a"), _LITERAL, _DESCRIBE, _ALLOW),
        (_TOPIC, f"{tag}no-", _PREFIXED, _CREATE, _ALLOW),
        (_GROUP, names.group, _PREFIXED, _READ, _ALLOW),
        (_GROUP, f"{tag}1", _PREFIXED, _READ, _ALLOW),
        (_GROUP, f"{tag}11", _PREFIXED, _READ, _DENY),
        (_GROUP, names.missing("group"), _LITERAL, _DESCRIBE, _ALLOW),
        (_TRANSACTIONAL_ID, f"{tag}1", _PREFIXED, _WRITE, _ALLOW),
        (_TRANSACTIONAL_ID, f"{tag}12", _PREFIXED, _WRITE, _DENY),
        (_CLUSTER, "kafka-cluster", _LITERAL, _DESCRIBE_CONFIGS, _ALLOW),
    ]


def grant(peer: Peer, names: Names) -> None:
    """FUZZER's ACLs created through the admin API (CreateAcls) on `peer`'s super-user listener,
    then awaited until DescribeAcls, answered from the broker's own authorizer, lists them all."""
    acls = fuzzer_acls(names)
    conn = _Connection(peer.bootstrap)
    try:
        created = conn.call(ApiKey.CREATE_ACLS, 3, {"creations": [
            {"resource_type": kind, "resource_name": name, "resource_pattern_type": pattern, "principal": f"User:{FUZZER}",
             "host": "*", "operation": operation, "permission_type": permission}
            for kind, name, pattern, operation, permission in acls]})
        if any(r["error_code"] for r in created["results"]):
            raise RuntimeError(f"fuzz set-up: CreateAcls answered {created}")

        def listed() -> bool:
            answer = conn.call(ApiKey.DESCRIBE_ACLS, 3, {
                "resource_type_filter": 1, "resource_name_filter": None, "pattern_type_filter": 1,
                "principal_filter": f"User:{FUZZER}", "host_filter": None, "operation": 1, "permission_type": 1})
            ours = {name for _, name, _, _, _ in acls}  # earlier runs' ACLs on the same brokers aside
            return sum(len(r["acls"]) for r in answer.get("resources", ()) if r["resource_name"] in ours) == len(acls)

        if not wait_for(listed, timeout=30):
            raise RuntimeError(f"fuzz set-up: {peer.name}'s authorizer does not list the ACLs after 30 s")
    finally:
        conn.close()


class _Member:
    """A set-up member's own connection, so that a join or sync parked for another member's can
    be sent and its answer read later."""

    def __init__(self, bootstrap: str) -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        self.correlation_id = 0

    def send(self, api: int, version: int, body: dict[str, Any]) -> None:
        self.correlation_id += 1
        self.sock.sendall(encode_request(api, version, self.correlation_id, body, client_id="ottla-fuzz-differential"))

    def receive(self, api: int, version: int) -> dict[str, Any]:
        frame = read_frame(self.sock)
        if frame is None:
            raise ConnectionError(f"the broker closed a set-up member's connection on {ApiKey(api).name}")
        return decode_response(api, version, frame)[1]

    def call(self, api: int, version: int, body: dict[str, Any]) -> dict[str, Any]:
        self.send(api, version, body)
        return self.receive(api, version)


def _subscription(topic: str) -> bytes:
    """ConsumerProtocolSubscription v0 naming `topic`, no user data."""
    name = topic.encode()
    return struct.pack(">hih", 0, 1, len(name)) + name + struct.pack(">i", -1)


def _assignment(topic: str, partitions: list[int]) -> bytes:
    """ConsumerProtocolAssignment v0: `partitions` of `topic`, no user data."""
    name = topic.encode()
    return (struct.pack(">hih", 0, 1, len(name)) + name + struct.pack(f">i{len(partitions)}i", len(partitions), *partitions)
            + struct.pack(">i", -1))


class _SetUpRefused(Exception):
    """A populated group's set-up answered otherwise than a client expects."""


def _expect(answer: dict[str, Any], step: str, code: int = 0) -> dict[str, Any]:
    if answer.get("error_code") != code:
        raise _SetUpRefused(f"{step}: {_error_name(answer.get('error_code'))}")
    return answer


def populate(peer: Peer, population: Population, names: Names, consumer_version: int | None) -> str | None:
    """Set up `population` on `peer`, keeping its member ids and generation for the input; what
    went wrong, or None. A classic member joins in two steps (JoinGroup v4+ answers
    MEMBER_ID_REQUIRED with its id first, KIP-394); a second member's join rebalances the group,
    which completes when the first rejoins; syncs complete when the leader's does."""
    peer.release()
    peer.members, peer.generation, peer.session_epoch, peer.acquired = {}, 0, 0, 0
    peer.producer_id, peer.producer_epoch = -1, -1
    topic = names.topic("topic")
    opened: list[_Member] = []
    try:
        if population.kind == "transaction":
            _populate_transaction(peer, population, names, opened)
            return None
        if population.kind in ("share", "streams"):
            _populate_share_or_streams(peer, population, names, opened)
            peer.held, opened = opened, []
            return None
        if population.kind == "consumer":
            if consumer_version is None:
                return "ConsumerGroupHeartbeat not advertised by both"
            member = _Member(peer.bootstrap)
            opened.append(member)
            member_id = "" if consumer_version == 0 else str(uuid.uuid4())  # v1+: the member names itself (KIP-1082)
            beat = _expect(member.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, consumer_version, {
                "group_id": population.group, "member_id": member_id, "member_epoch": 0, "instance_id": None, "rack_id": None,
                "rebalance_timeout_ms": _POPULATED_REBALANCE_MS, "subscribed_topic_names": [topic],
                "subscribed_topic_regex": None, "server_assignor": None, "topic_partitions": []}), "ConsumerGroupHeartbeat")
            peer.members[MEMBER_PLACEHOLDERS[0]] = beat["member_id"]
            peer.generation = beat["member_epoch"]
            return None

        def join(member: _Member, member_id: str, send_only: bool = False) -> dict[str, Any] | None:
            body = {"group_id": population.group, "session_timeout_ms": 45000, "rebalance_timeout_ms": _POPULATED_REBALANCE_MS,
                    "member_id": member_id, "group_instance_id": None, "protocol_type": "consumer",
                    "protocols": [{"name": "range", "metadata": _subscription(topic)}]}
            member.send(ApiKey.JOIN_GROUP, 5, body)
            return None if send_only else member.receive(ApiKey.JOIN_GROUP, 5)

        def sync(member: _Member, member_id: str, generation: int, assignments: dict[str, list[int]]) -> None:
            member.send(ApiKey.SYNC_GROUP, 3, {"group_id": population.group, "generation_id": generation, "member_id": member_id,
                                               "group_instance_id": None, "assignments": [
                {"member_id": m, "assignment": _assignment(topic, p)} for m, p in assignments.items()]})

        first = _Member(peer.bootstrap)
        opened.append(first)
        id1 = _expect(join(first, "") or {}, "first JoinGroup", ErrorCode.MEMBER_ID_REQUIRED)["member_id"]
        joined = _expect(join(first, id1) or {}, "second JoinGroup")
        sync(first, id1, joined["generation_id"], {id1: [0, 1, 2]})
        _expect(first.receive(ApiKey.SYNC_GROUP, 3), "SyncGroup")
        peer.members[MEMBER_PLACEHOLDERS[0]], peer.generation = id1, joined["generation_id"]
        if population.members == 1:
            return None
        second = _Member(peer.bootstrap)
        opened.append(second)
        id2 = _expect(join(second, "") or {}, "second member's first JoinGroup", ErrorCode.MEMBER_ID_REQUIRED)["member_id"]
        join(second, id2, send_only=True)
        join(first, id1, send_only=True)
        joins = {id2: _expect(second.receive(ApiKey.JOIN_GROUP, 5), "second member's JoinGroup"),
                 id1: _expect(first.receive(ApiKey.JOIN_GROUP, 5), "first member's rejoin")}
        generation, leader = joins[id1]["generation_id"], joins[id1]["leader"]
        connections = {id1: first, id2: second}
        follower = id2 if leader == id1 else id1
        sync(connections[follower], follower, generation, {})
        sync(connections[leader], leader, generation, {id1: [0, 1], id2: [2]})
        for member_id in (leader, follower):
            _expect(connections[member_id].receive(ApiKey.SYNC_GROUP, 3), f"SyncGroup of the {'leader' if member_id == leader else 'follower'}")
        peer.members[MEMBER_PLACEHOLDERS[1]], peer.generation = id2, generation
        return None
    except (_SetUpRefused, OSError) as exc:
        return str(exc) or type(exc).__name__
    finally:
        for member in opened:
            member.sock.close()


def _populate_share_or_streams(peer: Peer, population: Population, names: Names, opened: list[_Member]) -> None:
    """Share: members joined by ShareGroupHeartbeat v1 (each naming itself, KIP-1082) to both
    set-up topics, heartbeated until each holds partitions at one epoch, then the first opens a
    share session (ShareFetch v1, epoch 0, at each attempt) until it has acquired the one record
    of each of its partitions; share.auto.offset.reset=earliest first, so that record is acquirable.
    Streams: one member of a one-subtopology topology over the set-up topic, heartbeated until
    it holds tasks; streams.initial.rebalance.delay.ms=0 first, so that comes at once."""
    topics = [names.topic(t) for t in SETUP_TOPICS]
    share = population.kind == "share"
    config = ("share.auto.offset.reset", "earliest") if share else ("streams.initial.rebalance.delay.ms", "0")
    configurer = _Member(peer.bootstrap)
    opened.append(configurer)
    altered = configurer.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {"resources": [{
        "resource_type": 32, "resource_name": population.group,
        "configs": [{"name": config[0], "config_operation": 0, "value": config[1]}]}], "validate_only": False})
    _expect(altered["responses"][0], f"IncrementalAlterConfigs {config[0]}")
    members = [_Member(peer.bootstrap) for _ in range(population.members)]
    opened.extend(members)
    ids = [base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=") for _ in members]
    epochs = [0] * len(members)
    assigned: list[Any] = [None] * len(members)

    def beat(n: int) -> None:
        joining = epochs[n] == 0
        if share:
            answer = _expect(members[n].call(ApiKey.SHARE_GROUP_HEARTBEAT, 1, {
                "group_id": population.group, "member_id": ids[n], "member_epoch": epochs[n], "rack_id": None,
                "subscribed_topic_names": topics if joining else None}), "ShareGroupHeartbeat")
            held = (answer["assignment"] or {}).get("topic_partitions")
        else:
            tasks = [] if joining else None
            answer = _expect(members[n].call(ApiKey.STREAMS_GROUP_HEARTBEAT, 0, {
                "group_id": population.group, "member_id": ids[n], "member_epoch": epochs[n], "endpoint_information_epoch": 0,
                "instance_id": None, "rack_id": None, "rebalance_timeout_ms": _POPULATED_REBALANCE_MS if joining else -1,
                "topology": {"epoch": 0, "subtopologies": [{
                    "subtopology_id": "0", "source_topics": topics[:1], "source_topic_regex": [], "state_changelog_topics": [],
                    "repartition_sink_topics": [], "repartition_source_topics": [], "copartition_groups": []}]} if joining else None,
                "active_tasks": tasks, "standby_tasks": tasks, "warmup_tasks": tasks, "process_id": ids[n], "user_endpoint": None,
                "client_tags": [] if joining else None, "task_offsets": None, "task_end_offsets": None,
                "shutdown_application": False}), "StreamsGroupHeartbeat")
            held = answer["active_tasks"]
        epochs[n] = answer["member_epoch"]
        if held is not None:
            assigned[n] = held

    def settled() -> bool:
        for n in range(len(members)):
            beat(n)
        return all(assigned) and len(set(epochs)) == 1

    if not wait_for(settled, timeout=30):
        raise _SetUpRefused(f"members not all assigned after 30 s: epochs {epochs}, assigned {assigned}")
    peer.members = dict(zip(MEMBER_PLACEHOLDERS, ids))
    peer.generation = epochs[0]
    if not share:
        return
    wanted = {(bytes(t["topic_id"]), p) for t in assigned[0] for p in t["partitions"]}
    acquired: dict[tuple[bytes, int], int] = {}

    # Each attempt opens the session afresh (epoch 0: what the member acquired stays acquired),
    # so that it stands at epoch 1 on both however many fetches Kafka's loading state took.
    def fetched() -> bool:
        answer = _expect(members[0].call(ApiKey.SHARE_FETCH, 1, {
            "group_id": population.group, "member_id": ids[0], "share_session_epoch": 0, "max_wait_ms": 500,
            "min_bytes": 1, "max_bytes": 1 << 20, "max_records": 500, "batch_size": 500,
            "topics": [{"topic_id": t["topic_id"], "partitions": [{"partition_index": p, "acknowledgement_batches": []}
                                                                  for p in t["partitions"]]} for t in assigned[0]],
            "forgotten_topics_data": []}), "ShareFetch")
        peer.session_epoch = 1
        for t in answer["responses"]:
            for p in t["partitions"]:
                _expect(p, "ShareFetch partition")
                for r in p["acquired_records"]:
                    acquired[(bytes(t["topic_id"]), p["partition_index"])] = r["first_offset"]
        return acquired.keys() >= wanted

    if not wait_for(fetched, timeout=30):
        raise _SetUpRefused(f"ShareFetch acquired {sorted(acquired)} of {sorted(wanted)} after 30 s")
    peer.acquired = min(acquired.values())


def _populate_transaction(peer: Peer, population: Population, names: Names, opened: list[_Member]) -> None:
    """As a transaction version 1 client: InitProducerId v4, AddPartitionsToTxn v3 of the sink
    partitions `added`, a transactional record (sequence 0) in each (Produce v9), AddOffsetsToTxn
    v3 for the group of the transaction's name, EndTxn v3; as a version 2 one, no
    AddPartitionsToTxn (Produce v12 adds them), AddOffsetsToTxn v4 and EndTxn v5. An ended
    transaction is awaited until DescribeTransactions shows it complete (Kafka writes the markers
    after answering), and its epoch (bumped by a version 2 end) then taken from there."""
    txn = population.group
    client = _Member(peer.bootstrap)
    opened.append(client)
    init = _expect(client.call(ApiKey.INIT_PRODUCER_ID, 4, {"transactional_id": txn, "transaction_timeout_ms": _TXN_TIMEOUT_MS,
                                                            "producer_id": -1, "producer_epoch": -1}), "InitProducerId")
    peer.producer_id, peer.producer_epoch = init["producer_id"], init["producer_epoch"]
    ids = {"transactional_id": txn, "producer_id": peer.producer_id, "producer_epoch": peer.producer_epoch}
    version2 = population.version2
    if population.added and not version2:
        added = client.call(ApiKey.ADD_PARTITIONS_TO_TXN, 3, {
            "v3_and_below_transactional_id": txn, "v3_and_below_producer_id": peer.producer_id,
            "v3_and_below_producer_epoch": peer.producer_epoch,
            "v3_and_below_topics": [{"name": names.sink, "partitions": list(population.added)}]})
        for topic in added["results_by_topic_v3_and_below"]:
            for partition in topic["results_by_partition"]:
                _expect({"error_code": partition["partition_error_code"]}, "AddPartitionsToTxn")
    if population.added:
        records = [{"index": p, "records": peer.batch(peer.producer_epoch, 0, True)} for p in population.added]
        produced = client.call(ApiKey.PRODUCE, 12 if version2 else 9, {"acks": -1, "timeout_ms": 5000, "transactional_id": txn,
                                                                       "topic_data": [{"name": names.sink, "partition_data": records}]})
        for partition in produced["responses"][0]["partition_responses"]:
            _expect(partition, "transactional Produce")
    if population.offsets:
        _expect(client.call(ApiKey.ADD_OFFSETS_TO_TXN, 4 if version2 else 3, ids | {"group_id": txn}), "AddOffsetsToTxn")
    if population.ended is None:
        return
    _expect(client.call(ApiKey.END_TXN, 5 if version2 else 3, ids | {"committed": population.ended == "commit"}),
            f"EndTxn ({population.ended})")
    complete = "CompleteCommit" if population.ended == "commit" else "CompleteAbort"
    described: dict[str, Any] = {}

    def completed() -> bool:
        described.update(client.call(ApiKey.DESCRIBE_TRANSACTIONS, 0, {"transactional_ids": [txn]})["transaction_states"][0])
        return described["transaction_state"] == complete

    if not wait_for(completed, timeout=30):
        raise _SetUpRefused(f"transaction not {complete} after 30 s: {described.get('transaction_state')}")
    peer.producer_id, peer.producer_epoch = described["producer_id"], described["producer_epoch"]


# --- Comparison -------------------------------------------------------------------------------

_IDENTITY = ("name", "user", "topic", "topic_name", "resource_type", "resource_name", "group_id", "transactional_id", "api_key", "partition_index",
             "partition_id", "partition", "index", "key", "node_id", "broker_id", "member_id", "entity_type", "entity_name")
# Arrays not compared, each with why.
_NOT_COMPARED = {
    (int(ApiKey.API_VERSIONS), "api_keys"): "the advertised versions differ by design (README: Known deviations)",
    (int(ApiKey.API_VERSIONS), "supported_features"): "feature levels differ by design (README: Known deviations)",
    (int(ApiKey.API_VERSIONS), "finalized_features"): "feature levels differ by design (README: Known deviations)",
    (int(ApiKey.DESCRIBE_QUORUM), "nodes"): "each broker's own listeners",
}
# Entries named by generated ids (a member, a broker's endpoints): only their count compares.
_COUNTED = {"members", "endpoints", "brokers", "listeners", "assignments", "owners", "renewers", "tokens", "creations"}


def _listing(api: int, body: dict[str, Any]) -> str | None:
    """The array of a whole-cluster listing in this request's answer: it keeps only set-up entities."""
    if api == ApiKey.LIST_GROUPS:
        return "groups"
    if api == ApiKey.LIST_TRANSACTIONS:
        return "transaction_states"
    if api == ApiKey.METADATA and (body.get("topics") is None or body.get("topics") == []):
        return "topics"
    if api == ApiKey.DESCRIBE_TOPIC_PARTITIONS and body.get("topics") == []:
        return "topics"
    if api == ApiKey.LIST_CONFIG_RESOURCES:
        return "config_resources"
    if api == ApiKey.DESCRIBE_LOG_DIRS and body.get("topics") is None:
        return "topics"
    return None


def is_message(key: str, value: Any) -> bool:
    """A free-text field: error_message, and any other string field named for a message."""
    return "message" in key and (value is None or isinstance(value, str))


_JAVA_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_KAFKA_UUID = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{21}[AQgw](?![A-Za-z0-9_-])")  # Uuid.toString: 16 bytes, base64url
_TIMESTAMP = re.compile(r"(?<!\d)1\d{12}(?!\d)")


def mask_message(text: str | None, peer: Peer, names: Names) -> str | None:
    """`text` with what legitimately differs between the brokers named by kind: this broker's
    topic ids and populated members' ids, other generated ids, its address, timestamps, and
    the run's tag and fresh names. None stays None: Kafka tells a null message from ""."""
    if text is None:
        return None
    for name, topic_id in peer.topic_ids.items():
        for form in (base64.urlsafe_b64encode(topic_id).decode().rstrip("="), topic_id.hex(), str(uuid.UUID(bytes=topic_id))):
            text = text.replace(form, f"<id of {name.removeprefix(f'fz{names.tag}-')}>")
    for placeholder, member_id in sorted(peer.members.items(), key=lambda item: -len(item[1])):
        if member_id:
            text = text.replace(member_id, placeholder)
    if peer.producer_id >= 0:
        text = re.sub(rf"(?<!\d){peer.producer_id}(?!\d)", "<producer id>", text)
    text = re.sub(rf"fz{names.tag}-\d+-\d+", "<fresh>", text).replace(f"fz{names.tag}-", "fz-")
    for address in {peer.bootstrap, *peer.nodes.values()}:
        port = address.rsplit(":", 1)[1]
        text = re.sub(rf"(?<!\d){port}(?!\d)", "<port>", text.replace(address, "<host:port>"))
    # A controller's refusal names the request by its Java toString (AuthHelper.authorizeClusterOperation).
    text = re.sub(r"Request\(processor=.*\)(?= needs \w+ permission)", "<request>", text)
    # UpdateFeatures names the active controller, which a Kafka cluster elects at random.
    text = re.sub(r"(?<=Local controller )\d+", "<controller>", text)
    text = _KAFKA_UUID.sub("<uuid>", _JAVA_UUID.sub("<uuid>", text))
    return _TIMESTAMP.sub("<timestamp>", text)


def skeleton(api: int, body: dict[str, Any], answer: dict[str, Any], peer: Peer, names: Names, messages: bool = False,
             populated: str | None = None) -> Any:
    """What is compared of an answer: error codes, and the entries of every array; with
    `messages`, the free-text messages too, masked (mask_message). A listing keeps the set-up
    entities and the input's own `populated` one (fresh names of earlier inputs may differ)."""
    listing = _listing(api, body)

    def keep(entry: Any) -> bool:
        label = " ".join(str(entry.get(k, "")) for k in _IDENTITY if isinstance(entry, dict))
        return f"fz{names.tag}-" in label and not any(names.is_fresh(w) and w != populated for w in label.split())

    def walk(value: Any, key: str, top: bool) -> Any:
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for k, v in value.items():
                if top and (api, k) in _NOT_COMPARED:
                    continue
                if k.endswith("error_code") or k == "<connection>":
                    out[k] = _error_name(v) if k != "<connection>" else v
                elif messages and is_message(k, v):
                    out[k] = mask_message(v, peer, names)
                elif isinstance(v, list):
                    items = [x for x in v if keep(x)] if k == listing and (top or api == ApiKey.DESCRIBE_LOG_DIRS) else v
                    out[k] = walk(items, k, False)
                elif isinstance(v, dict):
                    out[k] = walk(v, k, False)
                elif v is None and k not in ("error_message",):
                    out[k] = None
            return out
        if isinstance(value, list):
            if value and all(isinstance(x, dict) for x in value):
                if key in _COUNTED:
                    return {"<count>": len(value), "<errors>": sorted({json.dumps(walk(x, key, False), sort_keys=True) for x in value})}
                out = {}
                for x in value:  # Kafka answers from maps: duplicate entries of a request merge
                    label, shape = _label(x, peer, names), walk(x, key, False)
                    if label in out:
                        out["<duplicates>"] = out.get("<duplicates>", 0) + 1
                        shape = _merge(out[label], shape)
                    out[label] = shape
                return out
            return {"<count>": len(value)} if value else {}
        return value

    return walk(answer, "", True)


def _merge(a: Any, b: Any) -> Any:
    """Two shapes of entries with one name as one: `b`'s fields over `a`'s, entries of both."""
    if isinstance(a, dict) and isinstance(b, dict):
        return {k: _merge(a[k], b[k]) if k in a and k in b else b.get(k, a.get(k)) for k in a.keys() | b.keys()}
    return b


def _label(item: dict[str, Any], peer: Peer, names: Names) -> str:
    parts = [f"type={item[k]}" if k == "resource_type" else str(item[k])
             for k in _IDENTITY if k in item and k != "member_id" and item[k] is not None]
    if "topic_id" in item and isinstance(item["topic_id"], (bytes, bytearray, memoryview)):
        parts.append(peer.id_name(bytes(item["topic_id"])))
    if isinstance(item.get("entity"), list):  # a client quota entity: its (type, name) pairs
        parts += sorted(f"{e.get('entity_type')}={e.get('entity_name')}" for e in item["entity"] if isinstance(e, dict))
    return "[" + ",".join(parts) + "]" if parts else "[?]"


def _error_name(code: Any) -> Any:
    try:
        return ErrorCode(code).name
    except (ValueError, TypeError):
        return code


_ABSENT = "<absent>"


def differences(ottla: Any, kafka: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    if isinstance(ottla, dict) and isinstance(kafka, dict):
        if "<connection>" in ottla or "<connection>" in kafka:
            a, b = ottla.get("<connection>", "answered"), kafka.get("<connection>", "answered")
            return [] if a == b else [(path + ".<connection>", a, b)]
        if ottla.get("error_code", 0) != kafka.get("error_code", 0):
            # An entry refused on one broker only: what it holds besides follows from that.
            return [(path + ".error_code", ottla.get("error_code", _ABSENT), kafka.get("error_code", _ABSENT))]
        # A message is compared only beside the same error codes: it follows from them.
        codes_alike = all(ottla.get(k) == kafka.get(k) for k in ottla.keys() | kafka.keys() if str(k).endswith("error_code"))
        out = []
        for key in sorted(ottla.keys() | kafka.keys(), key=str):
            a, b = ottla.get(key, _ABSENT), kafka.get(key, _ABSENT)
            if "message" in str(key) and not isinstance(a, dict) and not isinstance(b, dict) and not codes_alike:
                continue
            sep = "" if key.startswith("[") else "."
            if isinstance(a, dict) and isinstance(b, dict):
                out += differences(a, b, f"{path}{sep}{key}")
            elif a != b:
                shown = (lambda v: "present" if isinstance(v, dict) else v)
                out.append((f"{path}{sep}{key}", shown(a), shown(b)))
        return out
    return [] if ottla == kafka else [(path, ottla, kafka)]


def generic(path: str, names: Names) -> str:
    """A difference's path with each entry's name reduced to its kind, so alike differences group:
    set-up names stay, others become <fresh> or <other name>, and numbers <n>."""

    def part(text: str) -> str:
        if text.startswith("<") or "=" in text:
            return text
        if text.startswith(f"fz{names.tag}-"):
            return "<fresh>" if names.is_fresh(text) else text.removeprefix(f"fz{names.tag}-")
        if re.fullmatch(r"-?\d+", text):
            return "<n>"
        return "''" if text == "" else "<other name>"

    return re.sub(r"\[([^\]]*)\]", lambda m: "[" + ",".join(part(t) for t in m.group(1).split(",")) + "]", path)


# --- The run ----------------------------------------------------------------------------------


@dataclass
class Finding:
    """Alike differences: one API version, one field, the same two answers."""

    api: str
    path: str
    ottla: Any
    kafka: Any
    inputs: list[int] = field(default_factory=list)
    versions: set[int] = field(default_factory=set)

    def where(self, version: int) -> str:
        return f"request {self.api} v{version}: {self.path}"

    def kind(self) -> str:
        deviation = Difference(self.where(min(self.versions)), self.ottla, self.kafka).deviation()
        if deviation is not None:
            return f"deviation: {deviation.name}"
        if self.kafka == "UNKNOWN_SERVER_ERROR":
            return "Kafka's UNKNOWN_SERVER_ERROR (an exception in Kafka?)"
        return "difference"


def _entries(body: dict[str, Any], *path: str) -> list[dict[str, Any]]:
    """The entries at `path` (array field names, outermost first) of a request body."""
    entries = [body]
    for key in path:
        entries = [x for e in entries for x in (e.get(key) or []) if isinstance(x, dict)]
    return entries


def _repeats(values: list[Any]) -> bool:
    return len(values) != len(set(values))


@dataclass(frozen=True)
class KnownCrash:
    """A request Kafka 4.4 answers with an exception of its own (UNKNOWN_SERVER_ERROR) or never
    answers (`answer` "no answer": its handler throws where no answer is sent). Ottla's answer is
    not copied from it, so every run meets the difference: an input `matches` (version, body)
    with a difference whose Kafka side is `answer` is counted as this crash, apart, with all its
    differences. `whole` when Kafka throws before reading the entries: its error path then
    answers every entry as listed (even one it would leave out), so any difference is the crash."""

    what: str
    api: int
    answer: str
    matches: Callable[[int, dict[str, Any]], bool]
    whole: bool = False
    secured: bool = False  # only under an authorizer (--secured)

    def explains(self, api: int, version: int, body: dict[str, Any], kafka: Any, secured: bool = False) -> bool:
        return (api == self.api and (self.whole or kafka == self.answer) and (secured or not self.secured)
                and self.matches(version, body))


# Kafka's FetchSessionCache picks a session's shard as session id / (Integer.MAX_VALUE / 8
# shards), unchecked: an id outside [0, 8 * that) (bar the first, truncated toward 0) indexes
# past its list.
_FETCH_SESSION_RANGE = (2**31 - 1) // 8


def _set_up_partitions(name: Any) -> int | None:
    """How many partitions the set-up topic `name` has (any run's tag), None for other names."""
    found = re.fullmatch(r"fz[0-9a-f]{6}-(.+)", name) if isinstance(name, str) else None
    return None if found is None else (SETUP_TOPICS | {"sink": SINK_PARTITIONS}).get(found.group(1))


def _share_offsets_of_set_up_topics(body: dict[str, Any]) -> list[tuple[str, int, list[int]]]:
    """DescribeShareGroupOffsets' (group id, partition count, partitions) for each set-up topic
    named: only those reach Kafka's share state persister (a missing topic is answered apart)."""
    return [(g.get("group_id"), count, t.get("partitions") or []) for g in _entries(body, "groups")
            for t in g.get("topics") or [] if (count := _set_up_partitions(t.get("topic_name"))) is not None]


def _share_offsets_rejected_groups(body: dict[str, Any]) -> list[Any]:
    """The group ids of DescribeShareGroupOffsets' entries that Kafka's DefaultStatePersister.validate
    throws on (group "", a set-up topic's empty partition list or a negative partition): Kafka
    answers each such entry alone UNKNOWN_SERVER_ERROR, its other entries as usual."""
    return [g.get("group_id") for g in _entries(body, "groups")
            if any(group == "" or not partitions or min(partitions) < 0
                   for group, _, partitions in _share_offsets_of_set_up_topics({"groups": [g]}))]


# Each confirmed on the reference Kafka 4.4 (python -m compat.fuzz_differential ... --replay I).
KNOWN_KAFKA_CRASHES = (
    KnownCrash("ListOffsets with an isolation level other than 0 or 1 (IsolationLevel.forId throws)", ApiKey.LIST_OFFSETS,
               "UNKNOWN_SERVER_ERROR", lambda v, b: v >= 2 and b.get("isolation_level", 0) not in (0, 1), whole=True),
    KnownCrash("Fetch with a session id outside FetchSessionCache's shards", ApiKey.FETCH, "UNKNOWN_SERVER_ERROR",
               lambda v, b: not -_FETCH_SESSION_RANGE < b.get("session_id", 0) < 8 * _FETCH_SESSION_RANGE),
    KnownCrash("Fetch with a negative max_bytes", ApiKey.FETCH, "UNKNOWN_SERVER_ERROR",
               lambda v, b: b.get("max_bytes", 0) < 0),
    KnownCrash("Fetch v13+ naming a partition of the zero topic id beside another partition", ApiKey.FETCH, "UNKNOWN_SERVER_ERROR",
               lambda v, b: v >= 13 and len(_entries(b, "topics", "partitions")) > 1
               and any(t.get("topic_id") == _ZERO_ID and t.get("partitions") for t in _entries(b, "topics"))),
    KnownCrash("Metadata v13+ naming a topic by a zero id and a null name", ApiKey.METADATA, "UNKNOWN_SERVER_ERROR",
               lambda v, b: v >= 13 and any(t.get("name") is None and t.get("topic_id") == _ZERO_ID for t in _entries(b, "topics"))),
    KnownCrash('DescribeTopicPartitions naming ""', ApiKey.DESCRIBE_TOPIC_PARTITIONS, "UNKNOWN_SERVER_ERROR",
               lambda v, b: any(t.get("name") == "" for t in _entries(b, "topics"))),
    KnownCrash("OffsetFetch v9-10 with a null member id", ApiKey.OFFSET_FETCH, "UNKNOWN_SERVER_ERROR",
               lambda v, b: 9 <= v <= 10 and any(g.get("member_id") is None for g in _entries(b, "groups"))),
    KnownCrash("AlterShareGroupOffsets naming a negative partition", ApiKey.ALTER_SHARE_GROUP_OFFSETS, "UNKNOWN_SERVER_ERROR",
               lambda v, b: any(p.get("partition_index", 0) < 0 for p in _entries(b, "topics", "partitions"))),
    KnownCrash("IncrementalAlterConfigs with an unknown operation (OpType.forId returns null)", ApiKey.INCREMENTAL_ALTER_CONFIGS,
               "UNKNOWN_SERVER_ERROR", lambda v, b: any(c.get("config_operation") not in (0, 1, 2, 3) for c in _entries(b, "resources", "configs"))),
    KnownCrash("AlterConfigs naming a resource twice", ApiKey.ALTER_CONFIGS, "no answer",
               lambda v, b: _repeats([(r.get("resource_type"), r.get("resource_name")) for r in _entries(b, "resources")])),
    KnownCrash("AlterConfigs with an unknown resource type", ApiKey.ALTER_CONFIGS, "no answer",
               lambda v, b: any(r.get("resource_type") not in (2, 4, 8, 16, 32) for r in _entries(b, "resources"))),
    KnownCrash("JoinGroup listing a protocol twice", ApiKey.JOIN_GROUP, "no answer",
               lambda v, b: _repeats([p.get("name") for p in _entries(b, "protocols")])),
    KnownCrash("Produce with null records", ApiKey.PRODUCE, "no answer",
               lambda v, b: any(p.get("records") is None for p in _entries(b, "topic_data", "partition_data"))),
    KnownCrash("DescribeUserScramCredentials refused with null users (getErrorResponse iterates them)",
               ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS, "no answer", lambda v, b: b.get("users", []) is None),
    KnownCrash("ShareFetch naming an unknown topic id, with an authorizer (AuthHelper.filterByAuthorized's null name)",
               ApiKey.SHARE_FETCH, "UNKNOWN_SERVER_ERROR", lambda v, b: any(
                   t.get("topic_id") in (_ZERO_ID, _UNKNOWN_ID) for t in _entries(b, "topics") + _entries(b, "forgotten_topics_data")),
               secured=True),
    KnownCrash("ShareAcknowledge naming an unknown topic id, with an authorizer (AuthHelper.filterByAuthorized's null name)",
               ApiKey.SHARE_ACKNOWLEDGE, "UNKNOWN_SERVER_ERROR",
               lambda v, b: any(t.get("topic_id") in (_ZERO_ID, _UNKNOWN_ID) for t in _entries(b, "topics")), secured=True),
    KnownCrash("ShareFetch v2+ with a share acquire mode other than 0 or 1 (ShareAcquireMode.forId throws)", ApiKey.SHARE_FETCH,
               "UNKNOWN_SERVER_ERROR", lambda v, b: v >= 2 and b.get("share_acquire_mode", 0) not in (0, 1)),
    KnownCrash("ShareFetch with a negative max_bytes (LogSegment.read throws): every partition read answered so", ApiKey.SHARE_FETCH,
               "UNKNOWN_SERVER_ERROR", lambda v, b: b.get("max_bytes", 0) < 0, whole=True),
    KnownCrash('DescribeShareGroupOffsets of group "", an existing topic\'s empty partition list or a negative partition '
               "(DefaultStatePersister.validate throws)", ApiKey.DESCRIBE_SHARE_GROUP_OFFSETS, "UNKNOWN_SERVER_ERROR",
               lambda v, b: bool(_share_offsets_rejected_groups(b))),
    KnownCrash("DescribeShareGroupOffsets naming a group twice, one entry of which DefaultStatePersister.validate throws on "
               "(entries of one name merge, so a later entry's answer covers its UNKNOWN_SERVER_ERROR: its topics are absent)",
               ApiKey.DESCRIBE_SHARE_GROUP_OFFSETS, _ABSENT, lambda v, b: any(
                   [g.get("group_id") for g in _entries(b, "groups")].count(group) > 1 for group in _share_offsets_rejected_groups(b))),
    KnownCrash("DescribeShareGroupOffsets naming a partition past an existing topic's count (the share coordinator never answers)",
               ApiKey.DESCRIBE_SHARE_GROUP_OFFSETS, "no answer",
               lambda v, b: any(max(partitions, default=-1) >= count for _, count, partitions in _share_offsets_of_set_up_topics(b))),
)


def known_crash(api: int, version: int, body: dict[str, Any], kafka: Any, secured: bool = False) -> KnownCrash | None:
    """The first known Kafka crash that explains Kafka's side `kafka` of a difference, if any
    (`secured`: the brokers run an authorizer)."""
    return next((crash for crash in KNOWN_KAFKA_CRASHES if crash.explains(api, version, body, kafka, secured)), None)


@dataclass
class Report:
    seed: int
    sent: int = 0
    not_sent: int = 0
    populated: int = 0
    targets: int = 0
    per_api: collections.Counter[str] = field(default_factory=collections.Counter)
    findings: dict[tuple[str, str, str, str], Finding] = field(default_factory=dict)
    crashes: dict[str, list[int]] = field(default_factory=dict)  # inputs by the known Kafka crash they met
    seconds: float = 0.0

    def add(self, api: str, version: int, path: str, ottla: Any, kafka: Any, index: int) -> None:
        key = (api, path, json.dumps(ottla, default=str), json.dumps(kafka, default=str))
        finding = self.findings.setdefault(key, Finding(api, path, ottla, kafka))
        finding.inputs.append(index)
        finding.versions.add(version)

    def lines(self, replay: Callable[[int], str]) -> list[str]:
        ordered = sorted(self.findings.values(), key=lambda f: (-len(f.inputs), f.api, f.path))
        out = [f"seed {self.seed}: {self.sent:,} requests sent to both ({self.not_sent:,} drawn and not sent), "
               f"{self.targets} API versions, {self.populated:,} meeting a populated group, {self.seconds:.0f} s; "
               f"{len(ordered)} kinds of difference "
               f"in {len({i for f in ordered for i in f.inputs}):,} requests"
               f"; {sum(len(i) for i in self.crashes.values()):,} requests met a known Kafka crash (KNOWN_KAFKA_CRASHES)"]
        for f in ordered:
            versions = ",".join(str(v) for v in sorted(f.versions))
            out.append(f"{len(f.inputs):>5}x {f.api} v{versions} {f.path}: Ottla {f.ottla}, Kafka {f.kafka}  [{f.kind()}]")
            out.append(f"        replay: {replay(f.inputs[0])}")
        for what, inputs in sorted(self.crashes.items(), key=lambda item: (-len(item[1]), item[0])):
            out.append(f"{len(inputs):>5}x known Kafka crash, not a difference: {what}")
            out.append(f"        replay: {replay(inputs[0])}")
        return out


def targets_of(ottla: str, kafka: str, apis: set[int] | None = None) -> list[tuple[int, int]]:
    """Every version of every API both advertise, but the skipped ones."""
    ours, theirs = advertised(ottla), advertised(kafka)
    out = []
    for api in sorted(ours.keys() & theirs.keys()):
        if api in SKIPPED or (apis is not None and api not in apis):
            continue
        low, high = max(ours[api][0], theirs[api][0]), min(ours[api][1], theirs[api][1])
        if api == ApiKey.ADD_PARTITIONS_TO_TXN:
            high = min(high, 3)  # v4+ (KIP-890) is for brokers verifying a transaction
        out += [(api, v) for v in range(low, high + 1)]
    return out


def run(ottla: str, kafka: str, seed: int, count: int, *, apis: set[int] | None = None, only: int | None = None,
        show: Callable[[str], None] | None = None, messages: bool = False, populated: float = POPULATED_SHARE,
        sasl: tuple[str, str] | None = None) -> Report:
    """`count` inputs of `seed` (or only input `only`, with both answers shown) on brokers just set
    up; `messages` compares free-text messages too; a `populated` share of group APIs' inputs
    meets a group populated for it (a set-up refused on one broker only is a difference; on
    both alike, the input is not sent). With `sasl` (each broker's SASL_PLAINTEXT listener),
    the inputs go there as FUZZER, under fuzzer_acls. Given clusters (bootstraps listing nodes
    1, 2, 3... in order), each input goes to the node node_of draws, on both, once the
    coordinators are aligned (align_coordinators)."""
    tag = uuid.uuid4().hex[:6]
    names = Names(tag)
    peers = (Peer.of("Ottla", ottla), Peer.of("Kafka", kafka))
    for peer, listener in zip(peers, sasl or (None, None)):
        set_up(peer, names)
        if listener is not None:
            grant(peer, names)
            peer.sasl_bootstrap = listener
    if peers[0].nodes:
        align_coordinators(*peers)
    ottla, kafka = peers[0].bootstrap, peers[1].bootstrap
    targets = targets_of(ottla, kafka, apis)
    if not targets:
        skipped = sorted(f"{ApiKey(api).name} ({SKIPPED[api]})" for api in apis or () if api in SKIPPED)
        raise SystemExit(f"fuzz_differential: no API version both brokers advertise is left to send{'; not sent: ' + ', '.join(skipped) if skipped else ''}")
    report = Report(seed, targets=len(targets))
    consumer_version = max((v for _, v in targets_of(ottla, kafka, {int(ApiKey.CONSUMER_GROUP_HEARTBEAT)})), default=None)
    started = time.monotonic()
    try:
        for index in range(count) if only is None else [only]:
            api, version, body, population = make_request(seed, index, targets, names, populated)
            if body is None:
                report.not_sent += 1
                continue
            for peer in peers:
                peer.members, peer.generation, peer.producer_id, peer.producer_epoch = {}, 0, -1, -1
                peer.aim(node_of(seed, index, len(peer.nodes)))
            if population is not None:
                # Side by side: each broker's set-up mostly waits on its own timers (a share group's
                # first assignment, Kafka's share state loading).
                with ThreadPoolExecutor(len(peers)) as pool:
                    refused = list(pool.map(lambda peer: _populate_at_coordinator(peer, population, names, consumer_version), peers))
                if show is not None:
                    show(f"populated {population}: " + "; ".join(
                        f"{peer.name} {why or f'members {peer.members}, generation {peer.generation}, session epoch {peer.session_epoch}, acquired {peer.acquired}, producer {peer.producer_id} epoch {peer.producer_epoch}'}"
                        for peer, why in zip(peers, refused)))
                if any(refused):
                    if refused[0] != refused[1]:
                        report.add(ApiKey(api).name, version, ".<populated set-up>", refused[0] or "done", refused[1] or "done", index)
                    report.not_sent += 1
                    continue
                report.populated += 1
            answers = exchange(peers, api, version, body, correlation_id=index + 1)
            for peer in peers:
                peer.release()
            report.sent += 1
            report.per_api[ApiKey(api).name] += 1
            shapes = [skeleton(api, body, answer, peer, names, messages, population.group if population else None)
                      for answer, peer in zip(answers, peers)]
            if show is not None:
                show(f"input {index}: {ApiKey(api).name} v{version}{f' to node {peers[0].node}' if peers[0].nodes else ''}\n"
                     f"  request: {_brief(body)}")
                for peer, answer in zip(peers, answers):
                    show(f"  {peer.name}: {_brief(answer)}")
            found = differences(*shapes)
            # Kafka's answer to a crash is its error path's (every entry failed, as listed): the
            # input's other differences follow from it.
            crash = next((c for _, _, theirs in found if (c := known_crash(api, version, body, theirs, sasl is not None)) is not None), None)
            if crash is not None:
                report.crashes.setdefault(crash.what, []).append(index)
                continue
            for path, a, b in found:
                report.add(ApiKey(api).name, version, generic(path, names), a, b, index)
    finally:
        for peer in peers:
            peer.close()
            peer.release()
    report.seconds = time.monotonic() - started
    return report


def _populate_at_coordinator(peer: Peer, population: Population, names: Names, consumer_version: int | None) -> str | None:
    """populate through the group's (or transaction's) coordinator: on a cluster, the node
    FindCoordinator names (the others answer the members NOT_COORDINATOR)."""
    if not peer.nodes:
        return populate(peer, population, names, consumer_version)
    first = peer.bootstrap
    found = call_once(first, ApiKey.FIND_COORDINATOR, 3, {"key": population.group, "key_type": 1 if population.kind == "transaction" else 0})
    peer.bootstrap = peer.nodes.get(found.get("node_id", -1), first)
    try:
        return populate(peer, population, names, consumer_version)
    finally:
        peer.bootstrap = first


def _brief(value: Any) -> str:
    def plain(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, list):
            return [plain(x) for x in v]
        if isinstance(v, (bytes, bytearray, memoryview)):
            data = bytes(v)
            return data.hex() if len(data) <= 32 else f"<{len(data)} bytes>"
        return v

    return json.dumps(plain(value), default=str, ensure_ascii=False)


# The coordinators' topics sized as Kafka's defaults size them (Ottla's single node defaults to
# one partition each): a group's or transactional id's partition then holds the same neighbours
# on both, so that listings and producer state met by partition compare. Given to both, so that
# DescribeConfigs' sources compare alike. Ottla keeps share state in one partition whatever
# share.coordinator.state.topic.num.partitions says, so that one is left to each side's default.
COORDINATOR_PARTITIONS = {"offsets.topic.num.partitions": "50", "transaction.state.log.num.partitions": "50"}


@contextmanager
def _fresh_pair() -> Iterator[tuple[Any, Any]]:
    """A fresh `ottla serve` and reference Kafka configured alike (REFERENCE_SETTINGS, and
    COORDINATOR_PARTITIONS on both): (the OttlaBroker, the ReferenceKafka)."""
    from compat.differential import REFERENCE_SETTINGS
    from compat.harness import OttlaBroker
    from compat.kafka import ReferenceKafka, fetch

    fetch()
    with ReferenceKafka(config=dict(COORDINATOR_PARTITIONS)) as kafka, \
            OttlaBroker(settings=REFERENCE_SETTINGS | COORDINATOR_PARTITIONS) as ottla:
        yield ottla, kafka


@contextmanager
def brokers(given: list[str] | None) -> Iterator[tuple[str, str]]:
    """The brokers given, or a fresh pair (_fresh_pair)."""
    if given:
        yield given[0], given[1]
        return
    with _fresh_pair() as (ottla, kafka):
        yield ottla.bootstrap, kafka.bootstrap_servers


@contextmanager
def cluster_brokers() -> Iterator[tuple[tuple[str, str], None]]:
    """A fresh `ottla serve --nodes 3` (compat.harness.OttlaCluster) and three-node reference
    Kafka (ReferenceKafkaCluster), configured alike: (Ottla's, Kafka's) bootstraps, each
    listing nodes 1..3 in order."""
    from compat.differential import REFERENCE_SETTINGS
    from compat.harness import OttlaCluster
    from compat.kafka import CLUSTER_SETTINGS, ReferenceKafkaCluster, fetch

    single = ("node.id", "offsets.topic.replication.factor", "transaction.state.log.replication.factor",
              "transaction.state.log.min.isr", "share.coordinator.state.topic.replication.factor", "share.coordinator.state.topic.min.isr")
    settings = {k: v for k, v in REFERENCE_SETTINGS.items() if k not in single} | CLUSTER_SETTINGS
    fetch()
    with ReferenceKafkaCluster() as kafka, OttlaCluster(settings=settings) as ottla:
        yield (ottla.bootstrap, kafka.bootstrap), None


@contextmanager
def secured_brokers() -> Iterator[tuple[tuple[str, str], tuple[str, str]]]:
    """A fresh `ottla serve` and reference Kafka configured alike (_fresh_pair) plus
    secured_settings: ((Ottla's, Kafka's) super-user bootstraps, (their SASL_PLAINTEXT ones))."""
    from compat.harness import _free_port

    with _fresh_pair() as (ottla, kafka):
        sasl = {"Ottla": _free_port(), "Kafka": _free_port()}
        ottla.settings.update(secured_settings(ottla.host, ottla.port, sasl["Ottla"]))
        ottla.restart()
        kafka.reconfigure(secured_settings("127.0.0.1", kafka.port, sasl["Kafka"]) | COORDINATOR_PARTITIONS)
        yield (ottla.bootstrap, kafka.bootstrap_servers), (f"{ottla.host}:{sasl['Ottla']}", f"127.0.0.1:{sasl['Kafka']}")


@contextmanager
def _unsecured(given: list[str] | None) -> Iterator[tuple[tuple[str, str], None]]:
    with brokers(given) as pair:
        yield pair, None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compat.fuzz_differential", description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=3000, help="requests drawn")
    parser.add_argument("--seed", type=int, default=None, help="run seed (random if omitted; printed)")
    parser.add_argument("--api", action="append", default=None, help="only this API (by name, e.g. FETCH); repeatable")
    parser.add_argument("--replay", type=int, default=None, help="send input I of the seed alone and show both answers")
    parser.add_argument("--messages", action="store_true", help="also compare free-text messages (ids, addresses, timestamps masked)")
    parser.add_argument("--populated", type=float, default=POPULATED_SHARE, metavar="SHARE",
                        help=f"share of group and transaction APIs' inputs meeting a group or transaction populated for them (default {POPULATED_SHARE})")
    parser.add_argument("--brokers", nargs=2, metavar=("OTTLA", "KAFKA"), default=None,
                        help="bootstraps of an `ottla serve` and a reference Kafka already running (else both are started)")
    parser.add_argument("--secured", action="store_true",
                        help="both brokers with StandardAuthorizer; inputs sent over SASL_PLAINTEXT as a user with a few ACLs")
    parser.add_argument("--cluster", action="store_true",
                        help="both sides three-node clusters; each input to a node drawn for it (1, 2 or 3)")
    args = parser.parse_args(argv)
    if (args.secured or args.cluster) and args.brokers:
        parser.error("--secured and --cluster start their own brokers: they take no --brokers")
    if args.secured and args.cluster:
        parser.error("--secured and --cluster do not combine")
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    apis = {int(ApiKey[name.upper()]) for name in args.api} if args.api else None
    api_args = "".join(f" --api {name}" for name in args.api or ()) + (" --messages" if args.messages else "") + (
        f" --populated {args.populated}" if args.populated != POPULATED_SHARE else "") + (" --secured" if args.secured else "") + (
        " --cluster" if args.cluster else "")
    opened = cluster_brokers() if args.cluster else secured_brokers() if args.secured else _unsecured(args.brokers)
    with opened as ((ottla, kafka), sasl):
        print(f"Ottla {ottla}, Kafka {kafka}; seed {seed}" + (f"; inputs as User:{FUZZER} to {sasl[0]}, {sasl[1]}" if sasl else ""),
              flush=True)
        report = run(ottla, kafka, seed, args.count, apis=apis, only=args.replay, show=print if args.replay is not None else None,
                     messages=args.messages, populated=args.populated, sasl=sasl)
    for line in report.lines(lambda i: f"python -m compat.fuzz_differential --seed {seed}{api_args} --replay {i}"):
        print(line)
    print("requests per API: " + ", ".join(f"{name} {n}" for name, n in sorted(report.per_api.items())))
    print(f"rerun: python -m compat.fuzz_differential --seed {seed} --count {args.count}{api_args}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
