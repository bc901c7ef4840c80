"""Scenarios: what each client must do against a broker, and the checks that decide pass or fail.

A scenario takes a client and a `Target` (bootstrap address plus `restart()`), drives the client's
driver and raises `ScenarioFailure` with a short reason (for the table) and a detail (driver
stderr, broker log) for diagnosis. The checks live here, not in the drivers, so every client is
judged by the same rules.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any, Callable

from compat.clients import KAFKA_PYTHON, Client, DriverError
from compat.drivers import ADMIN_ALTERED_RETENTION, ADMIN_CONFIGS, ADMIN_DELETE_BEFORE, ADMIN_PARTITIONS, CODECS, TXN_BATCH, Security
from compat.group_member import GroupMember
from compat.harness import ALICE, BOB, CLUSTER_NODES, BrokerError, OttlaBroker, OttlaCluster, Target, secure, wait_for

if TYPE_CHECKING:
    from compat.kafka import ReferenceKafkaCluster

PARTITIONS = 3
RECORDS = 1000


class ScenarioFailure(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


def _topic(client: Client, scenario: str) -> str:
    slug = re.sub(r"[^a-zA-Z0-9._-]+", "-", client.name).strip("-")
    return f"compat-{slug}-{scenario}-{uuid.uuid4().hex[:8]}"


def _step(what: str, fn: Callable[[], Any]) -> Any:
    """Run one step; a driver or broker failure becomes a ScenarioFailure naming the step."""
    try:
        return fn()
    except (DriverError, BrokerError) as exc:
        raise ScenarioFailure(f"{what}: {exc.reason}", exc.detail) from None


def check_read(read: dict[str, Any], delivered: list[list[Any]] | None) -> list[str]:
    """Problems with one full read of the topic; empty when it is exactly what was produced.

    Per partition, offsets must run 0, 1, 2, ... with no gap (a fresh, non-transactional topic)
    and records must come in the order they were sent. When the producer reported where each
    record went, the read must agree with it.
    """
    problems = []
    if read["partitions"] != PARTITIONS:
        problems.append(f"metadata shows {read['partitions']} partitions, want {PARTITIONS}")
    records = read["records"]
    seen = Counter(k for _, _, k, _ in records)
    expected = {f"k{i}" for i in range(RECORDS)}
    missing = expected - seen.keys()
    if missing:
        problems.append(f"{len(missing)} of {RECORDS} records missing (e.g. {sorted(missing)[:3]})")
    dupes = [k for k, n in seen.items() if n > 1]
    if dupes:
        problems.append(f"{len(dupes)} records seen more than once (e.g. {dupes[:3]})")
    strangers = seen.keys() - expected
    if strangers:
        problems.append(f"{len(strangers)} unexpected keys (e.g. {sorted(strangers)[:3]})")
    wrong = [(k, v) for _, _, k, v in records if k in expected and v != "v" + k[1:]]
    if wrong:
        problems.append(f"{len(wrong)} wrong values (e.g. {wrong[:3]})")

    by_partition: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for partition, offset, k, _ in records:
        by_partition[partition].append((offset, k))
    for partition, rows in sorted(by_partition.items()):
        offsets = [o for o, _ in rows]
        if offsets != list(range(len(rows))):
            at = next(i for i, o in enumerate(offsets) if o != i)
            problems.append(f"partition {partition}: offsets not 0..{len(rows) - 1} in order "
                            f"(position {at} has offset {offsets[at]})")
        sent = [int(k[1:]) for _, k in rows if k in expected]
        if sent != sorted(sent):
            problems.append(f"partition {partition}: records out of send order")

    if delivered is not None:
        acked = {k: (p, o) for k, p, o in delivered}
        moved = [(k, (p, o), acked[k]) for p, o, k, _ in records if k in acked and acked[k] != (p, o)]
        if moved:
            k, got, want = moved[0]
            problems.append(f"{len(moved)} records not where Produce said (e.g. {k} at {got}, acked {want})")
    return problems


def _summary(problems: list[str]) -> str:
    more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
    return "; ".join(problems[:3]) + more


def produce_consume_restart(client: Client, target: Target) -> None:
    """Create a 3-partition topic (the client's admin API; kafka-python's for kcat), produce 1,000
    records keyed k{i} with value v{i}, read every partition by assignment (no group) from the
    earliest to the end offset, restart the broker and read again. Passes when each read holds
    every record exactly once with its value, offsets 0..n-1 per partition in send order, where
    the producer's acks put them, and both reads agree."""
    topic = _topic(client, "pcr")
    creator = client if client.has_admin else KAFKA_PYTHON
    _step(f"create via {creator.name}", lambda: creator.run(target.bootstrap, topic, "create", partitions=PARTITIONS))
    produced = _step("produce", lambda: client.run(target.bootstrap, topic, "produce", count=RECORDS))
    if produced["produced"] != RECORDS:
        raise ScenarioFailure(f"produce: {produced['produced']} of {RECORDS} records acknowledged")
    delivered = produced["delivered"]

    first = _step("read", lambda: client.run(target.bootstrap, topic, "consume"))
    problems = check_read(first, delivered)
    if problems:
        raise ScenarioFailure("read: " + _summary(problems))

    _step("restart", target.restart)

    second = _step("read after restart", lambda: client.run(target.bootstrap, topic, "consume"))
    problems = check_read(second, delivered)
    if problems:
        raise ScenarioFailure("read after restart: " + _summary(problems))
    before = {tuple(r) for r in first["records"]}
    changed = [r for r in second["records"] if tuple(r) not in before]
    if changed:
        raise ScenarioFailure(f"read after restart: {len(changed)} records at other offsets (e.g. {changed[0]})")


# --- consumer groups (issue 4) ------------------------------------------------------------

GROUP_PARTITIONS = 4
GROUP_RECORDS = 400
ALL_PARTITIONS = list(range(GROUP_PARTITIONS))
# Clients with a `member` driver action; kcat has none.
GROUP_CLIENTS = frozenset({"kafka-python", "aiokafka", "confluent-kafka", "kafkajs", "java", "@platformatic/kafka", "sarama", "kafka-go",
                           "franz-go"})

Position = tuple[int, int]  # (partition, offset): a record's identity, whatever its key


def _create_group_topic(client: Client, target: Target, scenario: str) -> str:
    topic = _topic(client, scenario)
    _step("create", lambda: client.run(target.bootstrap, topic, "create", partitions=GROUP_PARTITIONS))
    return topic


def _produce_round(client: Client, target: Target, topic: str) -> set[Position]:
    produced = _step("produce", lambda: client.run(target.bootstrap, topic, "produce", count=GROUP_RECORDS))
    return {(partition, offset) for _, partition, offset in produced["delivered"]}


def _read(member: GroupMember) -> list[Position]:
    return [(partition, offset) for partition, offset, _, _ in list(member.records)]


