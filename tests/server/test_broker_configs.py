"""Broker configs as Kafka exposes them: every key Kafka 4.4 lists, dynamic broker configs per
node and as cluster default (persisted, applied without a restart), and the BROKER_LOGGER
resource. Real clients over real sockets against an in-process broker; the rules of sources and
synonyms also without sockets."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.errors import MessageSizeTooLargeError

from ottla.server.admin.client import KafkaClient
from ottla.server.broker_configs import (
    DEFAULT_CONFIG, DYNAMIC_BROKER_CONFIG, DYNAMIC_DEFAULT_BROKER_CONFIG, FILE_NAME, STATIC_BROKER_CONFIG, BrokerConfigs,
)
from ottla.server.config_entries import Listening
from ottla.server.config import SETTINGS, BrokerConfig
from ottla.server.kafka_settings import inert_keys
from ottla.testing import running_broker
from ottla.wire.api import ApiKey

# What Apache Kafka 4.4.0 answers to DescribeConfigs for its broker resource (node 1 of
# compat.kafka.ReferenceKafka): every name, with its config_type and flags "D" (not read-only,
# i.e. dynamic) and "S" (sensitive).
KAFKA_4_4_BROKER_CONFIGS = """
add.partitions.to.txn.retry.backoff.max.ms 3 -- | add.partitions.to.txn.retry.backoff.ms 3 -- | advertised.listeners 7 --
alter.config.policy.class.name 8 -- | alter.log.dirs.replication.quota.window.num 3 --
alter.log.dirs.replication.quota.window.size.seconds 3 -- | authorizer.class.name 2 -- | auto.create.topics.enable 1 --
auto.leader.rebalance.enable 1 -- | background.threads 3 D- | broker.heartbeat.interval.ms 3 -- | broker.id 3 --
broker.rack 2 -- | broker.session.timeout.ms 3 -- | client.quota.callback.class 8 -- | compression.gzip.level 3 D-
compression.lz4.level 3 D- | compression.type 2 D- | compression.zstd.level 3 D- | config.providers 7 D-
connection.failed.authentication.delay.ms 3 -- | connections.max.idle.ms 5 -- | connections.max.reauth.ms 5 --
controlled.shutdown.enable 1 -- | controller.listener.names 7 -- | controller.quorum.append.linger.ms 3 --
controller.quorum.auto.join.enable 1 -- | controller.quorum.bootstrap.servers 7 --
controller.quorum.election.backoff.max.ms 3 -- | controller.quorum.election.timeout.ms 3 --
controller.quorum.fetch.max.bytes 3 -- | controller.quorum.fetch.snapshot.max.bytes 3 --
controller.quorum.fetch.timeout.ms 3 -- | controller.quorum.request.timeout.ms 3 -- | controller.quorum.retry.backoff.ms 3 --
controller.quorum.voters 7 -- | controller.quota.window.num 3 -- | controller.quota.window.size.seconds 3 --
controller.socket.timeout.ms 3 -- | cordoned.log.dirs 7 D- | create.topic.policy.class.name 8 --
default.replication.factor 3 -- | delegation.token.expiry.check.interval.ms 5 -- | delegation.token.expiry.time.ms 5 --
delegation.token.max.lifetime.ms 5 -- | delegation.token.secret.key 9 -S
delete.records.purgatory.purge.interval.requests 3 -- | delete.topic.enable 1 -- | early.start.listeners 7 --
errors.deadletterqueue.auto.create.topics.enable 1 D- | errors.deadletterqueue.topic.name.prefix 2 D- | fetch.max.bytes 3 --
fetch.purgatory.purge.interval.requests 3 -- | follower.fetch.last.tiered.offset.enable 1 D-
group.consumer.assignment.interval.ms 3 D- | group.consumer.assignors 7 -- | group.consumer.heartbeat.interval.ms 3 --
group.consumer.max.assignment.interval.ms 3 -- | group.consumer.max.heartbeat.interval.ms 3 --
group.consumer.max.session.timeout.ms 3 -- | group.consumer.max.size 3 -- | group.consumer.migration.policy 2 --
group.consumer.min.assignment.interval.ms 3 -- | group.consumer.min.heartbeat.interval.ms 3 --
group.consumer.min.session.timeout.ms 3 -- | group.consumer.session.timeout.ms 3 -- | group.coordinator.append.linger.ms 3 --
group.coordinator.background.threads 3 -- | group.coordinator.cached.buffer.max.bytes 3 D-
group.coordinator.rebalance.protocols 7 -- | group.coordinator.threads 3 -- | group.initial.rebalance.delay.ms 3 --
group.max.session.timeout.ms 3 -- | group.max.size 3 -- | group.min.session.timeout.ms 3 --
group.share.assignment.interval.ms 3 D- | group.share.assignors 7 -- | group.share.delivery.count.limit 3 --
group.share.heartbeat.interval.ms 3 -- | group.share.max.assignment.interval.ms 3 --
group.share.max.delivery.count.limit 3 -- | group.share.max.heartbeat.interval.ms 3 --
group.share.max.partition.max.record.locks 3 -- | group.share.max.record.lock.duration.ms 3 --
group.share.max.session.timeout.ms 3 -- | group.share.max.share.sessions 3 -- | group.share.max.size 3 --
group.share.min.assignment.interval.ms 3 -- | group.share.min.delivery.count.limit 3 --
group.share.min.heartbeat.interval.ms 3 -- | group.share.min.partition.max.record.locks 3 --
group.share.min.record.lock.duration.ms 3 -- | group.share.min.session.timeout.ms 3 --
group.share.partition.max.record.locks 3 -- | group.share.record.lock.duration.ms 3 -- | group.share.session.timeout.ms 3 --
group.streams.assignment.interval.ms 3 D- | group.streams.assignors 7 -- | group.streams.heartbeat.interval.ms 3 --
group.streams.initial.rebalance.delay.ms 3 -- | group.streams.max.assignment.interval.ms 3 --
group.streams.max.heartbeat.interval.ms 3 -- | group.streams.max.session.timeout.ms 3 -- | group.streams.max.size 3 --
group.streams.max.standby.replicas 3 -- | group.streams.min.assignment.interval.ms 3 --
group.streams.min.heartbeat.interval.ms 3 -- | group.streams.min.session.timeout.ms 3 --
group.streams.num.standby.replicas 3 -- | group.streams.rack.aware.assignment.tags 7 -- | group.streams.session.timeout.ms 3 --
group.streams.topology.description.plugin.class 8 -- | initial.broker.registration.timeout.ms 3 --
inter.broker.listener.name 2 -- | kafka.metrics.polling.interval.secs 3 -- | kafka.metrics.reporters 7 --
leader.imbalance.check.interval.seconds 5 -- | listener.security.protocol.map 2 D- | listeners 7 D-
log.cleaner.backoff.ms 5 D- | log.cleaner.dedupe.buffer.size 5 D- | log.cleaner.delete.retention.ms 5 D-
log.cleaner.enable 1 -- | log.cleaner.io.buffer.load.factor 6 D- | log.cleaner.io.buffer.size 3 D-
log.cleaner.io.max.bytes.per.second 6 D- | log.cleaner.max.compaction.lag.ms 5 D- | log.cleaner.min.cleanable.ratio 6 D-
log.cleaner.min.compaction.lag.ms 5 D- | log.cleaner.threads 3 D- | log.cleanup.policy 7 D- | log.dir 7 --
log.dir.failure.timeout.ms 5 -- | log.dirs 7 -- | log.flush.interval.messages 5 D- | log.flush.interval.ms 5 D-
log.flush.offset.checkpoint.interval.ms 3 -- | log.flush.scheduler.interval.ms 5 --
log.flush.start.offset.checkpoint.interval.ms 3 -- | log.index.interval.bytes 3 D- | log.index.size.max.bytes 3 D-
log.local.retention.bytes 5 D- | log.local.retention.ms 5 D- | log.message.timestamp.after.max.ms 5 D-
log.message.timestamp.before.max.ms 5 D- | log.message.timestamp.type 2 D- | log.preallocate 1 D-
log.remote.copy.lag.bytes 5 D- | log.remote.copy.lag.ms 5 D- | log.retention.bytes 5 D- | log.retention.check.interval.ms 5 --
log.retention.hours 3 -- | log.retention.minutes 3 -- | log.retention.ms 5 D- | log.roll.hours 3 --
log.roll.jitter.hours 3 -- | log.roll.jitter.ms 5 D- | log.roll.ms 5 D- | log.segment.bytes 3 D-
log.segment.delete.delay.ms 5 D- | max.connection.creation.rate 3 D- | max.connections 3 D- | max.connections.per.ip 3 D-
max.connections.per.ip.overrides 2 D- | max.decompressed.message.bytes 3 D- | max.incremental.fetch.session.cache.slots 3 --
max.request.partition.size.limit 3 -- | message.max.bytes 3 D- | metadata.log.dir 2 --
metadata.log.max.record.bytes.between.snapshots 5 -- | metadata.log.max.snapshot.interval.ms 5 --
metadata.log.segment.bytes 3 -- | metadata.log.segment.ms 5 -- | metadata.max.idle.interval.ms 3 --
metadata.max.retention.bytes 5 -- | metadata.max.retention.ms 5 -- | metric.reporters 7 D- | metrics.num.samples 3 --
metrics.recording.level 2 -- | metrics.sample.window.ms 5 -- | min.insync.replicas 3 D- | node.id 3 -- | num.io.threads 3 D-
num.network.threads 3 D- | num.partitions 3 -- | num.recovery.threads.per.data.dir 3 D-
num.replica.alter.log.dirs.threads 3 -- | num.replica.fetchers 3 D- | offset.metadata.max.bytes 3 --
offsets.commit.timeout.ms 3 -- | offsets.load.buffer.size 3 -- | offsets.retention.check.interval.ms 5 --
offsets.retention.minutes 3 -- | offsets.topic.compression.codec 3 -- | offsets.topic.num.partitions 3 --
offsets.topic.replication.factor 4 -- | offsets.topic.segment.bytes 3 -- | principal.builder.class 8 D- | process.roles 7 --
producer.id.expiration.ms 3 D- | producer.purgatory.purge.interval.requests 3 -- | queued.max.request.bytes 5 --
queued.max.requests 3 -- | quota.window.num 3 -- | quota.window.size.seconds 3 -- | remote.fetch.max.wait.ms 3 D-
remote.list.offsets.request.timeout.ms 5 D- | remote.log.index.file.cache.total.size.bytes 5 D-
remote.log.manager.copier.thread.pool.size 3 D- | remote.log.manager.copy.max.bytes.per.second 5 D-
remote.log.manager.copy.quota.window.num 3 -- | remote.log.manager.copy.quota.window.size.seconds 3 --
remote.log.manager.expiration.thread.pool.size 3 D- | remote.log.manager.fetch.max.bytes.per.second 5 D-
remote.log.manager.fetch.quota.window.num 3 -- | remote.log.manager.fetch.quota.window.size.seconds 3 --
remote.log.manager.follower.thread.pool.size 3 D- | remote.log.manager.task.interval.ms 5 --
remote.log.manager.thread.pool.size 3 -- | remote.log.metadata.custom.metadata.max.bytes 3 --
remote.log.metadata.manager.class.name 2 -- | remote.log.metadata.manager.class.path 2 --
remote.log.metadata.manager.impl.prefix 2 -- | remote.log.metadata.manager.listener.name 2 --
remote.log.reader.max.pending.tasks 3 -- | remote.log.reader.threads 3 D- | remote.log.storage.manager.class.name 2 --
remote.log.storage.manager.class.path 2 -- | remote.log.storage.manager.impl.prefix 2 --
remote.log.storage.system.enable 1 -- | replica.fetch.backoff.ms 3 -- | replica.fetch.max.bytes 3 --
replica.fetch.min.bytes 3 -- | replica.fetch.response.max.bytes 3 -- | replica.fetch.wait.max.ms 3 --
replica.high.watermark.checkpoint.interval.ms 5 -- | replica.lag.time.max.ms 5 -- | replica.selector.class 2 --
replica.socket.receive.buffer.bytes 3 -- | replica.socket.timeout.ms 3 -- | replication.quota.window.num 3 --
replication.quota.window.size.seconds 3 -- | request.timeout.ms 3 -- | sasl.client.callback.handler.class 8 --
sasl.enabled.mechanisms 7 D- | sasl.jaas.config 9 DS | sasl.kerberos.kinit.cmd 2 D-
sasl.kerberos.min.time.before.relogin 5 D- | sasl.kerberos.principal.to.local.rules 7 D- | sasl.kerberos.service.name 2 D-
sasl.kerberos.ticket.renew.jitter 6 D- | sasl.kerberos.ticket.renew.window.factor 6 D- | sasl.login.callback.handler.class 8 --
sasl.login.class 8 -- | sasl.login.connect.timeout.ms 3 -- | sasl.login.read.timeout.ms 3 --
sasl.login.refresh.buffer.seconds 4 D- | sasl.login.refresh.min.period.seconds 4 D- | sasl.login.refresh.window.factor 6 D-
sasl.login.refresh.window.jitter 6 D- | sasl.login.retry.backoff.max.ms 5 -- | sasl.login.retry.backoff.ms 5 --
sasl.mechanism.controller.protocol 2 -- | sasl.mechanism.inter.broker.protocol 2 D-
sasl.oauthbearer.allow.unverified.audience 1 -- | sasl.oauthbearer.allow.unverified.issuer 1 --
sasl.oauthbearer.assertion.algorithm 2 -- | sasl.oauthbearer.assertion.claim.aud 2 --
sasl.oauthbearer.assertion.claim.exp.seconds 3 -- | sasl.oauthbearer.assertion.claim.iss 2 --
sasl.oauthbearer.assertion.claim.jti.include 1 -- | sasl.oauthbearer.assertion.claim.nbf.seconds 3 --
sasl.oauthbearer.assertion.claim.sub 2 -- | sasl.oauthbearer.assertion.file 2 --
sasl.oauthbearer.assertion.private.key.file 2 -- | sasl.oauthbearer.assertion.private.key.passphrase 9 -S
sasl.oauthbearer.assertion.template.file 2 -- | sasl.oauthbearer.client.credentials.client.id 2 --
sasl.oauthbearer.client.credentials.client.secret 9 -S | sasl.oauthbearer.clock.skew.seconds 3 --
sasl.oauthbearer.expected.audience 7 -- | sasl.oauthbearer.expected.issuer 2 --
sasl.oauthbearer.jwks.endpoint.refresh.ms 5 -- | sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms 5 --
sasl.oauthbearer.jwks.endpoint.retry.backoff.ms 5 -- | sasl.oauthbearer.jwks.endpoint.url 2 --
sasl.oauthbearer.jwt.retriever.class 8 -- | sasl.oauthbearer.jwt.validator.class 8 -- | sasl.oauthbearer.scope 2 --
sasl.oauthbearer.scope.claim.name 2 -- | sasl.oauthbearer.sub.claim.name 2 -- | sasl.oauthbearer.token.endpoint.url 2 --
sasl.server.callback.handler.class 8 -- | sasl.server.max.receive.size 3 -- | security.inter.broker.protocol 2 --
security.providers 2 -- | share.coordinator.append.linger.ms 3 -- | share.coordinator.cached.buffer.max.bytes 3 D-
share.coordinator.load.buffer.size 3 -- | share.coordinator.snapshot.update.records.per.snapshot 3 --
share.coordinator.state.topic.compression.codec 3 -- | share.coordinator.state.topic.min.isr 4 --
share.coordinator.state.topic.num.partitions 3 -- | share.coordinator.state.topic.replication.factor 4 --
share.coordinator.state.topic.segment.bytes 3 -- | share.coordinator.threads 3 -- | share.coordinator.write.timeout.ms 3 --
share.fetch.purgatory.purge.interval.requests 3 -- | socket.connection.setup.timeout.max.ms 5 --
socket.connection.setup.timeout.ms 5 -- | socket.listen.backlog.size 3 -- | socket.receive.buffer.bytes 3 --
socket.request.max.bytes 3 -- | socket.send.buffer.bytes 3 -- | ssl.allow.dn.changes 1 -- | ssl.allow.san.changes 1 --
ssl.cipher.suites 7 D- | ssl.client.auth 2 D- | ssl.enabled.protocols 7 D- | ssl.endpoint.identification.algorithm 2 D-
ssl.engine.factory.class 8 D- | ssl.key.password 9 DS | ssl.keymanager.algorithm 2 D- | ssl.keystore.certificate.chain 9 DS
ssl.keystore.key 9 DS | ssl.keystore.location 2 D- | ssl.keystore.password 9 DS | ssl.keystore.type 2 D-
ssl.principal.mapping.rules 2 -- | ssl.protocol 2 D- | ssl.provider 2 D- | ssl.secure.random.implementation 2 D-
ssl.trustmanager.algorithm 2 D- | ssl.truststore.certificates 9 DS | ssl.truststore.location 2 D-
ssl.truststore.password 9 DS | ssl.truststore.type 2 D- | telemetry.max.bytes 3 --
transaction.abort.timed.out.transaction.cleanup.interval.ms 3 -- | transaction.max.timeout.ms 3 --
transaction.partition.verification.enable 1 D- | transaction.remove.expired.transaction.cleanup.interval.ms 3 --
transaction.state.log.load.buffer.size 3 -- | transaction.state.log.min.isr 3 -- | transaction.state.log.num.partitions 3 --
transaction.state.log.replication.factor 4 -- | transaction.state.log.segment.bytes 3 --
transaction.two.phase.commit.enable 1 -- | transactional.id.expiration.ms 3 -- | unclean.leader.election.enable 1 D-
"""
KAFKA = {
    name: (int(config_type), "D" in flags, "S" in flags)
    for entry in KAFKA_4_4_BROKER_CONFIGS.replace("\n", " | ").split(" | ")
    if entry.strip()
    for name, config_type, flags in [entry.split()]
}
# Ottla's own settings, which Kafka does not have, described beside Kafka's.
OTTLA_ONLY = {"host", "port", "data.dir", "advertised.host", "cluster.id", "producer.id.expiration.check.interval.ms",
              "http.host", "http.port", "console.schema.registry.url"}
# Kafka changes its listeners at run time; Ottla cannot rebind its one listener.
READ_ONLY_IN_OTTLA = {"listeners"}

NODE = Listening(9092, "127.0.0.1")


def _describe(bootstrap: str, resource_type: int, name: str, keys: list[str] | None = None) -> dict[str, dict[str, Any]]:
    body = {"resources": [{"resource_type": resource_type, "resource_name": name, "configuration_keys": keys}],
            "include_synonyms": True, "include_documentation": True}
    with KafkaClient(bootstrap) as client:
        _, response = client.call(ApiKey.DESCRIBE_CONFIGS, body)
    (result,) = response["results"]
    assert result["error_code"] == 0, result["error_message"]
    return {entry["name"]: entry for entry in result["configs"]}


def _alter(bootstrap: str, resource_type: int, name: str, operations: list[tuple[str, int, str | None]], validate_only: bool = False) -> tuple[int, str | None]:
    configs = [{"name": key, "config_operation": op, "value": value} for key, op, value in operations]
    body = {"resources": [{"resource_type": resource_type, "resource_name": name, "configs": configs}], "validate_only": validate_only}
    with KafkaClient(bootstrap) as client:
        _, response = client.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, body)
    (result,) = response["responses"]
    return result["error_code"], result["error_message"]


def _synonyms(entry: dict[str, Any]) -> list[tuple[str, str | None, int]]:
    return [(s["name"], s["value"], s["source"]) for s in entry["synonyms"]]


BROKER, BROKER_LOGGER, SET, DELETE, APPEND = 4, 8, 0, 1, 2


def test_every_config_kafka_4_4_lists_is_described_with_its_type_and_flags():
    with running_broker(data_dir=None) as broker:
        bootstrap = broker.bootstrap_servers
        described = _describe(bootstrap, BROKER, "1")
    assert set(described) - set(KAFKA) == OTTLA_ONLY
    assert set(KAFKA) <= set(described)
    for name, (config_type, dynamic, sensitive) in KAFKA.items():
        entry = described[name]
        assert (entry["config_type"], entry["is_sensitive"]) == (config_type, sensitive), name
        assert entry["read_only"] == (not dynamic or name in READ_ONLY_IN_OTTLA), name
        assert entry["documentation"], name
        if sensitive:
            assert entry["value"] is None and all(s["value"] is None for s in entry["synonyms"]), name
    assert described["listeners"]["value"] == described["advertised.listeners"]["value"] == f"PLAINTEXT://{bootstrap}"
    assert described["num.io.threads"]["value"] == "8"
    # Doubles as Java's Double.toString writes them, and broker.id's default as Kafka's.
    assert described["log.cleaner.io.max.bytes.per.second"]["value"] == "1.7976931348623157E308"
    assert _synonyms(described["broker.id"]) == [("broker.id", "-1", DEFAULT_CONFIG)]
    assert "no effect on a single Ottla node" in described["num.io.threads"]["documentation"]


def test_kafkas_settings_ottla_only_accepts_are_not_its_own():
    assert not inert_keys().keys() & SETTINGS.keys()


def test_dynamic_configs_take_precedence_and_list_their_synonyms_as_kafka_does():
    """Kafka 4.4's answers for the same sequence (ConfigHelper.configSynonyms): node, cluster
    default, static, default, from the key's own name on."""
    configs = BrokerConfigs(BrokerConfig.from_settings({"log.retention.hours": "24"}), None)
    configs.replace(True, {"log.retention.ms": "7200000"}, validate_only=False)
    configs.replace(False, {"log.retention.ms": "3600000"}, validate_only=False)
    (entry,) = [e for e in configs.describe(True, NODE) if e.name == "log.retention.ms"]
    assert (entry.value, entry.source, entry.read_only) == ("7200000", DYNAMIC_BROKER_CONFIG, False)
    assert [(s.name, s.value, s.source) for s in entry.synonyms] == [
        ("log.retention.ms", "7200000", DYNAMIC_BROKER_CONFIG),
        ("log.retention.ms", "3600000", DYNAMIC_DEFAULT_BROKER_CONFIG),
        ("log.retention.hours", "24", STATIC_BROKER_CONFIG),
        ("log.retention.hours", "168", DEFAULT_CONFIG),
    ]
    (default,) = configs.describe(False, NODE)
    assert (default.name, default.value, default.source) == ("log.retention.ms", "3600000", DYNAMIC_DEFAULT_BROKER_CONFIG)
    # The cluster default lists its own synonyms only (ConfigHelper.createBrokerConfigEntry).
    assert [s.source for s in default.synonyms] == [DYNAMIC_DEFAULT_BROKER_CONFIG]
    assert configs.config.log_retention_ms == 7200000
    assert configs.topic_defaults()["retention.ms"] == "7200000"
    configs.replace(True, {}, validate_only=False)
    assert configs.config.log_retention_ms == 3600000
    (hours,) = [e for e in configs.describe(True, NODE) if e.name == "log.retention.hours"]
    assert (hours.value, hours.source, hours.read_only) == ("24", STATIC_BROKER_CONFIG, True)


