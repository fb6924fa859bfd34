"""The public API is what the packages' __init__ modules export, and all of it is there."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import code_wake

PUBLIC_MODULES = [
    "code_wake",
    "code_wake.abstract_store",
    "code_wake.test.conftest",
    "code_wake.test.store",
    "code_wake.utils",
    "code_wake.config",
    "code_wake.errors",
    "code_wake.event",
    "code_wake.logging",
    "code_wake.query",
    "code_wake.queue_store",
    "code_wake.records",
    "code_wake.stack_trace",
    "code_wake.store",
    "code_wake.structlog",
    "code_wake.testing",
    "code_wake.web",
    "code_wake_sql14_store",
]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_names_exist(name: str) -> None:
    """Every name in __all__ can be imported from its module."""
    module = importlib.import_module(name)
    assert module.__all__, f"{name} declares no __all__"
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert not missing


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_no_public_name_left_out(name: str) -> None:
    """Every public class or function the module (or, for a package, its submodules) defines is in __all__."""
    module = importlib.import_module(name)
    public = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_") and (isinstance(v, type) or callable(v)) and _defined_under(v, name)
    }
    assert public <= set(module.__all__)


def _defined_under(value: object, module_name: str) -> bool:
    defined_in = getattr(value, "__module__", None) or ""
    return defined_in == module_name or defined_in.startswith(module_name + ".")


def test_version_matches_the_command() -> None:
    """`code-wake --version` and `python -m code_wake --version` report the package version."""
    console_script = str(Path(sys.executable).with_name("code-wake"))
    for command in ([console_script], [sys.executable, "-m", "code_wake"]):
        done = subprocess.run([*command, "--version"], capture_output=True, text=True, check=True)
        assert done.stdout.strip() == f"code-wake {code_wake.__version__}"
    assert re.fullmatch(r"\d+\.\d+\.\d+(\.dev\d+)?", code_wake.__version__)


def test_help_ends_with_an_example() -> None:
    """The command's help ends with an example, as every command's will."""
    done = subprocess.run(
        [sys.executable, "-m", "code_wake", "--help"], capture_output=True, text=True, check=True
    )
    assert done.stdout.rstrip().splitlines()[-1].strip().startswith("code-wake ")
