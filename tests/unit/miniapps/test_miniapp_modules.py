"""How a built-in mini-app's modules depend on each other: its rules are pure (they import the standard
library only: no database, no web framework, no clock but the one passed in), nothing but the package's
``__init__`` imports its ``app.py`` (so ``app.py`` and ``routes.py`` make no circle), and no module
imports inside a function (the way a cycle used to be hidden)."""

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BUILT_IN = sorted(d for d in (ROOT / "miniapps").iterdir() if (d / "__init__.py").is_file())


def imports(tree: ast.AST) -> list[tuple[int, str]]:
    """``(line, name)`` of everything imported: ``a.b`` for ``import a.b`` and ``from a import b``,
    ``.app.X`` for ``from .app import X``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            joint = "" if base.endswith(".") else "."
            found += [(node.lineno, f"{base}{joint}{alias.name}") for alias in node.names]
    return found


@pytest.mark.parametrize("app", BUILT_IN, ids=lambda d: d.name)
def test_rules_import_the_standard_library_only(app):
    rules = app / "rules.py"
    assert rules.is_file(), f"{app.name} states its rules in rules.py"
    outside = [
        f"{line}: {name}"
        for line, name in imports(ast.parse(rules.read_text()))
        if name.split(".")[0] not in sys.stdlib_module_names and name != "__future__"
    ]
    assert outside == []


@pytest.mark.parametrize("app", BUILT_IN, ids=lambda d: d.name)
def test_only_the_package_imports_its_app_module(app):
    own_app = f"miniapps.{app.name}.app"
    importers = [
        f"{path.name}:{line}"
        for path in sorted(app.rglob("*.py"))
        if path.name not in ("__init__.py", "app.py")
        for line, name in imports(ast.parse(path.read_text()))
        if any(name == a or name.startswith(a + ".") for a in (own_app, ".app"))
    ]
    assert importers == []


@pytest.mark.parametrize("app", BUILT_IN, ids=lambda d: d.name)
def test_no_import_inside_a_function(app):
    inside = []
    for path in sorted(app.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                inside += [
                    f"{path.name}:{inner.lineno}"
                    for inner in ast.walk(node)
                    if isinstance(inner, ast.Import | ast.ImportFrom)
                ]
    assert inside == []
