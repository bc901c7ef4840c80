"""The differential fuzzer's --cluster mode masks the active controller's id in messages: a
Kafka cluster elects its controller at random, Ottla's is node 1, and UpdateFeatures names it."""

from __future__ import annotations

from compat.fuzz_differential import Names, Peer, mask_message


def test_the_controller_named_by_update_features_is_masked() -> None:
    names = Names("t")
    ottla = Peer.of("Ottla", "127.0.0.1:41001,127.0.0.1:41002,127.0.0.1:41003")
    kafka = Peer.of("Kafka", "127.0.0.1:52001,127.0.0.1:52002,127.0.0.1:52003")
    refused = "Invalid update version 20 for feature group.version. Local controller {} only supports versions 0-1"
    assert mask_message(refused.format(1), ottla, names) == mask_message(refused.format(3), kafka, names) == refused.format("<controller>")
