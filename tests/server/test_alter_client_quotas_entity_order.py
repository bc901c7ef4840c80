"""AlterClientQuotas takes an entity's (type, name) pairs in the order Kafka 4.4's
java.util.HashMap of them iterates (AlterClientQuotasRequest.entries() sizes it for the pairs
named; ClientQuotaControlManager.validateEntity stops at the first invalid one), not in request
order: that order picks the refusal's message and lists the answer's entity. Each case is what
the reference broker answers. Raw requests to a real broker."""

from __future__ import annotations

import pytest

from compat.differential import _Connection
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from raw_broker import connection  # noqa: F401 (the fixture)


@pytest.mark.parametrize(("entity", "message", "answered_order"), [
    ([("nonsense", "x"), ("client-id", "")], "Empty client-id not supported", ["client-id", "nonsense"]),
    # Four buckets for two pairs: "user" before "ip" (a default 16-bucket map has "ip" first).
    ([("ip", ""), ("user", "")], "Empty user not supported", ["user", "ip"]),
    ([("user", "u"), ("client-id", "c"), ("ip", "")], "Empty ip not supported", ["client-id", "user", "ip"]),
])
def test_the_first_invalid_pair_in_java_map_order_is_refused(
        connection: _Connection, entity: list[tuple[str, str]], message: str, answered_order: list[str]) -> None:  # noqa: F811
    answer = connection.call(ApiKey.ALTER_CLIENT_QUOTAS, 1, {"entries": [{
        "entity": [{"entity_type": entity_type, "entity_name": name} for entity_type, name in entity],
        "ops": [{"key": "consumer_byte_rate", "value": 1000.0, "remove": False}]}], "validate_only": True})
    [entry] = answer["entries"]
    assert (entry["error_code"], entry["error_message"]) == (ErrorCode.INVALID_REQUEST, message)
    assert [part["entity_type"] for part in entry["entity"]] == answered_order
