"""A broker's start imports only what it serves: the rooms its configuration does not use (KIP-848,
share and streams groups, SASL, TLS, ACLs, delegation tokens, telemetry, cluster mode, the HTTP
listener, the admin client) and every handler module wait for their first use, which keeps the
CPU a start costs near what it was before they existed (`python -m compat.bench_startup`)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

from ottla.server.handlers import SERVED, module_name

# Starts a broker as `ottla serve --port 0 --memory` does (its parser, its config, Broker.start)
# in a fresh interpreter, and prints the modules of ours it imported.
_START = """
import asyncio, json, sys
from ottla.server.cli import _parser, broker_config
from ottla.server.broker import Broker

async def main():
    config = broker_config(_parser(serving=True).parse_args(["serve", "--port", "0", "--memory"]))
    async with Broker(config):
        pass

asyncio.run(main())
print(json.dumps(sorted(name for name in sys.modules if name.startswith("ottla."))))
"""

UNUSED_ROOMS = (
    "ottla.server.admin",
    "ottla.server.cluster",
    "ottla.server.groups.consumer",
    "ottla.server.groups.streams",
    "ottla.server.http",
    "ottla.server.security.authorizer",
    "ottla.server.security.sasl",
    "ottla.server.security.tls",
    "ottla.server.security.tokens",
    "ottla.server.share",
    "ottla.server.telemetry",
)


def test_a_default_broker_starts_without_the_rooms_it_does_not_use() -> None:
    out = subprocess.run([sys.executable, "-c", _START], capture_output=True, text=True, check=True, timeout=120)
    imported = json.loads(out.stdout)
    assert "ottla.server.broker" in imported and "ottla.server.groups" in imported
    loaded_early = [name for name in imported if name.startswith(UNUSED_ROOMS) or name.startswith("ottla.server.handlers.")]
    assert loaded_early == []


def test_the_advertised_versions_are_the_handlers_own() -> None:
    """The table ApiVersions advertises names each API's module and the versions that module
    says it serves: a version changed in one place only fails here."""
    declared = {}
    for api in SERVED:
        module = importlib.import_module(module_name(api))
        declared[api] = (module.API, module.VERSIONS)
    assert declared == {api: (api, versions) for api, versions in SERVED.items()}
