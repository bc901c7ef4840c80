"""Dependencies point one way: wire <- storage <- server. A test, so a slip fails CI.

Every module of ours is named under the one import name `ottla`; compat/ (test tooling, run from
the checkout) reaches the broker only over a socket.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FACADE = ("__init__.py", "__main__.py", "testing.py", "pytest_plugin.py")

# folder -> the modules of ours it may import (a prefix match on the dotted name).
ALLOWED = {
    "wire": ("ottla.wire",),
    "storage": ("ottla.storage", "ottla.wire.records", "ottla.wire.errors"),
    "server": ("ottla.server", "ottla.storage", "ottla.wire"),
    # compat drives the broker over sockets only; it never imports the broker itself.
    "compat": ("compat", "ottla.wire", "ottla.storage"),
}
# Imports no module of a folder may make, whatever else it may.
FORBIDDEN = {
    "wire": ("asyncio", "socket"),
    "storage": ("asyncio", "socket"),
}

# Coordinators stand on one runtime, server/coordinator, and never on each other: the broker
# wires them together. The runtime itself knows no coordinator.
COORDINATORS = {"server/groups": "ottla.server.groups", "server/txn": "ottla.server.txn"}

# The admin client is a Kafka client like any other: it reaches brokers through wire/ alone,
# and of the broker only its command line (server/cli.py) may reach it.
ADMIN = "ottla.server.admin"
ADMIN_MAY_IMPORT = ("ottla.wire", ADMIN)


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


def _matches(name: str, prefixes: tuple[str, ...]) -> bool:
    # "from ottla.wire import records" shows as "ottla.wire" and "ottla.wire.records": the parent
    # alone passes, the full name is judged.
    return any(name == a or name.startswith(a + ".") or a.startswith(name + ".") for a in prefixes)


def _ours(name: str) -> bool:
    return name.split(".")[0] in ("ottla", "compat", "server", "storage", "wire")


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_respect_the_layers(package):
    breaches = []
    for path in sorted((REPO / package).rglob("*.py")):
        for line, name in _imports(path):
            if _ours(name) and not _matches(name, ALLOWED[package]):
                breaches.append(f"{path.relative_to(REPO)}:{line} imports {name}")
            if _matches(name, FORBIDDEN.get(package, ())) and name.split(".")[0] in FORBIDDEN[package]:
                breaches.append(f"{path.relative_to(REPO)}:{line} imports {name}")
    assert not breaches, "\n".join(breaches)


@pytest.mark.parametrize("folder", ["server/coordinator", *sorted(COORDINATORS)])
def test_coordinators_import_the_runtime_not_each_other(folder):
    others = tuple(name for other, name in COORDINATORS.items() if other != folder)
    breaches = []
    uses_runtime = False
    for path in sorted((REPO / folder).rglob("*.py")):
        for line, name in _imports(path):
            uses_runtime |= name == "ottla.server.coordinator" or name.startswith("ottla.server.coordinator.")
            if any(name == other or name.startswith(other + ".") for other in others):
                breaches.append(f"{path.relative_to(REPO)}:{line} imports {name}")
    assert not breaches, "\n".join(breaches)
    assert uses_runtime or folder not in COORDINATORS, f"{folder} does not stand on ottla.server.coordinator"


def test_the_admin_client_needs_only_wire_and_the_broker_never_imports_it():
    breaches = []
    for path in sorted((REPO / "server").rglob("*.py")):
        relative = path.relative_to(REPO).as_posix()
        in_admin = relative.startswith("server/admin/")
        for line, name in _imports(path):
            if in_admin and _ours(name) and not _matches(name, ADMIN_MAY_IMPORT):
                breaches.append(f"{relative}:{line} imports {name}")
            if not in_admin and relative != "server/cli.py" and (name == ADMIN or name.startswith(ADMIN + ".")):
                breaches.append(f"{relative}:{line} imports {name}")
    assert not breaches, "\n".join(breaches)


def test_only_the_facade_lives_at_the_root():
    """The repository root is the `ottla` package: only its small public face is code there."""
    assert sorted(path.name for path in REPO.glob("*.py")) == sorted(FACADE)


def test_modules_import_ours_by_the_one_name():
    """`import server` would load a second copy of a module beside `ottla.server`."""
    strays = []
    for folder in ("wire", "storage", "server", "compat", "tests"):
        for path in sorted((REPO / folder).rglob("*.py")):
            for line, name in _imports(path):
                if name.split(".")[0] in ("server", "storage", "wire"):
                    strays.append(f"{path.relative_to(REPO)}:{line} imports {name}")
    assert not strays, "\n".join(strays)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["ottla", *parts])


def test_no_module_imports_itself_back():
    """No import circle among our modules, counting imports inside functions and under
    TYPE_CHECKING too: a circle held together by a lazy import is still a circle."""
    modules = {_module_name(path): path for folder in ("wire", "storage", "server") for path in (REPO / folder).rglob("*.py")}

    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {
        module: {target for _, name in _imports(path) if (target := owner(name)) not in (None, module)}
        for module, path in modules.items()
    }
    circles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                circles.append(" -> ".join([*path[path.index(target):], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not circles, "\n".join(circles)
