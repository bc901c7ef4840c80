"""Consumer-group lag as `/metrics` and `/api/groups/G` give it is what Kafka 4.4's own
`kafka-consumer-groups --describe` prints for the same group, offset for offset."""

from __future__ import annotations

import json
import urllib.request

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata
from prometheus_client.parser import text_string_to_metric_families

from compat.tools import installed
from ottla.testing import running_broker
from unavailable import unavailable


def test_lag_matches_kafka_consumer_groups_describe() -> None:
    missing = installed()
    if missing:
        unavailable(missing)
    from compat.kafka import run_tool

    with running_broker(data_dir=None, http_port=0, group_initial_rebalance_delay_ms=0) as broker:
        assert broker.broker is not None and broker.broker.http is not None
        url = broker.broker.http.url
        broker.create_topic("lagging", partitions=3)
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)
        for index in range(40):
            producer.send("lagging", b"%d" % index, partition=index % 3)
        producer.flush()
        producer.close()
        consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap_servers, group_id="lag-check", enable_auto_commit=False)
        consumer.commit({TopicPartition("lagging", 0): OffsetAndMetadata(3, "", -1), TopicPartition("lagging", 1): OffsetAndMetadata(13, "", -1), TopicPartition("lagging", 2): OffsetAndMetadata(0, "", -1)})
        consumer.close()

        proc = run_tool("kafka-consumer-groups", "--bootstrap-server", broker.bootstrap_servers, "--describe", "--group", "lag-check", timeout=90)
        assert proc.returncode == 0, proc.stderr
        lines = [line.split() for line in proc.stdout.splitlines() if line.strip()]
        header = lines[0]
        rows = [dict(zip(header, line)) for line in lines[1:] if line[:2] == ["lag-check", "lagging"]]
        tool = {int(row["PARTITION"]): (int(row["CURRENT-OFFSET"]), int(row["LOG-END-OFFSET"]), int(row["LAG"])) for row in rows}
        assert tool == {0: (3, 14, 11), 1: (13, 13, 0), 2: (0, 13, 13)}

        with urllib.request.urlopen(url + "/metrics", timeout=30) as answer:
            text = answer.read().decode()
        samples = {(s.name, s.labels.get("partition")): s.value for f in text_string_to_metric_families(text) for s in f.samples if s.labels.get("consumergroup") == "lag-check"}
        assert {p: (int(samples[("kafka_consumergroup_current_offset", str(p))]), int(samples[("kafka_consumergroup_lag", str(p))])) for p in tool} == {p: (current, lag) for p, (current, _, lag) in tool.items()}

        with urllib.request.urlopen(url + "/api/groups/lag-check", timeout=30) as answer:
            offsets = json.loads(answer.read())["offsets"]
        assert {o["partition"]: (o["committed_offset"], o["log_end_offset"], o["lag"]) for o in offsets} == tool
