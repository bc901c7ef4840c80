"""Dependencies point one way: wire <- storage <- server. A test, so a slip fails CI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OURS = {"wire", "storage", "server", "compat"}

# package -> the modules of ours it may import (a prefix match on the dotted name).
ALLOWED = {
    "wire": ("wire",),
    "storage": ("storage", "wire.records", "wire.errors"),
    "server": ("server", "storage", "wire"),
    # compat drives the broker over sockets only; it never imports the broker itself.
    "compat": ("compat", "wire", "storage"),
}


def _imports(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def _allowed(name: str, allowed: tuple[str, ...]) -> bool:
    # "from wire import records" shows as "wire" and "wire.records": the parent alone passes,
    # the full name is judged.
    return any(name == a or name.startswith(a + ".") or a.startswith(name + ".") for a in allowed)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_respect_the_layers(package):
    breaches = []
    for path in sorted((REPO / package).rglob("*.py")):
        for line, name in _imports(path):
            if name.split(".")[0] not in OURS:
                continue
            if not _allowed(name, ALLOWED[package]):
                breaches.append(f"{path.relative_to(REPO)}:{line} imports {name}")
    assert not breaches, "\n".join(breaches)
