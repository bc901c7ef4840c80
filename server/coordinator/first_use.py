"""The coordinators' topics created when a client first asks about one.

Kafka creates each internal topic on first use: when its coordinator first writes, and when a
client first looks it up, FindCoordinator for a key it coordinates or Metadata naming the topic
(KafkaApis.getCoordinator and getTopicMetadata ask AutoTopicCreationManager for it). Both
handlers create it here, as its coordinator would: its partition count and configs. Kept out
of the runtime's package namespace, which the request context imports.
"""

from __future__ import annotations

from ottla.server.context import RequestContext
from ottla.server.coordinator.log import ensure_internal_topic
from ottla.server.coordinator.topics import OFFSETS, SHARE_GROUP_STATE, TRANSACTION_STATE


def ensure_coordinator_topic(context: RequestContext, name: str) -> None:
    """Create the internal topic `name` if it does not exist yet, as its coordinator creates it.
    Raises KafkaError when the storage refuses."""
    if name == OFFSETS.name:
        context.groups.log.ensure_topic()
    elif name == TRANSACTION_STATE.name:
        context.txn.log.ensure_topic()
    else:
        setting = context.config.value
        ensure_internal_topic(context.storage, SHARE_GROUP_STATE, setting(SHARE_GROUP_STATE.partitions_setting), SHARE_GROUP_STATE.configs(setting))
