"""pycodewake 0.2.2's tables on SQLite, PostgreSQL and MySQL/MariaDB, and rows in its format.

For the upgrade tests (test_upgrade.py): `create_old_layout` makes the tables
from pycodewake's exact DDL (tests/data/pycodewake-0.2.2-schema.sql, what
SQLAlchemy 1.4 emitted for its metadata on SQLite), translated for the
servers; `copy_rows` fills them with the rows of the database pycodewake 0.2.2
wrote; `fill_old_history` with many generated rows in the same format.

pycodewake 0.2.2 itself could not create its tables on the servers: its
metadata has ``sa.BINARY`` (no such type on PostgreSQL: "type binary does not
exist") and length-less ``sa.String`` (SQLAlchemy 1.4 refuses it on MySQL:
"VARCHAR requires a length"). The translation is SQLAlchemy 1.4's own DDL for
those dialects (checked against SQLAlchemy 1.4.54) with only what a user had
to change to make it run, marked ``SUBSTITUTED`` below; MySQL's single
precision ``FLOAT`` and the server's default charset and collation are kept,
as SQLAlchemy 1.4 emitted no table options.

Run as a program to build a big old database for a manual or bench run::

    python -m tests.integration.old_layout /tmp/old.sqlite --events 1000000 --traces 2000
"""

from __future__ import annotations

import argparse
import random
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from code_wake.event import data_digest
from code_wake.stack_trace import RawFrame, trace_digest

DATA = Path(__file__).resolve().parents[1] / "data"
OLD_SCHEMA = DATA / "pycodewake-0.2.2-schema.sql"
COMPAT_DATABASE = DATA / "pycodewake-0.2.2.sqlite"

OLD_TABLES = (
    "environments",
    "apps",
    "stacktraces",
    "app_vsns",
    "stackframes",
    "processes",
    "events",
    "events_data",
)
"""pycodewake's tables, each after the ones it refers to (the order of its DDL)."""

OLD_COLUMNS = {
    "environments": ("id", "name"),
    "apps": ("id", "name"),
    "stacktraces": ("id", "digest"),
    "app_vsns": ("id", "vsn", "app_id"),
    "stackframes": ("id", "stacktrace_id", "filename", "lineno", "src"),
    "processes": (
        "id",
        "run_ts",
        "environment_id",
        "pid",
        "username",
        "fqdn",
        "exe_path",
        "app_id",
        "app_vsn_id",
    ),
    "events": ("id", "when_ts", "process_id", "digest", "stacktrace_id"),
    "events_data": ("id", "key", "val", "event_id"),
}
"""Each table's columns, in the order of the DDL."""
FLOATS = ("run_ts", "when_ts")
"""The FLOAT columns (epoch seconds)."""

# The type of each DDL type per server dialect. SQLAlchemy 1.4 emits INTEGER, VARCHAR,
# FLOAT and BINARY as they are on both; where that cannot run, the nearest that can.
_TYPES = {
    "postgresql": {
        "INTEGER": "INTEGER",
        "VARCHAR": "VARCHAR",  # unbounded on PostgreSQL
        "FLOAT": "FLOAT",  # double precision on PostgreSQL
        "BINARY": "BYTEA",  # SUBSTITUTED: PostgreSQL has no BINARY; BYTEA is SQLAlchemy's binary there
    },
    "mysql": {
        "INTEGER": "INTEGER",
        "VARCHAR": "VARCHAR(255)",  # SUBSTITUTED: MySQL requires a length
        "FLOAT": "FLOAT",  # single precision, as SQLAlchemy 1.4 created it
        "BINARY": "BINARY(32)",  # SUBSTITUTED: BINARY alone is BINARY(1); a sha256 needs 32
    },
}
# SQLAlchemy 1.4's autoincrementing integer primary key on each dialect.
_SERIAL_ID = {
    "postgresql": "id SERIAL NOT NULL,",
    "mysql": "id INTEGER NOT NULL AUTO_INCREMENT,",
}
_COLUMN = re.compile(r'^(?P<indent>\s+)(?P<name>"?\w+"?) (?P<type>[A-Z]+)(?P<rest>( NOT NULL)?,)\s*$')
_MYSQL_DIALECTS = ("mysql", "mariadb")


def old_ddl(dialect: str) -> list[str]:
    """pycodewake's CREATE TABLE statements for `dialect` (sqlite: the file's own, unchanged)."""
    statements = [s.strip() for s in OLD_SCHEMA.read_text().split(";") if s.strip()]
    if dialect == "sqlite":
        return statements
    kind = "mysql" if dialect in _MYSQL_DIALECTS else dialect
    return [_translate(statement, kind) for statement in statements]


