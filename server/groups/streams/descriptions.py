"""Streams topology descriptions (KIP-1331): what Kafka 4.4's InMemoryTopologyDescriptionPlugin
keeps, and when a member is asked to push one.

Kafka 4.4 keeps descriptions in a plugin named by `group.streams.topology.description.plugin.class`
(none by default: the feature is off, StreamsGroupTopologyDescriptionUpdate is refused with
UNSUPPORTED_VERSION, no heartbeat asks for a description and StreamsGroupDescribe answers
NOT_STORED). The one plugin Kafka ships, `InMemoryTopologyDescriptionPlugin`, keeps the latest
description of each group in memory; Ottla's `DescriptionStore` is that plugin, and the only one it
can run. The group coordinator records beside the group which epoch the plugin holds
(StreamsGroup.stored_description_topology_epoch), durably, in the group's metadata record.

StreamsGroupTopologyDescriptionConverter.fromRequest keeps, of a node, only what its type
defines (a source's topics, a processor's stores, a sink's topic) and its successors, each list
without repeats in first-seen order; StreamsGroupDescribe answers that form (toDescribeResponse).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Callable

PLUGIN_SETTING = "group.streams.topology.description.plugin.class"
IN_MEMORY_PLUGIN = "org.apache.kafka.server.streams.InMemoryTopologyDescriptionPlugin"

SOURCE, PROCESSOR, SINK = 1, 2, 3
# StreamsGroup.storedDescriptionTopologyEpoch: none stored; an interrupted plugin operation.
NONE_STORED, UNCERTAIN = -1, -2

# StreamsGroupTopologyDescriptionBackoff: after asking a group's members for a description,
# ask again at the same topology epoch only once this has passed (30 s doubling to 1 h, ±20 %).
_INITIAL_DELAY_MS, _MULTIPLIER, _MAX_DELAY_MS, _JITTER = 30_000, 2, 3_600_000, 0.2


def plugin_configured(setting: Callable[[str], Any]) -> bool:
    """StreamsGroupTopologyDescriptionManager.isPluginConfigured, for the one plugin Ottla runs,
    given the broker's settings by name."""
    return bool(setting(PLUGIN_SETTING) == IN_MEMORY_PLUGIN)


class InvalidDescription(Exception):
    """A description Kafka's converter refuses: INVALID_REQUEST with this message."""


def convert(description: dict[str, Any]) -> dict[str, Any]:
    """StreamsGroupTopologyDescriptionConverter.fromRequest then toDescribeResponse."""
    subtopologies = [{"subtopology_id": s["subtopology_id"], "nodes": [_node(n) for n in s["nodes"]]} for s in description["subtopologies"]]
    stores = []
    for store in description["global_stores"]:
        source, processor = _node(store["source"]), _node(store["processor"])
        if source["node_type"] != SOURCE or processor["node_type"] != PROCESSOR:
            raise InvalidDescription("Global store must be composed of a source and a processor node.")
        stores.append({"source": source, "processor": processor})
    return {"subtopologies": subtopologies, "global_stores": stores}


def _node(node: dict[str, Any]) -> dict[str, Any]:
    kind = node["node_type"]
    if kind not in (SOURCE, PROCESSOR, SINK):
        raise InvalidDescription(f"Unknown topology node type: {kind}")
    return {
        "name": node["name"],
        "node_type": kind,
        "source_topics": _unique(node["source_topics"]) if kind == SOURCE else [],
        "sink_topic": node["sink_topic"] if kind == SINK else None,
        "stores": _unique(node["stores"]) if kind == PROCESSOR else [],
        "successors": _unique(node["successors"]),
    }


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


@dataclass(slots=True, frozen=True)
class _Attempt:
    topology_epoch: int
    attempts: int
    next_attempt_ms: int


class DescriptionStore:
    """InMemoryTopologyDescriptionPlugin (each group's latest description, by topology epoch),
    with StreamsGroupTopologyDescriptionBackoff's per-group state. Neither outlives the process,
    as in Kafka."""

    def __init__(self) -> None:
        self._descriptions: dict[str, tuple[int, dict[str, Any]]] = {}
        self._backoff: dict[str, _Attempt] = {}

    def set(self, group_id: str, topology_epoch: int, description: dict[str, Any]) -> None:
        self._descriptions[group_id] = (topology_epoch, description)

    def get(self, group_id: str, topology_epoch: int) -> dict[str, Any] | None:
        entry = self._descriptions.get(group_id)
        return None if entry is None or entry[0] != topology_epoch else entry[1]

    def delete(self, group_id: str) -> None:
        self._descriptions.pop(group_id, None)
        self._backoff.pop(group_id, None)

    def arm_if_not_active(self, group_id: str, topology_epoch: int, now_ms: int) -> bool:
        """Backoff.armIfNotActive: False while a request at this epoch is recent; else arm the
        next delay (longer for each repeat at one epoch) and True."""
        entry = self._backoff.get(group_id)
        if entry is not None and entry.topology_epoch == topology_epoch and now_ms < entry.next_attempt_ms:
            return False
        attempts = entry.attempts + 1 if entry is not None and entry.topology_epoch == topology_epoch else 0
        self._backoff[group_id] = _Attempt(topology_epoch, attempts, now_ms + _delay_ms(attempts))
        return True

    def clear_backoff(self, group_id: str, topology_epoch: int) -> None:
        """Backoff.clear: a description stored at this epoch ends its backoff."""
        entry = self._backoff.get(group_id)
        if entry is not None and entry.topology_epoch == topology_epoch:
            del self._backoff[group_id]


def _delay_ms(attempts: int) -> int:
    """ExponentialBackoff.backoff(attempts)."""
    term = _INITIAL_DELAY_MS * _MULTIPLIER ** min(attempts, math.log(_MAX_DELAY_MS / _INITIAL_DELAY_MS, _MULTIPLIER))
    return min(int(random.uniform(1 - _JITTER, 1 + _JITTER) * term), _MAX_DELAY_MS)
