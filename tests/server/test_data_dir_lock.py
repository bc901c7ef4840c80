"""A data directory serves one broker at a time, as Kafka's LogManager locks each log directory
(`.lock`): a second broker on it would hand out the offsets the first did and overwrite its
records. Over a real CLI and the embedding API."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from kafka import KafkaProducer

from ottla.testing import running_broker


def test_a_second_broker_on_a_data_dir_in_use_does_not_start_and_the_first_loses_nothing(tmp_path: Path) -> None:
    with running_broker(data_dir=str(tmp_path)) as first:
        producer = KafkaProducer(bootstrap_servers=first.bootstrap_servers)
        assert producer.send("kept", b"acknowledged").get(timeout=30).offset == 0
        with pytest.raises(OSError, match="in use by another broker"):
            with running_broker(data_dir=str(tmp_path)):
                pass
        started = subprocess.run(
            [sys.executable, "-m", "ottla", "serve", "--port", "0", "--data-dir", str(tmp_path)],
            capture_output=True, text=True, timeout=60,
        )
        assert started.returncode == 1 and "Traceback" not in started.stderr
        assert f"cannot use data directory {tmp_path}: in use by another broker, which holds its lock ({tmp_path / '.lock'})" in started.stderr
        assert producer.send("kept", b"after").get(timeout=30).offset == 1
        producer.close()
    with running_broker(data_dir=str(tmp_path)) as restarted:  # released at the first one's stop
        assert restarted.bootstrap_servers
