"""Kafka's own message definitions (`common/message/*.json` inside `kafka-clients` jars), the
yardstick of the wire conformance test on a machine without `../shared/kafka-protocol`.

Kafka 4 dropped the oldest versions of many APIs that Ottla still serves (kafkajs and
kafka-python send them), so one jar does not cover every version we serve: the reference
Kafka's jar (compat.kafka) defines the newest versions, and the last 3.x release's jar, fetched
here with Maven, the oldest.

    python -m compat.message_definitions --fetch
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
OLDEST_SERVING_RELEASE = "3.9.1"
CACHE = REPO / ".cache" / "kafka-definitions"
OLDEST_JAR = CACHE / f"kafka-clients-{OLDEST_SERVING_RELEASE}.jar"


def fetch() -> Path:
    """The 3.x `kafka-clients` jar in CACHE, resolved with Maven; a no-op once there."""
    if OLDEST_JAR.exists():
        return OLDEST_JAR
    mvn = shutil.which("mvn")
    if not mvn:
        raise RuntimeError("mvn not found: Kafka's message definitions are resolved with Maven")
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run([mvn, "-B", "-q", "dependency:copy", f"-Dartifact=org.apache.kafka:kafka-clients:{OLDEST_SERVING_RELEASE}",
                    f"-DoutputDirectory={CACHE}"], check=True, cwd=CACHE)
    return OLDEST_JAR


def read_jar(jar: Path) -> dict[str, dict[str, Any]]:
    """Every definition in a `kafka-clients` jar, by message name; {} when the jar is absent."""
    if not jar.exists():
        return {}
    with zipfile.ZipFile(jar) as archive:
        return {
            Path(entry).stem: parse(archive.read(entry).decode("utf-8"))
            for entry in archive.namelist() if entry.startswith("common/message/") and entry.endswith(".json")
        }


def parse(text: str) -> dict[str, Any]:
    """One definition file: JSON with Kafka's `//` comment lines."""
    return json.loads(re.sub(r"(?m)^\s*//.*$", "", text))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fetch", action="store_true", help=f"fetch kafka-clients {OLDEST_SERVING_RELEASE} into {CACHE}")
    args = parser.parse_args()
    if args.fetch:
        print(fetch())
    return 0


if __name__ == "__main__":
    sys.exit(main())