def test_read_only_keys_and_bad_values_are_refused_with_kafkas_errors():
    with running_broker(data_dir=None) as broker:
        bootstrap = broker.bootstrap_servers
        assert _alter(bootstrap, BROKER, "1", [("log.retention.hours", SET, "10")]) == (42, "Cannot update these configs dynamically: [log.retention.hours]")
        assert _alter(bootstrap, BROKER, "", [("num.partitions", SET, "3")]) == (42, "Cannot update these configs dynamically: [num.partitions]")
        assert _alter(bootstrap, BROKER, "1", [("listeners", SET, "PLAINTEXT://127.0.0.1:1")])[0] == 42
        assert _alter(bootstrap, BROKER, "1", [("message.max.bytes", SET, "abc")]) == (
            42, "Invalid value abc for configuration message.max.bytes: Not a number of type INT")
        assert _alter(bootstrap, BROKER, "1", [("log.retention.ms", APPEND, "5")]) == (
            40, "Config value append is not allowed for config key: log.retention.ms")
        assert _alter(bootstrap, BROKER, "2", [("message.max.bytes", SET, "2000")]) == (42, "Unexpected broker id, expected 1, but received 2")
        assert _alter(bootstrap, BROKER, "1", [("ssl.keystore.password", SET, "x")])[0] == 42
        assert _alter(bootstrap, BROKER, "1", [("message.max.bytes", SET, "2000")], validate_only=True) == (0, None)
        # Nothing was applied: the cluster default has only the min.insync.replicas a new cluster keeps under ELR.
        assert set(_describe(bootstrap, BROKER, "")) == {"min.insync.replicas"}
        assert _describe(bootstrap, BROKER, "1", ["message.max.bytes"])["message.max.bytes"]["config_source"] == DEFAULT_CONFIG