def _translate(statement: str, kind: str) -> str:
    lines = []
    for line in statement.splitlines():
        column = _COLUMN.match(line)
        if column is None:
            if line.strip().startswith(("CREATE TABLE", "PRIMARY KEY", "UNIQUE", "FOREIGN KEY", ")")):
                lines.append(line.rstrip())
                continue
            raise ValueError(f"unexpected line in the pycodewake DDL: {line!r}")
        name = column["name"]
        if kind == "mysql" and name.startswith('"'):
            name = f"`{name.strip(chr(34))}`"
        if name == "id":
            lines.append(column["indent"] + _SERIAL_ID[kind])
        else:
            lines.append(f"{column['indent']}{name} {_TYPES[kind][column['type']]}{column['rest']}")
    return "\n".join(lines)


def create_old_layout(conn: sa.Connection) -> None:
    """Create pycodewake's eight tables (and nothing else) through `conn`."""
    for statement in old_ddl(conn.dialect.name):
        conn.exec_driver_sql(statement)


def old_table(name: str) -> sa.TableClause:
    """One of pycodewake's tables with only its columns, untyped: values pass as the driver has them."""
    return sa.table(name, *(sa.column(column) for column in OLD_COLUMNS[name]))


def read_rows(conn: sa.Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of pycodewake's columns, by table, in id order (only its columns, even after an upgrade)."""
    result: dict[str, list[tuple[Any, ...]]] = {}
    for name in OLD_TABLES:
        table = old_table(name)
        columns: list[sa.ColumnElement[Any]] = list(table.c)
        if conn.dialect.name in _MYSQL_DIALECTS:
            # MySQL sends a FLOAT printed to 6 digits; times as DOUBLE are the stored values.
            columns = [c * sa.literal_column("1e0") if c.name in FLOATS else c for c in columns]
        query = sa.select(*columns).order_by(table.c.id)
        result[name] = [tuple(_plain(v) for v in row) for row in conn.execute(query)]
    return result


def _plain(value: Any) -> Any:
    # psycopg returns BYTEA as memoryview.
    return bytes(value) if isinstance(value, memoryview) else value


def copy_rows(source: Path, conn: sa.Connection) -> None:
    """Insert every row of the pycodewake SQLite file at `source` (a copy) through `conn`, ids kept."""
    with sqlite3.connect(source) as db:
        rows = {
            name: [
                dict(zip(OLD_COLUMNS[name], row, strict=True))
                for row in db.execute(f"SELECT {', '.join(map(_sqlite_name, OLD_COLUMNS[name]))} FROM {name}")
            ]
            for name in OLD_TABLES
        }
    db.close()
    insert_rows(conn, rows)


def _sqlite_name(column: str) -> str:
    return f'"{column}"'


def insert_rows(conn: sa.Connection, rows: dict[str, list[dict[str, Any]]]) -> None:
    """Insert rows (explicit ids) into the old tables; the id sequences then continue after them."""
    for name in OLD_TABLES:
        for start in range(0, len(rows.get(name, [])), 5_000):
            conn.execute(sa.insert(old_table(name)), rows[name][start : start + 5_000])
    if conn.dialect.name == "postgresql":
        # Ids given explicitly leave a SERIAL's sequence behind; pycodewake's came from it.
        for name in OLD_TABLES:
            conn.execute(
                sa.text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), max(id)) FROM {name}")
            )


# -- a generated history ------------------------------------------------------------------------

DAY = 86_400
EPOCH = 1_700_000_000.25
"""When the generated history starts (2023-11-14 22:13 UTC, not a midnight)."""

APPS = ("shop", "billing", "cron")
ENVIRONMENTS = ("production", "staging")
# The version rows, as pycodewake left them: it looked versions up by string alone, so the
# first app to log "1.0" and "1.1" owns them and later apps share its rows (billing 1.0 and
# cron 1.1 below); two billing processes starting together both inserted "2.0" (no
# constraint stopped them), so billing's 2.0 has two rows.
APP_VSNS = ((1, "1.0", 1), (2, "1.1", 1), (3, "2.0", 2), (4, "2.0", 2))
# (app, version, environment, version row pycodewake gave it)
PROCESS_KINDS = (
    ("shop", "1.0", "production", 1),
    ("shop", "1.1", "staging", 2),
    ("billing", "1.0", "production", 1),  # shop's row: the cross-app bug
    ("billing", "2.0", "production", 3),
    ("billing", "2.0", "staging", 4),  # the duplicate row
    ("cron", "1.1", "production", 2),  # shop's row: the cross-app bug
    ("cron", None, None, None),
)
KINDS = ("order", "refund", "login", "fault", "sync")
CUSTOMERS = 40


@dataclass
class OldHistory:
    """What `fill_old_history` wrote, as plain values for the tests to count with."""

    events: int = 0
    data_rows: int = 0
    frames: dict[int, list[tuple[str, int, str]]] = field(default_factory=dict)
    """Each trace's frames (filename, lineno, src), outermost first, by trace id."""
    processes: dict[int, tuple[str, str | None, str | None]] = field(default_factory=dict)
    """Each process's (app, version, environment) as the program gave them."""


