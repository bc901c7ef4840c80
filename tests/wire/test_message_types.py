"""The checked-in message TypedDicts are what the generator writes from today's definitions."""

from __future__ import annotations

from ottla.wire.messages import generate


def test_generated_types_are_current() -> None:
    current = generate.OUTPUT.read_text(encoding="utf-8")
    assert current == generate.render(), f"wire/messages/types.py is stale: run `{generate.COMMAND}`"
