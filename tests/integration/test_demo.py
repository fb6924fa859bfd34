"""`make demo`'s program: its chained exception shows both messages, printed and through `code-wake show`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .helpers import REPO, run_command


def run(args: list[str], data_home: Path) -> str:
    return run_command(args, env={"XDG_DATA_HOME": str(data_home)})


def test_demo_shows_the_cause_with_its_message(tmp_path: Path) -> None:
    """The cause prints as Python prints it, ``__main__.OutOfStock: cake: wanted 5, have 2``."""
    out = run([sys.executable, str(REPO / "examples" / "demo.py")], tmp_path)
    assert "__main__.OutOfStock: cake: wanted 5, have 2\n\nThe above exception was the direct cause" in out
    assert "RuntimeError: checkout of cake failed" in out
    shown = json.loads(run([sys.executable, "-m", "code_wake", "show", "3", "--json"], tmp_path))
    assert shown["exc_chain"] == [["__main__.OutOfStock", "cake: wanted 5, have 2"]]
    assert "__main__.OutOfStock: cake: wanted 5, have 2\n" in shown["traceback"]