def test_dynamic_configs_apply_without_restart_and_survive_one(tmp_path):
    with running_broker(data_dir=tmp_path, message_max_bytes=4096) as broker:
        bootstrap = broker.bootstrap_servers
        broker.create_topic("dyn")
        broker.create_topic("dyn-own", max_message_bytes=4096)
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1, max_request_size=100_000)
        try:
            with pytest.raises(MessageSizeTooLargeError):
                producer.send("dyn", b"x" * 10_000, partition=0).get(timeout=10)
            assert _alter(bootstrap, BROKER, "", [("message.max.bytes", SET, "20000"), ("log.retention.ms", SET, "3600000")]) == (0, None)
            # A topic without its own override takes the new default at once; one with it keeps its own.
            producer.send("dyn", b"x" * 10_000, partition=0).get(timeout=10)
            with pytest.raises(MessageSizeTooLargeError):
                producer.send("dyn-own", b"x" * 10_000, partition=0).get(timeout=10)
        finally:
            producer.close()
        topic = _describe(bootstrap, 2, "dyn", ["max.message.bytes", "retention.ms"])
        assert (topic["max.message.bytes"]["value"], topic["max.message.bytes"]["config_source"]) == ("20000", DYNAMIC_DEFAULT_BROKER_CONFIG)
        assert _synonyms(topic["max.message.bytes"]) == [
            ("message.max.bytes", "20000", DYNAMIC_DEFAULT_BROKER_CONFIG),
            ("message.max.bytes", "4096", STATIC_BROKER_CONFIG),
            ("message.max.bytes", "1048588", DEFAULT_CONFIG),
        ]
        assert topic["retention.ms"]["value"] == "3600000"
        assert _alter(bootstrap, BROKER, "1", [("message.max.bytes", SET, "30000")]) == (0, None)
        assert (tmp_path / FILE_NAME).exists()
        broker.restart()
        described = _describe(bootstrap, BROKER, "1", ["message.max.bytes"])["message.max.bytes"]
        assert (described["value"], described["config_source"]) == ("30000", DYNAMIC_BROKER_CONFIG)
        assert _synonyms(described)[:2] == [("message.max.bytes", "30000", DYNAMIC_BROKER_CONFIG),
                                             ("message.max.bytes", "20000", DYNAMIC_DEFAULT_BROKER_CONFIG)]
        assert set(_describe(bootstrap, BROKER, "")) == {"message.max.bytes", "log.retention.ms", "min.insync.replicas"}
        # DELETE returns the key to the cluster default, then to the static setting.
        assert _alter(bootstrap, BROKER, "1", [("message.max.bytes", DELETE, None)]) == (0, None)
        assert _alter(bootstrap, BROKER, "", [("message.max.bytes", DELETE, None)]) == (0, None)
        described = _describe(bootstrap, BROKER, "1", ["message.max.bytes"])["message.max.bytes"]
        assert (described["value"], described["config_source"]) == ("4096", STATIC_BROKER_CONFIG)


