"""The `sticky` task assignor: Kafka's default for streams groups, as Kafka 4.4's
StickyTaskAssignor (group-coordinator, org.apache.kafka.coordinator.group.streams.assignor).

Its promises, kept here: every task is active on exactly one member, and each task of a
stateful subtopology (one with a changelog) gets up to `num_standby_replicas` standbys, never
on a process that already has the task; members are balanced by a quota, the tasks left to
place over the members still under it, rounded up (computeTasksPerMember), recomputed each
time a member reaches it: active tasks first, then active and standby tasks together. Loads
are per process: its tasks over its members.

In Kafka's order:
- an active task goes to the member that runs it now while that member is under the active
  quota; else to a standby candidate of it (its state is warm), under the quota; else to the
  least loaded process's least loaded member;
- a standby goes to the member that runs the task active (it has the state) while under the
  total quota, then to a standby candidate of it, then to the least loaded process that
  lacks the task.

What a member holds is its current assignment only (TargetAssignmentBuilder.
createMemberMetadataAndState): a task in a member's target that nobody holds yet is as free
as any. A task's standby candidates (collectStandbyCandidates, rankStandbyCandidates) are the
members that hold it as standby now, then those that report an offset for it in their
heartbeats' TaskOffsets (their state stores have it), each group by the offset they report,
highest first. The first candidate is taken unless a later one is on a less loaded process
and has fewer tasks (findPrevMemberWithLeastLoad).

Kafka 4.4 assigns no warm-up tasks: its AssignmentRefiner.refine returns the target as given,
and this assignor's result has active and standby tasks only.

Ties are broken as Kafka's: it walks members and processes in java.util.HashMap order
(`java_order`; members put in id order, as the consumer assignors do, so two ids sharing a
bucket may still differ) and picks the least loaded process, and a process's least loaded
member, from java.util.PriorityQueues ordered by load alone (`_JavaQueue`), where equal loads
come out in the order the heap's sifts leave them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from ottla.server.java_hashing import default_capacity, java_order, string_hash, table_size_for
from ottla.server.groups.streams.group import TasksTuple

log = logging.getLogger("ottla.groups")

ASSIGNOR = "sticky"

Task = tuple[str, int]  # (subtopology id, partition)
T = TypeVar("T")


class _JavaQueue(Generic[T]):
    """java.util.PriorityQueue ordered by `key` alone: the same binary heap and sifts, so
    items of equal key are polled in the order Kafka's queue polls them. `key` is read live;
    an item's key may change only while it is out of the queue."""

    def __init__(self, key: Callable[[T], float], items: Iterable[T] = ()) -> None:
        self.key = key
        self.heap: list[T] = []
        for item in items:
            self.add(item)

    def __len__(self) -> int:
        return len(self.heap)

    def add(self, item: T) -> None:
        heap, key = self.heap, self.key(item)
        heap.append(item)
        k = len(heap) - 1
        while k > 0:
            parent = (k - 1) >> 1
            if key >= self.key(heap[parent]):
                break
            heap[k] = heap[parent]
            k = parent
        heap[k] = item

    def poll(self) -> T:
        heap = self.heap
        first, last = heap[0], heap.pop()
        if heap:
            n, k, key = len(heap), 0, self.key(last)
            while k < n >> 1:
                child = 2 * k + 1
                if child + 1 < n and self.key(heap[child]) > self.key(heap[child + 1]):
                    child += 1
                if key <= self.key(heap[child]):
                    break
                heap[k] = heap[child]
                k = child
            heap[k] = last
        return first


