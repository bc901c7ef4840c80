"""AlterClientQuotas judges an entry's keys in the order Kafka 4.4's ClientQuotaControlManager
iterates its `new HashMap<>(ops.size())` of them, stopping at the first invalid one: so of several
unknown keys, the message names the one first in that map, not the first sent. Seen on the
reference (seed 93 --messages, input 45): keys "-", "fz81eb35-45-1", "fz81eb35-45-2" are refused
for "fz81eb35-45-2"."""

from __future__ import annotations

from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

from kafka_wire import WireClient


def test_the_invalid_key_named_is_the_first_in_kafkas_hash_map_order() -> None:
    ops = [{"key": key, "value": value, "remove": False} for key, value in (("-", 1.0), ("fz81eb35-45-1", 1.0), ("fz81eb35-45-2", 0.0))]
    with running_broker(data_dir=None) as broker:
        conn = WireClient(broker.bootstrap_servers)
        try:
            answer = conn.call(ApiKey.ALTER_CLIENT_QUOTAS, 0, {"validate_only": True, "entries": [
                {"entity": [{"entity_type": "user", "entity_name": "topic_éé"}], "ops": ops}]})
        finally:
            conn.close()
    [entry] = answer["entries"]
    assert (entry["error_code"], entry["error_message"]) == (ErrorCode.INVALID_REQUEST, "Invalid configuration key fz81eb35-45-2")
