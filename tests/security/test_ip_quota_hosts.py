"""An IP quota named by a host, as Kafka 4.4 keeps it: AlterClientQuotas accepts any name
InetAddress.getByName resolves (ClientQuotaControlManager.isValidIpEntity) and keeps it as
named, and the broker applies its connection_creation_rate to the address it resolved to
(ClientQuotaMetadataManager.handleIpQuota); a name that does not resolve is refused.

Connections are counted until the first refusal: a rate of 2 a second measured over at least
one second refuses by the fourth connection made in that second, and on a slow machine the
loop merely runs longer (up to its bound)."""

from __future__ import annotations

from pathlib import Path

from kafka.protocol.admin import AlterClientQuotasRequest, AlterClientQuotasResponse, DescribeClientQuotasRequest, DescribeClientQuotasResponse
from kafka.protocol.metadata.api_versions import ApiVersionsRequest, ApiVersionsResponse

from kafka_wire import RawClient, make
from ottla.server.security.quotas import ClientQuotas, ConnectionRates, QuotaError, make_entity
from ottla.testing import running_broker
from ottla.wire.errors import ErrorCode

RATE = "connection_creation_rate"
# A name that never resolves (RFC 6761 reserves .invalid).
NO_HOST = "no-such-host.invalid"


def _alter(client: RawClient, ip: str, value: float | None) -> tuple[int, str | None]:
    op = dict(key=RATE, value=value or 0.0, remove=value is None)
    request = make(AlterClientQuotasRequest, dict(entries=[dict(entity=[dict(entity_type="ip", entity_name=ip)], ops=[op])], validate_only=False))
    entry = client.call(request, 1, AlterClientQuotasResponse).entries[0]
    return entry.error_code, entry.error_message


def _described(client: RawClient) -> dict[str | None, dict[str, float]]:
    request = make(DescribeClientQuotasRequest, dict(components=[dict(entity_type="ip", match_type=2, match=None)], strict=False))
    response = client.call(request, 1, DescribeClientQuotasResponse)
    return {entry.entity[0].entity_name: {value.key: value.value for value in entry.values} for entry in response.entries}


def _refused_within(bootstrap: str, attempts: int) -> bool:
    """Whether one of `attempts` connections in a row is refused."""
    for _ in range(attempts):
        with RawClient(bootstrap) as client:
            try:
                client.call(ApiVersionsRequest(), 0, ApiVersionsResponse)
            except ConnectionError:
                return True
    return False


def test_an_ip_quota_named_by_a_host_applies_to_its_address(tmp_path: Path) -> None:
    with running_broker(data_dir=str(tmp_path), quota_window_num=2) as broker:
        with RawClient(broker.bootstrap_servers) as admin:
            assert _alter(admin, "localhost", 2) == (0, None)
            assert _alter(admin, NO_HOST, 2) == (ErrorCode.INVALID_REQUEST, f"{NO_HOST} is not a valid IP or resolvable host.")
            assert _described(admin) == {"localhost": {RATE: 2.0}}  # kept as named
        assert _refused_within(broker.bootstrap_servers, 50)  # from 127.0.0.1
    # Read back from the data directory, the name is resolved again and applies again.
    with running_broker(data_dir=str(tmp_path), quota_window_num=2) as broker:
        with RawClient(broker.bootstrap_servers) as admin:
            assert _described(admin) == {"localhost": {RATE: 2.0}}
        assert _refused_within(broker.bootstrap_servers, 50)


def test_a_host_name_needs_its_address_resolved_beforehand() -> None:
    try:
        make_entity([("ip", "localhost")])
    except QuotaError as refused:
        assert refused.code == ErrorCode.INVALID_REQUEST
    else:
        raise AssertionError("a host name not resolved was accepted")
    assert make_entity([("ip", "localhost")], {"localhost": "127.0.0.1"}) == (("ip", "localhost"),)


def test_an_ip_with_a_user_is_refused_in_kafkas_words() -> None:
    try:
        make_entity([("ip", "127.0.0.1"), ("user", "bob")])
    except QuotaError as refused:
        # ClientQuotaControlManager.configKeysForEntityType's message, its typo included.
        assert refused.message == "Invalid quota entity combination, IP entity shouldnot be combined with User or ClientId"
    else:
        raise AssertionError("an IP entity with a user was accepted")


def test_an_ip_quota_applies_to_its_address_however_written() -> None:
    """Kafka keys the quota by the InetAddress, so any spelling of an address is that address."""
    quotas = ClientQuotas(None, {}, samples=2, window_seconds=1)
    quotas.alter([(make_entity([("ip", "0:0:0:0:0:0:0:1")]), {RATE: 1})])
    assert quotas.ip_quota("::1") == 1


def test_a_host_quota_counts_the_connections_of_its_address() -> None:
    quotas = ClientQuotas(None, {}, samples=2, window_seconds=1)
    quotas.alter([(make_entity([("ip", "myhost")], {"myhost": "10.0.0.7"}), {RATE: 3})], {"myhost": "10.0.0.7"})
    assert quotas.ip_quota("10.0.0.7") == 3
    rates = ConnectionRates(quotas)
    assert [rates.refusal("10.0.0.7", now_ms=0) for _ in range(4)][3] is not None
    quotas.alter([(make_entity([("ip", "myhost")], {"myhost": "10.0.0.7"}), {RATE: None})])
    assert quotas.ip_quota("10.0.0.7") is None
