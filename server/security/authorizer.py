"""ACLs and the decision they make, with Kafka 4.4's StandardAuthorizer semantics.

An ACL binds a resource pattern (type, name, LITERAL or PREFIXED) to an entry (principal,
host, operation, ALLOW or DENY). To authorize `principal` from `host` for `operation` on a
resource named `name` (StandardAuthorizerData.authorize and findAclRule):

- a super user (`super.users`, `User:admin;User:bob`) may do anything;
- the ACLs that apply are those of the resource's type whose pattern is LITERAL `name`,
  LITERAL `*`, or PREFIXED by a prefix of `name`;
- of those, an entry matches when its principal is the caller's or `User:*`, its host is
  `*`, the caller's address, or a CIDR range holding it (`10.0.0.0/8`, `fe80::/10`: see
  `host_in_range`), and its operation is ALL or the one asked for; an ALLOW entry
  for READ, WRITE, DELETE or ALTER also grants DESCRIBE, and one for ALTER_CONFIGS also grants
  DESCRIBE_CONFIGS (never a DENY entry: DENY READ does not deny DESCRIBE);
- any matching DENY denies; else any matching ALLOW allows; else, when no ACL applies to
  the resource at all, `allow.everyone.if.no.acl.found` decides (default: deny), and when
  some do (for other principals or operations) the answer is deny.

What each API checks, as KafkaApis does (handlers call `RequestContext.authorize` and kin;
without an authorizer nothing is checked and the bitfields report every operation):

| API | check |
|---|---|
| Produce | WRITE on the transactional id, if any; WRITE per topic (TOPIC_AUTHORIZATION_FAILED) |
| Fetch (consumer) | READ per topic (TOPIC_AUTHORIZATION_FAILED) |
| Metadata | DESCRIBE per topic: hidden from a listing, TOPIC_AUTHORIZATION_FAILED when named; auto-creation needs CREATE on the cluster or the topic; topic operations when asked (not for refused topics); cluster operations only with DESCRIBE on the cluster, else 0 |
| ListOffsets, DescribeTopicPartitions | DESCRIBE per topic (a listing leaves refused topics out); OffsetForLeaderEpoch: CLUSTER_ACTION, else DESCRIBE per topic |
| DeleteRecords | DELETE per topic; DescribeProducers: READ per topic |
| OffsetCommit | READ on the group (GROUP_AUTHORIZATION_FAILED), then READ per topic |
| OffsetFetch | DESCRIBE on the group, then DESCRIBE per topic (left out of an every-offset answer) |
| OffsetDelete | DELETE on the group, then READ per topic |
| JoinGroup, SyncGroup, Heartbeat, LeaveGroup | READ on the group |
| ListGroups | DESCRIBE on the cluster, else only the groups it may DESCRIBE; DeleteGroups: DELETE per group |
| FindCoordinator | DESCRIBE on the group or the transactional id |
| InitProducerId | WRITE on the transactional id; without one, IDEMPOTENT_WRITE on the cluster or WRITE on any topic (KIP-679) |
| AddPartitionsToTxn | v0-3: WRITE on the transactional id, then WRITE per topic (internal topics never); v4+: CLUSTER_ACTION |
| AddOffsetsToTxn, TxnOffsetCommit | WRITE on the transactional id, READ on the group (TxnOffsetCommit: and READ per topic); EndTxn: WRITE on the id |
| DescribeTransactions | DESCRIBE per id, and topics it may not DESCRIBE left out; ListTransactions: ids it may not DESCRIBE left out |
| WriteTxnMarkers | CLUSTER_ACTION |
| CreateTopics | CREATE on the cluster or the topic; without DESCRIBE_CONFIGS on it, no configs (topic_config_error_code) |
| DeleteTopics | DELETE on the cluster or the topic; a name it may not DESCRIBE is refused unlooked-up |
| CreatePartitions | ALTER per topic |
| DescribeConfigs, AlterConfigs, IncrementalAlterConfigs | DESCRIBE_CONFIGS / ALTER_CONFIGS on the topic or group, on the cluster for a broker, its loggers and client metrics |
| DescribeLogDirs, ListPartitionReassignments, DescribeQuorum, DescribeUserScramCredentials | DESCRIBE on the cluster |
| ElectLeaders, AlterPartitionReassignments, UpdateFeatures, Add/RemoveRaftVoter, UnregisterBroker, AlterUserScramCredentials | ALTER on the cluster |
| ListConfigResources | DESCRIBE_CONFIGS on the cluster |
| DescribeAcls | DESCRIBE on the cluster; CreateAcls, DeleteAcls: ALTER on the cluster |
| DescribeCluster | the cluster's authorized operations when asked, only with DESCRIBE on it (else 0) |
| DescribeGroups, ConsumerGroupDescribe, ShareGroupDescribe, StreamsGroupDescribe | DESCRIBE per group (refusals listed first), its operations when asked; the new protocols' describes: TOPIC_AUTHORIZATION_FAILED for a group using a topic it may not DESCRIBE |
| ConsumerGroupHeartbeat, ShareGroupHeartbeat | READ on the group, then DESCRIBE on every subscribed topic name |
| StreamsGroupHeartbeat | READ on the group, then DESCRIBE on every topic its topology names |
| StreamsGroupTopologyDescriptionUpdate | READ on the group |
| ShareFetch, ShareAcknowledge | READ on the group, then READ per topic (TOPIC_AUTHORIZATION_FAILED per partition) |
| DescribeShareGroupOffsets | DESCRIBE per group, DESCRIBE per topic (left out of an every-topic answer); AlterShareGroupOffsets: READ on the group and per topic; DeleteShareGroupOffsets: DELETE on the group, READ per topic |

tests/integration/test_acls_differential.py holds these to a Kafka 4.4 with StandardAuthorizer.
A KIP-848 regex subscription resolves to the topics the heartbeating member may DESCRIBE.
Not yet checked: CREATE (cluster or topic) before a streams group creates its internal topics.

The ACLs live in `<data dir>/acls.json`, replaced whole and durably on each change
(`storage.files.replace_file`). Kafka keeps them as records in its metadata log; ACL
changes are rare admin writes of a set that stays small, and every decision reads an
in-memory index, so a whole-file atomic replace gives the same durability (a crash, SIGKILL
or power loss leaves the old set or the new one) without a log to replay and compact. Over PostgreSQL the ACLs are the database's, shared by
every broker on it (server/security/database.py): `record_change` then takes each change
instead of the file, and `reset` puts the set as another broker left it in place.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

from ottla.server.config import ConfigError
from ottla.server.features import CIDR_ACL_LEVEL
from ottla.storage.files import replace_file
from ottla.wire.errors import ErrorCode

log = logging.getLogger("ottla.authorizer")

# The switch: Kafka 4.4's KRaft authorizer. Kafka 4.0 removed ZooKeeper and with it
# kafka.security.authorizer.AclAuthorizer (KIP-833): a 4.4 broker configured with that
# class fails to start (ClassNotFoundException), and so does Ottla, saying why.
STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
REMOVED_AUTHORIZER = "kafka.security.authorizer.AclAuthorizer"

WILDCARD = "*"
WILDCARD_PRINCIPAL = "User:*"
CLUSTER_NAME = "kafka-cluster"
_FILE = "acls.json"

# commons-net SubnetUtils (shaded in Kafka's clients), which Kafka's CidrUtils parses IPv4
# ranges with: four decimal octets of 1-3 ASCII digits, a prefix of 1-2.
_IPV4_CIDR = re.compile(r"([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})/([0-9]{1,2})")
_IPV4_ADDRESS = re.compile(r"([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})")
# Java's Integer.parseInt, which SubnetUtils6 reads an IPv6 prefix length with.
_JAVA_INT = re.compile(r"[+-]?[0-9]+")


def _checked(value: int, low: int, high: int) -> int:
    if not low <= value <= high:
        raise ValueError(f"Value [{value}] not in range [{low},{high}]")
    return value


def _ipv4(match: re.Match[str]) -> int:
    octets = [_checked(int(match.group(i)), 0, 255) for i in range(1, 5)]
    return (octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]


def _ipv6(text: str) -> int:
    """SubnetUtils6.toBytes: InetAddress.getByName must give an Inet6Address, which an
    IPv4-mapped address (`::ffff:a.b.c.d`) is not (Java returns it as IPv4)."""
    literal = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        address = ipaddress.IPv6Address(literal)
    except ValueError:
        raise ValueError(f"Could not parse [{text}]") from None
    if address.ipv4_mapped is not None:
        raise ValueError(f"Could not parse [{text}] - not an IPv6 address")
    return int(address)


@functools.lru_cache(maxsize=1024)
def cidr_range(cidr: str) -> tuple[int, int, int]:
    """(IP version, lowest, highest address) of a CIDR host pattern, or ValueError worded as
    Kafka 4.4's CidrUtils.validate words it (commons-net SubnetUtils for IPv4, SubnetUtils6 when
    the pattern holds a `:`); the address's host bits are ignored (`10.0.0.1/24` is 10.0.0.0/24)."""
    if ":" in cidr:
        address, _, prefix_text = cidr.partition("/")
        if not _JAVA_INT.fullmatch(prefix_text) or not -(1 << 31) <= int(prefix_text) < 1 << 31:
            raise ValueError(f"Could not parse [{cidr}] - invalid prefix length")
        prefix = int(prefix_text)
        if not 0 <= prefix <= 128:
            raise ValueError(f"Could not parse [{cidr}] - prefix length must be between 0 and 128")
        bits, version, value = 128, 6, _ipv6(address)
    else:
        match = _IPV4_CIDR.fullmatch(cidr)
        if match is None:
            raise ValueError(f"Could not parse [{cidr}]")
        value = _ipv4(match)
        bits, version, prefix = 32, 4, _checked(int(match.group(5)), 0, 32)
    host_bits = (1 << (bits - prefix)) - 1
    network = value & ~host_bits & ((1 << bits) - 1)
    return version, network, network | host_bits


