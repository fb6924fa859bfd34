"""The ``code-wake`` command: the analysis door (its commands grow here)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ._version import __version__

__all__ = ["build_parser", "main"]

_EPILOG = """\
The analysis commands (processes, events, show, errors, stats, prune) are
being built; see docs/ for what is there today.

example:
  code-wake --version
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``code-wake`` command."""
    parser = argparse.ArgumentParser(
        prog="code-wake",
        description="Analyse the events code_wake recorded.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"code-wake {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    parser = build_parser()
    parser.parse_args(argv)
    parser.print_help()
    return 0
