"""Java's String rules that Kafka's request checks lean on, so that answers match them."""

from __future__ import annotations

# What String.trim removes from either end: every character up to U+0020, control characters included.
JAVA_TRIMMED = "".join(map(chr, range(33)))


def java_trim(value: str) -> str:
    """String.trim."""
    return value.strip(JAVA_TRIMMED)


def is_blank(value: str | None) -> bool:
    """Utils.throwIfEmptyString's test: non-null and empty once trimmed as String.trim trims."""
    return value is not None and not java_trim(value)