def host_in_range(host: str, cidr: str) -> bool:
    """Whether the client address `host` lies in the CIDR pattern `cidr` (Kafka 4.4's
    CidrUtils.isInRange): never for a pattern without `/` or one that does not parse, nor for an
    address of the other IP version; an IPv4 range never holds 0.0.0.0 (SubnetUtils.isInRange)."""
    if "/" not in cidr:
        return False
    try:
        version, low, high = cidr_range(cidr)
        if version == 6:
            address = _ipv6(host)
        else:
            match = _IPV4_ADDRESS.fullmatch(host)
            if match is None:
                return False
            address = _ipv4(match)
            if address == 0:
                return False
    except ValueError:
        return False
    return low <= address <= high


def _host_matches(acl_host: str, host: str) -> bool:
    """StandardAuthorizerData.findResult's and Authorizer.authorizeByResourceType's host test."""
    return acl_host == WILDCARD or acl_host == host or host_in_range(host, acl_host)


class ResourceType(IntEnum):
    """org.apache.kafka.common.resource.ResourceType codes."""

    UNKNOWN = 0
    ANY = 1
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5
    DELEGATION_TOKEN = 6
    USER = 7


class PatternType(IntEnum):
    """org.apache.kafka.common.resource.PatternType codes; ANY and MATCH are for filters."""

    UNKNOWN = 0
    ANY = 1
    MATCH = 2
    LITERAL = 3
    PREFIXED = 4


