"""The async engine's calls of one request, awaited together."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import TypeVar

from ottla.wire.errors import KafkaError

T = TypeVar("T")


async def outcomes(calls: Iterable[Awaitable[T]]) -> list[T | KafkaError]:
    """Each call's result, or the KafkaError that answers its partition; any other exception is
    the request's and is raised once all are done."""
    done = await asyncio.gather(*calls, return_exceptions=True)
    for outcome in done:
        if isinstance(outcome, BaseException) and not isinstance(outcome, KafkaError):
            raise outcome
    return done  # type: ignore[return-value]
