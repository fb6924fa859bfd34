"""The SQL package uses only what the core documents for adapter authors.

A ``from code_wake.X import Y`` is allowed where ``Y`` is listed in
``code_wake.X.__all__`` and is not private; no module of the SQL package
imports a private core module (``code_wake._x``).
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

import code_wake_sql14_store

PACKAGE = Path(code_wake_sql14_store.__file__).parent


def _is_core(module: str) -> bool:
    return module == "code_wake" or module.startswith("code_wake.")


def _core_imports(source: str) -> Iterator[tuple[int, str, str | None]]:
    """(line, core module, imported name or None for ``import module``) of each core import."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and _is_core(node.module):
            for alias in node.names:
                yield node.lineno, node.module, alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if _is_core(alias.name):
                    yield node.lineno, alias.name, None


def undocumented_imports(source: str) -> list[str]:
    """What `source` imports from the core beyond the documented names, one line per import."""
    found: list[str] = []
    for line, module, name in _core_imports(source):
        if any(part.startswith("_") for part in module.split(".")):
            found.append(f"line {line}: the private module {module}")
        elif name is not None and (name.startswith("_") or name not in _documented(module)):
            found.append(f"line {line}: {name}, not in {module}.__all__")
    return found


def _documented(module: str) -> tuple[str, ...]:
    return tuple(getattr(importlib.import_module(module), "__all__", ()))


class TestSqlPackageImports:
    @pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda path: path.name)
    def test_module_imports_only_documented_core_names(self, path: Path) -> None:
        """Every core name a module of code_wake_sql14_store imports is in its module's __all__."""
        assert undocumented_imports(path.read_text(encoding="utf-8")) == []

    @pytest.mark.parametrize(
        ("source", "reason"),
        [
            ("from code_wake._fork import ForkGuard", "the private module code_wake._fork"),
            ("import code_wake._report", "the private module code_wake._report"),
            ("from code_wake.store import _live_stores", "_live_stores, not in code_wake.store.__all__"),
            ("from code_wake.query import undocumented", "undocumented, not in code_wake.query.__all__"),
        ],
    )
    def test_check_refuses_what_is_not_documented(self, source: str, reason: str) -> None:
        """The check names a private module, a private name and a name left out of __all__."""
        assert undocumented_imports(source) == [f"line 1: {reason}"]

    def test_check_accepts_documented_names(self) -> None:
        """Names listed in __all__, public modules and the package's own relative imports pass."""
        source = "from code_wake.store import ForkGuard, Store\nimport code_wake.query\nfrom . import _x\n"
        assert undocumented_imports(source) == []
