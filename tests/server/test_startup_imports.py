"""A broker's start imports only what it serves: the rooms its configuration does not use (KIP-848,
share and streams groups, SASL, TLS, ACLs, delegation tokens, telemetry, cluster mode, the HTTP
listener, the admin client) and every handler module wait for their first use, which keeps the
CPU a start costs near what it was before they existed (`python -m compat.bench_startup`). So do
the config tables a start does not read and the modules only rarer paths need."""

from __future__ import annotations

import functools
import importlib
import json
import subprocess
import sys
from typing import Any

from ottla.server.handlers import SERVED, module_name

# The config tables built on first use (functools.cache'd): a default start looks a few of
# Kafka's settings up by name and never needs the whole of any of them.
LAZY_TABLES = ("kafka_settings.inert_keys", "config.all_keys", "config._environment_names", "broker_configs.described_keys")

# Starts a broker as `ottla serve --port 0 --memory` does (its parser, its config, Broker.start)
# in a fresh interpreter, and prints the modules it imported and the lazy tables it built.
_START = """
import asyncio, json, sys
from ottla.server.cli import _parser, broker_config
from ottla.server.broker import Broker

async def main():
    config = broker_config(_parser(serving=True).parse_args(["serve", "--port", "0", "--memory"]))
    async with Broker(config):
        pass

asyncio.run(main())
tables = [name for name in TABLES if getattr(sys.modules["ottla.server." + name.split(".")[0]], name.split(".")[1]).cache_info().currsize]
print(json.dumps({"modules": sorted(sys.modules), "tables": tables}))
"""
# What the same interpreter imports without starting a broker, to tell the start's imports from
# the interpreter's own (site-packages' .pth files import what they like).
_BARE = "import asyncio, json, sys; print(json.dumps(sorted(sys.modules)))"

# Modules that would cost every start CPU (`python -m compat.bench_startup`) for paths it never takes.
UNUSED_MODULES = (
    "crc32c",  # its import reads its own package metadata: loaded with the first batch
    "importlib.metadata",  # the package version, read for --version only
    "difflib",  # the hint for a misspelt setting
    "decimal",  # Java's rendering of a double outside its plain range
    "ottla.server.config_entries",  # DescribeConfigs' answers
)


@functools.cache
def _started() -> dict[str, Any]:
    """The default start's modules and built tables (one subprocess for every test here)."""
    run = functools.partial(subprocess.run, capture_output=True, text=True, check=True, timeout=120)
    started = json.loads(run([sys.executable, "-c", f"TABLES = {LAZY_TABLES!r}\n{_START}"]).stdout)
    bare = set(json.loads(run([sys.executable, "-c", _BARE]).stdout))
    return {"modules": [name for name in started["modules"] if name not in bare], "tables": started["tables"]}

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
    imported = _started()["modules"]
    assert "ottla.server.broker" in imported and "ottla.server.groups" in imported
    loaded_early = [name for name in imported if name.startswith(UNUSED_ROOMS) or name.startswith("ottla.server.handlers.")]
    assert loaded_early == []


def test_a_default_broker_starts_without_the_config_tables_and_modules_it_does_not_read() -> None:
    started = _started()
    assert "ottla.server.kafka_settings" in started["modules"] and "ottla.wire.records.batch" in started["modules"]
    assert [name for name in started["modules"] if name.startswith(UNUSED_MODULES)] == []
    assert started["tables"] == []


def test_the_advertised_versions_are_the_handlers_own() -> None:
    """The table ApiVersions advertises names each API's module and the versions that module
    says it serves: a version changed in one place only fails here."""
    declared = {}
    for api in SERVED:
        module = importlib.import_module(module_name(api))
        declared[api] = (module.API, module.VERSIONS)
    assert declared == {api: (api, versions) for api, versions in SERVED.items()}


def test_the_pytest_plugin_imports_no_broker_until_a_fixture_starts_one() -> None:
    """pytest loads the plugin in every run of every project where Ottla is installed."""
    loaded = subprocess.run(
        [sys.executable, "-c", "import json, sys, ottla.pytest_plugin; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True,
    )
    modules = json.loads(loaded.stdout)
    assert "ottla.testing" not in modules and "ottla.server.broker" not in modules
