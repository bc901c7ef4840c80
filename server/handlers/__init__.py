"""The handler table: API key -> (handle, lowest, highest version served).

Ranges start at 0 (as Kafka <= 3.9 did) because kafkajs ignores the broker's minimum,
and reach Kafka 4.0's maxima so that clients which infer a release from the maxima
(kafka-python) see one real release.
"""

from __future__ import annotations

from server.handlers import (
    api_versions,
    create_topics,
    delete_groups,
    delete_topics,
    describe_groups,
    fetch,
    find_coordinator,
    heartbeat,
    init_producer_id,
    join_group,
    leave_group,
    list_groups,
    list_offsets,
    metadata,
    offset_commit,
    offset_delete,
    offset_fetch,
    produce,
    sync_group,
)

HANDLERS = {
    module.API: (module.handle, *module.VERSIONS)
    for module in (
        api_versions,
        metadata,
        produce,
        fetch,
        list_offsets,
        create_topics,
        delete_topics,
        init_producer_id,
        # Consumer groups (issue 4).
        find_coordinator,
        join_group,
        sync_group,
        heartbeat,
        leave_group,
        offset_commit,
        offset_fetch,
        list_groups,
        describe_groups,
        delete_groups,
        offset_delete,
    )
}