def _wait(member: GroupMember, condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    _step(what, lambda: member.wait_until(condition, what, timeout))


def splits_partitions(*members: GroupMember) -> bool:
    """Every member holds partitions, no two hold the same one, and together they hold all."""
    held = [m.assignment for m in members]
    return all(held) and sorted(p for h in held for p in h or ()) == ALL_PARTITIONS


def check_read_once(where: str, read: list[Position], expected: set[Position]) -> None:
    twice = [position for position, n in Counter(read).items() if n > 1]
    if twice:
        raise ScenarioFailure(f"{where}: {len(twice)} records read twice (e.g. {twice[:3]})")
    missing = expected - set(read)
    if missing:
        raise ScenarioFailure(f"{where}: {len(missing)} records never read (e.g. {sorted(missing)[:3]})")


def _check_owners(where: str, members: list[GroupMember]) -> None:
    for member in members:
        strays = {p for p, _ in _read(member)} - set(member.assignment or ())
        if strays:
            raise ScenarioFailure(f"{where}: {member.name} read partitions {sorted(strays)} it was not assigned")


def group_split_leave_evict(client: Client, target: Target, protocol: str = "classic") -> None:
    """Two members of one group split a 4-partition topic and read 400 records with no record
    read twice and each by the owner of its partition; one leaves and the other takes over all
    partitions and reads 400 more; a third joins, is frozen (SIGSTOP, so it stops heartbeating),
    is evicted after its 6 s session timeout, and the survivor takes over again and reads 400 more."""
    topic = _create_group_topic(client, target, "split")
    group = "group-" + topic
    members: list[GroupMember] = []

    def start(name: str) -> GroupMember:
        members.append(GroupMember(client, target.bootstrap, topic, group, name, protocol=protocol))
        return members[-1]

    try:
        a, b = start("member A"), start("member B")
        _wait(a, lambda: splits_partitions(a, b), "a 2-way split of the 4 partitions")
        first = _produce_round(client, target, topic)
        _wait(a, lambda: set(_read(a)) | set(_read(b)) >= first, "all records read by A and B")
        check_read_once("split", _read(a) + _read(b), first)
        _check_owners("split", [a, b])

        _step("B leaves", b.close)
        _wait(a, lambda: a.assignment == ALL_PARTITIONS, "A taking over all partitions after B left")
        second = _produce_round(client, target, topic)
        _wait(a, lambda: set(_read(a)) >= second, "A reading what was produced after B left")
        check_read_once("after B left", _read(a), second)

        c = start("member C")
        _wait(a, lambda: splits_partitions(a, c), "a 2-way split with C")
        c.freeze()
        _wait(a, lambda: a.assignment == ALL_PARTITIONS, "C's eviction after its session timeout", timeout=90)
        third = _produce_round(client, target, topic)
        _wait(a, lambda: set(_read(a)) >= third, "A reading what was produced after C was evicted")
        check_read_once("after C was evicted", _read(a), second | third)
    finally:
        for member in members:
            member.kill()


def group_resume_second_group(client: Client, target: Target, protocol: str = "classic") -> None:
    """A member reads 400 records, committing, and closes; 400 more are produced and the broker
    restarts; a member of the same group resumes from the committed offsets (reads exactly the
    400 new records); then a member of a second group reads all 800 again."""
    topic = _create_group_topic(client, target, "resume")
    group = "group-" + topic
    members: list[GroupMember] = []
    try:
        first = _produce_round(client, target, topic)
        members.append(GroupMember(client, target.bootstrap, topic, group, "first member", protocol=protocol))
        reader = members[-1]
        _wait(reader, lambda: set(_read(reader)) >= first, "the first 400 records")
        check_read_once("first read", _read(reader), first)
        _step("close", reader.close)
        second = _produce_round(client, target, topic)
        _step("restart", target.restart)

        members.append(GroupMember(client, target.bootstrap, topic, group, "restarted member", protocol=protocol))
        resumed = members[-1]
        _wait(resumed, lambda: set(_read(resumed)) >= second, "the 400 records produced while it was away")
        again = set(_read(resumed)) & first
        if again:
            raise ScenarioFailure(f"resume: {len(again)} records committed before the restart were read again (e.g. {sorted(again)[:3]})")
        check_read_once("resume", _read(resumed), second)

        members.append(GroupMember(client, target.bootstrap, topic, "other-" + group, "second group", protocol=protocol))
        other = members[-1]
        _wait(other, lambda: set(_read(other)) >= first | second, "the second group reading everything")
        check_read_once("second group", _read(other), first | second)
    finally:
        for member in members:
            member.kill()


# The classic static members' session: long enough for a restart, which nothing here waits out.
STATIC_SESSION_TIMEOUT_MS = 30_000


def group_static_membership(client: Client, target: Target, protocol: str = "classic") -> None:
    """Two static members (group.instance.id) split the topic; one is killed (SIGKILL, so it never
    leaves) and restarted at once with the same instance id: it gets its old partitions back
    and the other member sees no rebalance; 400 records are then read once each, by their owners.
    (With group.protocol=consumer it closes instead of being killed: KIP-848 keeps a static
    member's partitions only across a leave for now.)"""
    topic = _create_group_topic(client, target, "static")
    group = "group-" + topic
    # The other rows' 6 s session can end while a loaded machine starts B's new process, and the
    # coordinator then rebalances A; the row asks whether B comes back within its session.
    session = {"session_timeout_ms": STATIC_SESSION_TIMEOUT_MS} if protocol == "classic" else {}
    members: list[GroupMember] = []
    try:
        members += [GroupMember(client, target.bootstrap, topic, group, "static A", "instance-a", protocol=protocol, **session),
                    GroupMember(client, target.bootstrap, topic, group, "static B", "instance-b", protocol=protocol, **session)]
        a, b = members
        _wait(a, lambda: splits_partitions(a, b), "a 2-way split of the 4 partitions")
        before, rebalances = b.assignment, len(a.assignments)
        if protocol == "classic":
            b.kill()
        else:
            # A KIP-848 static member keeps its partitions only across a leave "for now" (member
            # epoch -2, sent by close); a killed one holds its instance id until its session ends.
            _step("B leaves for now", b.close)
        members.append(GroupMember(client, target.bootstrap, topic, group, "static B again", "instance-b", protocol=protocol, **session))
        b2 = members[-1]
        _wait(b2, lambda: b2.assignment is not None, "the restarted member's assignment")
        if b2.assignment != before:
            raise ScenarioFailure(f"static: restarted member got {b2.assignment}, had {before}")
        produced = _produce_round(client, target, topic)
        _wait(a, lambda: set(_read(a)) | set(_read(b2)) >= produced, "all records read by A and the restarted B")
        check_read_once("static", _read(a) + _read(b2), produced)
        _check_owners("static", [a, b2])
        if len(a.assignments) != rebalances:
            raise ScenarioFailure(f"static: the other member was reassigned {a.assignments[rebalances:]} on the restart")
    finally:
        for member in members:
            member.kill()


# Clients whose member driver takes --group-protocol consumer (KIP-848).
CONSUMER_PROTOCOL_CLIENTS = frozenset({"confluent-kafka", "java", "franz-go"})


# Both brokers run the consumer-protocol rows with the classic rows' 6 s session and sub-second
# heartbeats: at Kafka's defaults (45 s, 5 s) an eviction alone takes most of a minute.
CONSUMER_GROUP_SETTINGS = {
    "group.consumer.session.timeout.ms": "6000",
    "group.consumer.min.session.timeout.ms": "6000",
    "group.consumer.heartbeat.interval.ms": "500",
    "group.consumer.min.heartbeat.interval.ms": "500",
}


def _consumer_protocol(scenario: Callable[..., None]) -> Callable[[Client, Target], None]:
    """The same group scenario with every member joining with group.protocol=consumer."""

    def variant(client: Client, target: Target) -> None:
        if isinstance(target, OttlaBroker):
            target.settings.update(CONSUMER_GROUP_SETTINGS)
            _step("restart with the consumer group settings", target.restart)
        elif hasattr(target, "reconfigure"):
            _step("restart with the consumer group settings", lambda: target.reconfigure(CONSUMER_GROUP_SETTINGS))
        scenario(client, target, protocol="consumer")

    variant.__doc__ = (
        "As " + scenario.__name__.replace("_", "-") + ", every member with group.protocol=consumer (KIP-848: the broker "
        "assigns; the session timeout, 6 s, and heartbeat interval are the broker's group.consumer.* settings). "
        + (scenario.__doc__ or "")
    )
    return variant


ADMIN_CLIENTS = frozenset({"kafka-python", "aiokafka", "confluent-kafka", "kafkajs", "@platformatic/kafka", "kcat", "java", "sarama",
                           "franz-go"})
KCAT_PARTITIONS = 2


def check_admin(result: dict[str, Any]) -> list[str]:
    """Problems with an admin run (the plan is in compat/drivers/__init__.py); empty when each
    step did what Kafka does: overrides reported as DYNAMIC_TOPIC_CONFIG, the alter changed
    retention.ms and kept cleanup.policy, partitions grew, records below the cut are gone,
    one broker that is its own controller, and the group was listed, Empty, then deleted."""
    problems = []
    want_created = {name: [value, "DYNAMIC_TOPIC_CONFIG"] for name, value in ADMIN_CONFIGS.items()}
    want_altered = {**want_created, "retention.ms": [ADMIN_ALTERED_RETENTION, "DYNAMIC_TOPIC_CONFIG"]}
    if result["configs"]["created"] != want_created:
        problems.append(f"described after create: {result['configs']['created']}, want {want_created}")
    if result["configs"]["altered"] != want_altered:
        problems.append(f"described after alter: {result['configs']['altered']}, want {want_altered}")
    if result["partitions"] != ADMIN_PARTITIONS:
        problems.append(f"{result['partitions']} partitions after growing to {ADMIN_PARTITIONS}")
    if result["low_watermark"] != ADMIN_DELETE_BEFORE:
        problems.append(f"low watermark {result['low_watermark']} after deleting below {ADMIN_DELETE_BEFORE}")
    if result["brokers"] != [result["controller"]] or len(result["brokers"]) != 1:
        problems.append(f"cluster of {result['brokers']} with controller {result['controller']}")
    group = result["group"]
    if not group["listed"] or group["state"] != "Empty" or group["deleted"] is False:
        problems.append(f"group listed={group['listed']} state={group['state']} deleted={group['deleted']}")
    return problems


def admin(client: Client, target: Target) -> None:
    """Through the client's admin API: create a topic with configs and describe them, alter one
    (incrementally where the client can) and describe again, grow the topic to 3 partitions,
    delete the records below offset 4, describe the cluster, and list, describe and delete a group
    with a committed offset. kcat, which has no admin API, lists the cluster with `kcat -L` instead
    (a 2-partition topic made by kafka-python must show, with the one broker)."""
    topic = _topic(client, "admin")
    if not client.has_admin:
        _step("create via kafka-python", lambda: KAFKA_PYTHON.run(target.bootstrap, topic, "create", partitions=KCAT_PARTITIONS))
        listed = _step("kcat -L", lambda: client.run(target.bootstrap, topic, "admin"))
        if listed["topics"].get(topic) != KCAT_PARTITIONS or len(listed["brokers"]) != 1:
            raise ScenarioFailure(f"kcat -L: topic {topic} has {listed['topics'].get(topic)} partitions, brokers {listed['brokers']}")
        return
    result = _step("admin", lambda: client.run(target.bootstrap, topic, "admin"))
    problems = check_admin(result)
    if problems:
        raise ScenarioFailure("admin: " + _summary(problems))


# --- producer guarantees (issue 5) ---------------------------------------------------------

# Clients with the idempotent, transactions, ctp and codecs driver actions.
PRODUCER_CLIENTS = frozenset({"kafka-python", "aiokafka", "confluent-kafka", "kafkajs", "@platformatic/kafka", "java", "sarama",
                              "franz-go"})
# What a client's API lacks, by scenario (or scenario prefix): the matrix shows the reason.
LACKS: dict[str, dict[str, str]] = {
    "kafka-python": {
        "wrong-password": "kafka-python 3.0 retries a refused SASL login until its bootstrap times out "
                          "(KafkaTimeoutError), against Kafka 4.4 too: it never reports the authentication error",
    },
    "kafka-go": {
        "group-static-membership": "kafka-go has no group.instance.id option (static membership)",
        "admin": "kafka-go's admin API has no DeleteRecords and no DescribeCluster",
        "idempotent-retries": "kafka-go has no idempotent producer",
        "cluster-outages": "kafka-go has no idempotent producer",
        "transactions-isolation": "kafka-go has no transactional producer",
        "consume-transform-produce": "kafka-go has no transactional producer",
    },
    "kafkajs": {
        "cluster-outages": "kafkajs 2.2.4 keeps sending a stopped coordinator's heartbeats and commits to its old address "
                           "(ECONNREFUSED; offsetManager finds the coordinator again by node id, never by FindCoordinator) "
                           "until its retrier gives up and the consumer crashes and restarts: it recovers by itself, but "
                           "about 70 s later, past its session timeout, where the row gives a client 60 s; against three "
                           "Kafka 4.4 brokers too: after a controlled shutdown (SIGTERM) of the leader, then of the "
                           "coordinator, it took 63 and 58 s and two rebalances, and a crash (SIGKILL) ends its "
                           "idempotent producer within Kafka's 9 s crash window (KafkaJSNumberOfRetriesExceeded, ECONNREFUSED)",
    },
    "franz-go": {
        "group-static-membership-consumer-protocol":
            "franz-go 1.22.3 leaves a KIP-848 group as a static member (member epoch -2) without its InstanceId "
            "(kgo's leave848), which Kafka 4.4 refuses with INVALID_REQUEST (InstanceId can't be null): the instance "
            "id stays held and the restarted member is refused UNRELEASED_INSTANCE_ID, against Kafka 4.4 too",
        "wrong-password": "franz-go 1.22.3 retries a refused SASL login (its metadata loads) until the record's delivery "
                          "timeout and only then names SASL_AUTHENTICATION_FAILED, against Kafka 4.4 too: not prompt",
    },
    "rskafka": {
        "group-": "rskafka has no consumer groups",
        "admin": "rskafka's admin API creates and deletes topics only (no configs, partitions growth or groups)",
        "idempotent-retries": "rskafka has no idempotent producer",
        "transactions-isolation": "rskafka has no transactional producer",
        "consume-transform-produce": "rskafka has no consumer groups or transactional producer",
        "cluster-outages": "rskafka has no consumer groups or idempotent producer",
    },
    "kcat": {
        "sasl-ssl-scram": "kcat 1.7.1's librdkafka 2.0.2 puts its own nonce again before the combined one in its SCRAM "
                          "client-final message (fixed in librdkafka 2.6.1), which Kafka 4.4's ScramSaslServer refuses "
                          "(the nonce must equal the server-first's), and so does Ottla: it cannot log in with SCRAM "
                          "on either broker",
        "cluster-outages": "kcat 1.7.1 reports deliveries only at -v -v -v, as stderr lines \"% Message delivered to "
                           "partition P (offset O) on broker B\" without the key, so the producer half could be judged by "
                           "their order; but its -G consumer leaves offsets to librdkafka (stored when polled, before it "
                           "prints, and committed on the auto.commit.interval.ms timer; kcat has no option to commit "
                           "after output): what it printed and what it committed are unrelated, and the group half of the "
                           "row cannot be judged",
    },
}
IDEMPOTENT_RECORDS = 30
TXN_RECORDS = 10
CODEC_RECORDS = 50
# Ottla's test hook (ottla.testing's TestHooks): every Nth Produce request with a producer id
# is written, then its connection closed unanswered, so the client has to send the batch again.
DROP_EVERY = "3"
_DROP_HOOK = "drop_produce_response_every"


def _create_one_partition(client: Client, target: Target, scenario: str) -> str:
    topic = _topic(client, scenario)
    creator = client if client.has_admin else KAFKA_PYTHON
    _step(f"create via {creator.name}", lambda: creator.run(target.bootstrap, topic, "create", partitions=1))
    return topic


def check_sequence(records: list[list[Any]], want: list[tuple[int, str, str]]) -> list[str]:
    """Problems with partition-0 records against the expected (offset, key, value) list, in order."""
    got = [(offset, k, v) for partition, offset, k, v in records if partition == 0]
    strays = [r for r in records if r[0] != 0]
    problems = [f"{len(strays)} records outside partition 0"] if strays else []
    if got != want:
        extra = len(got) - len(want)
        first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
        problems.append(
            f"{len(got)} records, want {len(want)}"
            + (f" ({extra} extra: duplicates?)" if extra > 0 else "")
            + (f"; at position {first} got {got[first] if first < len(got) else None}, want {want[first] if first < len(want) else None}")
        )
    return problems


def idempotent_retries(client: Client, target: Target) -> None:
    """An idempotent producer sends 30 records one at a time to a 1-partition topic, then the
    topic is read. On Ottla the broker restarts with the test hook drop_produce_response_every=3: every
    third produce request is written but its connection is closed unanswered, so the client
    retries it; the broker must answer the retry with the original offset and not write it
    again. Passes when the read holds k0..k29 exactly once, at offsets 0..29, where the
    producer was told, and (on Ottla) the broker log shows responses were dropped."""
    if isinstance(target, OttlaBroker):
        target.test_hook_args = ["--drop-produce-response-every", DROP_EVERY]
        _step("restart with dropped produce responses", target.restart)
    topic = _create_one_partition(client, target, "idem")
    produced = _step("produce", lambda: client.run(target.bootstrap, topic, "idempotent", count=IDEMPOTENT_RECORDS, timeout=90))
    want = [(i, f"k{i}", f"v{i}") for i in range(IDEMPOTENT_RECORDS)]
    acked = [(o, k) for k, _, o in produced["delivered"]]
    if acked != [(o, k) for o, k, _ in want]:
        raise ScenarioFailure(f"produce: acknowledged offsets {acked[:5]}..., want 0..{IDEMPOTENT_RECORDS - 1} in order")
    read = _step("read", lambda: client.run(target.bootstrap, topic, "consume", partitions=1))
    problems = check_sequence(read["records"], want)
    if problems:
        raise ScenarioFailure("read: " + _summary(problems))
    if isinstance(target, OttlaBroker) and _DROP_HOOK not in target.log_path.read_text(errors="replace"):
        raise ScenarioFailure("no produce response was dropped: the client never had to retry")


def transactions_isolation(client: Client, target: Target) -> None:
    """A transactional producer writes 10 records and aborts, then 10 more and commits, to a
    1-partition topic. Passes when a read_committed read holds only the committed ten (offsets
    11..20, after the aborted ten and their ABORT marker) and a read_uncommitted read holds
    all twenty at their offsets, markers never shown as records."""
    topic = _create_one_partition(client, target, "txn")
    result = _step("transactions", lambda: client.run(target.bootstrap, topic, "transactions", count=TXN_RECORDS, timeout=60))
    aborted = [(i, f"k{i}", f"a{i}") for i in range(TXN_RECORDS)]
    committed = [(TXN_RECORDS + 1 + i, f"k{i}", f"c{i}") for i in range(TXN_RECORDS)]
    problems = [f"read_committed: {p}" for p in check_sequence(result["committed"], committed)]
    problems += [f"read_uncommitted: {p}" for p in check_sequence(result["uncommitted"], aborted + committed)]
    if problems:
        raise ScenarioFailure(_summary(problems))


def consume_transform_produce(client: Client, target: Target) -> None:
    """10 records are produced; a consumer of group T-ctp reads them and a transactional
    producer writes each as out-v{i} to T-out, sending the consumer's offsets in the same
    transaction: the first five commit, the next five abort. Passes when the group's committed
    offset is 5 (the aborted offsets never show) and T-out read_committed holds out-v0..out-v4."""
    topic = _create_one_partition(client, target, "ctp")
    produced = _step("produce", lambda: client.run(target.bootstrap, topic, "produce", count=2 * TXN_BATCH, partitions=1))
    if produced["produced"] != 2 * TXN_BATCH:
        raise ScenarioFailure(f"produce: {produced['produced']} of {2 * TXN_BATCH} records acknowledged")
    result = _step("ctp", lambda: client.run(target.bootstrap, topic, "ctp", count=2 * TXN_BATCH, timeout=60))
    problems = []
    if result["committed_offset"] != TXN_BATCH:
        problems.append(f"group offset {result['committed_offset']}, want {TXN_BATCH} (committed with the first transaction only)")
    want = [f"out-v{i}" for i in range(TXN_BATCH)]
    if result["output"] != want:
        problems.append(f"T-out read_committed holds {result['output']}, want {want}")
    if problems:
        raise ScenarioFailure(_summary(problems))


def codecs(client: Client, target: Target) -> None:
    """For each of gzip, snappy, lz4 and zstd the client can write, 50 records compressed with
    it go to their own topic and are read back. Passes when every codec's read is k{i}/v{i} at
    offsets 0..49 in order, and a codec is skipped only when the driver says the client lacks it."""
    topic = _topic(client, "codecs")
    result = _step("codecs", lambda: client.run(target.bootstrap, topic, "codecs", count=CODEC_RECORDS, timeout=60))
    want = [(i, f"k{i}", f"v{i}") for i in range(CODEC_RECORDS)]
    problems = []
    for name in CODECS:
        if name in result["unavailable"]:
            continue
        if name not in result["codecs"]:
            problems.append(f"{name}: not tried")
            continue
        problems += [f"{name}: {p}" for p in check_sequence(result["codecs"][name], want)]
    if not result["codecs"]:
        problems.append(f"no codec available: {result['unavailable']}")
    if problems:
        raise ScenarioFailure(_summary(problems))


# --- security columns (issue 18) -----------------------------------------------------------

# Clients whose driver takes --security; the others say so in the matrix.
SECURITY_CLIENTS = frozenset({"kafka-python", "aiokafka", "confluent-kafka", "kafkajs", "@platformatic/kafka", "kcat", "java", "sarama", "kafka-go",
                              "rskafka", "franz-go"})
SECURITY_RECORDS = 100
SECURITY_TIMEOUT = 20.0  # a refused client must say so well within this; more is a hang
# What a client calls the broker's refusal: exception names (TopicAuthorizationFailedError,
# SaslAuthenticationException), error codes (TOPIC_AUTHORIZATION_FAILED, librdkafka's
# _AUTHENTICATION) or messages ("Not authorized to access topics", "invalid credentials").
_AUTHORIZATION = re.compile(r"\w*authori[sz]\w*", re.I)
_AUTHENTICATION = re.compile(r"\w*(?:authenticat|invalid credentials)\w*", re.I)


def _security(client: Client, target: Target, listener: str, user: tuple[str, str] | None = None) -> tuple[str, Security, str]:
    """The broker secured (once per broker), a 3-partition topic made through its PLAINTEXT
    listener, and the bootstrap and settings of `listener` as `user` (the client certificate
    for SSL)."""
    secured = _step("secure the broker", lambda: secure(target))
    topic = _topic(client, listener.lower())
    _step("create via kafka-python over PLAINTEXT", lambda: KAFKA_PYTHON.run(secured.plaintext, topic, "create", partitions=PARTITIONS))
    ca = str(secured.ca)
    if listener == "SSL":
        return secured.ssl, Security("SSL", ca=ca, cert=str(secured.client_certificate), key=str(secured.client_key)), topic
    username, password = user or ALICE
    if listener == "SASL_SSL":
        return secured.sasl_ssl, Security("SASL_SSL", "SCRAM-SHA-512", username, password, ca), topic
    return secured.sasl_plaintext, Security("SASL_PLAINTEXT", "PLAIN", username, password), topic


def _produce_consume_secured(client: Client, target: Target, listener: str) -> None:
    bootstrap, settings, topic = _security(client, target, listener)
    produced = _step("produce", lambda: client.run(bootstrap, topic, "produce", count=RECORDS, security=settings))
    if produced["produced"] != RECORDS:
        raise ScenarioFailure(f"produce: {produced['produced']} of {RECORDS} records acknowledged")
    read = _step("read", lambda: client.run(bootstrap, topic, "consume", security=settings))
    problems = check_read(read, produced["delivered"])
    if problems:
        raise ScenarioFailure("read: " + _summary(problems))


def sasl_ssl_scram(client: Client, target: Target) -> None:
    """Over a SASL_SSL listener (TLS, the broker's certificate checked against the development
    CA of `ottla certs`) as alice with SCRAM-SHA-512: produce 1,000 records to a 3-partition
    topic and read them back by assignment, judged as produce-consume-restart's reads are."""
    _produce_consume_secured(client, target, "SASL_SSL")


def sasl_plaintext_plain(client: Client, target: Target) -> None:
    """As sasl-ssl-scram, over a SASL_PLAINTEXT listener as alice with PLAIN (a JAAS user)."""
    _produce_consume_secured(client, target, "SASL_PLAINTEXT")


def mutual_tls(client: Client, target: Target) -> None:
    """As sasl-ssl-scram, over an SSL listener with ssl.client.auth=required: the client
    presents `ottla certs`' client certificate, whose CN names the principal (User:client)."""
    _produce_consume_secured(client, target, "SSL")


def _refused(client: Client, bootstrap: str, topic: str, settings: Security, expect: re.Pattern[str], what: str) -> str:
    """Produce, which must fail within SECURITY_TIMEOUT naming `what`; the words the client used."""
    try:
        client.run(bootstrap, topic, "produce", count=SECURITY_RECORDS, timeout=SECURITY_TIMEOUT, security=settings)
    except DriverError as exc:
        seen = expect.search(exc.reason)
        if seen is None:
            raise ScenarioFailure(f"produce failed without naming {what}: {exc.reason}", exc.detail) from None
        return seen[0]
    raise ScenarioFailure(f"produce succeeded: want {what}")


def no_write_acl(client: Client, target: Target) -> str:
    """Over SASL_PLAINTEXT with PLAIN as bob, whose ACLs allow READ and DESCRIBE on the topic
    but not WRITE: the produce must fail promptly with an authorization error the client
    reports as such (TOPIC_AUTHORIZATION_FAILED, or CLUSTER_AUTHORIZATION_FAILED where an
    idempotent producer's InitProducerId is refused first). Shows the words the client used."""
    bootstrap, settings, topic = _security(client, target, "SASL_PLAINTEXT", BOB)
    return _refused(client, bootstrap, topic, settings, _AUTHORIZATION, "an authorization error")


def wrong_password(client: Client, target: Target) -> str:
    """Over SASL_SSL with SCRAM-SHA-512 as alice with a wrong password: the produce must fail
    promptly with an authentication error the client reports as such, not hang or retry until
    a timeout. Shows the words the client used."""
    bootstrap, settings, topic = _security(client, target, "SASL_SSL", (ALICE[0], "not-" + ALICE[1]))
    return _refused(client, bootstrap, topic, settings, _AUTHENTICATION, "an authentication error")


# --- cluster columns (issue 20) -------------------------------------------------------------

# How long the leader holds the produce request it is stopped with: ample time for the scenario
# to see the fault fire and stop the node, after which the request never takes effect.
HOLD_MS = 5000
# The idempotent action sends one record a request: the leader stops on the 10th, mid-produce.
STOP_AT_REQUEST = 10
# Retriable errors (Kafka's RetriableException subclasses) each client meets once, in order.
RETRIABLE_FAULTS = (
    ("produce", "NOT_LEADER_OR_FOLLOWER"), ("produce", "NOT_ENOUGH_REPLICAS"), ("produce", "REQUEST_TIMED_OUT"),
    ("fetch", "NOT_LEADER_OR_FOLLOWER"), ("fetch", "UNKNOWN_TOPIC_OR_PARTITION"),
)
# Clients that keep several Produce requests in flight on a partition with idempotence, and
# retry without bound: a Produce error met on a partition's first request only would let the
# fresh producer's second batch, in flight behind it, land first (a partition takes any sequence
# from a producer it does not know: Kafka 4.4's ProducerAppendInfo.checkSequence, Ottla's too),
# and the producer then retries its first batch out of order for good, on Kafka too. A real
# error (a leader moving, the ISR shrinking) meets the requests behind it as well: for these
# clients each Produce error takes one partition's first requests, as many as are in flight.
PIPELINED_PRODUCE = {"java": 5}
# Clients whose `produce` action is idempotent (the stock defaults of kafka-python, the Java
# client and franz-go, clients.py): only these keep each partition's order through a retried
# batch; the others have several requests in flight and no sequence numbers, so Kafka lets a
# retry land after a later batch, and the cell says so when it did.
IDEMPOTENT_PRODUCE = frozenset({"kafka-python", "java", "franz-go"})
REORDERED = "out of send order"
# Retriable errors a client gives up on at once, by client: not set for it, and the cell says so.
NOT_RETRIED: dict[str, dict[tuple[str, str], str]] = {
    "rskafka": {
        ("produce", "NOT_ENOUGH_REPLICAS"): "rskafka 0.6 fails a request at once on NOT_ENOUGH_REPLICAS",
        ("produce", "REQUEST_TIMED_OUT"): "and on REQUEST_TIMED_OUT (client/partition.rs retries only connection "
                                          "errors, NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE, "
                                          "UNKNOWN_TOPIC_OR_PARTITION and two more)",
    },
}


# Kafka has no fault API: these cluster scenarios run against Ottla's cluster only.
NEEDS_FAULT_API = {
    "cluster-retriable-faults": "Kafka has no fault API to answer one request with a chosen error (Ottla-only)",
}


def _cluster(target: Target) -> OttlaCluster | ReferenceKafkaCluster:
    from compat.kafka import ReferenceKafkaCluster

    if not isinstance(target, (OttlaCluster, ReferenceKafkaCluster)):
        raise ScenarioFailure("the cluster scenarios need a 3-node Ottla (compat.harness.OttlaCluster) or Kafka "
                              f"(compat.kafka.ReferenceKafkaCluster), not {type(target).__name__}")
    return target


def _with_faults(target: Target, scenario: str) -> OttlaCluster:
    if not isinstance(target, OttlaCluster):
        raise ScenarioFailure(NEEDS_FAULT_API[scenario])
    return target


def _end_offset(cluster: OttlaCluster | ReferenceKafkaCluster, topic: str) -> int:
    """Partition 0's log end offset: how many records a producer has had acknowledged there."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    try:
        consumer = KafkaConsumer(bootstrap_servers=cluster.bootstrap, request_timeout_ms=15000)
        try:
            partition = TopicPartition(topic, 0)
            end: int = consumer.end_offsets([partition])[partition]
            return end
        finally:
            consumer.close()
    except KafkaError as exc:
        raise BrokerError(f"ListOffsets via kafka-python: {type(exc).__name__}: {exc}", cluster.log_tail()) from None


class _Pace:
    """Holds a producer to about `per_second` requests a second until lifted. On Ottla a delay
    fault holds each of the topic's Produce requests; Kafka has none, so there every client's
    produce quota (producer_byte_rate) is set to that many one-record requests' bytes, and the
    broker delays the producer by its throttle time (KIP-219). `sent()` is how far the producer
    has got: on Ottla the requests held so far, on Kafka the records acknowledged."""

    # Kafka's quota counts a Produce request's bytes; one record of this workload is about so many.
    REQUEST_BYTES = 170

    def __init__(self, cluster: OttlaCluster | ReferenceKafkaCluster, topic: str, per_second: int) -> None:
        self._cluster, self._topic = cluster, topic
        self._lifted = False
        if isinstance(cluster, OttlaCluster):
            self._fault: int | None = cluster.add_fault(api="produce", topic=topic, delay_ms=1000 // per_second)
        else:
            self._fault = None
            cluster.set_producer_quota(per_second * self.REQUEST_BYTES)

    def sent(self) -> int:
        if isinstance(self._cluster, OttlaCluster):
            assert self._fault is not None
            return self._cluster.fired(self._fault)
        return _end_offset(self._cluster, self._topic)

    def lift(self) -> None:
        """Let the producer run free; again is a no-op."""
        if self._lifted:
            return
        self._lifted = True
        if isinstance(self._cluster, OttlaCluster):
            assert self._fault is not None
            self._cluster.remove_fault(self._fault)
        else:
            self._cluster.set_producer_quota(None)


def _replicated_topic(client: Client, cluster: OttlaCluster | ReferenceKafkaCluster, scenario: str, partitions: int) -> tuple[str, list[int]]:
    """A topic on all three nodes with min.insync.replicas=2 (the cluster's defaults), made with
    kafka-python's admin client in this process; the topic and its partitions' leaders.

    Ottla places the replicas itself. On Kafka they are pinned, rotated over the nodes, and the
    topic is ready once each partition is led by its first replica (a preferred-leader election
    until it is): Kafka's placer leads a new partition only from the brokers unfenced at that
    moment, and on a loaded machine a node can be fenced for a few seconds (late heartbeats),
    which left two of three partitions led by one node."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import KafkaError

    topic = _topic(client, scenario)
    leaders: list[int] = []
    pinned = None if isinstance(cluster, OttlaCluster) else {
        p: [cluster.node_ids[(p + i) % CLUSTER_NODES] for i in range(CLUSTER_NODES)] for p in range(partitions)
    }

    def led(admin: KafkaAdminClient) -> bool:
        """Whether the broker the admin client asks knows every partition's leader (Kafka's
        brokers learn a new topic from the controller a moment after CreateTopics answers),
        and on Kafka whether each is the partition's first replica."""
        (described,) = admin.describe_topics([topic])
        leaders[:] = [p["leader_id"] for p in sorted(described["partitions"], key=lambda p: p["partition_index"])]
        if len(leaders) != partitions or min(leaders) < 0:
            return False
        if pinned is not None and leaders != [pinned[p][0] for p in range(partitions)]:
            admin.elect_leaders(0, {topic: list(range(partitions))}, raise_errors=False)
            return False
        return True

    try:
        admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap, request_timeout_ms=15000)
        try:
            admin.create_topics([NewTopic(topic, replica_assignments=pinned) if pinned else NewTopic(topic, partitions, CLUSTER_NODES)])
            if not wait_for(lambda: led(admin), timeout=30):
                raise ScenarioFailure(f"create: {topic}'s partitions have leaders {leaders} 30 s after it was made", cluster.log_tail())
        finally:
            admin.close()
    except KafkaError as exc:
        raise ScenarioFailure(f"create via kafka-python: {type(exc).__name__}: {exc}", cluster.log_tail()) from None
    return topic, leaders


def cluster_leaders(client: Client, target: Target) -> None:
    """Against a 3-node Ottla (or Kafka): a 3-partition topic replicated on every node (min.insync.replicas
    2) whose partitions each have a different leader; produce 1,000 records and read every
    partition by assignment, judged as produce-consume-restart's reads are. The client must
    send each partition's requests to its own leader (a node that does not lead answers
    NOT_LEADER_OR_FOLLOWER)."""
    cluster = _cluster(target)
    topic, leaders = _step("create", lambda: _replicated_topic(client, cluster, "leaders", PARTITIONS))
    if len(set(leaders)) != PARTITIONS:
        raise ScenarioFailure(f"set-up: the partitions' leaders are {leaders}, want three different nodes")
    produced = _step("produce", lambda: client.run(cluster.bootstrap, topic, "produce", count=RECORDS))
    if produced["produced"] != RECORDS:
        raise ScenarioFailure(f"produce: {produced['produced']} of {RECORDS} records acknowledged")
    read = _step("read", lambda: client.run(cluster.bootstrap, topic, "consume"))
    problems = check_read(read, produced["delivered"])
    if problems:
        raise ScenarioFailure("read: " + _summary(problems))


def _idempotent_action(client: Client) -> bool:
    return client.name in PRODUCER_CLIENTS


def cluster_leader_stop(client: Client, target: Target) -> None:
    """Against a 3-node Ottla, a 1-partition topic on every node (min.insync.replicas 2): the
    client produces 30 records (one a request with its idempotent producer; in one go where it
    has none) and the leader holds a produce request (the 10th, or the first) until the
    scenario stops that node, so the request never takes effect and the client must find the
    new leader and send it again. Passes when every record was acknowledged and the read
    holds k0..k29 exactly once, at offsets 0..29, where the producer was told. Against Kafka,
    which has no fault to hold a request, the producer is paced by a produce quota and the
    leader is stopped (a controlled shutdown, SIGTERM: its leadership moves, then its JVM
    exits) once 10 records are acknowledged, so only with an idempotent producer is it
    mid-produce. On both a stop is a controlled shutdown (`crash_node` is the crash)."""
    cluster = _cluster(target)
    topic, (leader,) = _step("create", lambda: _replicated_topic(client, cluster, "stop", 1))
    action = "idempotent" if _idempotent_action(client) else "produce"
    every = STOP_AT_REQUEST if _idempotent_action(client) else 1
    if isinstance(cluster, OttlaCluster):
        held = _step("hold a produce", lambda: cluster.add_fault(api="produce", topic=topic, node=leader, delay_ms=HOLD_MS, every=every))
        reached: Callable[[], bool] = lambda: _step("ask the fault", lambda: cluster.fired(held)) > 0
    else:
        pace = _step("pace the producer", lambda: _Pace(cluster, topic, LEADER_STOP_PACE))
        reached = lambda: _step("ask the end offset", pace.sent) >= every
    outcome: dict[str, Any] = {}

    def produce() -> None:
        try:
            outcome["produced"] = client.run(cluster.bootstrap, topic, action, count=IDEMPOTENT_RECORDS, partitions=1, timeout=90)
        except DriverError as exc:
            outcome["error"] = exc

    producer = threading.Thread(target=produce, name=f"{client.name} produce")
    producer.start()
    try:
        if not wait_for(lambda: not producer.is_alive() or reached(), timeout=90):
            raise ScenarioFailure(f"the leader (node {leader}) never got produce request {every}")
        if not producer.is_alive():
            raise ScenarioFailure(f"the producer finished before the leader (node {leader}) got produce request {every}")
        _step(f"stop node {leader}", lambda: cluster.stop_node(leader))
        if isinstance(cluster, OttlaCluster):
            _step("remove the fault", lambda: cluster.remove_fault(held))
    finally:
        producer.join()
        _step(f"start node {leader} again", lambda: cluster.start_node(leader))
        if not isinstance(cluster, OttlaCluster):
            # The quota is every client's: the next scenario on this cluster must run free.
            _step("lift the pace", pace.lift)
    if "error" in outcome:
        error: DriverError = outcome["error"]
        raise ScenarioFailure(f"produce through the leader's stop: {error.reason}", error.detail)
    want = [(i, f"k{i}", f"v{i}") for i in range(IDEMPOTENT_RECORDS)]
    acked = [(o, k) for k, _, o in outcome["produced"]["delivered"] or []]
    if outcome["produced"]["delivered"] is not None and sorted(acked) != [(o, k) for o, k, _ in want]:
        raise ScenarioFailure(f"produce: acknowledged {sorted(acked)[:5]}..., want k0..k{IDEMPOTENT_RECORDS - 1} at 0..{IDEMPOTENT_RECORDS - 1}")
    read = _step("read", lambda: client.run(cluster.bootstrap, topic, "consume", partitions=1))
    problems = check_sequence(read["records"], want)
    if problems:
        raise ScenarioFailure("read: " + _summary(problems))


def cluster_retriable_faults(client: Client, target: Target) -> str | None:
    """Against a 3-node Ottla, a 3-partition topic on every node: the fault API answers the
    topic's Produce requests, one each (PIPELINED_PRODUCE: those one partition each has in
    flight), with NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS and REQUEST_TIMED_OUT, and its
    Fetch requests, once each, with NOT_LEADER_OR_FOLLOWER and UNKNOWN_TOPIC_OR_PARTITION: errors
    Kafka documents as retriable, none taking effect. The client produces 1,000 records and
    reads them back by assignment. Passes when every fault fired and the reads are judged as
    produce-consume-restart's are, except that a producer without idempotence may have a
    retried batch land after a later one (Kafka keeps order through retries only with
    idempotence or one request in flight): its cell then says so. An error a client is known not
    to retry is not set for it, and its cell says which."""
    cluster = _with_faults(target, "cluster-retriable-faults")
    topic, _ = _step("create", lambda: _replicated_topic(client, cluster, "faults", PARTITIONS))
    # Set in order: a request fires the first fault it matches, and each goes once it has fired its count.
    faults: dict[int, str] = {}
    for index, (api, error) in enumerate(RETRIABLE_FAULTS):
        if (api, error) in NOT_RETRIED.get(client.name, {}):
            continue
        pipelined = PIPELINED_PRODUCE.get(client.name) if api == "produce" else None
        where = {"partition": index % PARTITIONS, "count": pipelined} if pipelined else {"count": 1}
        fault = _step(f"fail {api} with {error}", lambda: cluster.add_fault(api=api, topic=topic, error=error, **where))
        faults[fault] = f"{api} {error}"
    try:
        produced = _step("produce", lambda: client.run(cluster.bootstrap, topic, "produce", count=RECORDS))
        if produced["produced"] != RECORDS:
            raise ScenarioFailure(f"produce: {produced['produced']} of {RECORDS} records acknowledged")
        read = _step("read", lambda: client.run(cluster.bootstrap, topic, "consume"))
    finally:
        left = {f["id"] for f in _step("remove the faults", cluster.clear_faults)}
    unfired = [what for fault, what in faults.items() if fault in left]
    if unfired:
        raise ScenarioFailure(f"faults never fired: {', '.join(unfired)} (the client stopped asking first)")
    problems = check_read(read, produced["delivered"])
    reordered = [p for p in problems if p.endswith(REORDERED)] if client.name not in IDEMPOTENT_PRODUCE else []
    problems = [p for p in problems if p not in reordered]
    if problems:
        raise ScenarioFailure("read: " + _summary(problems))
    notes = [f"a retry reordered records ({', '.join(p.split(':')[0] for p in reordered)}): not idempotent"] if reordered else []
    not_set = NOT_RETRIED.get(client.name)
    notes += [f"not set: {'; '.join(not_set.values())}"] if not_set else []
    return "; ".join(notes) or None


# The outages row: its producer is paced (requests a second) until the last outage is over, so
# it is still producing through all three; then it runs free. Kafka's outages last longer (an
# isolated node is fenced after broker.session.timeout.ms, a restart takes a JVM's start), so its
# producer is paced slower and given longer.
PACE_PER_SECOND = {"ottla": 20, "kafka": 8}
OUTAGE_RECORDS = 2000
# Kafka's leader-stop pace: the scenario must see 10 records acknowledged before the 30th.
LEADER_STOP_PACE = 4
# A client has recovered from an outage once its group member has read a record the producer
# sent this many records after the outage began (so both produce and consume flow again).
RECOVERED_AFTER = 10
OUTAGE_TIMEOUT = {"ottla": 180.0, "kafka": 420.0}
RECOVERY_TIMEOUT = 60.0


def check_group_reads(records: list[list[Any]], batch_starts: list[int], assigned_at: list[int], count: int) -> tuple[list[str], int]:
    """Problems with what one group member reported (its records, where each batch began and
    where each assignment arrived) of a 1-partition topic holding k{o}/v{o} at offset o for
    o < count, and how many records it read again. The rule is cluster_outages'."""
    problems = []
    strays = [r for r in records if r[0] != 0]
    if strays:
        problems.append(f"{len(strays)} records outside partition 0")
    wrong = [r for r in records if (r[2], r[3]) != (f"k{r[1]}", f"v{r[1]}")]
    if wrong:
        problems.append(f"{len(wrong)} records not what was acknowledged at their offset (e.g. {wrong[:2]})")
    bounds = [*batch_starts, len(records)]
    rebalanced = set(assigned_at)
    position, highest, previous_first = 0, 0, 0
    reread = 0
    for start, end in zip(bounds, bounds[1:]):
        offsets = [r[1] for r in records[start:end] if r[0] == 0]
        for at, offset in enumerate(offsets):
            if offset > position:
                problems.append(f"offsets {position}..{offset - 1} skipped (batch at position {start})")
            elif offset < position and (at > 0 or start not in rebalanced):
                problems.append(f"offset {offset} read again without a rebalance (batch at position {start})")
            elif offset < min(position, previous_first):
                problems.append(f"after a rebalance the read went back to offset {offset}, before the last batch it "
                                f"reported ({previous_first}): a committed offset was lost")
            reread += offset < highest
            position, highest = offset + 1, max(highest, offset + 1)
        if offsets:
            previous_first = offsets[0]
    if highest < count:
        problems.append(f"offsets {highest}..{count - 1} never read")
    return problems, reread


def _partition_leader(cluster: OttlaCluster | ReferenceKafkaCluster, topic: str) -> int:
    """Partition 0's leader, as kafka-python's admin client reads it from Metadata."""
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap, request_timeout_ms=15000)
    try:
        (described,) = admin.describe_topics([topic])
    finally:
        admin.close()
    (partition,) = [p for p in described["partitions"] if p["partition_index"] == 0]
    leader: int = partition["leader_id"]
    return leader


