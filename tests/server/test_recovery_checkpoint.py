"""log.flush.offset.checkpoint.interval.ms: how often the broker writes each partition's recovery
point (Kafka's recovery-point-offset-checkpoint), below which a restart after a crash trusts the
segments without scanning them."""

from __future__ import annotations

from pathlib import Path

from kafka import KafkaProducer

from compat.harness import wait_for
from ottla.testing import running_broker


def _checkpointed(data_dir: Path, topic: str) -> int | None:
    path = data_dir / "recovery-point-offset-checkpoint"
    if not path.exists():
        return None
    for line in path.read_text().splitlines()[2:]:
        name, partition, offset = line.rsplit(" ", 2)
        if (name, partition) == (topic, "0"):
            return int(offset)
    return None


def test_recovery_points_are_checkpointed_at_the_configured_interval(tmp_path: Path) -> None:
    """Five records, each rolling its own segment: their fsyncs run on the storage's flusher,
    and within a few intervals the checkpoint has the partition's point past the rolled ones
    (the default, a minute, would not have written it yet)."""
    with running_broker(data_dir=str(tmp_path), log_flush_offset_checkpoint_interval_ms=50) as broker:
        broker.create_topic("rolled", partitions=1, segment_bytes=100)
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)
        try:
            for i in range(5):
                producer.send("rolled", f"record-{i}".encode() * 4, partition=0).get(timeout=10)
        finally:
            producer.close()
        assert wait_for(lambda: (_checkpointed(tmp_path, "rolled") or 0) >= 4, timeout=10), (
            (tmp_path / "recovery-point-offset-checkpoint").read_text() if (tmp_path / "recovery-point-offset-checkpoint").exists() else "no checkpoint"
        )
