"""Finalized features (KIP-584): what ApiVersions v3+ reports and UpdateFeatures changes.

Kafka versions cluster-wide behaviour as named features, each at a level: a broker supports
a range of levels per feature, and the cluster finalizes one level of each (Kafka 4.4's
org.apache.kafka.server.common.Feature; a feature at level 0 is not finalized and is left
out of ApiVersions' finalized list). Clients act on the finalized levels: the Java producer
uses KIP-890's epoch bump only when transaction.version >= 2.

`FEATURES` is the one table of what Ottla supports: a feature's `supported_max` is the
highest level whose promise Ottla keeps today, and new data directories start there. When
a change makes Ottla keep a higher level's promise, raise that entry's `supported_max`.
The finalized levels live in `<data dir>/finalized-features.json` (replaced whole, durably),
with an epoch that grows by one with each change; Kafka reports its metadata log's offset
there, so only its growth is comparable. Over PostgreSQL the levels are the database's, one set
for every broker on it (server/security/database.py): `record_change` then takes each change
instead of the file, and `reset` puts the levels as another broker left them in place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import json
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

from ottla.server.java_hashing import default_capacity, java_order, string_hash
from ottla.storage.files import replace_file
from ottla.wire.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from ottla.wire.messages.types import ApiVersionsResponseFinalizedFeatureKey, ApiVersionsResponseSupportedFeatureKey


@dataclass(slots=True, frozen=True)
class Feature:
    """One feature Ottla knows, its supported levels, and what its highest level promises."""

    name: str
    supported_min: int
    supported_max: int
    promise: str


# metadata.version levels (MetadataVersion.featureLevel) whose client-visible promise an Ottla
# handler checks, answering below the level as Kafka 4.4's controller does (its is...Supported()
# callers). The other levels up to 4.4-IV2 change only KRaft records and inter-broker requests
# (none on one Ottla node) or permit what another feature turns on: 4.0-IV1 lets
# eligible.leader.replicas.version rise (ELR_METADATA_LEVEL), and 4.3-IV0 lets cordoned.log.dirs cordon.
SCRAM_LEVEL = 11  # 3.5-IV2: AlterUserScramCredentials (ScramControlManager.alterCredentials)
DELEGATION_TOKEN_LEVEL = 14  # 3.6-IV2: Create/Renew/ExpireDelegationToken (DelegationTokenControlManager)
CIDR_ACL_LEVEL = 32  # 4.4-IV1: CIDR ranges as ACL hosts (AclControlManager.validateHostPattern)
CONTROLLER_UNREGISTRATION_LEVEL = 33  # 4.4-IV2: UnregisterController (ClusterControlManager.unregisterController)
ELR_METADATA_LEVEL = 23  # 4.0-IV1: what eligible.leader.replicas.version 1 depends on (EligibleLeaderReplicasVersion.ELRV_1)
_METADATA_VERSION_MIN = 7  # 3.3-IV3, the oldest Kafka 4 accepts (MetadataVersion.MINIMUM_VERSION)
_METADATA_VERSION_MAX = 33  # 4.4-IV2, Kafka 4.4's MetadataVersion.LATEST_PRODUCTION
# The metadata.version levels whose didMetadataChange is true in Kafka 4.4: a downgrade across
# any of them may drop metadata, and the controller refuses it (MetadataVersion.checkIfMetadataChanged).
_METADATA_CHANGED = frozenset({7, 8, 11, 13, 14, 15, 17, 23, 30, 32, 33})

FEATURES: tuple[Feature, ...] = (
    Feature("metadata.version", _METADATA_VERSION_MIN, _METADATA_VERSION_MAX,
            "4.4-IV2: SCRAM credentials, delegation tokens, CIDR ACL hosts, controller unregistration"),
    # 1 is a dynamic quorum (KIP-853: AddRaftVoter/RemoveRaftVoter); Ottla is its own fixed voter.
    Feature("kraft.version", 0, 0, "a static quorum of one voter, this node"),
    # 1: flexible transaction state records (value version 1, ClientTransactionVersion kept);
    # 2: KIP-890 part 2, which the Java client turns on from this level: an epoch bump with
    # every EndTxn (v5), partitions added by Produce v12+ and TxnOffsetCommit v5+ instead of
    # AddPartitionsToTxn and AddOffsetsToTxn. Kafka 4.4 formats new clusters at 2
    # (TransactionVersion.LATEST_PRODUCTION; it depends on no other feature).
    Feature("transaction.version", 0, 2, "KIP-890 part 2: an epoch bump per transaction, partitions added by Produce and TxnOffsetCommit"),
    # 1: the KIP-848 consumer rebalance protocol (ConsumerGroupHeartbeat).
    Feature("group.version", 0, 1, "KIP-848 consumer groups (ConsumerGroupHeartbeat, ConsumerGroupDescribe)"),
    # 1: share groups (KIP-932); 2: their dead-letter queues (KIP-1191, ShareVersion.supportsShareGroupDLQ).
    Feature("share.version", 0, 2, "share groups (ShareGroupHeartbeat/Describe, ShareFetch, ShareAcknowledge, their offset APIs) "
            "and their dead-letter topics"),
    # 1: Kafka Streams groups (KIP-1071, StreamsGroupHeartbeat).
    Feature("streams.version", 0, 1, "Kafka Streams groups: StreamsGroupHeartbeat, StreamsGroupDescribe"),
    # 1: eligible leader replicas (KIP-966), which needs metadata.version 23: in a cluster the
    # replicas that leave an ISR below min.insync.replicas stay eligible to lead
    # (server/cluster/state.py); a single node is its partitions' only replica, so nothing shows
    # there. Kafka 4.4 formats new clusters at 1 (EligibleLeaderReplicasVersion.LATEST_PRODUCTION).
    Feature("eligible.leader.replicas.version", 0, 1, "KIP-966 eligible leader replicas in cluster mode"),
)

BY_NAME = {feature.name: feature for feature in FEATURES}
_FILE = "finalized-features.json"


class UpgradeType(IntEnum):
    """UpdateFeatures' UpgradeType (FeatureUpdate.UpgradeType in Kafka's admin client)."""

    UNKNOWN = 0
    UPGRADE = 1
    SAFE_DOWNGRADE = 2
    UNSAFE_DOWNGRADE = 3


class FinalizedFeatures:
    """The cluster's finalized levels (one node: this broker is the cluster) and their epoch.

    Invariant: every level is within its feature's supported range, so what a restart
    loads (a file written by a newer Ottla included) is clamped into it, as a level the
    code no longer supports cannot be finalized."""

    def __init__(self, path: Path | None, levels: dict[str, int], epoch: int) -> None:
        self._path = path
        self.levels = levels
        self.epoch = epoch
        # Over PostgreSQL: what records each change (the features whose level changed) instead of the file.
        self.record_change: Callable[[dict[str, int]], None] | None = None

    @classmethod
    def open(cls, data_dir: Path | None) -> FinalizedFeatures:
        """The levels kept in `data_dir`, or each feature's highest supported level in a new
        directory (as `kafka-storage format` finalizes its release's latest production levels).
        Without a data directory they last as long as the broker."""
        path = None if data_dir is None else data_dir / _FILE
        if path is None or not path.exists():
            finalized = cls(path, {f.name: f.supported_max for f in FEATURES}, 0)
            finalized._write()
            return finalized
        kept = json.loads(path.read_text(encoding="utf-8"))
        return cls(path, _clamped(kept["levels"]), int(kept["epoch"]))

    def reset(self, kept: Mapping[str, int], epoch: int) -> None:
        """The levels as the database now has them (clamped as a file's are)."""
        self.levels = _clamped(kept)
        self.epoch = epoch

    def level(self, name: str) -> int:
        return self.levels.get(name, 0)

    def supported(self, include_min_zero: bool) -> list[ApiVersionsResponseSupportedFeatureKey]:
        """ApiVersions' SupportedFeatures; before v4 a feature whose minimum is 0 is left out
        (KAFKA-17011: older clients reject a MinVersion of 0)."""
        return [{"name": f.name, "min_version": f.supported_min, "max_version": f.supported_max}
                for f in FEATURES if include_min_zero or f.supported_min > 0]

    def finalized(self) -> list[ApiVersionsResponseFinalizedFeatureKey]:
        """ApiVersions' FinalizedFeatures: features above level 0, min and max both the level."""
        return [{"name": name, "max_version_level": level, "min_version_level": level}
                for name, level in self.levels.items() if level > 0]

    def update(self, updates: list[tuple[str, int, UpgradeType]], validate_only: bool, node_id: int) -> None:
        """Apply all of `updates` or none: raises the first refusal as Kafka's controller words
        it (FeatureControlManager.updateFeature), prefixed as its UpdateFeatures answer is.

        As Kafka 4.4's controller does (FeatureControlManager.updateFeatures): a feature named
        twice takes its last level and upgrade type; each update is checked against the current
        levels with every update of the request already in place (so a feature's dependency on
        metadata.version sees the metadata.version asked for beside it); and which refusal is
        reported, when several would be, follows the order of the Java HashMap holding them."""
        requested: dict[str, tuple[int, UpgradeType]] = {}
        for name, level, upgrade_type in updates:
            requested[name] = (level, upgrade_type)
        proposed = {**self.levels, **{name: level for name, (level, _) in requested.items()}}
        for name in java_order(list(requested), string_hash, default_capacity(len(requested))):
            level, upgrade_type = requested[name]
            problem = _refusal(name, level, upgrade_type, self.levels.get(name, 0), proposed, node_id)
            if problem is not None:
                raise KafkaError(ErrorCode.INVALID_UPDATE_VERSION,
                                 f"The update failed for all features since the following feature had an error: {problem}")
        if validate_only or proposed == self.levels:
            return
        changed = {name: level for name, level in proposed.items() if self.levels.get(name) != level}
        self.levels = proposed
        self.epoch += 1
        if self.record_change is not None:
            self.record_change(changed)
        else:
            self._write()

    def _write(self) -> None:
        if self._path is not None:
            text = json.dumps({"epoch": self.epoch, "levels": self.levels}, indent=1, sort_keys=True)
            replace_file(self._path, text.encode("utf-8"))


def _clamped(kept: Mapping[str, int]) -> dict[str, int]:
    """Every feature's kept level within its supported range. A feature never finalized starts at
    its lowest level, as a feature new in a Kafka release stays at 0 on an upgraded cluster until
    an operator raises it."""
    levels = {}
    for feature in FEATURES:
        level = int(kept.get(feature.name, feature.supported_min))
        levels[feature.name] = min(max(level, feature.supported_min), feature.supported_max)
    return levels


def _refusal(name: str, level: int, upgrade_type: UpgradeType, current: int, proposed: Mapping[str, int], node_id: int) -> str | None:
    """Why Kafka's controller refuses setting `name` to `level` from `current`, in its words, or
    None; `proposed` is every level as the whole request would leave it."""

    def invalid(reason: str) -> str:
        return f"Invalid update version {level} for feature {name}. {reason}"

    if upgrade_type not in (UpgradeType.UPGRADE, UpgradeType.SAFE_DOWNGRADE, UpgradeType.UNSAFE_DOWNGRADE):
        return invalid("The controller does not support the given upgrade type.")
    if level < 0:
        return invalid("A feature version cannot be less than 0.")
    feature = BY_NAME.get(name)
    if feature is None:
        # Level 0 of an unknown feature passes the range checks and fails Feature.featureFromName,
        # whose IllegalArgumentException updateFeature words as an invalid version too.
        return invalid(f"Local controller {node_id} does not support this feature." if level > 0 else f"Feature {name} not found.")
    if not feature.supported_min <= level <= feature.supported_max:
        return invalid(f"Local controller {node_id} only supports versions {feature.supported_min}-{feature.supported_max}")
    if level < current and upgrade_type == UpgradeType.UPGRADE:
        return invalid("Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade.")
    if level > current and upgrade_type != UpgradeType.UPGRADE:
        return invalid("Can't downgrade to a newer version.")
    if name == "metadata.version":
        # A downgrade that may drop metadata is refused, safe or unsafe; one across levels that
        # changed none is taken either way (FeatureControlManager.updateMetadataVersion).
        if level < current and any(level < changed <= current for changed in _METADATA_CHANGED):
            reason = ("Unsafe metadata downgrade is not supported in this version." if upgrade_type == UpgradeType.UNSAFE_DOWNGRADE
                      else "Refusing to perform the requested downgrade because it might delete metadata information.")
            return f"Unsupported metadata.version downgrade from {current} to {level}. {reason}"
        return None
    if name == "kraft.version":
        return invalid("Can't downgrade the version of this feature.") if level < current else None
    # Feature.validateVersion: every level above 0 of a feature needs a metadata.version Kafka
    # 4 knows, then each of the level's dependencies (FeatureVersion.dependencies): here only
    # eligible.leader.replicas.version 1's on metadata.version 4.0-IV1.
    metadata_version = proposed.get("metadata.version", 0)
    if level >= 1 and metadata_version < _METADATA_VERSION_MIN:
        return invalid(f"{name} could not be set to {level} because it depends on metadata.version={_METADATA_VERSION_MIN} (3.3-IV3)")
    if name == "eligible.leader.replicas.version" and level >= 1 and metadata_version < ELR_METADATA_LEVEL:
        return invalid(f"{name} could not be set to {level} because it depends on metadata.version level {ELR_METADATA_LEVEL}")
    return None
