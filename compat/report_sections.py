"""Sections of compat/REPORT.md that a runner owns: each one replaced in place, the rest untouched.

`python -m compat` writes the matrix part of the report whole; the sections other runners own
(the client suites) are carried over from the report it replaces, so a matrix run never drops
them. A runner that owns a section lists its title in RUNNER_SECTIONS."""

from __future__ import annotations

import re
from pathlib import Path


# Titles of the sections written by runners other than `python -m compat` (their SECTION_TITLE
# or REPORT_TITLE).
RUNNER_SECTIONS = ("## Cluster row against three Kafka brokers", "## franz-go suite", "## kafka-go suite",
                   "## librdkafka suite", "## Kafka Streams", "## Kafka Connect", "## MirrorMaker 2",
                   "## Schema registry", "## PostgreSQL engine, one broker", "## PostgreSQL engine, three brokers")


def _section_pattern(title: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(title)}\n.*?(?=^## |\Z)", re.M | re.S)


def carry_over(path: Path, text: str) -> str:
    """`text` (a new report for `path`) with the runner-owned sections of the report now at
    `path` appended, in the order they appear there, unless `text` has them already."""
    if not path.exists():
        return text
    old = path.read_text()
    found = []
    for title in RUNNER_SECTIONS:
        match = _section_pattern(title).search(old)
        if match and not _section_pattern(title).search(text):
            found.append((match.start(), match.group(0).rstrip("\n")))
    return text.rstrip("\n") + "".join(f"\n\n{section}" for _, section in sorted(found)) + "\n"


def replace_section(path: Path, title: str, section: str) -> None:
    """Replace the section headed `title` (up to the next `## ` heading) with `section`, or
    append it when the report has none yet."""
    text = path.read_text()
    pattern = _section_pattern(title)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1).rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)