@dataclass(slots=True, frozen=True)
class MemberSpec:
    process_id: str
    current: TasksTuple  # what the member holds now, not what it is meant to get
    # The changelog offset sum the member last reported per task (its heartbeats' TaskOffsets).
    task_offsets: dict[Task, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Process:
    """ProcessState: one process's members, each one's task count, and what it was given."""

    process_id: str
    counts: dict[str, int] = field(default_factory=dict)  # in Kafka's memberToTaskCounts order
    tasks: set[Task] = field(default_factory=set)
    active: dict[str, set[Task]] = field(default_factory=dict)
    standby: dict[str, set[Task]] = field(default_factory=dict)
    by_load: _JavaQueue[str] | None = None  # membersByLoad: built on demand, dropped by `add`

    @property
    def load(self) -> float:
        return sum(self.counts.values()) / len(self.counts)

    def add(self, member_id: str, task: Task, active: bool) -> int:
        """Give the member the task (ProcessState.addTask); its new task count."""
        self.by_load = None
        return self._add(member_id, task, active)

    def _add(self, member_id: str, task: Task, active: bool) -> int:
        self.tasks.add(task)
        (self.active if active else self.standby).setdefault(member_id, set()).add(task)
        self.counts[member_id] += 1
        return self.counts[member_id]

    def add_to_least_loaded(self, task: Task, active: bool) -> int:
        """addTaskToLeastLoadedMember: to the member its queue by task count polls; the new count."""
        if len(self.counts) == 1:
            return self._add(next(iter(self.counts)), task, active)
        if self.by_load is None:
            self.by_load = _JavaQueue(self.counts.__getitem__, self.counts)
        member_id = self.by_load.poll()
        count = self._add(member_id, task, active)
        self.by_load.add(member_id)
        return count


@dataclass(slots=True)
class _Quota:
    """The tasks a member may have: those left over the members left, rounded up; a member
    that reaches it leaves both counts (maybeUpdateActiveTasksPerMember)."""

    tasks: int
    members: int
    per_member: int = 0

    def __post_init__(self) -> None:
        self.per_member = _per_member(self.tasks, self.members)

    def took(self, count: int) -> None:
        if count == self.per_member:
            self.members -= 1
            self.tasks -= count
            self.per_member = _per_member(self.tasks, self.members)


def _per_member(tasks: int, members: int) -> int:
    return 0 if members == 0 else -(-tasks // members)


def assign(
    members: dict[str, MemberSpec], tasks: dict[str, int], num_standby_replicas: int, stateful: frozenset[str] = frozenset(),
) -> dict[str, TasksTuple]:
    """member id -> target tasks, for `tasks` (subtopology id -> number of tasks). Only the
    tasks of `stateful` subtopologies get standbys, as StickyTaskAssignor asks its topology
    for the stateful tasks alone."""
    if not members:
        return {}
    order = java_order(sorted(members), string_hash, default_capacity(len(members)))
    active_tasks = [(subtopology, partition) for subtopology in sorted(tasks) for partition in range(tasks[subtopology])]
    standby_tasks = [task for task in active_tasks if task[0] in stateful] if num_standby_replicas > 0 else []
    members_of: dict[str, list[str]] = {}
    for member_id in order:
        members_of.setdefault(members[member_id].process_id, []).append(member_id)
    process_order = java_order(list(members_of), string_hash, _computed_capacity(len(order), [members[m].process_id for m in order]))
    processes = {process_id: _Process(process_id, dict.fromkeys(java_order(members_of[process_id], string_hash, default_capacity(len(members_of[process_id]))), 0))
                 for process_id in process_order}
    active_quota = _Quota(len(active_tasks), len(order))
    total_quota = _Quota(len(active_tasks) + len(standby_tasks) * num_standby_replicas, len(order))

    def process_of(member_id: str) -> _Process:
        return processes[members[member_id].process_id]

    # Who runs each task active now (activeTaskToPrevMember), and each task's standby
    # candidates, best first (standbyTaskToPrevMember): a stable sort, so equal ones stay in
    # member order.
    ran: dict[Task, str] = {}
    candidates: dict[Task, list[tuple[bool, int, str]]] = {}
    for member_id in order:
        spec = members[member_id]
        ran.update(((subtopology, partition), member_id) for subtopology, partitions in spec.current.active.items() for partition in partitions)
        standby = {(subtopology, partition) for subtopology, partitions in spec.current.standby.items() for partition in partitions}
        for task in sorted(standby):
            candidates.setdefault(task, []).append((False, -spec.task_offsets.get(task, 0), member_id))
        for task, offset in sorted(spec.task_offsets.items()):
            if task not in standby:
                candidates.setdefault(task, []).append((True, -offset, member_id))
    ranked = {task: [member_id for *_, member_id in sorted(found, key=lambda c: c[:2])] for task, found in candidates.items()}

    def least_loaded_candidate(task: Task, lacking: bool) -> str | None:
        """findPrevMemberWithLeastLoad: the best ranked candidate (of a process without the
        task, if `lacking`), replaced only by one both on a less loaded process and with fewer
        tasks."""
        best: str | None = None
        best_load = best_count = float("inf")
        for member_id in ranked.get(task, ()):
            process = process_of(member_id)
            if lacking and task in process.tasks:
                continue
            load, count = process.load, process.counts[member_id]
            if best is None or (load < best_load and count < best_count):
                best, best_load, best_count = member_id, load, count
        return best

    def give(member_id: str, task: Task, active: bool) -> None:
        count = process_of(member_id).add(member_id, task, active)
        if active:
            active_quota.took(count)
        total_quota.took(count)

    # assignActive: to the member that runs it, then to a standby candidate, then least loaded.
    left = []
    for task in sorted(active_tasks, key=lambda t: (t[1], t[0])):
        owner = ran.get(task)
        if owner is not None and process_of(owner).counts[owner] < active_quota.per_member:
            give(owner, task, True)
        else:
            left.append(task)
    unplaced = []
    for task in left:
        candidate = least_loaded_candidate(task, lacking=False)
        if candidate is not None and process_of(candidate).counts[candidate] < active_quota.per_member:
            give(candidate, task, True)
        else:
            unplaced.append(task)
    by_load = _JavaQueue(_load, processes.values())
    for task in sorted(unplaced):
        process = by_load.poll()
        count = process.add_to_least_loaded(task, True)
        active_quota.took(count)
        total_quota.took(count)
        by_load.add(process)

    # assignStandby: to the member that runs it active, then to a standby candidate, then to
    # the least loaded process without it.
    to_least_loaded: list[tuple[Task, int]] = []
    for task in sorted(standby_tasks, key=lambda t: (t[1], t[0]), reverse=True):
        for replica in range(num_standby_replicas):
            owner = ran.get(task)
            if owner is not None and task not in process_of(owner).tasks and process_of(owner).counts[owner] < total_quota.per_member:
                give(owner, task, False)
                continue
            candidate = least_loaded_candidate(task, lacking=True)
            if candidate is not None and process_of(candidate).counts[candidate] < total_quota.per_member:
                give(candidate, task, False)
                continue
            to_least_loaded.append((task, num_standby_replicas - replica))
            break
    standby_by_load = _JavaQueue(_load, processes.values())
    for task, remaining in sorted(to_least_loaded, reverse=True):
        for _ in range(remaining):
            if not _standby_to_least_loaded(standby_by_load, task, total_quota):
                log.warning("not enough processes for %d standby replicas of task %s_%d", num_standby_replicas, *task)
                break
    return {m: TasksTuple(_grouped(process_of(m).active.get(m, set())), _grouped(process_of(m).standby.get(m, set()))) for m in order}


def _load(process: _Process) -> float:
    return process.load


def _standby_to_least_loaded(by_load: _JavaQueue[_Process], task: Task, total_quota: _Quota) -> bool:
    """assignStandbyToMemberWithLeastLoad: the standby to the least loaded process without the
    task, polling past those with it; the polled are put back last polled first, as Kafka's
    recursion does, so the queue's order moves as Kafka's. Whether one took it."""
    polled: list[_Process] = []
    found = False
    while by_load and not found:
        process = by_load.poll()
        polled.append(process)
        if task not in process.tasks:
            total_quota.took(process.add_to_least_loaded(task, False))
            found = True
    for process in reversed(polled):
        by_load.add(process)
    return found


def _computed_capacity(initial: int, keys: list[str]) -> int:
    """Buckets of a `new HashMap<>(initial)` after computeIfAbsent of each of `keys` (duplicates
    included): unlike put, computeIfAbsent grows the table before a call, only once the map
    already holds more than its threshold."""
    threshold = table_size_for(initial)
    capacity = 0
    seen: set[str] = set()
    for k in keys:
        if capacity == 0 or len(seen) > threshold:
            if capacity >= 16:
                capacity, threshold = capacity * 2, threshold * 2
            else:
                capacity = capacity * 2 if capacity else threshold
                threshold = int(capacity * 0.75)
        seen.add(k)
    return capacity


def _grouped(tasks: set[Task]) -> dict[str, frozenset[int]]:
    result: dict[str, set[int]] = {}
    for subtopology, partition in tasks:
        result.setdefault(subtopology, set()).add(partition)
    return {subtopology: frozenset(partitions) for subtopology, partitions in result.items()}