def old_traces(count: int) -> list[list[tuple[str, int, str]]]:
    """`count` distinct stack traces, outermost frame first; the first is the compat file's fault."""
    fault = [("shop/orders.py", 21, "fail_deep(3)")]
    fault += [("shop/orders.py", 7, "fail_deep(n - 1)")] * 3
    fault += [("shop/orders.py", 6, 'raise ValueError("stock exhausted")')]
    traces = [fault]
    for n in range(1, count):
        depth = 1 + n % 7
        frames = [(f"app/mod{(n + k) % 13}.py", 10 + k * 3 + n % 5, f"step_{n}_{k}()") for k in range(depth)]
        if n % 11 == 0:
            frames.insert(0, ("<string>", 1, ""))  # no source, as pycodewake stored it
        if n % 17 == 0:
            frames[-1] = (frames[-1][0], frames[-1][1], f"raise Fehler('größe {n}')")
        traces.append(frames)
    return traces


def history_rows(
    events: int, traces: int, seed: int = 0
) -> tuple[dict[str, list[dict[str, Any]]], OldHistory]:
    """Rows of a pycodewake database with `events` events and `traces` stack traces, and a summary."""
    rng = random.Random(seed)
    history = OldHistory()
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in OLD_TABLES}
    rows["environments"] = [{"id": i, "name": n} for i, n in enumerate(ENVIRONMENTS, 1)]
    rows["apps"] = [{"id": i, "name": n} for i, n in enumerate(APPS, 1)]
    rows["app_vsns"] = [{"id": i, "vsn": v, "app_id": a} for i, v, a in APP_VSNS]
    frame_id = 0
    for trace_id, frames in enumerate(old_traces(traces), 1):
        digest = trace_digest([RawFrame(f, n, None, s) for f, n, s in frames])
        rows["stacktraces"].append({"id": trace_id, "digest": digest})
        for filename, lineno, src in frames:
            frame_id += 1
            rows["stackframes"].append(
                {
                    "id": frame_id,
                    "stacktrace_id": trace_id,
                    "filename": filename,
                    "lineno": lineno,
                    "src": src,
                }
            )
        history.frames[trace_id] = frames
    process_count = 3 * len(PROCESS_KINDS)
    for process_id in range(1, process_count + 1):
        app, vsn, env, vsn_id = PROCESS_KINDS[(process_id - 1) % len(PROCESS_KINDS)]
        rows["processes"].append(
            {
                "id": process_id,
                "run_ts": EPOCH + process_id * 61.5,
                "environment_id": None if env is None else ENVIRONMENTS.index(env) + 1,
                "pid": 1000 + process_id,
                "username": "svc",
                "fqdn": f"host{process_id % 3}.example.org",
                "exe_path": f"/srv/{app}/main.py",
                "app_id": APPS.index(app) + 1,
                "app_vsn_id": vsn_id,
            }
        )
        history.processes[process_id] = (app, vsn, env)
    span = 9 * DAY + 5 * 3600.0
    times = sorted(EPOCH + rng.random() * span for _ in range(events))
    data_id = 0
    for event_id, when_ts in enumerate(times, 1):
        kind = KINDS[rng.randrange(len(KINDS))]
        pairs: list[tuple[str, str]] = []
        if event_id % 10:
            pairs = [("event", kind), ("customer", f"c{rng.randrange(CUSTOMERS)}")]
            if event_id % 3 == 0:
                pairs.append(("n", str(event_id)))
        event_trace: int | None = None
        if kind == "fault" or event_id % 9 == 0:
            event_trace = 1 + int(traces * rng.random() ** 3)  # a few traces are far more frequent
        rows["events"].append(
            {
                "id": event_id,
                "when_ts": when_ts,
                "process_id": 1 + rng.randrange(process_count),
                "digest": data_digest(tuple(pairs)),
                "stacktrace_id": event_trace,
            }
        )
        for key, val in pairs:
            data_id += 1
            rows["events_data"].append({"id": data_id, "key": key, "val": val, "event_id": event_id})
    history.events, history.data_rows = events, data_id
    return rows, history


def fill_old_history(conn: sa.Connection, events: int, traces: int, seed: int = 0) -> OldHistory:
    """Fill pycodewake's (empty) tables with a generated history; return its summary."""
    rows, history = history_rows(events, traces, seed)
    insert_rows(conn, rows)
    return history


def build_old_sqlite(path: Path, events: int, traces: int, seed: int = 0) -> OldHistory:
    """A new SQLite file at `path` with pycodewake's exact DDL and a generated history."""
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            create_old_layout(conn)
            return fill_old_history(conn, events, traces, seed)
    finally:
        engine.dispose()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build a pycodewake 0.2.2 SQLite database.")
    parser.add_argument("path", type=Path, help="the new file (must not exist)")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--traces", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.path.exists():
        parser.error(f"{args.path} exists")
    history = build_old_sqlite(args.path, args.events, args.traces, args.seed)
    print(f"{args.path}: {history.events} events, {history.data_rows} data rows, {args.traces} traces")


if __name__ == "__main__":
    main()
