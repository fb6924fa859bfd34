"""Running real Python programs for integration tests, and reading what they stored."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[2]


def run_python(code: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60) -> str:
    """Run `code` (dedented) as a script in a fresh interpreter; return stdout, fail on error."""
    script = cwd / "program.py"
    script.write_text(textwrap.dedent(code))
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"program failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


def run_command(
    args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> str:
    """Run `args` with this checkout on PYTHONPATH (and `env` added); return stdout, fail on error."""
    done = subprocess.run(
        args,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{args} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


def rows(url: str, sql: str) -> list[tuple[object, ...]]:
    """Rows of a query against the database at `url`."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def values_of(url: str, key: str) -> dict[str, int]:
    """How many events carry each value of `key`, as data rows or through their call site (schema 4)."""
    found = rows(
        url,
        "SELECT val, count(*) FROM ("
        f" SELECT d.val FROM events_data d WHERE d.key = '{key}'"
        " UNION ALL"
        " SELECT s.val FROM events e JOIN call_site_data s ON s.call_site_id = e.call_site_id"
        f" WHERE s.key = '{key}') AS carried GROUP BY val",
    )
    return {str(val): int(str(count)) for val, count in found}
