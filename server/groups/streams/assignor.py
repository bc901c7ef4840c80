"""The `sticky` task assignor: Kafka's default for streams groups (StickyTaskAssignor).

Its promises, kept here: every task is active on exactly one member; the active tasks are
spread so member loads differ by at most one; a task stays with the member that ran it
(its current owner first, then its previous target) while that keeps the balance, and a task
whose owner left goes first to a member that kept a standby of it; each task of a stateful
subtopology gets up to `num_standby_replicas` standbys, never on the process that runs it
active and never twice on one process, preferring members that had it as standby, then the
least loaded.

Kafka balances by process capacity (its members' count) first; with one member per process,
as Kafka Streams runs one consumer per stream thread, that is the same as by member.
"""

from __future__ import annotations

from dataclasses import dataclass

from ottla.server.groups.streams.group import TasksTuple

ASSIGNOR = "sticky"


@dataclass(slots=True, frozen=True)
class MemberSpec:
    process_id: str
    # What the member runs now (its current assignment) and what it was last meant to.
    current: TasksTuple
    previous_target: TasksTuple


def assign(
    members: dict[str, MemberSpec], tasks: dict[str, int], num_standby_replicas: int, stateful: frozenset[str] = frozenset(),
) -> dict[str, TasksTuple]:
    """member id -> target tasks, for `tasks` (subtopology id -> number of tasks). Only the
    tasks of `stateful` subtopologies (those with a changelog) get standbys, as
    StickyTaskAssignor asks its topology for the stateful tasks alone."""
    if not members:
        return {}
    order = sorted(members)
    every = [(subtopology, partition) for subtopology in sorted(tasks) for partition in range(tasks[subtopology])]
    active: dict[str, set[tuple[str, int]]] = {m: set() for m in order}
    floor, extra = divmod(len(every), len(order))

    def previous_owner(task: tuple[str, int]) -> str | None:
        for view in ("current", "previous_target"):
            for member_id in order:
                tasks_tuple: TasksTuple = getattr(members[member_id], view)
                if task[1] in tasks_tuple.active.get(task[0], ()):
                    return member_id
        return None

    unassigned = []
    owners = {task: previous_owner(task) for task in every}
    for task in every:
        owner = owners[task]
        if owner is not None and len(active[owner]) < floor:
            active[owner].add(task)
        else:
            unassigned.append(task)
    moved = []
    for task in unassigned:
        owner = owners[task]
        if owner is not None and extra > 0 and len(active[owner]) == floor:
            active[owner].add(task)
            extra -= 1
        else:
            moved.append(task)

    def had_standby(member_id: str, task: tuple[str, int]) -> bool:
        spec = members[member_id]
        return any(task[1] in t.standby.get(task[0], ()) for t in (spec.current, spec.previous_target))

    # A task whose owner is gone (or over quota) goes to a member that kept a standby of it,
    # whose state is warm, while it has quota left (StickyTaskAssignor.assignActive).
    later = []
    for task in moved:
        warm = [m for m in order if had_standby(m, task) and (len(active[m]) < floor or (len(active[m]) == floor and extra > 0))]
        if not warm:
            later.append(task)
            continue
        target = min(warm, key=lambda m: (len(active[m]), order.index(m)))
        if len(active[target]) == floor:
            extra -= 1
        active[target].add(task)
    for task in later:
        target = min(order, key=lambda m: (len(active[m]), order.index(m)))
        active[target].add(task)

    standby: dict[str, set[tuple[str, int]]] = {m: set() for m in order}
    if num_standby_replicas > 0:
        runs = {task: member_id for member_id, owned in active.items() for task in owned}
        for task in every:
            if task[0] not in stateful:
                continue
            used = {members[runs[task]].process_id}
            for _ in range(num_standby_replicas):
                candidates = [m for m in order if members[m].process_id not in used]
                if not candidates:
                    break
                chosen = min(candidates, key=lambda m: (not had_standby(m, task), len(active[m]) + len(standby[m]), order.index(m)))
                standby[chosen].add(task)
                used.add(members[chosen].process_id)
    return {m: TasksTuple(_grouped(active[m]), _grouped(standby[m])) for m in order}


def _grouped(tasks: set[tuple[str, int]]) -> dict[str, frozenset[int]]:
    result: dict[str, set[int]] = {}
    for subtopology, partition in tasks:
        result.setdefault(subtopology, set()).add(partition)
    return {subtopology: frozenset(partitions) for subtopology, partitions in result.items()}
