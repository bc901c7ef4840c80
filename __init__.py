"""Ottla, a Kafka wire-protocol compatible broker.

`ottla.Broker` embeds a broker in an asyncio event loop; `ottla.testing.running_broker` runs one
on its own thread for code that is not async. The codec is `ottla.wire`, the log engine
`ottla.storage`, the broker `ottla.server`; they depend one way: wire <- storage <- server.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ottla.server.broker import Broker

__all__ = ["Broker"]


def __getattr__(name: str) -> Any:
    # Imported on first use, so that `import ottla` and `ottla --help` stay cheap.
    if name == "Broker":
        from ottla.server.broker import Broker

        return Broker
    raise AttributeError(name)
