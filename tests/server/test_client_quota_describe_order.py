"""DescribeClientQuotas lists the entities in the order Kafka 4.4's ClientQuotasImage.describe
answers them: its image is a java.util.HashMap rebuilt by each change, and a filter walks a
HashMap copy of one of its indexes. Eleven entities set one request at a time, as
`kafka-configs --alter` sets them; each expected order is what the reference Kafka 4.4 answered
after the same requests (its tools print the entities in an order that depends on this one)."""

from __future__ import annotations

from typing import Any

import pytest

from compat.differential import _Connection
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from raw_broker import connection  # noqa: F401 (the fixture)

U, C = "user", "client-id"
SET_IN_ORDER = [
    ((U, None),), ((C, None),), ((C, None), (U, None)), ((C, None), (U, "alice")), ((C, "c1"), (U, "alice")), ((C, "c2"), (U, None)),
    ((U, "bob"),), ((C, "c3"),), ((C, "c9"), (U, "carol")), ((U, "dave"),), ((C, "c4"),),
]
ANY, DEFAULT, EXACT = 2, 1, 0


def _component(entity_type: str, match_type: int, match: str | None = None) -> dict[str, Any]:
    return {"entity_type": entity_type, "match_type": match_type, "match": match}


@pytest.mark.parametrize("components, strict, expected", [
    ([], False, [((C, "c9"), (U, "carol")), ((C, "c2"), (U, None)), ((C, None), (U, "alice")), ((U, "bob"),), ((C, "c4"),), ((U, None),),
                 ((C, None),), ((C, "c1"), (U, "alice")), ((C, "c3"),), ((U, "dave"),), ((C, None), (U, None))]),
    ([_component(U, ANY)], False, [((C, "c9"), (U, "carol")), ((C, "c2"), (U, None)), ((C, None), (U, "alice")), ((U, "bob"),), ((U, None),),
                                   ((C, "c1"), (U, "alice")), ((U, "dave"),), ((C, None), (U, None))]),
    ([_component(U, ANY)], True, [((U, "bob"),), ((U, None),), ((U, "dave"),)]),
    ([_component(C, ANY)], True, [((C, "c4"),), ((C, None),), ((C, "c3"),)]),
    ([_component(C, ANY), _component(U, ANY)], True,
     [((C, "c9"), (U, "carol")), ((C, "c2"), (U, None)), ((C, None), (U, "alice")), ((C, "c1"), (U, "alice")), ((C, None), (U, None))]),
    ([_component(U, DEFAULT)], False, [((C, "c2"), (U, None)), ((U, None),), ((C, None), (U, None))]),
    ([_component(C, DEFAULT)], False, [((C, None),), ((C, None), (U, "alice")), ((C, None), (U, None))]),
    ([_component(U, EXACT, "alice"), _component(C, ANY)], False, [((C, "c1"), (U, "alice")), ((C, None), (U, "alice"))]),
    ([_component(U, DEFAULT), _component(C, ANY)], False, [((C, "c2"), (U, None)), ((C, None), (U, None))]),
])
def test_entities_are_listed_in_kafkas_order(connection: _Connection, components: list[dict[str, Any]], strict: bool,  # noqa: F811
                                             expected: list[tuple[tuple[str, str | None], ...]]) -> None:
    for entity in SET_IN_ORDER:
        altered = connection.call(ApiKey.ALTER_CLIENT_QUOTAS, 1, {"entries": [{
            "entity": [{"entity_type": entity_type, "entity_name": name} for entity_type, name in entity],
            "ops": [{"key": "producer_byte_rate", "value": 1000.0, "remove": False}]}], "validate_only": False})
        assert altered["entries"][0]["error_code"] == ErrorCode.NONE
    described = connection.call(ApiKey.DESCRIBE_CLIENT_QUOTAS, 1, {"components": components, "strict": strict})
    listed = [tuple((part["entity_type"], part["entity_name"]) for part in entry["entity"]) for entry in described["entries"]]
    assert listed == expected
