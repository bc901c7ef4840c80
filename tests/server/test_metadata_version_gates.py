"""metadata.version means on Ottla what it means on Kafka 4.4: a new data directory finalizes
4.4-IV2 (MetadataVersion.LATEST_PRODUCTION), and below a feature's level Ottla answers as a
reference Kafka 4.4 formatted at that level answered (SCRAM below 3.5-IV2, controller
unregistration below 4.4-IV2, CIDR ACL hosts below 4.4-IV1). CIDR hosts parse and match as
Kafka's CidrUtils (commons-net SubnetUtils and SubnetUtils6): each verdict and message below is
the one Kafka 4.4 gave for the same string."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compat.differential import _Connection
from ottla.server.security.authorizer import STANDARD_AUTHORIZER, Acl, AclOperation, AclPermissionType, PatternType, ResourceType
from ottla.server.security.authorizer import creation_problem, host_in_range
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

CLUSTER, DESCRIBE, ALLOW, DENY, LITERAL = 4, 8, 3, 2, 3


def _broker_at(tmp_path: Path, level: int, **settings: Any) -> Any:
    data = tmp_path / "data"
    data.mkdir()
    (data / "finalized-features.json").write_text(json.dumps({"epoch": 0, "levels": {"metadata.version": level}}))
    return running_broker(data_dir=data, **settings)


@pytest.fixture
def at_3_5_iv1(tmp_path: Path) -> Iterator[_Connection]:
    with _broker_at(tmp_path, 10) as broker:
        connection = _Connection(broker.bootstrap_servers)
        yield connection
        connection.close()


def test_a_new_data_directory_finalizes_kafka_4_4s_latest_production_level(tmp_path: Path) -> None:
    with running_broker(data_dir=tmp_path / "data") as broker:
        connection = _Connection(broker.bootstrap_servers)
        answer = connection.call(ApiKey.API_VERSIONS, 4, {"client_software_name": "t", "client_software_version": "1"})
        connection.close()
    assert {"name": "metadata.version", "max_version_level": 33, "min_version_level": 33} in answer["finalized_features"]
    assert {"name": "metadata.version", "min_version": 7, "max_version": 33} in answer["supported_features"]


def test_scram_credentials_below_3_5_iv2_are_unsupported_for_every_user(at_3_5_iv1: _Connection) -> None:
    upsert = {"mechanism": 1, "iterations": 4096, "salt": b"s" * 16, "salted_password": b"p" * 32}
    answer = at_3_5_iv1.call(ApiKey.ALTER_USER_SCRAM_CREDENTIALS, 0, {
        "deletions": [{"name": "gone", "mechanism": 1}, {"name": "twice", "mechanism": 1}],
        "upsertions": [{"name": "u", **upsert}, {"name": "", **upsert}, {**upsert, "name": "few", "iterations": 10}, {"name": "twice", **upsert}],
    })
    unsupported = (ErrorCode.UNSUPPORTED_VERSION, "The current metadata.version does not support SCRAM")
    assert {r["user"]: (r["error_code"], r["error_message"]) for r in answer["results"]} == {
        "gone": unsupported, "u": unsupported, "": unsupported, "few": unsupported, "twice": unsupported,
    }
    described = at_3_5_iv1.call(ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS, 0, {"users": None})
    assert described["results"] == []


@pytest.mark.parametrize("level, error, message", [
    (32, ErrorCode.UNSUPPORTED_VERSION, "The current MetadataVersion is too old to support controller unregistration."),
    (33, ErrorCode.CONTROLLER_ID_NOT_REGISTERED, "Controller ID 5 is not currently registered."),
])
def test_controller_unregistration_needs_4_4_iv2(tmp_path: Path, level: int, error: ErrorCode, message: str) -> None:
    with _broker_at(tmp_path, level) as broker:
        connection = _Connection(broker.bootstrap_servers)
        answer = connection.call(ApiKey.UNREGISTER_CONTROLLER, 0, {"controller_id": 5})
        connection.close()
    assert (answer["error_code"], answer["error_message"]) == (error, message)


def _acl(host: str) -> Acl:
    return Acl(ResourceType.TOPIC, "t", PatternType.LITERAL, "User:alice", host, AclOperation.READ, AclPermissionType.ALLOW)


@pytest.mark.parametrize("host, problem", [
    ("10.0.0.0/8", None), ("10.1.2.3/32", None), ("10.0.0.1/24", None), ("0.0.0.0/0", None), ("10.0.0.0/08", None),
    ("fe80::/10", None), ("::1/128", None), ("::/0", None), ("fe80::1%eth0/64", None),
    ("10.0.0.0/33", "Value [33] not in range [0,32]"),
    ("300.0.0.0/8", "Value [300] not in range [0,255]"),
    ("10.0.0.0/", "Could not parse [10.0.0.0/]"),
    ("/8", "Could not parse [/8]"),
    ("10.0.0/8", "Could not parse [10.0.0/8]"),
    ("10.0.0.0/8/9", "Could not parse [10.0.0.0/8/9]"),
    ("abc/8", "Could not parse [abc/8]"),
    (" 10.0.0.0/8", "Could not parse [ 10.0.0.0/8]"),
    ("10.0.0.0/-1", "Could not parse [10.0.0.0/-1]"),
    ("fe80::/129", "Could not parse [fe80::/129] - prefix length must be between 0 and 128"),
    ("fe80::/abc", "Could not parse [fe80::/abc] - invalid prefix length"),
    ("::ffff:10.0.0.0/104", "Could not parse [::ffff:10.0.0.0] - not an IPv6 address"),
    ("1:2:3:4:5:6:7:8:9/64", "Could not parse [1:2:3:4:5:6:7:8:9]"),
])
def test_cidr_hosts_are_checked_from_4_4_iv1_and_refused_below(host: str, problem: str | None) -> None:
    expected = None if problem is None else (ErrorCode.INVALID_REQUEST, f"Invalid CIDR notation '{host}': {problem}")
    assert creation_problem(_acl(host), 32) == expected
    assert creation_problem(_acl(host), 31) == (ErrorCode.UNSUPPORTED_VERSION, "CIDR-based ACL host patterns require metadata version 4.4-IV1 or higher.")


@pytest.mark.parametrize("cidr, inside", [
    ("10.0.0.0/8", {"10.0.0.1", "10.1.2.3"}),
    ("10.0.0.1/24", {"10.0.0.1"}),
    ("0.0.0.0/0", {"10.0.0.1", "10.1.2.3", "11.0.0.1", "127.0.0.1", "255.255.255.255"}),  # never 0.0.0.0
    ("fe80::/10", {"fe80::1", "FE80::1", "fe80:0:0:0:0:0:0:1", "fe80::1%eth0"}),
    ("::1/128", {"::1", "0:0:0:0:0:0:0:1"}),
    ("2001:db8::/32", {"2001:db8::1"}),
    ("::ffff:10.0.0.0/104", set()),  # an IPv4-mapped range does not parse, so holds nothing
    ("10.0.0.0/33", set()),
])
def test_a_cidr_range_holds_the_addresses_kafka_4_4_finds_in_it(cidr: str, inside: set[str]) -> None:
    hosts = ["10.0.0.1", "10.1.2.3", "11.0.0.1", "127.0.0.1", "0.0.0.0", "255.255.255.255", "::1", "fe80::1", "FE80::1",
             "fe80:0:0:0:0:0:0:1", "2001:db8::1", "::ffff:10.0.0.1", "0:0:0:0:0:0:0:1", "fe80::1%eth0", "localhost"]
    assert {host for host in hosts if host_in_range(host, cidr)} == inside


@pytest.mark.parametrize("host, allowed", [("127.0.0.0/8", True), ("127.0.0.1/32", True), ("10.0.0.0/8", False), ("::1/128", False)])
def test_a_cidr_acl_decides_for_a_client_connected_from_inside_its_range(tmp_path: Path, host: str, allowed: bool) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "acls.json").write_text(json.dumps({"acls": [[CLUSTER, "kafka-cluster", LITERAL, "User:ANONYMOUS", host, DESCRIBE, ALLOW]]}))
    with running_broker(data_dir=data, authorizer_class_name=STANDARD_AUTHORIZER, host="127.0.0.1") as broker:
        connection = _Connection(broker.bootstrap_servers)
        described = connection.call(ApiKey.DESCRIBE_ACLS, 3, {"resource_type_filter": 1, "resource_name_filter": None, "pattern_type_filter": 1,
                                                             "principal_filter": None, "host_filter": None, "operation": 1, "permission_type": 1})
        connection.close()
    assert described["error_code"] == (ErrorCode.NONE if allowed else ErrorCode.CLUSTER_AUTHORIZATION_FAILED)


def test_a_cidr_deny_overrides_an_allow_for_a_client_inside_its_range(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    rows = [[CLUSTER, "kafka-cluster", LITERAL, "User:ANONYMOUS", "*", DESCRIBE, ALLOW],
            [CLUSTER, "kafka-cluster", LITERAL, "User:*", "127.0.0.0/24", DESCRIBE, DENY]]
    (data / "acls.json").write_text(json.dumps({"acls": rows}))
    with running_broker(data_dir=data, authorizer_class_name=STANDARD_AUTHORIZER, host="127.0.0.1") as broker:
        connection = _Connection(broker.bootstrap_servers)
        described = connection.call(ApiKey.DESCRIBE_ACLS, 3, {"resource_type_filter": 1, "resource_name_filter": None, "pattern_type_filter": 1,
                                                             "principal_filter": None, "host_filter": None, "operation": 1, "permission_type": 1})
        connection.close()
    assert described["error_code"] == ErrorCode.CLUSTER_AUTHORIZATION_FAILED
