"""A streams topology configured against the topics that exist (Kafka's InternalTopicManager).

The topology a member sends names, per subtopology, its source topics, the repartition
topics it reads and writes, its changelog topics and its copartition groups. Configuring it
decides the partition count of every internal topic: a repartition topic without a count
takes the largest source count of the subtopologies that write to it (RepartitionTopics),
topics in a copartition group must agree (CopartitionedTopicsEnforcer), a subtopology has as
many tasks as its largest source, and its changelogs that many partitions (ChangelogTopics).

The result is either the subtopologies' task counts and the internal topics still missing,
or the status Kafka answers when it can't be ready (MISSING_SOURCE_TOPICS,
INCORRECTLY_PARTITIONED_TOPICS) with its message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Callable


class Status(IntEnum):
    """StreamsGroupHeartbeatResponse.Status codes."""

    STALE_TOPOLOGY = 0
    MISSING_SOURCE_TOPICS = 1
    INCORRECTLY_PARTITIONED_TOPICS = 2
    MISSING_INTERNAL_TOPICS = 3
    SHUTDOWN_APPLICATION = 4
    ASSIGNMENT_DELAYED = 5
    MISSING_CLIENT_TAGS = 6


class InvalidTopology(Exception):
    """STREAMS_INVALID_TOPOLOGY: no partition counts satisfy the topology."""


@dataclass(slots=True, frozen=True)
class InternalTopic:
    name: str
    partitions: int
    configs: dict[str, str]


@dataclass(slots=True)
class ConfiguredTopology:
    # subtopology id -> number of tasks; empty when `status` says why it is not ready.
    tasks: dict[str, int] = field(default_factory=dict)
    # subtopology id -> its source topics, repartition sources included (for endpoints).
    sources: dict[str, list[str]] = field(default_factory=dict)
    missing: list[InternalTopic] = field(default_factory=list)
    status: Status | None = None
    detail: str = ""

    @property
    def ready(self) -> bool:
        return self.status is None


class _NotReady(Exception):
    def __init__(self, status: Status, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def summarize(topics: list[str] | set[str]) -> str:
    """InternalTopicManager.summarizeTopics: at most ten names, then how many more."""
    names = sorted(topics)
    shown = ", ".join(names[:10])
    return shown + (f" and {len(names) - 10} additional topics" if len(names) > 10 else "")


def configure(topology: dict[str, Any], partitions_of: Callable[[str], int | None]) -> ConfiguredTopology:
    """InternalTopicManager.configureTopics; `partitions_of(name)` is None for a topic that
    does not exist. Raises InvalidTopology when the topology contradicts itself."""
    subtopologies = topology["subtopologies"]
    try:
        missing_sources = {t for s in subtopologies for t in s["source_topics"] if partitions_of(t) is None}
        if missing_sources:
            raise _NotReady(Status.MISSING_SOURCE_TOPICS, f"Source topics {summarize(missing_sources)} are missing.")
        decided = _repartition_counts(subtopologies, partitions_of)
        _enforce_copartitioning(subtopologies, partitions_of, decided)

        def count(name: str) -> int:
            known = decided.get(name)
            return known if known is not None else partitions_of(name) or 0

        result = ConfiguredTopology()
        wanted: list[InternalTopic] = []
        for subtopology in subtopologies:
            sources = [*subtopology["source_topics"], *(t["name"] for t in subtopology["repartition_source_topics"])]
            tasks = max((count(name) for name in sources), default=0)
            result.tasks[subtopology["subtopology_id"]] = tasks
            result.sources[subtopology["subtopology_id"]] = sources
            for topic in subtopology["repartition_source_topics"]:
                wanted.append(InternalTopic(topic["name"], count(topic["name"]), _configs(topic)))
            for topic in subtopology["state_changelog_topics"]:
                wanted.append(InternalTopic(topic["name"], tasks, _configs(topic)))
        for topic in wanted:
            existing = partitions_of(topic.name)
            if existing is None:
                result.missing.append(topic)
            elif existing != topic.partitions:
                raise _NotReady(Status.INCORRECTLY_PARTITIONED_TOPICS, f"Existing topic {topic.name} has different number of partitions: expected {topic.partitions}, found {existing}")
        if result.missing:
            result.status = Status.MISSING_INTERNAL_TOPICS
            result.detail = "Internal topics are missing: " + summarize({t.name for t in result.missing})
        return result
    except _NotReady as not_ready:
        return ConfiguredTopology(status=not_ready.status, detail=not_ready.detail)


def _configs(topic: dict[str, Any]) -> dict[str, str]:
    return {entry["key"]: entry["value"] for entry in topic["topic_configs"]}


def _repartition_counts(subtopologies: list[dict[str, Any]], partitions_of: Callable[[str], int | None]) -> dict[str, int]:
    """RepartitionTopics.computeRepartitionTopicPartitionCount: a count the topology gives is
    kept; the others take the largest source count of the subtopologies writing to them,
    repeated until nothing changes."""
    counts = {t["name"]: t["partitions"] for s in subtopologies for t in s["repartition_source_topics"] if t["partitions"] != 0}
    undecided = {t["name"] for s in subtopologies for t in s["repartition_source_topics"]} - set(counts)
    writers = {name: [s for s in subtopologies if name in s["repartition_sink_topics"]] for name in undecided}
    if any(not w for w in writers.values()):
        raise InvalidTopology("Failed to compute number of partitions for all repartition topics, because a repartition source topic is never used as a sink topic.")
    while undecided:
        progress = False
        for name in sorted(undecided):
            best = 0
            for writer in writers[name]:
                for source in writer["source_topics"]:
                    best = max(best, partitions_of(source) or 0)
                for repartition in writer["repartition_source_topics"]:
                    best = max(best, counts.get(repartition["name"], 0))
            if best > 0:
                counts[name] = best
                undecided.discard(name)
                progress = True
        if not progress:
            raise InvalidTopology("Failed to compute number of partitions for all repartition topics. There may be loops in the topology that cannot be resolved.")
    return counts


def _enforce_copartitioning(subtopologies: list[dict[str, Any]], partitions_of: Callable[[str], int | None], decided: dict[str, int]) -> None:
    """CopartitionedTopicsEnforcer: source topics of a group must agree; the group's
    repartition topics without a count of their own take the sources' count."""
    for subtopology in subtopologies:
        repartition_sources = subtopology["repartition_source_topics"]
        for group in subtopology["copartition_groups"]:
            for field, listed in (("source_topics", subtopology["source_topics"]), ("repartition_source_topics", repartition_sources)):
                if any(not 0 <= i < len(listed) for i in group[field]):
                    raise InvalidTopology(f"Copartition group refers to a {field} index outside 0..{len(listed) - 1}: {group[field]}")
            sources = {subtopology["source_topics"][i]: partitions_of(subtopology["source_topics"][i]) or 0 for i in group["source_topics"]}
            if len(set(sources.values())) > 1:
                listing = ", ".join(f"{name}={count}" for name, count in sorted(sources.items()))
                raise _NotReady(Status.INCORRECTLY_PARTITIONED_TOPICS, f"Following topics do not have the same number of partitions: [{{{listing}}}]")
            repartitions = [repartition_sources[i] for i in group["repartition_source_topics"]]
            if sources:
                agreed = next(iter(sources.values()))
            elif repartitions:
                fixed = [t["partitions"] for t in repartitions if t["partitions"] != 0]
                agreed = max(fixed) if fixed else max(decided.get(t["name"], 0) for t in repartitions)
            else:
                continue
            for topic in repartitions:
                if topic["partitions"] == 0:
                    decided[topic["name"]] = agreed
