"""The HTTP listener over real sockets: `/metrics` after kafka-python's produce and consume,
every JSON endpoint, and bad input refused with a clear status while Kafka clients go on."""

from __future__ import annotations

import json
import logging
import random
import socket
import time
import urllib.error
import urllib.request
from typing import Any, Iterator

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

from test_console_access import _session

from ottla.server.cli import _parser, broker_config
from ottla.testing import ThreadedBroker, running_broker


class Http:
    """A tiny client of one listener: JSON in and out, the CSRF token sent when `csrf`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.token = self.get("/api/csrf")[1]["token"]

    def request(self, method: str, path: str, body: Any = None, *, csrf: bool = True, raw: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        sent = {"Content-Type": "application/json", **(headers or {})}
        if csrf and method != "GET":
            sent["X-CSRF-Token"] = self.token
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=sent)
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                status, content, kind = answer.status, answer.read(), answer.headers.get("Content-Type", "")
        except urllib.error.HTTPError as error:
            status, content, kind = error.code, error.read(), error.headers.get("Content-Type", "")
        return status, json.loads(content) if "json" in kind else content.decode()

    def get(self, path: str, **kwargs: Any) -> tuple[int, Any]:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        return self.request("POST", path, body, **kwargs)


@pytest.fixture
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=None, http_port=0, group_initial_rebalance_delay_ms=0) as handle:
        yield handle


@pytest.fixture
def http(broker: ThreadedBroker) -> Http:
    assert broker.broker is not None and broker.broker.http is not None
    # The socket listens from start(); a request made before aiohttp serves waits in the backlog.
    return Http(broker.broker.http.url)


def _at(offset: int) -> OffsetAndMetadata:
    return OffsetAndMetadata(offset, "", -1)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_count_unanswered_produces_and_refused_ones(broker: ThreadedBroker, http: Http) -> None:
    """acks=0 records count though no answer names them; a batch the log refuses counts as a
    failed produce and adds no messages."""
    broker.create_topic("unanswered", partitions=1)
    broker.create_topic("tight", partitions=1, max_message_bytes=200)
    quiet = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks=0, linger_ms=0)
    for index in range(7):
        quiet.send("unanswered", value=b"v%d" % index).get(timeout=10)
    quiet.flush()
    quiet.close()
    refused = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, retries=0)
    with pytest.raises(Exception, match="MessageSizeTooLarge"):
        refused.send("tight", value=b"x" * 1000).get(timeout=10)
    refused.close()

    def counted() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return _samples(http.get("/metrics")[1])

    # acks=0 produces are not answered: wait until the broker has taken all seven.
    unanswered = ("kafka_server_brokertopicmetrics_messagesin_total", (("topic", "unanswered"),))
    deadline = time.monotonic() + 30
    samples = counted()
    while samples.get(unanswered, 0) < 7 and time.monotonic() < deadline:
        samples = counted()
    assert samples[unanswered] == 7
    tight = (("topic", "tight"),)
    assert samples[("kafka_server_brokertopicmetrics_failedproducerequests_total", tight)] == 1
    assert samples[("kafka_server_brokertopicmetrics_messagesin_total", tight)] == 0


def test_metrics_count_what_a_client_produced_and_consumed(broker: ThreadedBroker, http: Http) -> None:
    broker.create_topic("metered", partitions=2)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)
    for index in range(30):
        producer.send("metered", key=b"k%d" % index, value=b"v" * 100, partition=index % 2)
    producer.flush()
    producer.close()
    consumer = KafkaConsumer("metered", bootstrap_servers=broker.bootstrap_servers, group_id="metering", auto_offset_reset="earliest", enable_auto_commit=False)
    seen = 0
    while seen < 30:
        seen += sum(len(records) for records in consumer.poll(timeout_ms=5000).values())
    consumer.commit({TopicPartition("metered", 0): _at(10), TopicPartition("metered", 1): _at(15)})
    consumer.close()

    status, text = http.get("/metrics")
    assert status == 200
    samples = _samples(text)
    topic = (("topic", "metered"),)
    assert samples[("kafka_server_brokertopicmetrics_messagesin_total", topic)] == 30
    logged = sum(samples[("kafka_log_log_size", (("partition", str(p)), ("topic", "metered")))] for p in (0, 1))
    assert samples[("kafka_server_brokertopicmetrics_bytesin_total", topic)] == logged
    assert samples[("kafka_server_brokertopicmetrics_bytesout_total", topic)] >= logged
    assert samples[("kafka_server_brokertopicmetrics_failedproducerequests_total", topic)] == 0
    for partition, committed in ((0, 10), (1, 15)):
        labels = (("consumergroup", "metering"), ("partition", str(partition)), ("topic", "metered"))
        assert samples[("kafka_log_log_logendoffset", (("partition", str(partition)), ("topic", "metered")))] == 15
        assert samples[("kafka_consumergroup_current_offset", labels)] == committed
        assert samples[("kafka_consumergroup_lag", labels)] == 15 - committed
    produce = (("request", "Produce"),)
    assert samples[("kafka_network_requestmetrics_requests_total", produce)] >= 1
    assert samples[("kafka_network_requestmetrics_totaltime_seconds_count", produce)] == samples[("kafka_network_requestmetrics_requests_total", produce)]
    assert samples[("kafka_server_socket_server_metrics_connection_creation_total", (("listener", "PLAINTEXT"),))] >= 2
    assert samples[("process_resident_memory_bytes", ())] > 0

    # The same exposition as OpenMetrics when the scraper asks for it.
    answer = urllib.request.urlopen(urllib.request.Request(http.url + "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}))
    assert answer.headers["Content-Type"].startswith("application/openmetrics-text")
    families = {family.name: family for family in openmetrics_families(answer.read().decode())}
    assert families["kafka_server_brokertopicmetrics_messagesin"].type == "counter"


def test_key_less_messages_leave_the_programs_random_state_alone(broker: ThreadedBroker, http: Http) -> None:
    """The broker runs in the program that embeds it: a test suite that seeds `random` (as
    hypothesis does, and checks) must find it where it left it after the broker picked a
    partition for a key-less record."""
    assert http.post("/api/topics", {"name": "keyless", "partitions": 4})[0] == 200
    before = random.getstate()
    partitions = set()
    for index in range(20):
        status, produced = http.post("/api/topics/keyless/messages", {"value": f"v{index}"})
        assert status == 200
        partitions.add(produced["partition"])
    assert random.getstate() == before
    assert len(partitions) > 1  # still spread over the partitions, as any partition may take one


def test_topics_messages_and_configs_through_the_json_api(broker: ThreadedBroker, http: Http) -> None:
    assert http.post("/api/topics", {"name": "shown", "partitions": 2, "configs": {"retention.ms": "3600000"}})[0] == 200
    assert http.post("/api/topics", {"name": "shown", "partitions": 2})[0] == 409
    assert http.post("/api/topics", {"name": "bad/name"})[0] == 422  # the CreateTopics handler's own rule
    status, listed = http.get("/api/topics")
    assert status == 200 and "shown" in [topic["name"] for topic in listed["topics"]]

    for index in range(3):
        status, produced = http.post("/api/topics/shown/messages", {"key": f"k{index}", "value": {"n": index}, "headers": {"source": "api"}, "partition": 1, "encoding": "json"})
        assert status == 200 and produced["offset"] == index
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)
    producer.send("shown", key=b"client", value=b'{"from": "kafka-python"}', headers=[("trace", b"\x00\x01")], partition=0).get(timeout=30)
    producer.close()

    status, read = http.get("/api/topics/shown/messages?partition=1&offset=1&limit=10&encoding=json")
    assert status == 200
    assert [(message["offset"], message["key"], message["value"]) for message in read["messages"]] == [(1, "k1", {"n": 1}), (2, "k2", {"n": 2})]
    assert read["messages"][0]["headers"] == [{"key": "source", "value": "api"}]
    status, read = http.get("/api/topics/shown/messages?partition=0&encoding=hex")
    assert read["messages"][0]["key"] == b"client".hex() and read["messages"][0]["headers"][0]["value"] == "0001"
    status, newest = http.get("/api/topics/shown/messages?newest=2&encoding=text")
    assert len(newest["messages"]) == 2 and newest["messages"][-1]["value"] == '{"from": "kafka-python"}'
    timestamp = read["messages"][0]["timestamp"]
    status, at = http.get(f"/api/topics/shown/messages?partition=0&timestamp={timestamp}")
    assert [message["offset"] for message in at["messages"]] == [0]

    status, described = http.get("/api/topics/shown")
    assert [p["log_end_offset"] for p in described["partitions"]] == [1, 3]
    assert {"name": "retention.ms", "value": "3600000"}.items() <= next(c for c in described["configs"] if c["name"] == "retention.ms").items()
    assert http.post("/api/topics/shown/configs", {"set": {"retention.bytes": "1048576"}, "delete": ["retention.ms"]})[0] == 200
    assert http.post("/api/topics/shown/configs", {"set": {"cleanup.policy": "nonsense"}})[0] == 422
    configs = {c["name"]: c for c in http.get("/api/topics/shown")[1]["configs"]}
    assert configs["retention.bytes"]["value"] == "1048576" and configs["retention.ms"]["source"] == "DEFAULT_CONFIG"
    assert http.post("/api/topics/shown/partitions", {"count": 4})[1]["partitions"] == 4
    assert http.post("/api/topics/shown/partitions", {"count": 2})[0] == 422
    assert http.post("/api/topics/shown/delete-records", {"offsets": {"1": 2}}) == (200, {"name": "shown", "low_watermarks": {"1": 2}})
    assert http.get("/api/topics/shown")[1]["partitions"][1]["log_start_offset"] == 2
    assert http.request("DELETE", "/api/topics/shown")[0] == 200
    assert http.get("/api/topics/shown")[0] == 404

    status, cluster = http.get("/api/cluster")
    assert cluster["bootstrap_servers"] == broker.bootstrap_servers and cluster["http"] == http.url
    status, configs = http.get("/api/broker/configs")
    assert status == 200 and any(c["name"] == "log.retention.hours" for c in configs["configs"])
    assert http.get("/api/transactions") == (200, {"transactions": []})
    assert http.get("/api/acls") == (200, {"enabled": False, "acls": []}) and http.get("/api/users") == (200, {"users": []})
    assert http.get("/api/producers")[0] == 200


def test_group_offsets_reset_as_the_tool_does_and_a_consumer_resumes_there(broker: ThreadedBroker, http: Http) -> None:
    broker.create_topic("stuck")
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)
    for index in range(10):
        producer.send("stuck", value=b"%d" % index)
    producer.flush()
    producer.close()
    consumer = KafkaConsumer("stuck", bootstrap_servers=broker.bootstrap_servers, group_id="stuck-group", auto_offset_reset="earliest", enable_auto_commit=False)
    seen = 0
    while seen < 10:
        seen += sum(len(records) for records in consumer.poll(timeout_ms=5000).values())
    consumer.commit({TopicPartition("stuck", 0): _at(7)})

    status, described = http.get("/api/groups/stuck-group")
    assert described["state"] == "Stable" and described["members"][0]["assignment"] == {"stuck": [0]}
    assert described["offsets"] == [{"topic": "stuck", "partition": 0, "committed_offset": 7, "log_end_offset": 10, "lag": 3, "metadata": "", "member_id": described["members"][0]["member_id"]}]
    reset = {"topic": "stuck", "to": "offset", "value": 4, "dry_run": False}
    assert http.post("/api/groups/stuck-group/reset-offsets", reset)[0] == 409  # a member is active
    consumer.close()

    status, preview = http.post("/api/groups/stuck-group/reset-offsets", {**reset, "dry_run": True})
    assert status == 200 and preview["offsets"] == [{"topic": "stuck", "partition": 0, "previous_offset": 7, "new_offset": 4}]
    assert http.get("/api/groups/stuck-group")[1]["offsets"][0]["committed_offset"] == 7
    assert http.post("/api/groups/stuck-group/reset-offsets", {**reset, "value": 99})[1]["offsets"][0]["new_offset"] == 10
    assert http.post("/api/groups/stuck-group/reset-offsets", reset)[0] == 200
    assert http.get("/api/groups")[1]["groups"] == [{"group_id": "stuck-group", "type": "classic", "state": "Empty", "protocol_type": "consumer", "members": 0}]

    resumed = KafkaConsumer("stuck", bootstrap_servers=broker.bootstrap_servers, group_id="stuck-group", enable_auto_commit=False)
    values: list[bytes] = []
    while len(values) < 6:
        values += [record.value for records in resumed.poll(timeout_ms=5000).values() for record in records]
    resumed.close()
    assert values == [b"4", b"5", b"6", b"7", b"8", b"9"]


def _raw(url: str, request: bytes) -> bytes:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer


def test_bad_input_is_refused_with_a_clear_status_and_kafka_goes_on(broker: ThreadedBroker, http: Http) -> None:
    broker.create_topic("kept")
    assert http.post("/api/topics", {"name": "x"}, csrf=False)[0] == 403
    assert http.post("/api/topics", {"name": "x"}, csrf=False, headers={"X-CSRF-Token": "guess"})[0] == 403
    assert http.request("DELETE", "/api/topics/kept", csrf=False)[0] == 403
    assert http.post("/api/topics", raw=b'{"name": ')[0] == 400
    assert http.post("/api/topics", raw=b"[1, 2]")[0] == 400
    assert http.post("/api/topics", {"name": "x", "partitions": "many"})[0] == 400
    assert http.post("/api/topics", raw=b'{"name": "' + b"x" * (2 << 20) + b'"}')[0] == 413
    assert http.get("/api/topics/kept/messages?partition=0&limit=10000000000")[0] == 400
    assert http.get("/api/topics/kept/messages?newest=1000000000")[0] == 400
    assert http.get("/api/topics/kept/messages?partition=9")[0] == 404
    assert http.get("/api/topics/kept/messages?partition=0&offset=nope")[0] == 400
    assert http.get("/api/topics/kept/messages?partition=0&encoding=rot13")[0] == 400
    assert http.get("/api/nowhere")[0] == 404
    for path in ("/static/../__init__.py", "/static/%2e%2e/%2e%2e/pyproject.toml", "/static/..%2f..%2fhttp%2f__init__.py", "/static//etc/passwd"):
        answer = _raw(http.url, f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        assert answer.startswith(b"HTTP/1.1 404"), (path, answer[:200])
    answer = _raw(http.url, b"GET /api/cluster HTTP/1.1\r\nHost: attacker.example\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 403")
    assert http.get("/")[0] == 200

    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)
    producer.send("kept", b"still served").get(timeout=30)
    producer.close()
    assert http.get("/api/topics/kept")[1]["partitions"][0]["log_end_offset"] == 1


def test_recent_log_lines_are_kept_for_the_console(http: Http) -> None:
    logging.getLogger("ottla.http.test").warning("a line for the console")
    status, logs = http.get("/api/logs?limit=1000")
    assert status == 200 and any(line["message"] == "a line for the console" and line["level"] == "warning" for line in logs["lines"])
    newest = logs["lines"][-1]["seq"]
    assert http.get(f"/api/logs?since={newest}")[1]["lines"] == []
    assert http.get("/api/logs?limit=0")[0] == 400


@pytest.mark.parametrize(
    ("argv", "port"),
    [(["--port", "19092"], 8092), (["--port", "0"], -1), (["--port", "0", "--http-port", "0"], 0), (["--port", "19092", "--http-port", "-1"], -1)],
)
def test_ottla_serve_opens_its_console_on_a_fixed_port_unless_told_otherwise(argv: list[str], port: int) -> None:
    config = broker_config(_parser().parse_args(["serve", "--memory", *argv]))
    assert config.http_port == port and config.http_host == "127.0.0.1"


def test_fetches_that_name_topics_by_id_are_counted(broker: ThreadedBroker, http: Http) -> None:
    """librdkafka fetches with Fetch v13+, whose answers name topics by id only (KIP-516)."""
    from confluent_kafka import Consumer, Producer

    broker.create_topic("by-id")
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
    for index in range(20):
        producer.produce("by-id", value=b"x" * 50, key=b"%d" % index)
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": "by-id-readers", "auto.offset.reset": "earliest"})
    consumer.subscribe(["by-id"])
    seen = 0
    while seen < 20:
        message = consumer.poll(5)
        if message is not None and message.error() is None:
            seen += 1
    consumer.close()
    samples = _samples(http.get("/metrics")[1])
    topic = (("topic", "by-id"),)
    assert samples[("kafka_server_brokertopicmetrics_messagesin_total", topic)] == 20
    assert samples[("kafka_server_brokertopicmetrics_bytesout_total", topic)] >= samples[("kafka_log_log_size", (("partition", "0"), ("topic", "by-id")))]


def test_search_stats_broker_configs_and_a_kip848_group_for_the_console(broker: ThreadedBroker, http: Http) -> None:
    from confluent_kafka import Consumer

    broker.create_topic("searched", partitions=1)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)
    for index in range(40):
        producer.send("searched", key=b"user-%d" % (index % 4), value=b'{"n": %d, "colour": "%s"}' % (index, b"red" if index % 5 == 0 else b"blue"))
    producer.flush()
    producer.close()

    status, found = http.get("/api/topics/searched/messages?partition=0&offset=0&key=user-1&limit=3")
    assert status == 200 and [message["offset"] for message in found["messages"]] == [1, 5, 9] and found["scanned_to"] == 10
    status, found = http.get("/api/topics/searched/messages?partition=0&offset=10&contains=red&limit=500")
    assert [message["offset"] for message in found["messages"]] == [10, 15, 20, 25, 30, 35] and found["scanned_to"] == 40
    status, found = http.get("/api/topics/searched/messages?newest=2&contains=red")
    assert [message["offset"] for message in found["messages"]] == [30, 35]

    status, stats = http.get("/api/stats")
    assert status == 200 and stats["messages_in"] == 40 and stats["apis"]["PRODUCE"]["requests"] >= 1 and stats["bytes_in"] > 0

    assert http.post("/api/broker/configs", {"set": {"log.retention.ms": "nonsense"}})[0] == 422
    status, changed = http.post("/api/broker/configs", {"set": {"log.retention.ms": "7200000"}})
    assert status == 200 and {"name": "log.retention.ms", "value": "7200000", "source": "DYNAMIC_BROKER_CONFIG"}.items() <= next(c for c in changed["configs"] if c["name"] == "log.retention.ms").items()
    assert http.post("/api/broker/configs", {"set": {"log.retention.ms": "1"}}, csrf=False)[0] == 403

    consumer = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": "next-gen", "group.protocol": "consumer", "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe(["searched"])
    seen = 0
    while seen < 40:
        seen += len([message for message in consumer.consume(40, timeout=5) if message.error() is None])
    consumer.commit(asynchronous=False)
    status, listed = http.get("/api/groups")
    assert {"group_id": "next-gen", "type": "consumer", "state": "Stable", "protocol_type": "consumer", "members": 1} in listed["groups"]
    status, described = http.get("/api/groups/next-gen")
    assert described["type"] == "consumer" and described["members"][0]["assignment"] == {"searched": [0]}
    assert described["offsets"][0] == {"topic": "searched", "partition": 0, "committed_offset": 40, "log_end_offset": 40, "lag": 0, "metadata": "", "member_id": described["members"][0]["member_id"]}
    assert http.post("/api/groups/next-gen/reset-offsets", {"topic": "searched", "to": "earliest", "dry_run": False})[0] == 409
    consumer.close()
    status, reset = http.post("/api/groups/next-gen/reset-offsets", {"topic": "searched", "to": "offset", "value": 12, "dry_run": False})
    assert status == 200 and http.get("/api/groups/next-gen")[1]["offsets"][0]["committed_offset"] == 12


def test_with_sasl_and_acls_the_console_logs_in_and_can_do_only_what_the_principal_may(tmp_path: Any) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourcePattern, ResourceType

    from ottla.server.config import BrokerConfig
    from ottla.server.security.authorizer import STANDARD_AUTHORIZER

    config = BrokerConfig.from_settings(
        {
            "listeners": "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
            "data.dir": None,
            "http.port": 0,
            "sasl.enabled.mechanisms": "SCRAM-SHA-512,PLAIN",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": 'org.apache.kafka.common.security.plain.PlainLoginModule required user_carol="carol-secret" user_admin="admin-secret";',
            "authorizer.class.name": STANDARD_AUTHORIZER,
            "super.users": "User:ANONYMOUS;User:admin",
        }
    )
    with running_broker(config=config, add_scram=["SCRAM-SHA-512=[name=alice,password=alice-secret]"]) as broker:
        for topic in ("open", "secret"):
            broker.create_topic(topic)
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        for operation in (ACLOperation.READ, ACLOperation.DESCRIBE_CONFIGS):
            pattern = ResourcePattern(ResourceType.TOPIC, "open", ACLResourcePatternType.LITERAL)
            assert not admin.create_acls([ACL("User:alice", "*", operation, ACLPermissionType.ALLOW, pattern)])["failed"]
        admin.close()
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)
        for topic in ("open", "secret"):
            producer.send(topic, value=b"in " + topic.encode())
        producer.flush()
        producer.close()

        assert broker.broker is not None and broker.broker.http is not None
        url = broker.broker.http.url
        call = _session(url)

        assert call("GET", "/api/session") == (200, {"login_required": True, "principal": None})
        assert call("GET", "/api/topics")[0] == 401
        assert call("POST", "/api/login", {"username": "alice", "password": "wrong"})[0] == 401
        assert call("POST", "/api/login", {"username": "carol", "password": "carol-secret"}) == (200, {"principal": "User:carol"})  # PLAIN
        assert [topic["name"] for topic in call("GET", "/api/topics")[1]["topics"]] == []  # carol has no ACL

        assert call("POST", "/api/login", {"username": "alice", "password": "alice-secret"}) == (200, {"principal": "User:alice"})  # SCRAM
        assert call("GET", "/api/session")[1]["principal"] == "User:alice"
        assert [topic["name"] for topic in call("GET", "/api/topics")[1]["topics"]] == ["open"]
        assert call("GET", "/api/topics/open")[0] == 200
        assert [m["value"] for m in call("GET", "/api/topics/open/messages?newest=5")[1]["messages"]] == ["in open"]
        status, refused = call("GET", "/api/topics/secret/messages?newest=5")
        assert status == 403 and refused["error"].startswith("TOPIC_AUTHORIZATION_FAILED")
        assert call("POST", "/api/topics/open/messages", {"value": "from alice"})[0] == 403  # no Write: the Produce handler says so
        # Refused before the topic is looked up, so a name tells nothing of whether it exists.
        for topic in ("secret", "no-such-topic"):
            assert call("POST", f"/api/topics/{topic}/messages", {"value": "x"})[0] == 403
            assert call("GET", f"/api/producers?topic={topic}")[0] == 403
        assert call("POST", "/api/topics", {"name": "new"})[0] == 403  # nor Create
        assert call("DELETE", "/api/topics/open")[0] == 403
        assert call("GET", "/api/logs")[0] == 403
        assert call("GET", "/api/acls")[0] == 403 and call("GET", "/api/users")[0] == 403  # Describe on the cluster

        assert call("POST", "/api/login", {"username": "admin", "password": "admin-secret"})[0] == 200  # a super user
        status, acls = call("GET", "/api/acls")
        assert status == 200 and acls["enabled"] and sorted((acl["principal"], acl["operation"], acl["resource_name"]) for acl in acls["acls"]) == [
            ("User:alice", "DESCRIBE_CONFIGS", "open"), ("User:alice", "READ", "open")]
        assert call("GET", "/api/users")[1] == {"users": [{"user": "alice", "mechanisms": [{"mechanism": "SCRAM-SHA-512", "iterations": 4096}]}]}

        assert call("POST", "/api/logout")[0] == 200
        assert call("GET", "/api/topics")[0] == 401


def test_client_telemetry_pushed_by_librdkafka_is_in_metrics_and_the_api(broker: ThreadedBroker, http: Http) -> None:
    from confluent_kafka import Producer

    assert http.post("/api/client-metrics/subscriptions/producers", {"set": {"metrics": "org.apache.kafka.producer.", "interval.ms": "50"}})[0] == 422  # under 100 ms
    status, subscription = http.post("/api/client-metrics/subscriptions/producers", {"set": {"metrics": "org.apache.kafka.producer.", "interval.ms": "200", "match": "client_id=tele.*"}})
    assert status == 200 and subscription["configs"] == {"metrics": "org.apache.kafka.producer.", "interval.ms": "200", "match": "client_id=tele.*"}
    broker.create_topic("telemetry")
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "client.id": "telemetry-app"})
    other = Producer({"bootstrap.servers": broker.bootstrap_servers, "client.id": "unmatched"})

    def pushed() -> list[dict[str, Any]]:
        return [instance for instance in http.get("/api/client-metrics")[1]["instances"] if instance["pushes"] >= 2]

    while not pushed():  # librdkafka pushes every 200 ms (with jitter) once subscribed
        for client in (producer, other):
            client.produce("telemetry", b"m")
            client.poll(0.1)
    [instance] = pushed()
    assert instance["client_id"] == "telemetry-app" and instance["requested_metrics"] == ["org.apache.kafka.producer."] and instance["last_error"] is None
    listed = {item["client_id"]: item for item in http.get("/api/client-metrics")[1]["instances"]}
    assert listed["unmatched"]["requested_metrics"] == [] and listed["unmatched"]["pushes"] == 0

    status, detail = http.get(f"/api/client-metrics/instances/{instance['client_instance_id']}")
    names = {metric["name"] for metric in detail["metrics"]}
    assert "org.apache.kafka.producer.node.request.latency.avg" in names and all(name.startswith("org.apache.kafka.producer.") for name in names)
    status, text = http.get("/metrics")
    samples = _samples(text)
    latency = [labels for (name, labels) in samples if name == "org_apache_kafka_producer_node_request_latency_avg"]
    assert latency and dict(latency[0])["client_id"] == "telemetry-app" and dict(latency[0])["client_instance_id"] == instance["client_instance_id"]
    assert status == 200 and list(openmetrics_families(http.get("/metrics", headers={"Accept": "application/openmetrics-text"})[1]))
    producer.flush(10)
    other.flush(10)
    del producer, other
