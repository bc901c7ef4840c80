"""AlterReplicaLogDirs names a destination by the very string of its absolute path: Kafka 4.4's
LogManager.isLogDirOnline compares it with each log dir's getAbsolutePath, so the reference
Kafka answers LOG_DIR_NOT_FOUND to a trailing `/`, a doubled `/` or a `./` in the path of a
directory it has, and moves the partition for the path as written."""

from __future__ import annotations

import pathlib
import uuid

from kafka import TopicPartitionReplica
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import LogDirNotFoundError, NoError

from ottla.testing import running_broker


def test_only_the_exact_absolute_path_names_a_log_dir(tmp_path: pathlib.Path) -> None:
    dirs = [tmp_path / "d0", tmp_path / "d1"]
    topic = f"spelling-{uuid.uuid4().hex[:8]}"
    with running_broker(data_dir=",".join(map(str, dirs))) as broker:
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers, request_timeout_ms=10_000)
        try:
            admin.create_topics([NewTopic(topic, 1, 1)])
            replica = TopicPartitionReplica(topic, 0, 1)
            for directory in dirs:
                for spelling in (f"{directory}/", f"{directory}//", f"{directory.parent}/./{directory.name}"):
                    assert admin.alter_replica_log_dirs({replica: spelling}) == {replica: LogDirNotFoundError}, spelling
            assert admin.alter_replica_log_dirs({replica: str(dirs[1])}) == {replica: NoError}
        finally:
            admin.close()
