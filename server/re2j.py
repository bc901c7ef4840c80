"""Kafka's regular expressions (com.google.re2j: consumer-group subscriptions, ListTransactions
patterns) with Google's RE2, whose syntax re2j shares but for \\C (any byte), which re2j refuses.
Parse errors are answered, not written to stderr as RE2 would by default."""

from __future__ import annotations

import re
from typing import Any

import re2

_QUIET = re2.Options()
_QUIET.log_errors = False
_ANY_BYTE = re.compile(r"(?<!\\)(?:\\\\)*\\C")


def re2j_problem(regex: str) -> str | None:
    """Why Kafka's re2j would refuse `regex`, or None."""
    if _ANY_BYTE.search(regex):
        return "invalid escape sequence: \\C"
    try:
        re2.compile(regex, _QUIET)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        return reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
    return None


def compile_re2j(regex: str) -> Any:
    """`regex`, which `re2j_problem` passed, compiled."""
    return re2.compile(regex, _QUIET)
