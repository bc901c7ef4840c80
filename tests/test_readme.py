"""The README's promises that can drift from the code are checked here."""

from __future__ import annotations

import re
from pathlib import Path

from ottla.server.config import markdown_table

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_configuration_table_matches_the_registry():
    match = re.search(r"<!-- config-table:[^>]*-->\n(.*?)\n<!-- /config-table -->", README, re.S)
    assert match, "the README has lost its configuration table markers"
    assert match.group(1) == markdown_table(), "regenerate with: python -m ottla.server.config"


def test_readme_has_exactly_two_setup_commands_up_front():
    first_section = README.split("\n## ", 1)[0]
    commands = re.findall(r"```sh\n(.*?)\n```", first_section, re.S)
    assert len(commands) == 2
    assert commands[0].endswith("ottla serve")
    assert "pytest" in commands[1]
    assert commands[1] in (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()


def _readme_test_functions():
    for block in re.findall(r"```python\n(.*?)\n```", README, re.S):
        if "def test_" in block:
            namespace: dict = {}
            exec(compile(block, "README.md", "exec"), namespace)
            yield from (value for name, value in namespace.items() if name.startswith("test_"))


def test_readme_examples_run(ottla_broker_fn, ottla_bootstrap, ottla_faults, ottla_cluster):
    fixtures = {"ottla_broker_fn": ottla_broker_fn, "ottla_bootstrap": ottla_bootstrap, "ottla_faults": ottla_faults, "ottla_cluster": ottla_cluster}
    examples = list(_readme_test_functions())
    assert len(examples) == 5
    for example in examples:
        names = example.__code__.co_varnames[: example.__code__.co_argcount]
        example(*(fixtures[name] for name in names))


def _served_rows() -> dict[str, tuple[int, int]]:
    """The "APIs served" table as API name -> (lowest, highest): a row naming several APIs gives
    one range for all or one per API, in order."""
    section = README.split("\n## APIs served\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for names, versions in re.findall(r"^\| ([A-Z][A-Za-z, ]+) \| ([0-9–, ]+?)(?: \(|\s*\|)", section, re.M):
        apis = names.split(", ")
        ranges = [tuple(int(v) for v in r.split("–")) for r in versions.strip().split(", ")]
        for api, bounds in zip(apis, ranges * len(apis) if len(ranges) == 1 else ranges, strict=True):
            rows[api] = (bounds[0], bounds[-1])
    return rows


def test_apis_served_table_matches_what_api_versions_advertises():
    from ottla.server.handlers import SERVED
    from ottla.wire.api import message_name

    advertised = {message_name(api): versions for api, versions in SERVED.items()}
    assert _served_rows() == advertised
