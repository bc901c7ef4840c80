"""Test hooks given at start-up: faults (ottla.server.faults) set before the first request,
for a broker in its own process that a test cannot reach into (the compat matrix).

They reach a broker only as a `TestHooks` given to `Broker(...)` by `ottla.testing`
(`running_broker`, `ThreadedBroker`, `python -m ottla.testing serve`), never from
server.properties, the environment or --set. A running broker takes faults at any time
through `Broker.faults`, the `/api/faults` HTTP API and `ottla faults`.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Mapping
from typing import Any

from ottla.server.faults import FaultError, Faults
from ottla.wire.records import BATCH_HEADER_SIZE, read_header


@dataclass(slots=True, frozen=True)
class TestHooks:
    """`drop_produce_response_every`: every Nth Produce request that carries a producer id is
    written, then its connection closed unanswered, so the client has to retry (0: never).
    `faults`: more, each as `Faults.add`'s keyword arguments."""

    __test__ = False  # a library class, not a pytest test class

    drop_produce_response_every: int = 0
    faults: tuple[Mapping[str, Any], ...] = ()

    def set_faults(self, faults: Faults) -> None:
        """Add the faults these hooks stand for."""
        every = self.drop_produce_response_every
        if every:
            faults.add("produce", drop="after", every=every, when=carries_producer_id, name=f"drop_produce_response_every={every}")
        for fault in self.faults:
            # From JSON (--fault) as often as from Python: the wrong shape is the caller's
            # error, a FaultError as Faults.add's own refusals are, not a TypeError.
            if not isinstance(fault, Mapping):
                raise FaultError(f"a fault is an object of Faults.add's keyword arguments, not {fault!r}")
            try:
                faults.add(**fault)
            except TypeError as exc:
                raise FaultError(f"cannot set the fault {dict(fault)!r}: {exc}") from None


def carries_producer_id(request: Any) -> bool:
    """Whether a Produce request holds a batch of an idempotent or transactional producer."""
    for topic in request["topic_data"]:
        for partition in topic["partition_data"]:
            records = partition["records"]
            if records is not None and len(records) >= BATCH_HEADER_SIZE and read_header(records).producer_id >= 0:
                return True
    return False