class AclOperation(IntEnum):
    """org.apache.kafka.common.acl.AclOperation codes; the authorized-operations bitfields of
    Metadata, DescribeCluster and DescribeGroups set bit `1 << code` per allowed operation."""

    UNKNOWN = 0
    ANY = 1
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12
    CREATE_TOKENS = 13
    DESCRIBE_TOKENS = 14
    TWO_PHASE_COMMIT = 15


class AclPermissionType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    DENY = 2
    ALLOW = 3


Op = AclOperation
_IMPLIES_DESCRIBE = frozenset({Op.DESCRIBE, Op.READ, Op.WRITE, Op.DELETE, Op.ALTER})
_IMPLIES_DESCRIBE_CONFIGS = frozenset({Op.DESCRIBE_CONFIGS, Op.ALTER_CONFIGS})

# AclEntry.supportedOperations: what an authorized-operations bitfield reports on.
SUPPORTED_OPERATIONS: dict[ResourceType, tuple[AclOperation, ...]] = {
    ResourceType.TOPIC: (Op.READ, Op.WRITE, Op.CREATE, Op.DESCRIBE, Op.DELETE, Op.ALTER, Op.DESCRIBE_CONFIGS, Op.ALTER_CONFIGS),
    ResourceType.GROUP: (Op.READ, Op.DESCRIBE, Op.DELETE, Op.DESCRIBE_CONFIGS, Op.ALTER_CONFIGS),
    ResourceType.CLUSTER: (
        Op.CREATE, Op.CLUSTER_ACTION, Op.DESCRIBE_CONFIGS, Op.ALTER_CONFIGS, Op.IDEMPOTENT_WRITE, Op.ALTER, Op.DESCRIBE,
    ),
    ResourceType.TRANSACTIONAL_ID: (Op.DESCRIBE, Op.WRITE, Op.TWO_PHASE_COMMIT),
    ResourceType.DELEGATION_TOKEN: (Op.DESCRIBE,),
    ResourceType.USER: (Op.CREATE_TOKENS, Op.DESCRIBE_TOKENS),
}