def _group_view(cluster: OttlaCluster | ReferenceKafkaCluster, group: str, topic: str) -> tuple[str, int | None]:
    """The group's state and its committed offset of partition 0, as kafka-python's admin client reads them."""
    from kafka import TopicPartition
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap, request_timeout_ms=15000)
    try:
        state: str = admin.describe_groups([group])[group]["group_state"]
        committed = admin.list_group_offsets({group: [TopicPartition(topic, 0)]})[group].get(TopicPartition(topic, 0))
    finally:
        admin.close()
    return state, None if committed is None else committed.offset


def cluster_outages(client: Client, target: Target) -> str | None:
    """Issue 20's cluster row. Against a 3-node Ottla, a 1-partition topic on every node
    (min.insync.replicas 2): the client's idempotent producer sends k0..k1999, one a request
    (paced by a 50 ms delay fault until the outages are over), while a group member of the
    same client subscribes and reads from the earliest offset, committing after each batch.
    Meanwhile the partition leader's node stops, then the group coordinator's node (as
    FindCoordinator names it), each starting again once both clients have recovered (the
    member has read a record sent after the outage began), and then a node that neither leads
    the partition nor coordinates the group is isolated (it accepts connections and never
    answers) until they recover again: the clients must not stall on it. Isolating the leader
    or the coordinator instead would hold each client for its request timeout (30 to 60 s by
    default) on a request in flight there, more than the suite's budget has for a cell.

    Passes when, with no process restarted: every record was acknowledged at offset i for
    k{i}; the member read every offset in order, and read a record again only as Kafka's
    at-least-once delivery allows a group consumer: right after a rebalance, resuming from
    the group's committed offset, which the member committed after each batch it reported,
    so no further back than the start of the last batch it reported before the rebalance
    (whose commit may not have taken effect); and at the end the group is Stable with offset
    2000 committed and the member holding the partition. A coordinator move alone is no
    rebalance: the member finds the new coordinator and carries on in its generation (a
    lost commit would then go unseen in the read, hence the committed offset is checked).
    The cell notes rebalances, re-reads and how long each outage took to recover from.

    Against Kafka the producer is paced by a produce quota rather than a delay fault, a stop
    is a controlled shutdown (SIGTERM: leadership moves, then the JVM exits), as Ottla's is, an
    isolation freezes the node (SIGSTOP), fenced only after broker.session.timeout.ms, and a
    start waits for the node's JVM and its replicas' catch-up."""
    cluster = _cluster(target)
    broker = "ottla" if isinstance(cluster, OttlaCluster) else "kafka"
    topic, (leader,) = _step("create", lambda: _replicated_topic(client, cluster, "outages", 1))
    group = topic + "-group"
    pace = _step("pace the producer", lambda: _Pace(cluster, topic, PACE_PER_SECOND[broker]))
    outcome: dict[str, Any] = {}

    def produce() -> None:
        try:
            outcome["produced"] = client.run(cluster.bootstrap, topic, "idempotent", count=OUTAGE_RECORDS, partitions=1,
                                             timeout=OUTAGE_TIMEOUT[broker])
        except DriverError as exc:
            outcome["error"] = exc

    producer = threading.Thread(target=produce, name=f"{client.name} produce")
    member = GroupMember(client, cluster.bootstrap, topic, group, f"{client.name} member")
    producer.start()

    def highest_read() -> int:
        return max((int(k[1:]) for k in member.keys()), default=-1)

    recovered: list[float] = []

    def outage(what: str, begin: Callable[[], None] | None) -> None:
        """Begin an outage (if any), then wait until the member has read a record sent after it began."""
        wanted = _step("ask the pace", pace.sent) + RECOVERED_AFTER
        began = time.monotonic()
        if begin is not None:
            _step(f"begin: {what}", begin)
        _step(what, lambda: member.wait_until(lambda: highest_read() >= wanted or not producer.is_alive(),
                                              f"k{wanted} read {what}", timeout=RECOVERY_TIMEOUT))
        if highest_read() < wanted:
            failed: DriverError | None = outcome.get("error")
            raise ScenarioFailure(f"the producer ended {what}: {failed.reason if failed else 'it sent every record first'}",
                                  failed.detail if failed else "")
        recovered.append(time.monotonic() - began)

    try:
        outage("before the outages", None)
        recovered.clear()
        outage(f"with the partition leader (node {leader}) stopped", lambda: cluster.stop_node(leader))
        _step(f"start node {leader} again", lambda: cluster.start_node(leader))
        coordinator = _step("find the coordinator", lambda: cluster.group_coordinator(group))
        outage(f"with the group coordinator (node {coordinator}) stopped", lambda: cluster.stop_node(coordinator))
        _step(f"start node {coordinator} again", lambda: cluster.start_node(coordinator))
        busy = {_step("find the leader", lambda: _partition_leader(cluster, topic)), _step("find the coordinator", lambda: cluster.group_coordinator(group))}
        bystander = min(set(cluster.node_states()) - busy)
        outage(f"with node {bystander} isolated", lambda: cluster.isolate_node(bystander))
        _step(f"reconnect node {bystander}", lambda: cluster.start_node(bystander))
        _step("lift the pace", pace.lift)
        producer.join()
        if "error" in outcome:
            error: DriverError = outcome["error"]
            raise ScenarioFailure(f"produce through the outages: {error.reason}", error.detail)
        delivered = outcome["produced"]["delivered"]
        want = [(f"k{i}", 0, i) for i in range(OUTAGE_RECORDS)]
        if sorted(map(tuple, delivered), key=lambda d: d[2]) != want:
            raise ScenarioFailure(f"produce: acknowledged {len(delivered)} records, not k{{i}} at offset i for i < {OUTAGE_RECORDS}")
        _step("read every record", lambda: member.wait_until(lambda: highest_read() >= OUTAGE_RECORDS - 1, f"k{OUTAGE_RECORDS - 1}",
                                                             timeout=RECOVERY_TIMEOUT))
        settled = ("Stable", OUTAGE_RECORDS)
        if not wait_for(lambda: _group_view(cluster, group, topic) == settled, timeout=RECOVERY_TIMEOUT):
            state, committed = _group_view(cluster, group, topic)
            raise ScenarioFailure(f"after the outages the group is {state} with offset {committed} committed, want {settled}")
        if member.assignment != [0]:
            raise ScenarioFailure(f"the member holds {member.assignment} after the outages, want [0]")
        _step("close the member", member.close)
    finally:
        member.kill()
        # With every node back and unpaced, a failed run's producer ends soon.
        for node, state in _step("ask the nodes", cluster.node_states).items():
            if state != "running":
                _step(f"start node {node} again", lambda: cluster.start_node(node))
        if isinstance(cluster, OttlaCluster):
            _step("remove the faults", cluster.clear_faults)
        else:
            _step("lift the pace", pace.lift)
        producer.join()
    problems, reread = check_group_reads(member.records, member.batch_starts, member.assigned_at, OUTAGE_RECORDS)
    if problems:
        raise ScenarioFailure("group read: " + _summary(problems))
    rebalances = len(member.assignments) - 1
    notes = [f"{rebalances} rebalance(s)"] if rebalances else []
    notes += [f"{reread} records read again after a rebalance"] if reread else []
    notes += ["recovered in " + " / ".join(f"{seconds:.0f}" for seconds in recovered) + " s (leader stop / coordinator stop / isolation)"]
    return "; ".join(notes)


