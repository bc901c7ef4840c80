"""DescribeConfigs of a client metrics subscription (CLIENT_METRICS resource) over a real
socket, with synonyms and documentation asked for: Kafka 4.4's
ConfigHelper.createClientMetricsConfigEntry gives a value the subscription sets one synonym, its
own name and value at CLIENT_METRICS_CONFIG, and a default none; the documentation is
ClientMetricsConfigs' ConfigDef's. `kafka-configs --describe --entity-type client-metrics`
prints those synonyms."""

from __future__ import annotations

from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from tests.server.test_features import Client

CLIENT_METRICS, CLIENT_METRICS_CONFIG, DEFAULT_CONFIG, SET = 16, 7, 5, 0


def test_a_set_subscription_config_is_its_own_synonym() -> None:
    with running_broker(data_dir=None) as broker:
        client = Client(broker.bootstrap_servers)
        try:
            altered = client.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {"validate_only": False, "resources": [{
                "resource_type": CLIENT_METRICS, "resource_name": "subscription",
                "configs": [{"name": "interval.ms", "config_operation": SET, "value": "10000"},
                            {"name": "metrics", "config_operation": SET, "value": "org.apache.kafka.producer."}]}]})
            assert altered["responses"][0]["error_code"] == ErrorCode.NONE, altered
            described = client.call(ApiKey.DESCRIBE_CONFIGS, 4, {"include_synonyms": True, "include_documentation": True, "resources": [
                {"resource_type": CLIENT_METRICS, "resource_name": "subscription", "configuration_keys": None}]})
            configs = {c["name"]: c for c in described["results"][0]["configs"]}
            assert {name: (c["value"], c["config_source"], c["synonyms"]) for name, c in configs.items()} == {
                "interval.ms": ("10000", CLIENT_METRICS_CONFIG, [{"name": "interval.ms", "value": "10000", "source": CLIENT_METRICS_CONFIG}]),
                "metrics": ("org.apache.kafka.producer.", CLIENT_METRICS_CONFIG,
                            [{"name": "metrics", "value": "org.apache.kafka.producer.", "source": CLIENT_METRICS_CONFIG}]),
                "match": ("", DEFAULT_CONFIG, []),
            }
            assert {name: c["documentation"] for name, c in configs.items()} == {
                "interval.ms": "Metrics push interval in milliseconds", "metrics": "Telemetry metric name prefix list",
                "match": "Client match criteria"}
            # Without include_synonyms there are none, as for every resource.
            plain = client.call(ApiKey.DESCRIBE_CONFIGS, 4, {"include_synonyms": False, "include_documentation": False, "resources": [
                {"resource_type": CLIENT_METRICS, "resource_name": "subscription", "configuration_keys": ["interval.ms"]}]})
            assert [(c["synonyms"], c["documentation"]) for c in plain["results"][0]["configs"]] == [([], None)]
        finally:
            client.close()
