"""Log set-up for the CLI: readable lines for people, one JSON object per line for machines."""

from __future__ import annotations

import collections
import json
import logging
import sys
from typing import Any

# Lines the console's log view (/api/logs) can show: the newest, a bounded number.
RECENT_LINES = 1000


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry)


class RecentLogs(logging.Handler):
    """The broker's newest log lines in a bounded ring, for `/api/logs`: each line is formatted
    once as it is logged (no LogRecord kept, so no argument outlives its line)."""

    def __init__(self, capacity: int = RECENT_LINES) -> None:
        super().__init__()
        self.lines: collections.deque[dict[str, Any]] = collections.deque(maxlen=capacity)
        self.sequence = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: the line as written
            message = str(record.msg)
        if record.exc_info:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
        self.sequence += 1
        self.lines.append({"seq": self.sequence, "time": record.created, "level": record.levelname.lower(), "logger": record.name, "message": message})

    def since(self, sequence: int, limit: int) -> list[dict[str, Any]]:
        """Lines after `sequence` (0: all kept), at most the newest `limit`."""
        newer = [line for line in self.lines if line["seq"] > sequence]
        return newer[-limit:] if limit < len(newer) else newer


RECENT = RecentLogs()


def attach_recent(logger: logging.Logger) -> bool:
    """Keep `logger`'s lines in RECENT unless the root logger does already; true if attached."""
    if RECENT in logging.getLogger().handlers or RECENT in logger.handlers:
        return False
    logger.addHandler(RECENT)
    return True


def configure(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler, RECENT]
    root.setLevel(level.upper())