SCENARIOS: dict[str, Callable[[Client, Target], str | None]] = {
    "produce-consume-restart": produce_consume_restart,
    "group-split-leave-evict": group_split_leave_evict,
    "group-resume-second-group": group_resume_second_group,
    "group-static-membership": group_static_membership,
    **{f"{name}-consumer-protocol": _consumer_protocol(scenario) for name, scenario in (
        ("group-split-leave-evict", group_split_leave_evict),
        ("group-resume-second-group", group_resume_second_group),
        ("group-static-membership", group_static_membership),
    )},
    "admin": admin,
    "idempotent-retries": idempotent_retries,
    "transactions-isolation": transactions_isolation,
    "consume-transform-produce": consume_transform_produce,
    "codecs": codecs,
    "sasl-ssl-scram": sasl_ssl_scram,
    "sasl-plaintext-plain": sasl_plaintext_plain,
    "mutual-tls": mutual_tls,
    "no-write-acl": no_write_acl,
    "wrong-password": wrong_password,
    "cluster-leaders": cluster_leaders,
    "cluster-leader-stop": cluster_leader_stop,
    "cluster-retriable-faults": cluster_retriable_faults,
    "cluster-outages": cluster_outages,
}
SECURITY_SCENARIOS = frozenset({"sasl-ssl-scram", "sasl-plaintext-plain", "mutual-tls", "no-write-acl", "wrong-password"})
# Run against a 3-node Ottla (compat.harness.OttlaCluster) or, with `python -m compat
# --against-kafka-cluster`, three Kafka nodes (compat.kafka.ReferenceKafkaCluster) as well.
CLUSTER_SCENARIOS = frozenset({"cluster-leaders", "cluster-leader-stop", "cluster-retriable-faults", "cluster-outages"})

