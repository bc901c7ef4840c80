"""The server-side assignors give, partition for partition, what Kafka 4.4's give.

The expected layouts below were taken from Kafka's own UniformAssignor, run on the same
group state by KafkaAssignorHarness.java (beside this file); the last test runs that
harness on random groups and compares every answer.
"""

from __future__ import annotations

import base64
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ottla.server.groups.consumer import assignors
from unavailable import unavailable

T = bytes.fromhex("5a1c3f0e9b2d4c6a8e7f1a2b3c4d5e6f")
U = bytes.fromhex("0f9e8d7c6b5a49382716a5b4c3d2e1f0")
V = bytes.fromhex("c0ffee00000000000000000000000001")
C1, C2, C3, C4 = "consumer-1", "consumer-2", "consumer-3", "consumer-4"


def _uniform(subscriptions: dict[str, frozenset[bytes]], counts: dict[bytes, int],
             current: dict[str, dict[bytes, frozenset[int]]]) -> dict[str, dict[bytes, frozenset[int]]]:
    return assignors.assign("uniform", assignors.AssignmentSpec(subscriptions, counts, current))


def _layout(**members: dict[bytes, range | list[int]]) -> dict[str, dict[bytes, frozenset[int]]]:
    return {member.replace("_", "-"): {t: frozenset(p) for t, p in topics.items()} for member, topics in members.items()}


def test_a_joining_member_takes_the_partitions_kafka_revokes() -> None:
    """Kafka walks members and partitions in Java hash order (here consumer-3, consumer-2,
    consumer-1; and 0, 16, 1, 17, 2, ... in consumer-1's 16-bucket set): consumer-1 keeps
    its first six in that order and gives up 4..7, consumer-2 gives up 14 and 15."""
    subscriptions = {C1: frozenset({T}), C2: frozenset({T}), C3: frozenset({T})}
    current = _layout(consumer_1={T: [0, 1, 2, 3, 4, 5, 6, 7, 16, 17]}, consumer_2={T: range(8, 16)})
    assert _uniform(subscriptions, {T: 18}, current) == _layout(
        consumer_1={T: [0, 1, 2, 3, 16, 17]}, consumer_2={T: range(8, 14)}, consumer_3={T: [4, 5, 6, 7, 14, 15]})


def test_a_member_over_its_quota_keeps_topics_in_kafka_topic_order() -> None:
    """Topics go in Uuid.hashCode bucket order, not by id: X (hash 1) before W (hash 5), so the
    member keeps X whole and the new member gets W."""
    w = bytes.fromhex("00000000000000000000000000000005")
    x = bytes.fromhex("00000000000000010000000000000000")
    subscriptions = {C1: frozenset({w, x}), C2: frozenset({w, x})}
    current = _layout(consumer_1={w: range(3), x: range(3)})
    assert _uniform(subscriptions, {w: 3, x: 3}, current) == _layout(consumer_1={x: range(3)}, consumer_2={w: range(3)})


def test_different_subscriptions_balance_as_kafka_does() -> None:
    """UniformHeterogeneousAssignmentBuilder: consumer-1 keeps its T and U until the
    balancing rounds move T's highest-owned partitions to the least loaded subscribers."""
    subscriptions = {C1: frozenset({T, U}), C2: frozenset({T}), C3: frozenset({U, V}), C4: frozenset({T, U, V})}
    current = _layout(consumer_1={T: range(5), U: range(4)}, consumer_3={V: range(3)})
    assert _uniform(subscriptions, {T: 5, U: 4, V: 3}, current) == _layout(
        consumer_1={U: range(4)}, consumer_2={T: [1, 3]}, consumer_3={V: range(3)}, consumer_4={T: [0, 2, 4]})


def test_the_subscription_type_not_the_topics_picks_the_builder() -> None:
    """UniformAssignor.assign takes the builder the GroupSpec's subscription type names, even
    when every member subscribes to the same topics: Kafka types such a group heterogeneous
    when a member also names a topic not created yet, or reaches the topic by regex while
    others name it. Kafka's layouts, by KafkaAssignorHarness.java, for each type."""
    subscriptions = {"a": frozenset({T}), "b": frozenset({T}), "c": frozenset({T})}
    current = _layout(a={T: range(3)})
    layouts = {
        assignors.SubscriptionType.HOMOGENEOUS: _layout(a={T: [0]}, b={T: [1]}, c={T: [2]}),
        assignors.SubscriptionType.HETEROGENEOUS: _layout(a={T: [0]}, b={T: [2]}, c={T: [1]}),
    }
    for kind, layout in layouts.items():
        assert assignors.assign("uniform", assignors.AssignmentSpec(subscriptions, {T: 3}, current, subscription_type=kind)) == layout


# Kafka's own classes, on random groups.

_LIB = Path(__file__).resolve().parents[2] / ".cache" / "kafka" / "4.4.0" / "lib"
_HARNESS = Path(__file__).with_name("KafkaAssignorHarness.java")


def _member_id(rng: random.Random) -> str:
    if rng.random() < 0.7:
        return base64.urlsafe_b64encode(rng.randbytes(16)).rstrip(b"=").decode()
    return f"m{rng.randrange(1000)}"


