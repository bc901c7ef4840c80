"""Transaction version 2 (KIP-890 part 2) over a real socket in raw requests: what the Java
client 4.4 relies on once transaction.version 2 is finalized. Every answer here is the one the
reference Kafka 4.4 gives (compat.differential's transaction-v2-walk compares them live)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kafka_wire import WireClient
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.records import Record, build_batch, scan_batches

TOPIC = "tv2"


class Client(WireClient):
    def __init__(self, bootstrap: str) -> None:
        super().__init__(bootstrap, client_id="tv2-test")

    def init(self, transactional_id: str) -> tuple[int, int]:
        answer = self.call(ApiKey.INIT_PRODUCER_ID, 5, {"transactional_id": transactional_id, "transaction_timeout_ms": 60000,
                                                        "producer_id": -1, "producer_epoch": -1})
        assert answer["error_code"] == ErrorCode.NONE
        return answer["producer_id"], answer["producer_epoch"]

    def produce(self, version: int, transactional_id: str, producer_id: int, epoch: int, sequence: int) -> ErrorCode:
        batch = build_batch([Record(0, 1_700_000_000_000, b"k", b"v")], producer_id=producer_id, producer_epoch=epoch,
                            base_sequence=sequence, transactional=True)
        response = self.call(ApiKey.PRODUCE, version, {"acks": -1, "timeout_ms": 5000, "transactional_id": transactional_id, "topic_data": [
            {"name": TOPIC, "partition_data": [{"index": 0, "records": batch}]}]})
        return ErrorCode(response["responses"][0]["partition_responses"][0]["error_code"])

    def end(self, version: int, transactional_id: str, producer_id: int, epoch: int, commit: bool) -> tuple[ErrorCode, int]:
        answer = self.call(ApiKey.END_TXN, version, {"transactional_id": transactional_id, "producer_id": producer_id,
                                                      "producer_epoch": epoch, "committed": commit})
        return ErrorCode(answer["error_code"]), answer.get("producer_epoch", -1)

    def batch_epochs(self) -> list[tuple[int, bool]]:
        """(producer epoch, is a marker) of every batch in the partition."""
        out: list[tuple[int, bool]] = []
        offset, end = 0, 1
        while offset < end:
            response = self.call(ApiKey.FETCH, 11, {
                "replica_id": -1, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 1 << 20, "isolation_level": 0, "session_id": 0,
                "session_epoch": -1, "rack_id": "", "forgotten_topics_data": [],
                "topics": [{"topic": TOPIC, "partitions": [{"partition": 0, "current_leader_epoch": -1, "fetch_offset": offset,
                                                             "last_fetched_epoch": -1, "log_start_offset": -1, "partition_max_bytes": 1 << 20}]}]})
            partition = response["responses"][0]["partitions"][0]
            end = partition["high_watermark"]
            for header, _ in scan_batches(partition["records"] or b""):
                out.append((header.producer_epoch, header.is_control))
                offset = header.next_offset
        return out


def test_every_end_bumps_the_epoch_and_the_old_epoch_is_fenced() -> None:
    with running_broker(data_dir=None) as broker:
        broker.create_topic(TOPIC, 1)
        client = Client(broker.bootstrap_servers)
        try:
            features = client.call(ApiKey.API_VERSIONS, 4, {"client_software_name": "t", "client_software_version": "1"})
            assert {"name": "transaction.version", "max_version_level": 2, "min_version_level": 2} in features["finalized_features"]
            producer_id, first = client.init("tx")
            epoch = first
            for round_ in range(3):
                # Produce v12 adds the partition itself: no AddPartitionsToTxn.
                assert client.produce(12, "tx", producer_id, epoch, 0) is ErrorCode.NONE
                assert client.end(5, "tx", producer_id, epoch, commit=round_ != 1) == (ErrorCode.NONE, epoch + 1)
                epoch += 1
            # The markers carry the epoch each end bumped to, so the partition knows the zombie.
            assert client.batch_epochs() == [(first, False), (first + 1, True), (first + 1, False), (first + 2, True),
                                             (first + 2, False), (first + 3, True)]
            assert client.produce(12, "tx", producer_id, first, 1) is ErrorCode.INVALID_PRODUCER_EPOCH
            assert client.end(5, "tx", producer_id, first, commit=True) == (ErrorCode.PRODUCER_FENCED, -1)
            assert client.end(1, "tx", producer_id, first, commit=True)[0] is ErrorCode.INVALID_PRODUCER_EPOCH  # KIP-588
            # A retry names the epoch one below the current one and gets the same answer again.
            assert client.end(5, "tx", producer_id, epoch - 1, commit=True) == (ErrorCode.NONE, epoch)
        finally:
            client.close()


def test_a_directory_kept_at_level_0_refuses_version_2_requests_until_upgraded(tmp_path: Path) -> None:
    """An older data directory keeps transaction.version 0; UpdateFeatures raises it at run time."""
    (tmp_path / "finalized-features.json").write_text(json.dumps({"epoch": 0, "levels": {"transaction.version": 0}}))
    with running_broker(data_dir=tmp_path) as broker:
        broker.create_topic(TOPIC, 1)
        client = Client(broker.bootstrap_servers)
        try:
            producer_id, epoch = client.init("old")
            assert client.produce(12, "old", producer_id, epoch, 0) is ErrorCode.UNSUPPORTED_VERSION
            assert client.end(5, "old", producer_id, epoch, commit=False)[0] is ErrorCode.UNSUPPORTED_VERSION
            upgraded = client.call(ApiKey.UPDATE_FEATURES, 1, {"timeout_ms": 5000, "validate_only": False, "feature_updates": [
                {"feature": "transaction.version", "max_version_level": 2, "upgrade_type": 1, "allow_downgrade": False}]})
            assert upgraded["error_code"] == ErrorCode.NONE
            assert client.produce(12, "old", producer_id, epoch, 0) is ErrorCode.NONE
            assert client.end(5, "old", producer_id, epoch, commit=True) == (ErrorCode.NONE, epoch + 1)
        finally:
            client.close()


def test_txn_offset_commit_v6_names_topics_by_id() -> None:
    """KIP-1319. Unknown topics, ids and partitions are refused before the transaction is looked
    at, in the order Kafka 4.4's response builder lists them (refused first, then the rest)."""
    unknown_id = bytes(range(1, 17))
    with running_broker(data_dir=None) as broker:
        broker.create_topic(TOPIC, 1)
        client = Client(broker.bootstrap_servers)
        try:
            metadata = client.call(ApiKey.METADATA, 12, {"topics": [{"name": TOPIC, "topic_id": bytes(16)}], "allow_auto_topic_creation": False,
                                                         "include_topic_authorized_operations": False})
            topic_id = metadata["topics"][0]["topic_id"]

            def commit(version: int, producer_id: int, epoch: int, topics: list[tuple[str, bytes, list[int]]]) -> list[tuple[Any, list[tuple[int, int]]]]:
                answer = client.call(ApiKey.TXN_OFFSET_COMMIT, version, {
                    "transactional_id": "tx", "group_id": "g", "producer_id": producer_id, "producer_epoch": epoch, "generation_id": -1,
                    "member_id": "", "group_instance_id": None, "topics": [
                        {"name": name, "topic_id": id_, "partitions": [
                            {"partition_index": index, "committed_offset": 1, "committed_leader_epoch": -1, "committed_metadata": ""}
                            for index in indexes]} for name, id_, indexes in topics]})
                return [(t.get("topic_id", t.get("name")), [(p["partition_index"], p["error_code"]) for p in t["partitions"]])
                        for t in answer["topics"]]

            mixed = [(TOPIC, topic_id, [0, 7]), ("missing", unknown_id, [0]), ("", bytes(16), [1])]
            # No producer has this transactional id yet: only the partitions that exist reach that check.
            assert commit(6, 4242, 0, mixed) == [(topic_id, [(7, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION), (0, ErrorCode.INVALID_PRODUCER_ID_MAPPING)]),
                                                 (unknown_id, [(0, ErrorCode.UNKNOWN_TOPIC_ID)]), (bytes(16), [(1, ErrorCode.UNKNOWN_TOPIC_ID)])]
            assert commit(5, 4242, 0, mixed) == [(TOPIC, [(7, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION), (0, ErrorCode.INVALID_PRODUCER_ID_MAPPING)]),
                                                 ("missing", [(0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)]),
                                                 ("", [(1, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)])]
            producer_id, epoch = client.init("tx")
            assert commit(6, producer_id, epoch + 3, [(TOPIC, topic_id, [0]), ("missing", unknown_id, [0])]) == [
                (unknown_id, [(0, ErrorCode.UNKNOWN_TOPIC_ID)]), (topic_id, [(0, ErrorCode.INVALID_PRODUCER_EPOCH)])]
            assert commit(6, producer_id, epoch, [(TOPIC, topic_id, [0])]) == [(topic_id, [(0, ErrorCode.NONE)])]
            assert client.end(5, "tx", producer_id, epoch, commit=True) == (ErrorCode.NONE, epoch + 1)
            fetched = client.call(ApiKey.OFFSET_FETCH, 8, {"groups": [{"group_id": "g", "topics": [{"name": TOPIC, "partition_indexes": [0]}]}],
                                                           "require_stable": True})
            assert fetched["groups"][0]["topics"][0]["partitions"][0]["committed_offset"] == 1
        finally:
            client.close()
