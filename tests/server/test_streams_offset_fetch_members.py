"""OffsetFetch v9+ naming a member of a streams group (KIP-1071), over a real socket: as Kafka
4.4's StreamsGroup.validateOffsetFetch (the same rule as ConsumerGroup's, which the reference
broker answers in tests/server/test_offset_fetch_member_checks.py), only a null member id with
a negative epoch (an admin) skips the check; any other member id, "" included and in an empty
group too, must be a known member at its current epoch."""

from __future__ import annotations

from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.errors import ErrorCode
from tests.server.test_features import Client
from tests.server.test_offset_fetch_member_checks import TOPIC, _commit, _fetch
from tests.server.test_streams_task_offsets import _Group, _topology


def test_offset_fetch_checks_the_named_member_of_a_streams_group() -> None:
    with running_broker(data_dir=None, group_streams_assignment_interval_ms=0, group_streams_initial_rebalance_delay_ms=0) as broker:
        broker.create_topic(TOPIC, 1)
        connection = _Connection(broker.bootstrap_servers)
        client = Client(broker.bootstrap_servers)
        try:
            group = _Group(connection, "sg", _topology(TOPIC, stateful=False))
            assert group.beat("m")["error_code"] == ErrorCode.NONE
            epoch = group.epochs["m"]
            assert _commit(client, "sg", 9, epoch, "m") == ErrorCode.NONE
            found = (ErrorCode.NONE, [7])
            unknown, stale = (ErrorCode.UNKNOWN_MEMBER_ID, []), (ErrorCode.STALE_MEMBER_EPOCH, [])
            live = {(None, -1): found, ("", -1): unknown, ("", epoch): unknown, ("nobody", -1): unknown,
                    ("m", epoch): found, ("m", epoch + 1): stale}
            assert {case: _fetch(client, "sg", *case) for case in live} == live
            group.epochs["m"] = -1
            assert group.beat("m")["error_code"] == ErrorCode.NONE  # leaves: the group is empty
            empty = {(None, -1): found, ("", -1): unknown, ("nobody", -1): unknown}
            assert {case: _fetch(client, "sg", *case) for case in empty} == empty
        finally:
            client.close()
            connection.close()
