"""kcat -L, the metadata listing people reach for first, against a live broker."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid

import pytest
from unavailable import unavailable


@pytest.fixture
def kcat() -> str:
    path = shutil.which("kcat")
    if path is None:
        unavailable("kcat is not installed (python -m compat.install installs it)")
    return path


@pytest.mark.external
def test_kcat_lists_the_broker_and_topics(kcat, ottla_broker):
    topic = f"kcat-{uuid.uuid4().hex[:8]}"
    ottla_broker.create_topic(topic, partitions=3)
    listing = subprocess.run([kcat, "-b", ottla_broker.bootstrap_servers, "-L", "-J"], capture_output=True, text=True, timeout=30)
    assert listing.returncode == 0, listing.stderr
    metadata = json.loads(listing.stdout)
    port = int(ottla_broker.bootstrap_servers.rsplit(":", 1)[1])
    assert [(b["id"], b["name"]) for b in metadata["brokers"]] == [(1, f"127.0.0.1:{port}")]
    (entry,) = [t for t in metadata["topics"] if t["topic"] == topic]
    assert [(p["partition"], p["leader"], p["replicas"], p["isrs"]) for p in entry["partitions"]] == [
        (i, 1, [{"id": 1}], [{"id": 1}]) for i in range(3)
    ]