def all_operations_bits(resource_type: ResourceType) -> int:
    """The bitfield of every operation a resource type supports: what Kafka reports with no authorizer."""
    return sum(1 << op for op in SUPPORTED_OPERATIONS[resource_type])


@dataclass(slots=True, frozen=True)
class Acl:
    """One ACL binding (Kafka's AclBinding, as StandardAcl stores it)."""

    resource_type: ResourceType
    resource_name: str
    pattern_type: PatternType
    principal: str
    host: str
    operation: AclOperation
    permission_type: AclPermissionType

    def grants(self, principals: tuple[str, str], host: str, operation: AclOperation) -> AclPermissionType | None:
        """ALLOW or DENY when this entry speaks to the caller and the operation, else None
        (StandardAuthorizerData.findResult; the resource name is matched by the caller)."""
        if self.principal not in principals or not _host_matches(self.host, host):
            return None
        acl_operation = self.operation
        if acl_operation != Op.ALL and acl_operation != operation:
            if self.permission_type != AclPermissionType.ALLOW:
                return None
            if operation == Op.DESCRIBE:
                if acl_operation not in _IMPLIES_DESCRIBE:
                    return None
            elif operation != Op.DESCRIBE_CONFIGS or acl_operation not in _IMPLIES_DESCRIBE_CONFIGS:
                return None
        return self.permission_type


@dataclass(slots=True, frozen=True)
class AclFilter:
    """Kafka's AclBindingFilter: None or ANY matches anything; MATCH (in pattern_type) selects
    the ACLs that would apply to a resource named `resource_name`."""

    resource_type: int
    resource_name: str | None
    pattern_type: int
    principal: str | None
    host: str | None
    operation: int
    permission_type: int

    def problem(self) -> str | None:
        """Why Kafka refuses this filter (AclControlManager.validateFilter), or None. A code Kafka
        does not know counts as UNKNOWN, as its fromCode does."""
        if _known(ResourceType, self.resource_type) == ResourceType.UNKNOWN or _known(PatternType, self.pattern_type) == PatternType.UNKNOWN:
            return "Unknown patternFilter."
        if _known(AclOperation, self.operation) == Op.UNKNOWN or _known(AclPermissionType, self.permission_type) == AclPermissionType.UNKNOWN:
            return "Unknown entryFilter."
        return None

    def matches(self, acl: Acl) -> bool:
        """ResourcePatternFilter.matches and AccessControlEntryFilter.matches together."""
        if self.resource_type != ResourceType.ANY and self.resource_type != acl.resource_type:
            return False
        if self.pattern_type not in (PatternType.ANY, PatternType.MATCH) and self.pattern_type != acl.pattern_type:
            return False
        if self.resource_name is not None:
            if self.pattern_type in (PatternType.ANY, acl.pattern_type):
                if self.resource_name != acl.resource_name:
                    return False
            elif acl.pattern_type == PatternType.LITERAL:
                if self.resource_name != acl.resource_name and acl.resource_name != WILDCARD:
                    return False
            elif not self.resource_name.startswith(acl.resource_name):
                return False
        if self.principal is not None and self.principal != acl.principal:
            return False
        if self.host is not None and self.host != acl.host:
            return False
        if self.operation != Op.ANY and self.operation != acl.operation:
            return False
        return self.permission_type == AclPermissionType.ANY or self.permission_type == acl.permission_type


