"""TxnOffsetCommit meets the group's `__consumer_offsets` partition before the transaction's
coordinator, as Kafka 4.4's UnifiedLog.maybeStartTransactionVerification does, keyed by the
producer id whatever transactional id the request names: an epoch below the producer's
there is INVALID_PRODUCER_EPOCH; a transaction of the producer at that epoch already open
there is not asked about (NONE, even under another transactional id); otherwise the
coordinator answers (an unknown transactional id: INVALID_PRODUCER_ID_MAPPING). Answers
confirmed on Kafka 4.4."""

from __future__ import annotations

from txn_wire import TxnClient

from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode


def test_the_offsets_partition_answers_for_its_producer_first() -> None:
    with running_broker(data_dir=None) as broker, TxnClient(broker.bootstrap_servers, "t") as client:
        broker.create_topic("t", partitions=1)
        client.init("txn")
        producer_id, epoch = client.init("txn")  # epoch 1: one below it is a real epoch

        def commit(transactional_id: str, producer_epoch: int) -> int:
            answer = client.call(ApiKey.TXN_OFFSET_COMMIT, 3, {
                "transactional_id": transactional_id, "group_id": "g", "producer_id": producer_id, "producer_epoch": producer_epoch,
                "generation_id": -1, "member_id": "", "group_instance_id": None, "topics": [{"name": "t", "partitions": [
                    {"partition_index": 0, "committed_offset": 1, "committed_leader_epoch": -1, "committed_metadata": ""}]}]})
            return int(answer["topics"][0]["partitions"][0]["error_code"])

        added = client.call(ApiKey.ADD_OFFSETS_TO_TXN, 3, {"transactional_id": "txn", "producer_id": producer_id,
                                                           "producer_epoch": epoch, "group_id": "g"})
        assert added["error_code"] == ErrorCode.NONE
        assert commit("other", epoch) == ErrorCode.INVALID_PRODUCER_ID_MAPPING  # nothing open in the partition yet
        assert commit("txn", epoch) == ErrorCode.NONE
        assert [commit("other", epoch + delta) for delta in (-1, 0, 1)] == [
            ErrorCode.INVALID_PRODUCER_EPOCH, ErrorCode.NONE, ErrorCode.INVALID_PRODUCER_ID_MAPPING]