def test_a_sensitive_value_is_never_returned_nor_logged(caplog):
    secret = "org.apache.kafka.common.security.plain.PlainLoginModule required password=\"hunter2\";"
    with caplog.at_level(logging.DEBUG, logger="ottla"), running_broker(data_dir=None) as broker:
        bootstrap = broker.bootstrap_servers
        assert _alter(bootstrap, BROKER, "1", [("sasl.jaas.config", SET, secret)]) == (0, None)
        entry = _describe(bootstrap, BROKER, "1", ["sasl.jaas.config"])["sasl.jaas.config"]
        default = _describe(bootstrap, BROKER, "1")
    assert (entry["value"], entry["is_sensitive"], entry["config_source"]) == (None, True, DYNAMIC_BROKER_CONFIG)
    assert _synonyms(entry) == [("sasl.jaas.config", None, DYNAMIC_BROKER_CONFIG)]
    assert "hunter2" not in repr(default)
    assert not [record for record in caplog.records if "hunter2" in record.getMessage()]
    assert [r.getMessage() for r in caplog.records if r.name == "ottla.broker_configs"] == [
        "dynamic broker configs cluster default: min.insync.replicas", "dynamic broker configs of this node: sasl.jaas.config"]


def test_broker_loggers_are_listed_and_changed_at_run_time(caplog):
    with running_broker(data_dir=None) as broker:
        bootstrap = broker.bootstrap_servers
        loggers = _describe(bootstrap, BROKER_LOGGER, "1")
        assert {"root", "ottla.broker", "ottla.connection"} <= set(loggers)
        assert all(name == "root" or name.startswith("ottla") for name in loggers)
        assert loggers["ottla.connection"]["config_source"] == 6 and not loggers["ottla.connection"]["read_only"]
        before = logging.getLogger("ottla.connection").level
        try:
            assert _alter(bootstrap, BROKER_LOGGER, "1", [("ottla.connection", SET, "TRACE")]) == (0, None)
            assert logging.getLogger("ottla.connection").getEffectiveLevel() < logging.DEBUG
            assert _describe(bootstrap, BROKER_LOGGER, "1", ["ottla.connection"])["ottla.connection"]["value"] == "TRACE"
            assert _alter(bootstrap, BROKER_LOGGER, "1", [("ottla.connection", SET, "LOUD")])[0] == 40
            assert _alter(bootstrap, BROKER_LOGGER, "1", [("no.such.logger", SET, "DEBUG")]) == (40, "Logger no.such.logger does not exist!")
            assert _alter(bootstrap, BROKER_LOGGER, "1", [("root", DELETE, None)]) == (
                42, "Removing the log level of the root logger is not allowed")
            assert _alter(bootstrap, BROKER_LOGGER, "1", [("ottla.connection", DELETE, None)]) == (0, None)
            assert logging.getLogger("ottla.connection").level == logging.NOTSET
        finally:
            logging.getLogger("ottla.connection").setLevel(before)
