"""ACLs with Kafka's StandardAuthorizer semantics: the matcher without sockets (properties
that pin deny-wins, implications, prefix against literal), and the ACL APIs through
kafka-python's admin client against a live broker (persisted across a restart)."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st
from kafka import KafkaAdminClient
from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType as KafkaResourceType,
)
from kafka.errors import SecurityDisabledError

from ottla.server.config import ConfigError
from ottla.server.security.authorizer import (
    Acl,
    AclFilter,
    AclOperation as Op,
    AclPermissionType as Permission,
    Authorizer,
    PatternType,
    ResourceType,
    STANDARD_AUTHORIZER,
)
from ottla.testing import running_broker

ALICE, BOB = "User:alice", "User:bob"
ALLOW, DENY = Permission.ALLOW, Permission.DENY
LITERAL, PREFIXED = PatternType.LITERAL, PatternType.PREFIXED
TOPIC = ResourceType.TOPIC
CONCRETE_OPERATIONS = [op for op in Op if op not in (Op.UNKNOWN, Op.ANY)]


def _acl(name: str, operation: Op, permission: Permission = ALLOW, *, pattern: PatternType = LITERAL, principal: str = ALICE,
         host: str = "*", resource_type: ResourceType = TOPIC) -> Acl:
    return Acl(resource_type, name, pattern, principal, host, operation, permission)


def _authorizer(*acls: Acl, super_users: frozenset[str] = frozenset(), allow_if_no_acl: bool = False) -> Authorizer:
    return Authorizer(None, super_users, allow_if_no_acl, acls)


def _may(authorizer: Authorizer, operation: Op, name: str, principal: str = ALICE, host: str = "10.0.0.1") -> bool:
    return authorizer.authorize(principal, host, operation, TOPIC, name)


names = st.text(alphabet="ab.-", min_size=1, max_size=6)
operations = st.sampled_from(CONCRETE_OPERATIONS)
patterns = st.sampled_from([LITERAL, PREFIXED])


@given(names, names, operations, operations, patterns, patterns)
def test_a_matching_deny_wins_over_any_allow(name, deny_name, allowed, denied, allow_pattern, deny_pattern):
    allow = _acl(name, allowed, pattern=allow_pattern)
    deny = _acl(deny_name, denied, DENY, pattern=deny_pattern)
    authorizer = _authorizer(allow, deny)
    for operation in CONCRETE_OPERATIONS:
        deny_applies = (name == deny_name or (deny_pattern == PREFIXED and name.startswith(deny_name))) and denied in (operation, Op.ALL)
        if deny_applies:
            assert not _may(authorizer, operation, name)
        else:
            assert _may(authorizer, operation, name) == _may(_authorizer(allow), operation, name)


@given(names, names, operations)
def test_literal_matches_one_name_and_prefixed_every_name_it_starts(acl_name, resource, operation):
    literal = _authorizer(_acl(acl_name, operation))
    prefixed = _authorizer(_acl(acl_name, operation, pattern=PREFIXED))
    assert _may(literal, operation, resource) == (resource == acl_name)
    assert _may(prefixed, operation, resource) == resource.startswith(acl_name)


@pytest.mark.parametrize("granted", [Op.READ, Op.WRITE, Op.DELETE, Op.ALTER, Op.DESCRIBE, Op.ALL])
def test_an_allow_for_read_write_delete_alter_implies_describe(granted):
    assert _may(_authorizer(_acl("t", granted)), Op.DESCRIBE, "t")


@pytest.mark.parametrize("granted", [Op.CREATE, Op.DESCRIBE_CONFIGS, Op.ALTER_CONFIGS, Op.CLUSTER_ACTION])
def test_other_operations_do_not_imply_describe(granted):
    assert not _may(_authorizer(_acl("t", granted)), Op.DESCRIBE, "t")


def test_alter_configs_implies_describe_configs_but_a_deny_implies_nothing():
    assert _may(_authorizer(_acl("t", Op.ALTER_CONFIGS)), Op.DESCRIBE_CONFIGS, "t")
    # StandardAuthorizerData.findResult: DENY READ does not deny DESCRIBE.
    authorizer = _authorizer(_acl("t", Op.ALL), _acl("t", Op.READ, DENY))
    assert _may(authorizer, Op.DESCRIBE, "t") and not _may(authorizer, Op.READ, "t")


def test_wildcards_principal_host_and_resource():
    authorizer = _authorizer(_acl("*", Op.READ, principal="User:*"), _acl("t", Op.WRITE, host="10.0.0.9"))
    assert _may(authorizer, Op.READ, "anything", principal=BOB)
    assert _may(authorizer, Op.WRITE, "t", host="10.0.0.9") and not _may(authorizer, Op.WRITE, "t", host="10.0.0.1")


def test_no_acl_found_falls_to_the_default_but_another_principals_acl_denies():
    assert not _may(_authorizer(), Op.READ, "t")
    everyone = _authorizer(_acl("t", Op.READ, principal=BOB), allow_if_no_acl=True)
    assert _may(everyone, Op.READ, "other")
    assert not _may(everyone, Op.READ, "t")  # an ACL applies to t, none to alice: denied


def test_super_users_may_do_anything_despite_a_deny():
    authorizer = _authorizer(_acl("t", Op.ALL, DENY, principal=BOB), super_users=frozenset({BOB}))
    assert _may(authorizer, Op.WRITE, "t", principal=BOB)


def test_idempotent_producers_need_write_on_some_topic():
    """KIP-679: InitProducerId without a transactional id needs IDEMPOTENT_WRITE on the cluster
    or WRITE on any topic (authorizeByResourceType), unless a deny covers the allow."""
    def by_type(*acls: Acl) -> bool:
        return _authorizer(*acls).authorize_by_resource_type(ALICE, "10.0.0.1", Op.WRITE, TOPIC)

    assert by_type(_acl("orders", Op.WRITE))
    assert not by_type()
    assert not by_type(_acl("orders", Op.WRITE), _acl("ord", Op.WRITE, DENY, pattern=PREFIXED))
    assert not by_type(_acl("orders", Op.WRITE), _acl("*", Op.WRITE, DENY))
    assert by_type(_acl("orders", Op.WRITE), _acl("invoices", Op.WRITE, DENY))


def test_filters_match_as_kafka_acl_binding_filters_do():
    literal, prefixed, wildcard = _acl("orders", Op.READ), _acl("ord", Op.READ, pattern=PREFIXED), _acl("*", Op.READ)

    def matched(resource_name: str | None, pattern: PatternType) -> list[Acl]:
        acl_filter = AclFilter(ResourceType.ANY, resource_name, pattern, None, None, Op.ANY, Permission.ANY)
        return [acl for acl in (literal, prefixed, wildcard) if acl_filter.matches(acl)]

    assert matched("orders", PatternType.MATCH) == [literal, prefixed, wildcard]
    assert matched("orders", PatternType.ANY) == [literal]
    assert matched("ord", PREFIXED) == [prefixed]
    assert matched(None, LITERAL) == [literal, wildcard]
    assert AclFilter(99, None, PatternType.ANY, None, None, Op.ANY, Permission.ANY).problem() == "Unknown patternFilter."


def test_the_removed_zookeeper_authorizer_is_refused_by_name():
    with pytest.raises(ConfigError, match="KIP-833"):
        Authorizer.from_settings("kafka.security.authorizer.AclAuthorizer", "", False, None)
    assert Authorizer.from_settings("", "", False, None) is None


ALL_ACLS = ACLFilter(
    principal=None, host=None, operation=ACLOperation.ANY, permission_type=ACLPermissionType.ANY,
    resource_pattern=ResourcePatternFilter(KafkaResourceType.ANY, None, ACLResourcePatternType.ANY),
)


def _kafka_acl(name: str, pattern: ACLResourcePatternType, operation: ACLOperation = ACLOperation.WRITE) -> ACL:
    return ACL("User:alice", "*", operation, ACLPermissionType.ALLOW, ResourcePattern(KafkaResourceType.TOPIC, name, pattern))


def test_acl_apis_through_kafka_python_and_a_restart(tmp_path):
    with running_broker(data_dir=tmp_path, authorizer_class_name=STANDARD_AUTHORIZER, super_users="User:ANONYMOUS") as broker:
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        created = admin.create_acls([_kafka_acl("orders", ACLResourcePatternType.LITERAL), _kafka_acl("ord", ACLResourcePatternType.PREFIXED)])
        assert len(created["succeeded"]) == 2 and not created["failed"]
        bad = ACL("User:alice", "*", ACLOperation.READ, ACLPermissionType.ALLOW, ResourcePattern(KafkaResourceType.CLUSTER, "other", ACLResourcePatternType.LITERAL))
        assert len(admin.create_acls([bad])["failed"]) == 1
        admin.close()
        broker.restart()
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        acls, error = admin.describe_acls(ALL_ACLS)
        assert sorted(acl.resource_pattern.resource_name for acl in acls) == ["ord", "orders"]
        match = ACLFilter(
            principal=None, host=None, operation=ACLOperation.ANY, permission_type=ACLPermissionType.ANY,
            resource_pattern=ResourcePatternFilter(KafkaResourceType.TOPIC, "orders", ACLResourcePatternType.MATCH),
        )
        ((_, deleted, _),) = admin.delete_acls([match])
        assert sorted(acl.resource_pattern.resource_name for acl in deleted) == ["ord", "orders"]
        assert admin.describe_acls(ALL_ACLS)[0] == []
        admin.close()


def test_without_an_authorizer_the_acl_apis_answer_security_disabled(ottla_broker):
    admin = KafkaAdminClient(bootstrap_servers=ottla_broker.bootstrap_servers)
    try:
        with pytest.raises(SecurityDisabledError):
            admin.describe_acls(ALL_ACLS)
    finally:
        admin.close()


def _grant(admin: KafkaAdminClient, topic: str, operation: ACLOperation) -> None:
    pattern = ResourcePattern(KafkaResourceType.TOPIC, topic, ACLResourcePatternType.LITERAL)
    result = admin.create_acls([ACL("User:ANONYMOUS", "*", operation, ACLPermissionType.ALLOW, pattern)])
    assert not result["failed"]


def test_clients_without_the_acl_see_kafkas_authorization_errors(tmp_path):
    """PLAINTEXT connections are User:ANONYMOUS: ACLs made while it is a super user apply once it
    is not. `readonly` may be read, `writeonly` written, `hidden` nothing."""
    from confluent_kafka import KafkaError as ConfluentError, Producer
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.errors import TopicAuthorizationFailedError

    settings = {"data_dir": tmp_path, "authorizer_class_name": STANDARD_AUTHORIZER}
    with running_broker(super_users="User:ANONYMOUS", **settings) as broker:
        for topic in ("readonly", "writeonly", "hidden"):
            broker.create_topic(topic)
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        _grant(admin, "readonly", ACLOperation.READ)
        _grant(admin, "writeonly", ACLOperation.WRITE)
        admin.close()
    with running_broker(**settings) as broker:
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        assert sorted(admin.list_topics()) == ["readonly", "writeonly"]  # Metadata hides `hidden`
        admin.close()

        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, max_block_ms=5000, retries=0)
        producer.send("writeonly", b"allowed").get(timeout=10)  # idempotent: WRITE on a topic suffices (KIP-679)
        with pytest.raises(TopicAuthorizationFailedError):
            producer.send("readonly", b"refused by Produce").get(timeout=10)
        producer.close()

        consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap_servers, consumer_timeout_ms=3000)
        consumer.assign([TopicPartition("writeonly", 0)])
        with pytest.raises(TopicAuthorizationFailedError):
            consumer.poll(timeout_ms=3000)
        consumer.close()

        reports = []
        producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "message.timeout.ms": 5000})
        producer.produce("hidden", b"refused by Metadata", on_delivery=lambda error, message: reports.append(error))
        producer.flush(10)
        del producer  # librdkafka's handle goes before its broker does
        assert [error.code() for error in reports] == [ConfluentError.TOPIC_AUTHORIZATION_FAILED]


def test_describe_cluster_reports_the_cluster_operations_the_principal_has(tmp_path):
    from confluent_kafka.admin import AdminClient

    def cluster_operations(bootstrap: str) -> set[str]:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        described = admin.describe_cluster(include_authorized_operations=True).result(10)
        return {operation.name for operation in described.authorized_operations}

    settings = {"data_dir": tmp_path, "authorizer_class_name": STANDARD_AUTHORIZER}
    with running_broker(super_users="User:ANONYMOUS", **settings) as broker:
        assert cluster_operations(broker.bootstrap_servers) == {
            "CREATE", "CLUSTER_ACTION", "DESCRIBE_CONFIGS", "ALTER_CONFIGS", "IDEMPOTENT_WRITE", "ALTER", "DESCRIBE",
        }
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        pattern = ResourcePattern(KafkaResourceType.CLUSTER, "kafka-cluster", ACLResourcePatternType.LITERAL)
        assert not admin.create_acls([ACL("User:ANONYMOUS", "*", ACLOperation.ALTER, ACLPermissionType.ALLOW, pattern)])["failed"]
        admin.close()
    with running_broker(**settings) as broker:
        assert cluster_operations(broker.bootstrap_servers) == {"ALTER", "DESCRIBE"}  # ALTER implies DESCRIBE


def test_the_group_apis_of_every_protocol_authorize_as_kafka_does(tmp_path):
    """Raw requests as User:ANONYMOUS, which may DESCRIBE `described`, READ `reader` and nothing
    else: refusals come first in a describe, and the new protocols refuse before they look."""
    from compat.differential import _Connection
    from ottla.wire.api import ApiKey
    from ottla.wire.errors import ErrorCode

    # The streams group's first heartbeat is answered without the initial rebalance delay's status.
    settings = {"data_dir": tmp_path, "authorizer_class_name": STANDARD_AUTHORIZER, "group_streams_initial_rebalance_delay_ms": 0}
    with running_broker(super_users="User:ANONYMOUS", **settings) as broker:
        broker.create_topic("hidden-topic")
        broker.create_topic("streams-in")
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        grants = [("described", ACLOperation.DESCRIBE), ("reader", ACLOperation.READ)]
        assert not admin.create_acls([ACL("User:ANONYMOUS", "*", operation, ACLPermissionType.ALLOW, ResourcePattern(
            KafkaResourceType.GROUP, group, ACLResourcePatternType.LITERAL)) for group, operation in grants])["failed"]
        # A streams app's topics may be described, and only its repartition topic created.
        topic_grants = [("streams-", ACLResourcePatternType.PREFIXED, ACLOperation.DESCRIBE),
                        ("streams-counts-repartition", ACLResourcePatternType.LITERAL, ACLOperation.CREATE)]
        assert not admin.create_acls([ACL("User:ANONYMOUS", "*", operation, ACLPermissionType.ALLOW, ResourcePattern(
            KafkaResourceType.TOPIC, name, pattern)) for name, pattern, operation in topic_grants])["failed"]
        admin.close()
    group_auth, topic_auth = ErrorCode.GROUP_AUTHORIZATION_FAILED, ErrorCode.TOPIC_AUTHORIZATION_FAILED
    with running_broker(**settings) as broker:
        conn = _Connection(broker.bootstrap_servers)
        described = conn.call(ApiKey.DESCRIBE_GROUPS, 5, {"groups": ["described", "hidden"], "include_authorized_operations": True})
        assert [(g["group_id"], g["error_code"], g["group_state"]) for g in described["groups"]] == [
            ("hidden", group_auth, ""), ("described", 0, "Dead")]
        assert described["groups"][0]["authorized_operations"] == -(2**31)
        consumer = {"member_id": "", "member_epoch": 0, "instance_id": None, "rack_id": None, "rebalance_timeout_ms": 30000,
                    "subscribed_topic_names": ["hidden-topic"], "server_assignor": None, "topic_partitions": []}
        assert conn.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 0, {**consumer, "group_id": "described"})["error_code"] == group_auth
        assert conn.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 0, {**consumer, "group_id": "reader"})["error_code"] == topic_auth
        consumer_described = conn.call(ApiKey.CONSUMER_GROUP_DESCRIBE, 0, {"group_ids": ["described", "hidden"],
                                                                          "include_authorized_operations": True})
        assert [(g["group_id"], g["error_code"]) for g in consumer_described["groups"]] == [
            ("hidden", group_auth), ("described", ErrorCode.GROUP_ID_NOT_FOUND)]
        share = {"member_id": "m", "member_epoch": 0, "rack_id": None, "subscribed_topic_names": ["hidden-topic"]}
        assert conn.call(ApiKey.SHARE_GROUP_HEARTBEAT, 1, {**share, "group_id": "hidden"})["error_code"] == group_auth
        assert conn.call(ApiKey.SHARE_GROUP_HEARTBEAT, 1, {**share, "group_id": "reader"})["error_code"] == topic_auth
        fetch = {"group_id": "hidden", "member_id": "m", "share_session_epoch": 0, "max_wait_ms": 0, "min_bytes": 1,
                 "max_bytes": 1 << 20, "max_records": 10, "batch_size": 10, "topics": [], "forgotten_topics_data": []}
        assert conn.call(ApiKey.SHARE_FETCH, 1, fetch)["error_code"] == group_auth
        deleted = conn.call(ApiKey.DELETE_SHARE_GROUP_OFFSETS, 0, {"group_id": "reader", "topics": [{"topic_name": "hidden-topic"}]})
        assert deleted["error_code"] == group_auth
        offsets = conn.call(ApiKey.DESCRIBE_SHARE_GROUP_OFFSETS, 0, {"groups": [
            {"group_id": "described", "topics": [{"topic_name": "hidden-topic", "partitions": [0]}]}, {"group_id": "reader", "topics": None}]})
        assert [(g["error_code"], [p["error_code"] for t in g["topics"] for p in t["partitions"]]) for g in offsets["groups"]] == [
            (0, [topic_auth]), (0, [])]
        streams = conn.call(ApiKey.STREAMS_GROUP_HEARTBEAT, 0, {
            "group_id": "hidden", "member_id": "m", "member_epoch": 0, "endpoint_information_epoch": 0, "instance_id": None, "rack_id": None,
            "rebalance_timeout_ms": 30000, "topology": None, "active_tasks": None, "standby_tasks": None, "warmup_tasks": None,
            "process_id": "p", "user_endpoint": None, "client_tags": None, "task_offsets": None, "task_end_offsets": None,
            "shutdown_application": False})
        assert streams["error_code"] == group_auth
        internal = {"partitions": 0, "replication_factor": 0, "topic_configs": []}
        topology = {"epoch": 1, "subtopologies": [
            {"subtopology_id": "0", "source_topics": ["streams-in"], "source_topic_regex": [], "state_changelog_topics": [],
             "repartition_sink_topics": ["streams-counts-repartition"], "repartition_source_topics": [], "copartition_groups": []},
            {"subtopology_id": "1", "source_topics": [], "source_topic_regex": [], "repartition_sink_topics": [], "copartition_groups": [],
             "state_changelog_topics": [{"name": "streams-counts-changelog", **internal}],
             "repartition_source_topics": [{"name": "streams-counts-repartition", **internal}]}]}
        # Without CREATE on every missing internal topic, none is created (KafkaApis.handleStreamsGroupHeartbeat).
        streams = conn.call(ApiKey.STREAMS_GROUP_HEARTBEAT, 0, {
            "group_id": "reader", "member_id": "m", "member_epoch": 0, "endpoint_information_epoch": 0, "instance_id": None,
            "rack_id": None, "rebalance_timeout_ms": 30000, "topology": topology, "active_tasks": [], "standby_tasks": [],
            "warmup_tasks": [], "process_id": "p", "user_endpoint": None, "client_tags": None, "task_offsets": None,
            "task_end_offsets": None, "shutdown_application": False})
        assert (streams["error_code"], streams["status"]) == (0, [{"status_code": 3, "status_detail": (
            "Internal topics are missing: streams-counts-changelog, streams-counts-repartition; "
            "Unauthorized to CREATE on topics streams-counts-changelog.")}])
        assert broker.broker.storage.topic("streams-counts-repartition") is None
        conn.close()


def test_a_fetch_claiming_a_replica_id_needs_cluster_action(tmp_path):
    """KafkaApis.handleFetchRequest: a replica's fetch (replica_id >= 0) needs CLUSTER_ACTION on the
    cluster, whatever the principal may READ: without it every partition is
    TOPIC_AUTHORIZATION_FAILED, so a consumer cannot take a follower's privileges (its fetch
    session, reads past what consumers see). A consumer's own fetch is unchanged."""
    from kafka import KafkaProducer

    from compat.differential import _Connection
    from ottla.wire.api import ApiKey
    from ottla.wire.errors import ErrorCode

    settings = {"data_dir": tmp_path, "authorizer_class_name": STANDARD_AUTHORIZER}
    with running_broker(super_users="User:ANONYMOUS", **settings) as broker:
        broker.create_topic("readable")
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)
        producer.send("readable", b"record").get(timeout=10)
        producer.close()
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        _grant(admin, "readable", ACLOperation.READ)
        admin.close()
    with running_broker(**settings) as broker:
        conn = _Connection(broker.bootstrap_servers)
        answers = []
        for replica_id in (-1, 1):
            fetched = conn.call(ApiKey.FETCH, 12, {
                "replica_id": replica_id, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 1 << 20, "isolation_level": 0, "session_id": 0,
                "session_epoch": -1, "forgotten_topics_data": [], "rack_id": "",
                "topics": [{"topic": "readable", "partitions": [{"partition": 0, "current_leader_epoch": -1, "fetch_offset": 0,
                                                                 "last_fetched_epoch": -1, "log_start_offset": -1, "partition_max_bytes": 1 << 20}]}],
            })
            partition = fetched["responses"][0]["partitions"][0]
            answers.append((partition["error_code"], bool(partition["records"])))
        assert answers == [(ErrorCode.NONE, True), (ErrorCode.TOPIC_AUTHORIZATION_FAILED, False)]