_PRODUCER_SCENARIOS = frozenset({"idempotent-retries", "transactions-isolation", "consume-transform-produce", "codecs"})


def not_applicable(client: Client, scenario: str) -> str | None:
    """Why `scenario` is not run for `client` (shown in the matrix), or None when it is."""
    if scenario.endswith("-consumer-protocol") and client.name not in CONSUMER_PROTOCOL_CLIENTS:
        return "its member driver has no group.protocol=consumer (KIP-848)"
    if scenario in SECURITY_SCENARIOS and client.name not in SECURITY_CLIENTS:
        return "its driver takes no --security settings yet"
    for prefix, why in LACKS.get(client.name, {}).items():
        if scenario.startswith(prefix):
            return why
    if client.name in LACKS and scenario == "codecs":
        return None
    if scenario.startswith("group-") and client.name not in GROUP_CLIENTS:
        return "no group-member driver for this client yet"
    if scenario == "admin" and client.name not in ADMIN_CLIENTS:
        return "no admin driver for this client yet"
    if scenario in _PRODUCER_SCENARIOS and client.name not in PRODUCER_CLIENTS:
        if client.name == "kcat" and scenario == "codecs":
            return None
        if client.name == "kcat":
            # kcat treats "all brokers down" as fatal, and with one broker a dropped connection is that.
            return "kcat has no transactions, and exits instead of retrying when its one broker connection drops"
        return "no idempotent/transactions/ctp/codecs driver actions for this client yet"
    if scenario == "group-static-membership" and client.name == "kafkajs":
        return "kafkajs has no group.instance.id option (static membership)"
    return None
