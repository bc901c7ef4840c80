"""The handler table: API key -> (handle, lowest, highest version served).

Ranges start at 0 (as Kafka <= 3.9 did) because kafkajs ignores the broker's minimum,
and reach Kafka 4.0's maxima so that clients which infer a release from the maxima
(kafka-python) see one real release.
"""

from __future__ import annotations

from server.handlers import (
    api_versions,
    create_topics,
    delete_topics,
    fetch,
    init_producer_id,
    list_offsets,
    metadata,
    produce,
)

HANDLERS = {
    module.API: (module.handle, *module.VERSIONS)
    for module in (api_versions, metadata, produce, fetch, list_offsets, create_topics, delete_topics, init_producer_id)
}