def _known(enum: type[IntEnum], code: int) -> int:
    return code if code in enum._value2member_map_ else 0


def carries_unknown(codes: Iterable[int]) -> bool:
    """Whether a creation or filter names UNKNOWN (code 0) for its resource type, pattern type,
    operation or permission: Kafka's CreateAclsRequest, DescribeAclsRequest and DeleteAclsRequest
    refuse that as they are parsed (IllegalArgumentException), and a request that does not parse
    closes its connection unanswered. A code Kafka does not know is not 0 and parses (as UNKNOWN)."""
    return any(code == 0 for code in codes)


def filter_only(acl: Acl) -> bool:
    """Whether a creation names what only a filter may (resource type ANY, pattern ANY or MATCH,
    operation or permission ANY): Kafka's ResourcePattern and AccessControlEntry constructors throw
    when AclApis.handleCreateAcls turns the creations into bindings, so the whole request fails
    UNKNOWN_SERVER_ERROR and nothing is created."""
    return (acl.resource_type == ResourceType.ANY or acl.pattern_type in (PatternType.ANY, PatternType.MATCH)
            or acl.operation == Op.ANY or acl.permission_type == AclPermissionType.ANY)


def creation_problem(acl: Acl, metadata_version: int) -> tuple[ErrorCode, str] | None:
    """Why Kafka refuses to create this ACL at the finalized `metadata_version`, in the order it
    asks (AclApis.handleCreateAcls, then AclControlManager.validateNewAcl and validateHostPattern),
    or None. A host with a `/` is a CIDR range: refused below 4.4-IV1, checked from it."""
    invalid = ErrorCode.INVALID_REQUEST
    if acl.resource_type == ResourceType.CLUSTER and acl.resource_name != CLUSTER_NAME:
        return invalid, f"The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
    if not acl.resource_name:
        return invalid, "Invalid empty resource name"
    if acl.resource_type == ResourceType.UNKNOWN:  # a code Kafka does not know; ANY is filter_only
        return invalid, "Invalid resourceType UNKNOWN"
    if acl.pattern_type == PatternType.UNKNOWN:
        return invalid, "Invalid patternType UNKNOWN"
    if acl.operation == Op.UNKNOWN:
        return invalid, "Invalid operation UNKNOWN"
    if acl.permission_type == AclPermissionType.UNKNOWN:
        return invalid, "Invalid permissionType UNKNOWN"
    if ":" not in acl.principal:
        return invalid, f"Could not parse principal from `{acl.principal}` (no colon is present separating the principal type from the principal name)"
    if not acl.host:
        return invalid, "Host pattern cannot be null or empty"
    if acl.host != WILDCARD and "/" in acl.host:
        if metadata_version < CIDR_ACL_LEVEL:
            return ErrorCode.UNSUPPORTED_VERSION, "CIDR-based ACL host patterns require metadata version 4.4-IV1 or higher."
        try:
            cidr_range(acl.host)
        except ValueError as error:
            return invalid, f"Invalid CIDR notation '{acl.host}': {error}"
    return None


