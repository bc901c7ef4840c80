"""pyproject.toml lists the package's subpackages by hand (the checkout's root is the package
`ottla`, which setuptools' discovery cannot name): a subpackage missing from the list is missing
from every installed wheel, though an editable checkout never shows it. The wheel itself is
checked in test_packaging.py (slow); this is the fast-lane guard."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_subpackage_of_the_checkout_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    present = {"ottla"} | {
        ".".join(("ottla", *init.parent.relative_to(REPO).parts))
        for folder in ("wire", "storage", "server")
        for init in (REPO / folder).rglob("__init__.py")
    }
    assert present - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert listed - present == set(), "these are listed in pyproject.toml but not in the checkout"
