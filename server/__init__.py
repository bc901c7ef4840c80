"""The asyncio broker. `server.Broker` embeds one in an event loop; `server.testing`
runs one on its own thread for code that is not async."""

from typing import Any


def __getattr__(name: str) -> Any:
    # Imported on first use so that `python -m server --help` stays cheap.
    if name == "Broker":
        from server.broker import Broker

        return Broker
    raise AttributeError(name)