def make_acl(resource_type: int, resource_name: str, pattern_type: int, principal: str, host: str, operation: int, permission_type: int) -> Acl:
    """An ACL from a request's codes, a code Kafka does not know read as UNKNOWN."""
    return Acl(
        ResourceType(_known(ResourceType, resource_type)),
        resource_name,
        PatternType(_known(PatternType, pattern_type)),
        principal,
        host,
        AclOperation(_known(AclOperation, operation)),
        AclPermissionType(_known(AclPermissionType, permission_type)),
    )


class Authorizer:
    """The ACL set of one broker, its index, and the decisions drawn from them.

    Invariant: `_literal` and `_prefixed` index exactly the ACLs of `_acls`, by
    (resource type, pattern name); `_acls` is what `acls.json` holds once a change returns."""

    def __init__(self, path: Path | None, super_users: frozenset[str], allow_if_no_acl: bool, acls: Iterable[Acl] = ()) -> None:
        self._path = path
        self.super_users = super_users
        self.allow_if_no_acl = allow_if_no_acl
        self._acls: dict[Acl, None] = dict.fromkeys(acls)
        self._literal: dict[tuple[ResourceType, str], list[Acl]] = {}
        self._prefixed: dict[tuple[ResourceType, str], list[Acl]] = {}
        # Over PostgreSQL: what records each change (added, removed) instead of the file.
        self.record_change: Callable[[list[Acl], list[Acl]], None] | None = None
        self._reindex()

    @classmethod
    def from_settings(cls, class_name: str, super_users: str, allow_if_no_acl: bool, data_dir: Path | None) -> Authorizer | None:
        """The broker's authorizer, None when `authorizer.class.name` is empty (no
        authorization at all), its ACLs loaded from `data_dir`; an unknown class is an error."""
        class_name = class_name.strip()
        if not class_name:
            return None
        if class_name == REMOVED_AUTHORIZER:
            raise ConfigError(
                f"authorizer.class.name={class_name} was removed with ZooKeeper in Kafka 4.0 (KIP-833): use {STANDARD_AUTHORIZER}"
            )
        if class_name != STANDARD_AUTHORIZER:
            raise ConfigError(f"authorizer.class.name={class_name}: Ottla provides only {STANDARD_AUTHORIZER}")
        users = frozenset(user.strip() for user in super_users.split(";") if user.strip())
        path = None if data_dir is None else data_dir / _FILE
        acls: list[Acl] = []
        if path is not None and path.exists():
            acls = [make_acl(*row) for row in json.loads(path.read_text(encoding="utf-8"))["acls"]]
        return cls(path, users, allow_if_no_acl, acls)

    @property
    def acls(self) -> list[Acl]:
        return list(self._acls)

    def authorize(self, principal: str, host: str, operation: AclOperation, resource_type: ResourceType, name: str) -> bool:
        """Whether `principal` connected from `host` may do `operation` on the resource."""
        if principal in self.super_users:
            return True
        principals = (principal, WILDCARD_PRINCIPAL)
        allowed = False
        applies = False
        for acl in self._applicable(resource_type, name):
            applies = True
            verdict = acl.grants(principals, host, operation)
            if verdict == AclPermissionType.DENY:
                log.info("Principal = %s is Denied operation = %s from host = %s on resource = %s:%s based on %s",
                         principal, operation.name, host, resource_type.name, name, acl)
                return False
            if verdict == AclPermissionType.ALLOW:
                allowed = True
        return allowed or (not applies and self.allow_if_no_acl)

    def authorized_operations(self, principal: str, host: str, resource_type: ResourceType, name: str) -> int:
        """The authorized-operations bitfield for a resource (AuthHelper.authorizedOperations)."""
        bits = 0
        for operation in SUPPORTED_OPERATIONS[resource_type]:
            if self.authorize(principal, host, operation, resource_type, name):
                bits |= 1 << operation
        return bits

    def authorize_by_resource_type(self, principal: str, host: str, operation: AclOperation, resource_type: ResourceType) -> bool:
        """Whether the principal may do `operation` on some resource of the type (Kafka's
        Authorizer.authorizeByResourceType default, which InitProducerId uses for idempotent
        producers since KIP-679): allowed on a resource named "hardcode" (super users, the
        no-ACL default), or an ALLOW entry (exact operation or ALL) that no DENY of the same
        literal name or of a prefix cancels; a DENY on the literal `*` denies outright."""
        if self.authorize(principal, host, operation, resource_type, "hardcode"):
            return True
        principals = (principal, WILDCARD_PRINCIPAL)
        allows: list[Acl] = []
        denied_literal: set[str] = set()
        denied_prefixes: set[str] = set()
        for acl in self._acls:
            if acl.resource_type != resource_type or acl.principal not in principals:
                continue
            if not _host_matches(acl.host, host) or (acl.operation != operation and acl.operation != Op.ALL):
                continue
            if acl.permission_type == AclPermissionType.DENY:
                if acl.pattern_type == PatternType.LITERAL and acl.resource_name == WILDCARD:
                    return False
                (denied_literal if acl.pattern_type == PatternType.LITERAL else denied_prefixes).add(acl.resource_name)
            elif acl.permission_type == AclPermissionType.ALLOW:
                allows.append(acl)
        if any(acl.pattern_type == PatternType.LITERAL and acl.resource_name == WILDCARD for acl in allows):
            return True
        for allow in allows:
            name = allow.resource_name
            if allow.pattern_type == PatternType.LITERAL and name in denied_literal:
                continue
            if not any(name[:end] in denied_prefixes for end in range(1, len(name) + 1)):
                return True
        return False

    def describe(self, acl_filter: AclFilter) -> list[Acl]:
        return [acl for acl in self._acls if acl_filter.matches(acl)]

    def create(self, acls: list[Acl]) -> None:
        """Add ACLs (an ACL already present is not added twice) and persist the set."""
        for acl in acls:
            self._acls[acl] = None
        self._changed(acls, [])

    def delete(self, filters: list[AclFilter]) -> list[list[Acl]]:
        """Remove the ACLs each filter matches, all filters against the set as it was, and
        persist once: per filter, the ACLs it matched (AclControlManager.deleteAcls)."""
        matched = [[acl for acl in self._acls if acl_filter.matches(acl)] for acl_filter in filters]
        for acls in matched:
            for acl in acls:
                self._acls.pop(acl, None)
        if any(matched):
            self._changed([], [acl for acls in matched for acl in acls])
        return matched

    def reset(self, acls: Iterable[Acl]) -> None:
        """The set replaced by `acls`, as the database now has them."""
        self._acls = dict.fromkeys(acls)
        self._reindex()

    def _changed(self, added: list[Acl], removed: list[Acl]) -> None:
        if self.record_change is not None:
            self.record_change(added, removed)
        elif self._path is not None:
            rows = [[a.resource_type, a.resource_name, a.pattern_type, a.principal, a.host, a.operation, a.permission_type] for a in self._acls]
            replace_file(self._path, json.dumps({"acls": rows}, indent=0).encode("utf-8"))
        self._reindex()

    def _reindex(self) -> None:
        literal: dict[tuple[ResourceType, str], list[Acl]] = {}
        prefixed: dict[tuple[ResourceType, str], list[Acl]] = {}
        for acl in self._acls:
            index = literal if acl.pattern_type == PatternType.LITERAL else prefixed
            index.setdefault((acl.resource_type, acl.resource_name), []).append(acl)
        self._literal, self._prefixed = literal, prefixed

    def _applicable(self, resource_type: ResourceType, name: str) -> Iterable[Acl]:
        """The ACLs whose pattern covers the resource: LITERAL name, LITERAL `*`, PREFIXED by a prefix."""
        literal, prefixed = self._literal, self._prefixed
        yield from literal.get((resource_type, name), ())
        if name != WILDCARD:
            yield from literal.get((resource_type, WILDCARD), ())
        if prefixed:
            for end in range(1, len(name) + 1):
                yield from prefixed.get((resource_type, name[:end]), ())
