"""Kafka's own words for an error answered without any: every code Ottla knows has them (NONE
none), as Kafka 4.4's Errors enum defines them."""

from ottla.wire.errors import ErrorCode, default_message


def test_every_error_code_has_kafkas_default_words() -> None:
    assert default_message(ErrorCode.NONE) is None
    assert [code for code in ErrorCode if code is not ErrorCode.NONE and not default_message(code)] == []
    assert default_message(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION) == "This server does not host this topic-partition."
    assert default_message(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS) == "The coordinator is loading and hence can't process requests."
