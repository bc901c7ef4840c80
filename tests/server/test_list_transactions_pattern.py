"""ListTransactions v2's TransactionalIdPattern (KIP-1152) as Kafka 4.4's
TransactionStateManager.listTransactionStates applies it (read with `javap -c -p` on the 4.4.0
kafka_2.13 jar): compiled with RE2/J (`com.google.re2j.Pattern`), so lookarounds, backreferences
and repetitions over 1000 are refused though `java.util.regex` and Python's `re` take them; and a
refusal is an InvalidRegularExpression thrown out of the coordinator, answered by
ListTransactionsRequest.getErrorResponse, which names no unknown state filter either. Checked
against the reference Kafka 4.4 over the wire."""

from __future__ import annotations

import pytest
from txn_wire import TxnClient

from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode


def _list(client: TxnClient, pattern: str, states: list[str]) -> dict[str, object]:
    return client.call(ApiKey.LIST_TRANSACTIONS, 2, {"state_filters": states, "producer_id_filters": [], "duration_filter": -1,
                                                     "transactional_id_pattern": pattern})


@pytest.mark.parametrize("pattern", ["(?=t)x-.*", "(t)\\1.*", "a{1001}", "\\C.*", "["])
def test_a_pattern_re2j_refuses_answers_only_the_error(pattern: str) -> None:
    with running_broker(data_dir=None) as broker:
        with TxnClient(broker.bootstrap_servers, "unused") as client:
            client.init("tx-idle")
            answer = _list(client, pattern, ["nonsense", "Empty"])
            assert (answer["error_code"], answer["unknown_state_filters"], answer["transaction_states"]) == (
                ErrorCode.INVALID_REGULAR_EXPRESSION, [], [])


def test_a_valid_pattern_must_match_the_whole_id_and_unknown_states_are_named() -> None:
    with running_broker(data_dir=None) as broker:
        with TxnClient(broker.bootstrap_servers, "unused") as client:
            client.init("tx-idle")
            client.init("other-tx-idle")
            answer = _list(client, "(?i)TX-.*", ["nonsense", "Empty"])
            assert answer["error_code"] == ErrorCode.NONE
            assert answer["unknown_state_filters"] == ["nonsense"]
            assert [t["transactional_id"] for t in answer["transaction_states"]] == ["tx-idle"]
