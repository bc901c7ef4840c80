"""mypy over the package, so that a type error fails the suite like any other test.

The repository root is the package, so mypy must see it under its import name: the test
links `ottla` to the checkout in a temporary directory and checks from there, with the
configuration in pyproject.toml (--strict on wire/ and storage/, defaults elsewhere).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Everything installed as `ottla`; tests/ and compat/ are tooling run from the checkout.
TARGETS = ["-p", "ottla.wire", "-p", "ottla.storage", "-p", "ottla.server"] + [
    arg for module in ("ottla", "ottla.__main__", "ottla.testing", "ottla.pytest_plugin") for arg in ("-m", module)
]


def test_mypy_finds_no_errors(tmp_path: Path) -> None:
    (tmp_path / "ottla").symlink_to(REPO, target_is_directory=True)
    command = [sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml"), "--no-incremental", *TARGETS]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