def _random_group(rng: random.Random, homogeneous: bool) -> tuple[dict[str, frozenset[bytes]], dict[bytes, int], dict[str, dict[bytes, frozenset[int]]], dict[str, str | None]]:
    """Members (some new) over a few topics, the partitions mostly held, disjointly, by the
    rest; some hold partitions of topics they no longer subscribe to."""
    topics = [rng.randbytes(16) for _ in range(rng.randint(1, 5))]
    counts = {t: rng.randint(1, 40) for t in topics}
    members = list(dict.fromkeys(_member_id(rng) for _ in range(rng.randint(1, 12))))
    if homogeneous:
        chosen = frozenset(rng.sample(topics, rng.randint(1, len(topics))))
        subscriptions = {m: chosen for m in members}
    else:
        subscriptions = {m: frozenset(rng.sample(topics, rng.randint(0, len(topics)))) for m in members}
    holders = [m for m in members if rng.random() < 0.7] or members[:1]
    held: dict[str, dict[bytes, set[int]]] = {}
    for t, count in counts.items():
        for p in range(count):
            if rng.random() < 0.8:
                held.setdefault(rng.choice(holders), {}).setdefault(t, set()).add(p)
    # Keys in the order the harness puts them (sorted): the port takes a dict's order as Kafka's.
    current = {m: {t: frozenset(topics_[t]) for t in sorted(topics_)} for m, topics_ in held.items()}
    instances = {m: (f"i{rng.randrange(100)}-{m}" if rng.random() < 0.4 else None) for m in members}
    return subscriptions, counts, current, instances


def _encode(name: str, group: tuple[dict[str, frozenset[bytes]], dict[bytes, int], dict[str, dict[bytes, frozenset[int]]], dict[str, str | None]],
            subscription_type: assignors.SubscriptionType | None = None) -> list[str]:
    subscriptions, counts, current, instances = group
    lines = [f"case {name}{f' {subscription_type.value}' if subscription_type else ''}"] + [f"topic {t.hex()} {c}" for t, c in sorted(counts.items())]
    for member, topics in subscriptions.items():
        held = "/".join(f"{t.hex()}:{','.join(map(str, sorted(ps)))}" for t, ps in sorted(current.get(member, {}).items()) if ps)
        instance = f" {instances[member]}" if instances[member] else ""
        lines.append(f"member {member} {','.join(t.hex() for t in sorted(topics)) or '-'} {held or '-'}{instance}")
    return lines + ["end"]


def _decode(output: str) -> list[dict[str, dict[bytes, frozenset[int]]]]:
    answers: list[dict[str, dict[bytes, frozenset[int]]]] = []
    answer: dict[str, dict[bytes, frozenset[int]]] = {}
    for line in output.splitlines():
        fields = line.split(" ")
        if fields[0] == "done":
            answers.append(answer)
            answer = {}
        elif fields[0] == "member":
            answer[fields[1]] = {} if fields[2] == "-" else {
                bytes.fromhex(tp.split(":")[0]): frozenset(map(int, tp.split(":")[1].split(","))) for tp in fields[2].split("/")}
    return answers


@pytest.mark.external
def test_the_assignors_answer_as_kafkas_own_classes_on_random_groups(tmp_path: Path) -> None:
    """Both uniform builders (same and different subscriptions) and the range assignor, on
    1200 random groups, and 300 more where every member subscribes to the same topics but
    the group is heterogeneous (as Kafka types it when a member also names a topic not
    created yet, or mixes names and a regex), so the heterogeneous builder runs. Java keeps ties inside a hash bucket in insertion order; the harness
    inserts by sorted key, as the port assumes."""
    if not _LIB.is_dir() or shutil.which("javac") is None:
        unavailable("needs Kafka 4.4's jars (python -m compat.install) and a JDK")
    classpath = f"{tmp_path}:{_LIB}/*"
    subprocess.run(["javac", "-nowarn", "-d", str(tmp_path), "-cp", f"{_LIB}/*", str(_HARNESS)], check=True, capture_output=True)
    rng = random.Random(848)
    cases: list[tuple[str, Any, assignors.SubscriptionType | None]] = [
        (name, _random_group(rng, homogeneous), None) for name in ("uniform", "range") for homogeneous in (True, False) for _ in range(300)]
    cases += [("uniform", _random_group(rng, True), assignors.SubscriptionType.HETEROGENEOUS) for _ in range(300)]
    stdin = "\n".join(line for name, group, kind in cases for line in _encode(name, group, kind)) + "\n"
    run = subprocess.run(["java", "-cp", classpath, "KafkaAssignorHarness"], input=stdin, capture_output=True, text=True, check=True)
    answers = _decode(run.stdout)
    assert len(answers) == len(cases)
    wrong = []
    for (name, (subscriptions, counts, current, instances), kind), kafka in zip(cases, answers):
        ours = assignors.assign(name, assignors.AssignmentSpec(subscriptions, counts, current, instances, kind))
        if ours != kafka:
            wrong.append((name, subscriptions, counts, current, kafka, ours))
    assert not wrong, f"{len(wrong)} of {len(cases)} differ; first: {wrong[0]}"
