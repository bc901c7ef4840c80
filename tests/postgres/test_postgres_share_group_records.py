"""Over PostgreSQL a share group's own records are in `__consumer_offsets` too, read again
within the load of the group's partition: a broker that starts over the database holding
them rebuilds the group with its members, so a member heartbeating with its id and epoch
goes on as on Kafka (as the reference broker answers after a restart), and a deleted group
stays deleted."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any, Callable, cast

import pytest

from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from share_member import ShareMember

pytestmark = pytest.mark.external

_DEADLINE_S = 30.0
# Retriable while the broker takes its partitions over.
_NOT_SERVED_YET = {ErrorCode.NOT_COORDINATOR, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS}


def _member(broker: ThreadedBroker) -> ShareMember:
    return ShareMember(cast(ThreadedBroker, SimpleNamespace(bootstrap_servers=broker.bootstrap_servers)))


def _served(ask: Callable[[], dict[str, Any]], error: Callable[[dict[str, Any]], int]) -> dict[str, Any]:
    """`ask()`'s answer once the group's partition is served (asked again until then)."""
    deadline = time.monotonic() + _DEADLINE_S
    while True:
        answer = ask()
        if error(answer) not in _NOT_SERVED_YET or time.monotonic() > deadline:
            return answer
        time.sleep(0.05)


def test_a_member_goes_on_after_a_restart_over_postgresql(postgres_url: str) -> None:
    with running_broker(storage_url=postgres_url) as broker:
        member = _member(broker)
        # In the database (CreateTopics), so that the broker after the restart has t too: a
        # subscribed topic gone would change the group's metadata hash, and its epoch.
        created = member.call(ApiKey.CREATE_TOPICS, 7, {"topics": [{"name": "t", "num_partitions": 2, "replication_factor": 1,
                                                                    "assignments": [], "configs": []}], "timeout_ms": 30000,
                                                        "validate_only": False})
        assert created["topics"][0]["error_code"] == 0
        _served(lambda: member.heartbeat("g", 0, ["t"]), lambda answer: answer["error_code"])
        assigned = member.join_until_assigned("g", ["t"])
        assert [entry["partitions"] for entry in assigned] == [[0, 1]]
        epoch = member.heartbeat("g", 3, [])["member_epoch"]
        member.close()
    with running_broker(storage_url=postgres_url) as broker:
        again = _member(broker)
        again.member_id = member.member_id
        beat = _served(lambda: again.heartbeat("g", epoch, []), lambda answer: answer["error_code"])
        assert (beat["error_code"], beat["member_epoch"], beat["assignment"]) == (0, epoch, None)
        assert again.call(ApiKey.SHARE_GROUP_HEARTBEAT, 1, {"group_id": "g", "member_id": member.member_id, "member_epoch": -1,
                                                            "rack_id": None, "subscribed_topic_names": None})["error_code"] == 0
        assert again.call(ApiKey.DELETE_GROUPS, 2, {"groups_names": ["g"]})["results"][0]["error_code"] == 0
        again.close()
    with running_broker(storage_url=postgres_url) as broker:
        last = _member(broker)
        deleted = _served(lambda: last.call(ApiKey.DELETE_GROUPS, 2, {"groups_names": ["g"]})["results"][0],
                          lambda answer: answer["error_code"])
        assert deleted["error_code"] == ErrorCode.GROUP_ID_NOT_FOUND
        last.close()
