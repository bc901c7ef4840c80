"""A transactional producer in raw requests over one socket, for tests that pin what a
partition answers a transactional batch: the sequence, the Produce version (12+: transaction
version 2) and the partition are the test's."""

from __future__ import annotations

import socket
import time
from typing import Any

from compat.sockets import read_frame
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.protocol import decode_response, encode_request
from ottla.wire.records import Record, build_batch


class TxnClient:
    def __init__(self, bootstrap: str, topic: str) -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        self.topic = topic
        self.correlation_id = 0

    def __enter__(self) -> "TxnClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def call(self, api: ApiKey, version: int, body: dict[str, Any]) -> dict[str, Any]:
        self.correlation_id += 1
        self.sock.sendall(encode_request(api, version, self.correlation_id, body, client_id="txn-wire"))
        frame = read_frame(self.sock)
        assert frame is not None, f"{api.name} v{version}: the broker closed the connection"
        return decode_response(api, version, frame)[1]

    def init(self, transactional_id: str) -> tuple[int, int]:
        """InitProducerId, asked again while the coordinator loads (a broker just started), as
        a client asks again on that retriable answer."""
        deadline = time.monotonic() + 30
        while True:
            answer = self.call(ApiKey.INIT_PRODUCER_ID, 5, {"transactional_id": transactional_id, "transaction_timeout_ms": 60000,
                                                            "producer_id": -1, "producer_epoch": -1})
            if answer["error_code"] != ErrorCode.COORDINATOR_LOAD_IN_PROGRESS or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert answer["error_code"] == ErrorCode.NONE, answer
        return answer["producer_id"], answer["producer_epoch"]

    def add_partition(self, transactional_id: str, producer_id: int, epoch: int, partition: int) -> ErrorCode:
        """AddPartitionsToTxn v3, as a transaction version 1 client sends it."""
        answer = self.call(ApiKey.ADD_PARTITIONS_TO_TXN, 3, {"v3_and_below_transactional_id": transactional_id,
                                                             "v3_and_below_producer_id": producer_id, "v3_and_below_producer_epoch": epoch,
                                                             "v3_and_below_topics": [{"name": self.topic, "partitions": [partition]}]})
        return ErrorCode(answer["results_by_topic_v3_and_below"][0]["results_by_partition"][0]["partition_error_code"])

    def produce(self, version: int, transactional_id: str, producer_id: int, epoch: int, sequence: int, partition: int = 0) -> ErrorCode:
        batch = build_batch([Record(0, 1_700_000_000_000, b"k", b"v")], producer_id=producer_id, producer_epoch=epoch,
                            base_sequence=sequence, transactional=True)
        response = self.call(ApiKey.PRODUCE, version, {"acks": -1, "timeout_ms": 5000, "transactional_id": transactional_id, "topic_data": [
            {"name": self.topic, "partition_data": [{"index": partition, "records": batch}]}]})
        return ErrorCode(response["responses"][0]["partition_responses"][0]["error_code"])
