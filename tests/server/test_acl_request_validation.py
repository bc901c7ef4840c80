"""The ACL APIs refuse what Kafka 4.4 refuses, where and how it refuses it: a code 0 (UNKNOWN)
does not parse and closes the connection (CreateAclsRequest.validate,
DescribeAclsRequest/DeleteAclsRequest.normalizeAndValidate); a filter-only code in a creation
fails the whole CreateAcls UNKNOWN_SERVER_ERROR (the ResourcePattern and AccessControlEntry
constructors throw in AclApis.handleCreateAcls); AclControlManager.validateNewAcl refuses a
principal without a type and an empty host, and validateHostPattern a CIDR host below
metadata.version 4.4-IV1. Each answer here is what a reference Kafka 4.4 with StandardAuthorizer
gave to the same request (the CIDR one at that metadata.version, read from its bytecode)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from compat.differential import _Connection
from ottla.server.security.authorizer import STANDARD_AUTHORIZER
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

TOPIC, CLUSTER = 2, 4
ANY, MATCH, LITERAL = 1, 2, 3
READ, ALLOW = 3, 3


def _creation(name: str = "t", *, resource_type: int = TOPIC, pattern: int = LITERAL, principal: str = "User:alice", host: str = "*",
              operation: int = READ, permission: int = ALLOW) -> dict[str, Any]:
    return {"resource_type": resource_type, "resource_name": name, "resource_pattern_type": pattern, "principal": principal, "host": host,
            "operation": operation, "permission_type": permission}


def _filter(*, resource_type: int = ANY, name: str | None = None, pattern: int = ANY, operation: int = ANY, permission: int = ANY) -> dict[str, Any]:
    return {"resource_type_filter": resource_type, "resource_name_filter": name, "pattern_type_filter": pattern, "principal_filter": None,
            "host_filter": None, "operation": operation, "permission_type": permission}


@pytest.fixture
def conn(tmp_path) -> Iterator[_Connection]:
    with running_broker(data_dir=tmp_path, authorizer_class_name=STANDARD_AUTHORIZER, super_users="User:ANONYMOUS") as broker:
        connection = _Connection(broker.bootstrap_servers)
        yield connection
        connection.close()


def _closed(response: dict[str, Any]) -> bool:
    """Whether the broker hung up instead of answering (_Connection.call's report)."""
    return list(response) == ["connection"]


def _names(conn: _Connection) -> list[str]:
    described = conn.call(ApiKey.DESCRIBE_ACLS, 3, _filter())
    assert described["error_code"] == ErrorCode.NONE, described
    return sorted(resource["resource_name"] for resource in described["resources"])


@pytest.mark.parametrize("field", ["resource_type", "resource_pattern_type", "operation", "permission_type"])
def test_an_unknown_code_zero_closes_the_connection_unanswered(conn, field):
    assert _closed(conn.call(ApiKey.CREATE_ACLS, 3, {"creations": [_creation("kept"), {**_creation("zero"), field: 0}]}))
    filter_field = {"resource_type": "resource_type_filter", "resource_pattern_type": "pattern_type_filter"}.get(field, field)
    assert _closed(conn.call(ApiKey.DESCRIBE_ACLS, 3, {**_filter(), filter_field: 0}))
    assert _closed(conn.call(ApiKey.DELETE_ACLS, 3, {"filters": [_filter(), {**_filter(), filter_field: 0}]}))
    assert _names(conn) == []  # neither created nor deleted anything


def test_a_code_kafka_does_not_know_describes_nothing_without_an_error(conn):
    # A success carries the message fields' default, "" (AclCreationResult, DescribeAclsResponseData).
    assert conn.call(ApiKey.CREATE_ACLS, 3, {"creations": [_creation()]})["results"] == [{"error_code": 0, "error_message": ""}]
    for unknown in ({"resource_type": 99}, {"pattern": 99}, {"operation": 99}, {"permission": 99}):
        described = conn.call(ApiKey.DESCRIBE_ACLS, 3, _filter(**unknown))
        assert (described["error_code"], described["error_message"], described["resources"]) == (ErrorCode.NONE, "", []), unknown


@pytest.mark.parametrize("filter_only", [{"resource_type": ANY}, {"pattern": MATCH}, {"pattern": ANY}, {"operation": ANY}, {"permission": ANY}])
def test_a_filter_only_code_in_a_creation_fails_the_whole_request(conn, filter_only):
    created = conn.call(ApiKey.CREATE_ACLS, 3, {"creations": [_creation("valid"), _creation("filter-only", **filter_only)]})
    assert created["results"] == [{"error_code": ErrorCode.UNKNOWN_SERVER_ERROR, "error_message": None}] * 2
    assert _names(conn) == []


def test_principals_and_hosts_are_validated_as_the_controller_does(conn):
    created = conn.call(ApiKey.CREATE_ACLS, 3, {"creations": [
        _creation("no-colon", principal="alice"),
        _creation("empty-host", host=""),
        _creation("cidr", host="10.0.0.0/8"),
        _creation("bad-cidr", host="10.0.0.0/99"),
        _creation("typed", principal="Group:admins", host="somehost"),
    ]})
    answers = [(r["error_code"], r["error_message"]) for r in created["results"]]
    # A new data directory finalizes metadata.version 4.4-IV2, where CIDR ranges are accepted (4.4-IV1).
    assert answers[:3] + answers[4:] == [
        (ErrorCode.INVALID_REQUEST, "Could not parse principal from `alice` (no colon is present separating the principal type from the principal name)"),
        (ErrorCode.INVALID_REQUEST, "Host pattern cannot be null or empty"),
        (ErrorCode.NONE, ""),
        (ErrorCode.NONE, ""),
    ]
    assert answers[3][0] == ErrorCode.INVALID_REQUEST and answers[3][1].startswith("Invalid CIDR notation '10.0.0.0/99': ")
    assert _names(conn) == ["cidr", "typed"]
