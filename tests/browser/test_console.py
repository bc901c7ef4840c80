"""The web console in a real headless Chromium (Debian's, driven by Selenium through Debian's
chromedriver): what a developer clicks, against a broker that real clients produce to and
consume from. Screenshots of each step go to pytest's tmp path (the test's artifacts); with
COMPAT_SCREENSHOTS=DIR they are also written there, which is how the README's are made.

Selenium rather than Playwright: Debian ships chromedriver built from the same source as its
chromium, so the pair always match; Playwright drives only the browser builds it downloads
itself, and nothing may be downloaded here beyond the package registries.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from confluent_kafka import Producer
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from ottla.testing import ThreadedBroker, running_broker
from unavailable import unavailable

pytestmark = pytest.mark.external

# How long the page may take to show what it fetched: a wait for an element, not a timing claim.
PATIENCE_SECONDS = 30


@pytest.fixture
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=None, http_port=0, group_initial_rebalance_delay_ms=0) as handle:
        yield handle


class Console:
    """The console of `broker` in `driver`, with waits for what the page renders."""

    def __init__(self, driver: Any, broker: ThreadedBroker, shots: list[Path]) -> None:
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        assert broker.broker is not None and broker.broker.http is not None
        self.driver = driver
        self.url = broker.broker.http.url
        self.by = By
        # Pages that poll re-render their tables: an element found a moment ago may be gone.
        self.wait = WebDriverWait(driver, PATIENCE_SECONDS, ignored_exceptions=(StaleElementReferenceException,))
        self.shots = shots

    def open(self, fragment: str) -> None:
        self.driver.get(f"{self.url}/#{fragment}")

    def find(self, css: str) -> Any:
        return self.wait.until(lambda driver: _visible(driver.find_elements(self.by.CSS_SELECTOR, css)))

    def until(self, condition: Callable[[], Any]) -> Any:
        return self.wait.until(lambda _: condition())

    def text(self, css: str) -> str:
        """The text of the visible element `css`, read in the same wait that finds it."""
        return str(self.wait.until(lambda driver: _text(_visible(driver.find_elements(self.by.CSS_SELECTOR, css)))))

    def fill(self, css: str, value: str) -> None:
        element = self.find(css)
        element.clear()
        element.send_keys(value)

    def choose(self, css: str, value: str) -> None:
        from selenium.webdriver.support.ui import Select

        Select(self.find(css)).select_by_value(value)

    def screenshot(self, directory: Path, name: str) -> None:
        path = directory / f"{name}.png"
        self.driver.save_screenshot(str(path))
        self.shots.append(path)
        published = os.environ.get("COMPAT_SCREENSHOTS")
        if published:
            shutil.copyfile(path, Path(published) / path.name)


def _visible(elements: list[Any]) -> Any:
    return next((element for element in elements if element.is_displayed()), None)


def _text(element: Any) -> str | None:
    return None if element is None else str(element.text)


@pytest.fixture
def console(browser: Any, broker: ThreadedBroker) -> Console:
    return Console(browser, broker, [])


def test_a_message_produced_by_a_real_client_shows_its_key_json_value_and_headers(console: Console, broker: ThreadedBroker, tmp_path: Path) -> None:
    broker.create_topic("orders", partitions=3)
    console.open("/")
    console.find("[data-test=chart]")  # the first sample is taken: what follows is a rate
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
    for index in range(30):
        order = {"id": index, "customer": f"c{index % 4}", "lines": [{"sku": "tea", "quantity": index % 3 + 1}], "paid": index % 2 == 0}
        producer.produce("orders", key=f"order-{index}", value=json.dumps(order), headers=[("source", b"checkout"), ("trace-id", f"t-{index}".encode())])
    assert producer.flush(30) == 0
    del producer  # librdkafka's client is destroyed now, not after the broker has gone

    messages_chart = "[data-test=chart][data-title='Messages in (/s)']"
    console.until(lambda: float(console.find(messages_chart).get_attribute("data-peak")) > 0)
    # A line needs a few samples: wait for three before the picture.
    console.until(lambda: len((console.find(f"{messages_chart} polyline").get_attribute("points") or "").split()) >= 3)
    console.screenshot(tmp_path, "overview")

    console.open("/topics")
    console.find("[data-test=topics] a").click()
    assert console.text("[data-test=topic-name]") == "orders"
    console.until(lambda: len(console.driver.find_elements(console.by.CSS_SELECTOR, "[data-test=message-list] tbody tr.clickable")) == 30)
    console.screenshot(tmp_path, "topic")

    console.fill("[data-test=browse] [name=key]", "order-7")
    console.find("[data-test=browse] button").click()
    console.until(lambda: len(console.driver.find_elements(console.by.CSS_SELECTOR, "[data-test=message-list] tbody tr.clickable")) == 1)
    console.find("[data-test=message-list] tbody tr.clickable").click()
    assert console.text("[data-test=message-detail] [data-test=key]") == "order-7"
    shown = json.loads(console.text("[data-test=message-detail] [data-test=value] [data-test=json]"))
    assert shown == {"id": 7, "customer": "c3", "lines": [{"sku": "tea", "quantity": 2}], "paid": False}
    assert "\n  " in console.text("[data-test=message-detail] [data-test=value]")  # pretty-printed
    headers = console.text("[data-test=message-detail] [data-test=headers]").splitlines()
    assert headers == ["NAME VALUE", "source", "checkout", "trace-id", "t-7"]
    console.screenshot(tmp_path, "message")

    console.choose("[data-test=browse] [name=view]", "hex")
    assert console.text("[data-test=message-detail] [data-test=key]") == "6f 72 64 65 72 2d 37"


def test_a_stuck_groups_offsets_reset_in_the_console_and_a_real_consumer_resumes_there(console: Console, broker: ThreadedBroker, tmp_path: Path) -> None:
    broker.create_topic("payments")
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
    for index in range(10):
        producer.produce("payments", value=b"payment-%d" % index)
    assert producer.flush(30) == 0
    del producer  # librdkafka's client is destroyed now, not after the broker has gone
    # A consumer that read everything, then stopped at offset 10 with its work lost.
    consumer = KafkaConsumer("payments", bootstrap_servers=broker.bootstrap_servers, group_id="billing", auto_offset_reset="earliest", enable_auto_commit=False)
    seen = 0
    while seen < 10:
        seen += sum(len(records) for records in consumer.poll(timeout_ms=5000).values())
    consumer.commit({TopicPartition("payments", 0): OffsetAndMetadata(10, "", -1)})
    consumer.close()

    console.open("/groups")
    console.find("[data-test=groups] a").click()
    assert console.text("[data-test=offsets] [data-row=payments-0]").split()[:5] == ["payments", "0", "10", "10", "0"]
    console.choose("[data-test=reset] [name=to]", "offset")
    console.fill("[data-test=reset] [name=value]", "4")
    console.find("[data-test=reset] button").click()
    preview = console.text("[data-test=reset-preview] tbody tr").split()
    assert preview == ["payments", "0", "10", "4"]
    console.screenshot(tmp_path, "reset-preview")
    with urllib.request.urlopen(f"{console.url}/api/groups/billing", timeout=30) as answer:
        assert json.load(answer)["offsets"][0]["committed_offset"] == 10  # a dry run changes nothing

    console.find("[data-test=reset-apply]").click()
    assert console.text("[data-test=reset-applied] tbody tr").split() == ["payments", "0", "10", "4"]
    console.until(lambda: console.text("[data-test=offsets] [data-row=payments-0]").split()[:5] == ["payments", "0", "4", "10", "6"])
    console.screenshot(tmp_path, "group")

    resumed = KafkaConsumer("payments", bootstrap_servers=broker.bootstrap_servers, group_id="billing", enable_auto_commit=False)
    values: list[bytes] = []
    while len(values) < 6:
        values += [record.value for records in resumed.poll(timeout_ms=5000).values() for record in records]
    resumed.close()
    assert values == [b"payment-%d" % index for index in range(4, 10)]


def test_with_acls_the_console_asks_for_a_login_and_shows_only_what_the_user_may_see(browser: Any, tmp_path: Path) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourcePattern, ResourceType

    from ottla.server.config import BrokerConfig
    from ottla.server.security.authorizer import STANDARD_AUTHORIZER

    config = BrokerConfig.from_settings(
        {
            "listeners": "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
            "data.dir": None,
            "http.port": 0,
            "sasl.enabled.mechanisms": "SCRAM-SHA-256",
            "authorizer.class.name": STANDARD_AUTHORIZER,
            "super.users": "User:ANONYMOUS",
        }
    )
    with running_broker(config=config, add_scram=["SCRAM-SHA-256=[name=alice,password=alice-secret]"]) as broker:
        for topic in ("alices-orders", "payroll"):
            broker.create_topic(topic)
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        pattern = ResourcePattern(ResourceType.TOPIC, "alices-", ACLResourcePatternType.PREFIXED)
        assert not admin.create_acls([ACL("User:alice", "*", ACLOperation.READ, ACLPermissionType.ALLOW, pattern)])["failed"]
        admin.close()
        console = Console(browser, broker, [])
        console.open("/topics")
        console.fill("[data-test=login] [name=username]", "alice")
        console.fill("[data-test=login] [name=password]", "alice-secret")
        console.screenshot(tmp_path, "login")
        console.find("[data-test=login] button").click()
        assert console.text("[data-test=topics] a") == "alices-orders"
        assert [row.get_attribute("data-row") for row in browser.find_elements(console.by.CSS_SELECTOR, "[data-test=topics] tbody tr")] == ["alices-orders"]
        assert "User:alice" in console.text("#cluster-line")


def test_a_subscription_set_in_the_console_brings_a_real_clients_metrics_to_its_page(console: Console, broker: ThreadedBroker, tmp_path: Path) -> None:
    broker.create_topic("telemetry")
    console.open("/clients")
    console.fill("[data-test=subscription] [name=name]", "producers")
    console.fill("[data-test=subscription] [name=metrics]", "org.apache.kafka.producer.")
    console.fill("[data-test=subscription] [name=interval]", "200")
    console.find("[data-test=subscription] button").click()
    console.until(lambda: console.text("[data-test=subscriptions] tbody tr").split()[:3] == ["producers", "org.apache.kafka.producer.", "200"])

    producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "client.id": "checkout-service"})

    def pushed() -> bool:
        producer.produce("telemetry", b"m")
        producer.poll(0.2)
        with urllib.request.urlopen(f"{console.url}/api/client-metrics", timeout=30) as answer:
            return any(instance["pushes"] > 1 for instance in json.load(answer)["instances"])

    console.until(pushed)
    console.driver.refresh()  # the page lists what the broker knew when it was opened
    row = console.until(lambda: console.text("[data-test=client-instances] tbody tr").split())
    assert row[0] == "checkout-service" and int(row[-2]) > 0  # the metrics it pushed, before `Last error`
    console.screenshot(tmp_path, "telemetry")
    console.find("[data-test=client-instances] a").click()
    metrics = console.text("[data-test=client-metrics]")
    assert "org.apache.kafka.producer.node.request.latency.avg" in metrics
    console.screenshot(tmp_path, "telemetry-client")
    producer.flush(10)
    del producer


@pytest.mark.slow
def test_values_a_registrys_serializers_wrote_show_decoded_in_the_api_and_the_console(browser: Any, tmp_path: Path) -> None:
    """Apicurio Registry (compat/registry.py) keeps its schemas on the broker it serves;
    confluent-kafka's Avro, JSON Schema and Protobuf serializers register through its
    Confluent-compatible API and produce; with `console.schema.registry.url` pointing there,
    `/api/` and the message browser show each value decoded with the schema the registry holds."""
    import socket

    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroSerializer
    from confluent_kafka.schema_registry.json_schema import JSONSerializer
    from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    from compat import registry, streams
    from tests.integration.conftest import unavailable

    if not streams.module_built("registry"):
        unavailable("compat/java/registry is not built: run `python -m compat.install` (needs mvn)")
    # The registry's address goes into the broker's settings, and the broker's into the registry's.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    apicurio = registry.Registry(f"127.0.0.1:{port}", tmp_path / "registry")
    readings = [{"sensor": f"s{index}", "value": 7 * index + 1} for index in range(3)]
    with running_broker(data_dir=None, port=port, http_port=0, console_schema_registry_url=apicurio.ccompat_url) as broker, apicurio:
        client = SchemaRegistryClient({"url": apicurio.ccompat_url})
        to_protobuf = ProtobufSerializer(registry.Reading, client, {"use.deprecated.format": False})
        serializers: dict[str, Callable[[dict[str, Any], SerializationContext], bytes | None]] = {
            "AVRO": AvroSerializer(client, registry.AVRO_SCHEMA),
            "JSON": JSONSerializer(registry.JSON_SCHEMA, client),
            "PROTOBUF": lambda reading, context: to_protobuf(registry.Reading(**reading), context),
        }
        producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
        for kind, serialize in serializers.items():
            topic = f"readings-{kind.lower()}"
            broker.create_topic(topic)
            for reading in readings:
                producer.produce(topic, value=serialize(reading, SerializationContext(topic, MessageField.VALUE)))
        assert producer.flush(30) == 0
        del producer  # librdkafka's client is destroyed now, not after the broker has gone

        console = Console(browser, broker, [])
        for kind in serializers:
            with urllib.request.urlopen(f"{console.url}/api/topics/readings-{kind.lower()}/messages?partition=0&offset=0", timeout=60) as answer:
                shown = [message["value_schema"] for message in json.load(answer)["messages"]]
            assert [(decoded["type"], decoded["value"]) for decoded in shown] == [(kind, reading) for reading in readings], shown

        console.open("/topics/readings-protobuf")
        console.until(lambda: len(console.driver.find_elements(console.by.CSS_SELECTOR, "[data-test=message-list] tbody tr.clickable")) == 3)
        console.find("[data-test=message-list] tbody tr.clickable").click()
        decoded = console.text("[data-test=message-detail] [data-test=value-schema]")
        assert "PROTOBUF · dev.ottla.compat.Reading" in decoded
        assert json.loads(console.text("[data-test=message-detail] [data-test=value-schema] [data-test=schema-value]")) in readings
        console.screenshot(tmp_path, "message-schema")
