"""A handler never reads with `[...]` a request field that some version it serves lacks.

The generated request TypedDicts mark such fields `NotRequired`; mypy does not flag indexing one
(python/mypy#12094), so this test does, following the request and the structs reached from it by
`for item in parent["field"]` loops, and by assignments `name = parent["field"]`. A field read by
`[...]` must be present in every served version; others are read with `.get` (a default) or in a
branch chosen by the version, as a `KeyError` there would be a crash on an old client's request.
"""

from __future__ import annotations

import ast
import importlib
import typing
from pathlib import Path

import pytest

from ottla.server.handlers import SERVED, module_name
from ottla.wire.messages import types as message_types

REPO = Path(__file__).resolve().parents[1]
MODULES = sorted(module_name(api) for api in SERVED)


def _typed_dict(annotation: object) -> type | None:
    """The TypedDict an annotation is, or is a list of."""
    if typing.get_origin(annotation) is list:
        (annotation,) = typing.get_args(annotation)
    return annotation if isinstance(annotation, type) and hasattr(annotation, "__optional_keys__") else None


def _optional_keys(owner: type) -> set[str]:
    """Keys marked NotRequired (the generated module's postponed annotations hide them from
    `__optional_keys__`, so they are read from the resolved hints)."""
    hints = typing.get_type_hints(owner, include_extras=True)
    return {key for key, annotation in hints.items() if typing.get_origin(annotation) is typing.NotRequired}


def _field_type(owner: type, key: str) -> type | None:
    hints = typing.get_type_hints(owner)
    annotation = hints.get(key)
    for arg in typing.get_args(annotation) or ():
        if _typed_dict(arg) is not None:
            return _typed_dict(arg)
    return _typed_dict(annotation)


def _subscript_key(node: ast.AST) -> tuple[str, str] | None:
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
        return node.value.id, node.slice.value
    return None


def _mentions_version(test: ast.AST) -> bool:
    return any(
        "version" in (node.id if isinstance(node, ast.Name) else node.attr)
        for node in ast.walk(test)
        if isinstance(node, (ast.Name, ast.Attribute))
    )


def _returns_early_by_version(statement: ast.stmt) -> bool:
    return isinstance(statement, ast.If) and _mentions_version(statement.test) and isinstance(statement.body[-1], ast.Return)


def _guarded(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Whether the read sits in a branch chosen by the request's version: inside one, or after
    an `if <version test>: ... return` in the same block."""
    while node in parents:
        parent = parents[node]
        if isinstance(parent, (ast.If, ast.IfExp)) and node is not parent.test and _mentions_version(parent.test):
            return True
        for block in (getattr(parent, "body", None), getattr(parent, "orelse", None)):
            if isinstance(block, list) and node in block and any(map(_returns_early_by_version, block[: block.index(node)])):
                return True
        node = parent
    return False


def _violations(module_name: str) -> list[str]:
    module = importlib.import_module(module_name)
    # The handlers import their message types for type checking only: resolve names in them.
    request_type = typing.get_type_hints(module.handle, localns=vars(message_types)).get("request")
    if _typed_dict(request_type) is None:
        return []
    path = Path(module.__file__)
    tree = ast.parse(path.read_text())
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
    found = []
    for function in (node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)):
        known: dict[str, type] = {}
        hints = {arg.arg: arg.annotation for arg in function.args.args}
        for name, annotation in hints.items():
            if annotation is not None and ast.unparse(annotation) == request_type.__name__:
                known[name] = request_type
        for node in ast.walk(function):
            target, source = None, None
            if isinstance(node, ast.For) and isinstance(node.target, ast.Name):
                target, source = node.target.id, node.iter
            elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                target, source = node.targets[0].id, node.value
            key = _subscript_key(source) if source is not None else None
            if target and key and key[0] in known:
                child = _field_type(known[key[0]], key[1])
                if child is not None:
                    known[target] = child
        for node in ast.walk(function):
            key = _subscript_key(node)
            if key and key[0] in known and key[1] in _optional_keys(known[key[0]]) and isinstance(node.ctx, ast.Load) and not _guarded(node, parents):
                found.append(f"{path.relative_to(REPO)}:{node.lineno} reads {key[0]}[{key[1]!r}], which some served version lacks")
    return found


@pytest.mark.parametrize("module_name", MODULES)
def test_handlers_read_version_dependent_fields_with_get(module_name: str) -> None:
    assert not _violations(module_name)
