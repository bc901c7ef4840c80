"""UpdateFeatures refusals that depend on the whole request and on metadata.version's history,
over a real socket to a real broker. Every expected answer is the one the reference Kafka 4.4
gave to the same raw requests (validate-only) on a node formatted at metadata.version 29
(4.2-IV1): FeatureControlManager.updateFeatures checks each update with all of the request's
levels in place, in its HashMap's order, and refuses a metadata.version downgrade only across a
level that changed metadata (MetadataVersion.checkIfMetadataChanged)."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from compat.sockets import read_frame
from ottla.server.features import UpgradeType
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.protocol import decode_response, encode_request

UP, SAFE, UNSAFE = UpgradeType.UPGRADE, UpgradeType.SAFE_DOWNGRADE, UpgradeType.UNSAFE_DOWNGRADE
PREFIX = "The update failed for all features since the following feature had an error: "


def _update(sock: socket.socket, updates: list[tuple[str, int, UpgradeType]]) -> tuple[int, str | None, list[tuple[str, int]]]:
    body = {"timeout_ms": 5000, "validate_only": True, "feature_updates": [
        {"feature": name, "max_version_level": level, "upgrade_type": kind} for name, level, kind in updates]}
    sock.sendall(encode_request(ApiKey.UPDATE_FEATURES, 1, 1, body, client_id="feature-rules"))
    frame = read_frame(sock)
    assert frame is not None
    answer: dict[str, Any] = decode_response(ApiKey.UPDATE_FEATURES, 1, frame)[1]
    return answer["error_code"], answer["error_message"], [(r["feature"], r["error_code"]) for r in answer["results"]]


def _refused(message: str) -> tuple[int, str, list[tuple[str, int]]]:
    return ErrorCode.INVALID_UPDATE_VERSION, PREFIX + message, []


@contextlib.contextmanager
def _connected_at_29(tmp_path: Path) -> Iterator[socket.socket]:
    """A broker whose data directory is finalized as the reference's was, and a socket to it."""
    data = tmp_path / "data"
    data.mkdir()
    levels = {"metadata.version": 29, "group.version": 1, "share.version": 1, "streams.version": 1, "transaction.version": 2}
    (data / "finalized-features.json").write_text(json.dumps({"epoch": 0, "levels": levels}))
    with running_broker(data_dir=str(data)) as broker:
        host, port = broker.bootstrap_servers.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            yield sock


def test_a_feature_level_is_checked_with_the_metadata_version_the_request_asks_for(tmp_path: Path) -> None:
    with _connected_at_29(tmp_path) as sock:
        needs_mv = "Invalid update version 1 for feature {0}. {0} could not be set to 1 because it depends on metadata.version=7 (3.3-IV3)"
        mv_range = "Invalid update version 5 for feature metadata.version. Local controller 1 only supports versions 7-33"
        # A feature's level is checked with the metadata.version the same request asks for;
        # which refusal is reported follows Kafka's HashMap order, not the request's.
        assert _update(sock, [("group.version", 1, UP), ("metadata.version", 5, SAFE)]) == _refused(needs_mv.format("group.version"))
        assert _update(sock, [("metadata.version", 5, SAFE), ("group.version", 1, UP)]) == _refused(needs_mv.format("group.version"))
        assert _update(sock, [("share.version", 1, UP), ("metadata.version", 5, SAFE)]) == _refused(needs_mv.format("share.version"))
        assert _update(sock, [("streams.version", 1, UP), ("metadata.version", 5, SAFE)]) == _refused(mv_range)
        assert _update(sock, [("transaction.version", 1, UP), ("metadata.version", 5, SAFE)]) == _refused(mv_range)
        # A feature named twice takes its last level and upgrade type.
        assert _update(sock, [("group.version", 1, UP), ("group.version", 0, SAFE)]) == (0, None, [("group.version", 0), ("group.version", 0)])


def test_a_metadata_version_downgrade_is_refused_only_across_a_level_that_changed_metadata(tmp_path: Path) -> None:
    with _connected_at_29(tmp_path) as sock:
        # A downgrade across levels that changed no metadata is taken, safe or unsafe.
        assert _update(sock, [("metadata.version", 28, SAFE)]) == (0, None, [("metadata.version", 0)])
        assert _update(sock, [("metadata.version", 24, SAFE)]) == (0, None, [("metadata.version", 0)])
        assert _update(sock, [("metadata.version", 28, UNSAFE)]) == (0, None, [("metadata.version", 0)])
        assert _update(sock, [("group.version", 0, SAFE), ("metadata.version", 28, SAFE)]) == (
            0, None, [("group.version", 0), ("metadata.version", 0)])
        # One across 23 (4.0-IV1) may drop metadata.
        assert _update(sock, [("metadata.version", 22, SAFE)]) == _refused(
            "Unsupported metadata.version downgrade from 29 to 22. Refusing to perform the requested downgrade because it might delete metadata information.")
