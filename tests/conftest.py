"""The suite uses Ottla's own pytest plugin (pytest_plugin.py at the root, `ottla.pytest_plugin`: `ottla_broker`,
`ottla_broker_fn`, `ottla_bootstrap`), loaded through its entry point once the package is
installed. `tests/` is on sys.path (pytest puts a rootdir conftest's folder there), so test
modules import helpers such as `kafka_wire` directly."""
