"""The suite uses Ottla's own pytest plugin (pytest_plugin.py at the root, `ottla.pytest_plugin`: `ottla_broker`,
`ottla_broker_fn`, `ottla_bootstrap`), loaded through its entry point once the package is
installed. `tests/` is on sys.path (pytest puts a rootdir conftest's folder there), so test
modules import helpers such as `kafka_wire` directly."""

import compileall
import re

import pytest

# Folders whose every test drives processes outside this interpreter: stock clients in Node,
# the JVM and kcat, Kafka's own tools, the reference Apache Kafka, `ottla serve` subprocesses.
_EXTERNAL_FOLDERS = {"integration"}


def pytest_sessionstart(session: pytest.Session) -> None:
    """Compile the checkout's bytecode once, as pip does for an installed package.

    With PYTHONDONTWRITEBYTECODE=1 (set in some sandboxes and CI images) nothing else writes
    it, and every `ottla serve` or driver subprocess the suite starts would compile the whole
    package from source first: a fraction of a second of CPU each, hundreds of times over.
    Stale bytecode is harmless: Python recompiles a module whose source changed."""
    compileall.compile_dir(session.config.rootpath, quiet=1, rx=re.compile(r"[/\\](node_modules|\.cache|\.git)[/\\]"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark what the fast lane (`pytest -m "not external and not slow"`) leaves out, and, when
    the suite runs on several workers (`-n N --dist loadgroup`), what must share one."""
    tests_dir = config.rootpath / "tests"
    grouped = config.pluginmanager.hasplugin("xdist")
    for item in items:
        relative = item.path.relative_to(tests_dir).parts if item.path.is_relative_to(tests_dir) else ()
        if relative and relative[0] in _EXTERNAL_FOLDERS:
            item.add_marker(pytest.mark.external)
        if grouped:
            item.add_marker(pytest.mark.xdist_group(_worker_group(item)))


def _worker_group(item: pytest.Item) -> str:
    """A file's tests stay on one worker, so its module fixtures (brokers, JVMs) start once; the
    tests on the session's reference Kafka share one worker, so one reference Kafka runs."""
    fixtures = getattr(item, "fixturenames", ())
    return "reference-kafka" if "reference_kafka" in fixtures else str(item.path)
