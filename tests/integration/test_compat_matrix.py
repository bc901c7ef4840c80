"""The compatibility matrix under pytest: every stock client through every scenario, each
against its own real Ottla process (`python -m compat` runs the same and writes REPORT.md)."""

from __future__ import annotations

import pytest

from compat.clients import CLIENTS, Client
from compat.harness import OttlaBroker
from compat.matrix import FAIL, run_scenario
from compat.scenarios import SCENARIOS


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("compat_client", list(CLIENTS.values()), ids=list(CLIENTS), indirect=True)
def test_client(compat_client: Client, scenario: str, ottla_serve: OttlaBroker) -> None:
    result = run_scenario(compat_client, scenario, ottla_serve)
    if result.status == FAIL:
        pytest.fail(f"{result.reason}\n\n{result.detail}\n\n{ottla_serve.log_tail()}", pytrace=False)
