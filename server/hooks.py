"""Fault hooks for tests: behaviour no production broker has, so not broker settings.

They reach a broker only as a `TestHooks` given to `Broker(...)` by `ottla.testing`
(`running_broker`, `ThreadedBroker`, `python -m ottla.testing serve`), never from
server.properties, the environment or --set.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True, frozen=True)
class TestHooks:
    """`drop_produce_response_every`: every Nth Produce request that carries a producer id is
    written, then its connection closed unanswered, so the client has to retry (0: never)."""

    __test__ = False  # a library class, not a pytest test class

    drop_produce_response_every: int = 0