@pytest.mark.parametrize("address, kafka_form", [
    ("2001:db8::1", "2001:db8:0:0:0:0:0:1"),
    ("[::1]", "0:0:0:0:0:0:0:1"),
    ("2001:0DB8:0000::00ab", "2001:db8:0:0:0:0:0:ab"),
    ("fe80::1%eth0", "fe80:0:0:0:0:0:0:1%eth0"),
    ("::ffff:10.0.0.1", "10.0.0.1"),
    ("10.0.0.1", "10.0.0.1"),
])
def test_a_client_address_is_compared_in_the_form_kafka_gives_it(address: str, kafka_form: str) -> None:
    """InetAddress.getHostAddress: an ACL copied from a Kafka cluster for an IPv6 client names it
    uncompressed, and a DENY must match it here as there."""
    from ottla.server.context import acl_host

    assert acl_host(address) == kafka_form
    denied = _authorizer(_acl("t", Op.READ), _acl("t", Op.READ, DENY, host=kafka_form))
    assert not _may(denied, Op.READ, "t", host=acl_host(address))


def test_a_regex_subscription_resolves_to_the_topics_the_member_may_describe(tmp_path):
    """TopicRegexResolver.filterTopicDescribeAuthorizedTopics: a member whose principal may not
    DESCRIBE a topic its regex matches is not assigned it, or its assignment would name a topic
    it may not know of."""
    from compat.differential import _Connection
    from ottla.wire.api import ApiKey
    from ottla.wire.errors import ErrorCode

    settings = {"data_dir": tmp_path, "authorizer_class_name": STANDARD_AUTHORIZER}
    with running_broker(super_users="User:ANONYMOUS", **settings) as broker:
        for topic in ("orders-visible", "orders-hidden"):
            broker.create_topic(topic)
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        group = ResourcePattern(KafkaResourceType.GROUP, "regex", ACLResourcePatternType.LITERAL)
        assert not admin.create_acls([ACL("User:ANONYMOUS", "*", ACLOperation.READ, ACLPermissionType.ALLOW, group)])["failed"]
        _grant(admin, "orders-visible", ACLOperation.READ)
        admin.close()
    with running_broker(group_initial_rebalance_delay_ms=0, **settings) as broker:
        assert broker.broker is not None and broker.broker.storage is not None
        ids = {broker.broker.storage.topic(name).topic_id: name for name in ("orders-visible", "orders-hidden")}
        conn = _Connection(broker.bootstrap_servers)
        answer = conn.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 1, {
            "group_id": "regex", "member_id": "regex-member-1", "member_epoch": 0, "instance_id": None, "rack_id": None, "rebalance_timeout_ms": 30000,
            "subscribed_topic_names": None, "subscribed_topic_regex": "orders-.*", "server_assignor": None, "topic_partitions": [],
        })
        assert (answer["error_code"], answer["member_epoch"], answer["assignment"]) == (ErrorCode.NONE, 1, {"topic_partitions": []})
        # Kafka 4.4 resolves the regex after the joining heartbeat's answer: the next is assigned.
        answer = conn.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 1, {
            "group_id": "regex", "member_id": "regex-member-1", "member_epoch": 1, "instance_id": None, "rack_id": None, "rebalance_timeout_ms": -1,
            "subscribed_topic_names": None, "subscribed_topic_regex": None, "server_assignor": None, "topic_partitions": None,
        })
        assert answer["error_code"] == ErrorCode.NONE
        assigned = [ids.get(topic["topic_id"], topic["topic_id"]) for topic in answer["assignment"]["topic_partitions"]]
        assert assigned == ["orders-visible"]
