"""What the console shows and refuses by principal and group kind: the data directory and the
broker's totals need Describe on the cluster; offsets are shifted only from a committed offset
and never for a share group; and no answer may be framed by another page."""

from __future__ import annotations

import http.cookiejar
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourcePattern, ResourceType
from share_member import ShareMember

from ottla.server.config import BrokerConfig
from ottla.server.security.authorizer import STANDARD_AUTHORIZER
from ottla.testing import ThreadedBroker, running_broker

Call = Callable[..., tuple[int, Any]]


def _session(url: str) -> Call:
    """A browser of the console at `url`: cookies kept, the CSRF token sent."""
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    with browser.open(url + "/api/csrf", timeout=30) as answer:
        token = json.load(answer)["token"]

    def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url + path, data=data, method=method, headers={"X-CSRF-Token": token, "Content-Type": "application/json"})
        try:
            with browser.open(request, timeout=30) as answer:
                return answer.status, json.load(answer)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    return call


def _url(broker: ThreadedBroker) -> str:
    assert broker.broker is not None and broker.broker.http is not None
    return broker.broker.http.url


def test_the_data_dir_and_broker_totals_need_describe_on_the_cluster(tmp_path: Path) -> None:
    config = BrokerConfig.from_settings(
        {
            "listeners": "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
            "data.dir": str(tmp_path),
            "http.port": 0,
            "sasl.enabled.mechanisms": "PLAIN",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": 'org.apache.kafka.common.security.plain.PlainLoginModule required user_carol="carol-secret" user_admin="admin-secret";',
            "authorizer.class.name": STANDARD_AUTHORIZER,
            "super.users": "User:ANONYMOUS;User:admin",
        }
    )
    with running_broker(config=config) as broker:
        for topic in ("open", "secret"):
            broker.create_topic(topic)
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        pattern = ResourcePattern(ResourceType.TOPIC, "open", ACLResourcePatternType.LITERAL)
        assert not admin.create_acls([ACL("User:carol", "*", ACLOperation.DESCRIBE, ACLPermissionType.ALLOW, pattern)])["failed"]
        admin.close()
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)
        producer.send("open", b"o" * 10).get(timeout=30)
        producer.send("secret", b"s" * 1000).get(timeout=30)
        producer.close()

        carol, admin_console = _session(_url(broker)), _session(_url(broker))
        assert carol("POST", "/api/login", {"username": "carol", "password": "carol-secret"})[0] == 200
        assert admin_console("POST", "/api/login", {"username": "admin", "password": "admin-secret"})[0] == 200

        status, cluster = carol("GET", "/api/cluster")
        assert status == 200 and "data_dir" not in cluster and str(tmp_path) not in json.dumps(cluster)
        status, stats = carol("GET", "/api/stats")
        assert status == 200 and stats["connections"] is None and stats["apis"] == {}
        assert 0 < stats["bytes_in"] < 1000 and stats["messages_in"] == 1  # of "open" only

        assert admin_console("GET", "/api/cluster")[1]["data_dir"] == str(tmp_path)
        everything = admin_console("GET", "/api/stats")[1]
        assert everything["bytes_in"] > 1000 and everything["messages_in"] == 2 and everything["connections"] >= 0 and everything["apis"]


def test_a_shift_needs_a_committed_offset_and_a_share_group_is_refused() -> None:
    with running_broker(data_dir=None, http_port=0, group_initial_rebalance_delay_ms=0) as broker:
        broker.create_topic("t", partitions=2)
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)
        for partition in (0, 1):
            for _ in range(5):
                producer.send("t", b"m", partition=partition)
        producer.flush()
        producer.close()
        call = _session(_url(broker))
        assert call("POST", "/api/groups/g/reset-offsets", {"topic": "t", "partitions": [0], "to": "offset", "value": 2, "dry_run": False})[0] == 200

        status, refused = call("POST", "/api/groups/g/reset-offsets", {"topic": "t", "to": "shift", "value": 1, "dry_run": False})
        assert (status, refused["error"]) == (409, "Cannot shift offset for partition t-1 since there is no current committed offset")
        assert call("GET", "/api/groups/g")[1]["offsets"][0]["committed_offset"] == 2  # nothing changed
        status, shifted = call("POST", "/api/groups/g/reset-offsets", {"topic": "t", "partitions": [0], "to": "shift", "value": 1, "dry_run": False})
        assert status == 200 and shifted["offsets"][0]["new_offset"] == 3

        member = ShareMember(broker)
        assert member.heartbeat("shared", 0, ["t"])["error_code"] == 0
        member.close()
        assert call("GET", "/api/groups/shared")[1]["type"] == "share"
        status, refused = call("POST", "/api/groups/shared/reset-offsets", {"topic": "t", "to": "earliest", "dry_run": False})
        assert status == 409 and "share group" in refused["error"]
        assert call("GET", "/api/groups/shared")[1]["offsets"] == []


def test_no_console_answer_may_be_framed() -> None:
    with running_broker(data_dir=None, http_port=0) as broker:
        url = _url(broker)
        for path in ("/", "/static/console.js", "/api/csrf", "/api/cluster", "/api/nowhere", "/static/nothing.js", "/metrics"):
            try:
                with urllib.request.urlopen(url + path, timeout=30) as answer:
                    headers = answer.headers
            except urllib.error.HTTPError as error:
                headers = error.headers
            assert headers["X-Frame-Options"] == "DENY", path
            assert headers["Content-Security-Policy"] == "frame-ancestors 'none'", path


def test_a_group_assigned_a_topic_the_principal_may_not_describe_is_refused_whole(tmp_path: Path) -> None:
    """KafkaApis.handleShareGroupDescribeRequest (and ConsumerGroupDescribe's): a group holding
    a topic the principal may not DESCRIBE is TOPIC_AUTHORIZATION_FAILED, none of its members'
    topics shown; once it may, the group is described."""
    config = BrokerConfig.from_settings(
        {
            "listeners": "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
            "data.dir": str(tmp_path),
            "http.port": 0,
            "sasl.enabled.mechanisms": "PLAIN",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": 'org.apache.kafka.common.security.plain.PlainLoginModule required user_carol="carol-secret";',
            "authorizer.class.name": STANDARD_AUTHORIZER,
            "super.users": "User:ANONYMOUS",
        }
    )
    with running_broker(config=config) as broker:
        broker.create_topic("secret")
        member = ShareMember(broker)
        assert member.join_until_assigned("shared", ["secret"])
        member.close()
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        group = ResourcePattern(ResourceType.GROUP, "shared", ACLResourcePatternType.LITERAL)
        assert not admin.create_acls([ACL("User:carol", "*", ACLOperation.DESCRIBE, ACLPermissionType.ALLOW, group)])["failed"]
        carol = _session(_url(broker))
        assert carol("POST", "/api/login", {"username": "carol", "password": "carol-secret"})[0] == 200
        status, refused = carol("GET", "/api/groups/shared")
        assert status == 403 and refused["error"].startswith("TOPIC_AUTHORIZATION_FAILED") and "members" not in refused
        topic = ResourcePattern(ResourceType.TOPIC, "secret", ACLResourcePatternType.LITERAL)
        assert not admin.create_acls([ACL("User:carol", "*", ACLOperation.DESCRIBE, ACLPermissionType.ALLOW, topic)])["failed"]
        admin.close()
        status, described = carol("GET", "/api/groups/shared")
        assert status == 200 and described["members"][0]["assignment"] == {"secret": [0]}
