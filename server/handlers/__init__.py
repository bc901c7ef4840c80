"""The handler table: API key -> (handle, lowest, highest version served).

Ranges start at 0 (as Kafka <= 3.9 did) because kafkajs ignores the broker's minimum,
and reach Kafka 4.0's maxima so that clients which infer a release from the maxima
(kafka-python) see one real release.
"""

from __future__ import annotations

from server.handlers import (
    alter_configs,
    alter_partition_reassignments,
    api_versions,
    create_partitions,
    create_topics,
    delete_groups,
    delete_records,
    delete_topics,
    describe_cluster,
    describe_configs,
    describe_groups,
    describe_log_dirs,
    describe_topic_partitions,
    elect_leaders,
    fetch,
    find_coordinator,
    heartbeat,
    incremental_alter_configs,
    init_producer_id,
    join_group,
    leave_group,
    list_groups,
    list_offsets,
    list_partition_reassignments,
    metadata,
    offset_commit,
    offset_delete,
    offset_fetch,
    offset_for_leader_epoch,
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
        describe_configs,
        alter_configs,
        incremental_alter_configs,
        create_partitions,
        delete_records,
        describe_cluster,
        describe_log_dirs,
        offset_for_leader_epoch,
        elect_leaders,
        list_partition_reassignments,
        alter_partition_reassignments,
        describe_topic_partitions,
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
