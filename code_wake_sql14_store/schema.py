"""The tables of a code_wake database: pycodewake 0.2's layout, plus what we add.

The eight tables and their columns are the original's, so a database it wrote
opens here (see `code_wake_sql14_store._migrate`). Added: the function name of
a stack frame, the exception type and message of an event, versions unique per
app, the secondary indexes the original declared but never created, and the
``code_wake_schema`` table recording the schema version (1). Schema 2 added,
for the analysis queries: copies of the process's app, version and
environment on each event and of the event's time on each data row (so that
one index serves a filter and the newest-first order together), and the
``event_counts`` summary table (events per hour and per day, by app, version,
environment, stack trace and exception type) that trace groups and daily
counts read instead of every event. Schema 3 added the messages of chained
exceptions (``events.exc_chain``). Schema 4 stores what every log record from
one line of code repeats (its logger, level, template, module, function and
line) once, as a call site (``call_sites`` and its items, ``call_site_data``),
which each event refers to (``events.call_site_id``); see
`code_wake_sql14_store._call_sites`.

Types are chosen to mean the same on SQLite, PostgreSQL and MySQL/MariaDB:
timestamps are double precision (MySQL's FLOAT is single precision, which
rounds epoch seconds to minutes), every indexed string has a length (MySQL
cannot index unbounded text), and long text is MEDIUMTEXT on MySQL (its TEXT
stops at 64 KB).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

__all__ = [
    "ALL_TIME",
    "COUNT_SPANS",
    "EVENT_REFERENCES",
    "LONG_TEXT_LIMIT",
    "MYSQL_DIALECTS",
    "NAME_LENGTH",
    "SCHEMA_VERSION",
    "TEXT_LIMIT",
    "VAL_PREFIX_LENGTH",
    "app_vsns",
    "apps",
    "call_site_data",
    "call_sites",
    "environments",
    "event_counts",
    "events",
    "events_data",
    "metadata",
    "processes",
    "schema_version",
    "stackframes",
    "stacktraces",
]

SCHEMA_VERSION = 4
"""The schema this code writes; 0 is pycodewake 0.2's (no version table), 1 had no event_counts,
2 no ``events.exc_chain``, 3 no call sites."""

NAME_LENGTH = 255
"""Characters of an indexed string (names, versions, data keys, exception types); longer ones are cut."""

TEXT_LIMIT = 16_000
"""Characters kept of an unindexed text (file names, source lines, paths): MySQL TEXT holds 64 KB."""

LONG_TEXT_LIMIT = 4_000_000
"""Characters kept of a data value or exception message: MySQL MEDIUMTEXT holds 16 MB."""

VAL_PREFIX_LENGTH = 200
"""Characters of a data value in the (key, value) index on SQLite and PostgreSQL.

PostgreSQL refuses btree entries over about 2.7 KB, so the index holds a prefix
and queries compare both the prefix (to use the index) and the whole value.
"""

MYSQL_PREFIX_LENGTH = 191
"""Characters of key and value in MySQL's prefix index (191 x 4 bytes fits the old 767-byte limit)."""

MYSQL_DIALECTS = ("mysql", "mariadb")
"""Dialect names of MySQL and MariaDB (``mariadb://`` URLs get their own name)."""

# Both prefixes: a "mariadb://" URL reads only mariadb_* options, a "mysql://" one mysql_*.
_MYSQL_TABLE: dict[str, Any] = {
    f"{prefix}_{option}": value
    for prefix in MYSQL_DIALECTS
    for option, value in (("engine", "InnoDB"), ("charset", "utf8mb4"), ("collate", "utf8mb4_bin"))
}
# utf8mb4_bin: the default collation compares case-insensitively, which would
# merge app "Shop" with "shop" and make data queries ignore case.

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""Ids of the big tables; on SQLite only INTEGER PRIMARY KEY is the autoincrementing rowid."""

Timestamp: sa.Double[float] = sa.Double()
"""Epoch seconds; sa.Double is DOUBLE PRECISION everywhere (never MySQL's 4-byte FLOAT)."""

Digest = sa.LargeBinary(32).with_variant(mysql.BINARY(32), *MYSQL_DIALECTS)
"""A sha256; MySQL's BLOB cannot carry a unique index without a prefix, BINARY(32) can."""

LongText = sa.Text().with_variant(mysql.MEDIUMTEXT(), *MYSQL_DIALECTS)
"""Data values and exception messages (the default limit is 8 KB, configurable higher)."""

Name = sa.String(NAME_LENGTH)
"""A bounded, indexable string."""

metadata = sa.MetaData()
"""All tables of a code_wake database."""

environments = sa.Table(
    "environments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", Name, nullable=False, unique=True),
    **_MYSQL_TABLE,
)

apps = sa.Table(
    "apps",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", Name, nullable=False, unique=True),
    **_MYSQL_TABLE,
)

app_vsns = sa.Table(
    "app_vsns",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("vsn", Name, nullable=False),
    sa.Column("app_id", sa.Integer, sa.ForeignKey("apps.id"), nullable=False),
    # An index, not a table constraint: SQLite cannot ALTER TABLE ADD CONSTRAINT,
    # and a pycodewake database gets it added when opened.
    sa.Index("uq_app_vsns_app_id_vsn", "app_id", "vsn", unique=True),
    **_MYSQL_TABLE,
)

stacktraces = sa.Table(
    "stacktraces",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("digest", Digest, nullable=False, unique=True),
    **_MYSQL_TABLE,
)

stackframes = sa.Table(
    "stackframes",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("stacktrace_id", sa.Integer, sa.ForeignKey("stacktraces.id"), nullable=False),
    sa.Column("filename", sa.Text, nullable=False),
    sa.Column("lineno", sa.Integer, nullable=False),
    sa.Column("src", sa.Text),
    sa.Column("function", sa.Text),
    sa.Index("ix_stackframes_stacktrace_id", "stacktrace_id"),
    **_MYSQL_TABLE,
)

processes = sa.Table(
    "processes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("run_ts", Timestamp, nullable=False),
    sa.Column("environment_id", sa.Integer, sa.ForeignKey("environments.id")),
    sa.Column("pid", sa.Integer),
    sa.Column("username", Name),
    sa.Column("fqdn", Name),
    sa.Column("exe_path", sa.Text),
    sa.Column("app_id", sa.Integer, sa.ForeignKey("apps.id"), nullable=False),
    sa.Column("app_vsn_id", sa.Integer, sa.ForeignKey("app_vsns.id")),
    sa.Index("ix_processes_app_id_run_ts", "app_id", "run_ts"),
    sa.Index("ix_processes_run_ts", "run_ts"),
    **_MYSQL_TABLE,
)


def _where_set(name: str, column: str) -> sa.Index:
    """An index on (`column`, time) of the events where `column` is set (schema 4; all events on MySQL).

    Most events have no stack trace, no exception, often no version, no
    environment or no call site: an index of only the others costs those
    events nothing to write or to store. Every query that goes through one
    compares the column with a value, which tells SQLite and PostgreSQL that
    it is set. MySQL has no partial indexes: it indexes every event.
    """
    where = sa.text(f"{column} IS NOT NULL")
    return sa.Index(name, column, "when_ts", sqlite_where=where, postgresql_where=where)


call_sites = sa.Table(
    "call_sites",
    metadata,
    # A call site's items, stored once (schema 4): the sha256 of its items (`_call_sites.site_digest`).
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("digest", Digest, nullable=False, unique=True),
    **_MYSQL_TABLE,
)

call_site_data = sa.Table(
    "call_site_data",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("call_site_id", sa.Integer, sa.ForeignKey("call_sites.id"), nullable=False),
    # Where the item stands among the data of each event of the site (0 first).
    sa.Column("pos", sa.Integer, nullable=False),
    sa.Column("key", Name, nullable=False),
    sa.Column("val", LongText),
    sa.Index("ix_call_site_data_call_site_id", "call_site_id"),
    **_MYSQL_TABLE,
)


def _is_not_postgresql(
    ddl: object, target: object, bind: object, tables: object = None, state: object = None, **kw: Any
) -> bool:
    """ddl_if test: is the DDL for anything but PostgreSQL?"""
    return bool(kw["dialect"].name != "postgresql")


EVENT_REFERENCES = (
    ("process_id", "processes"),
    ("stacktrace_id", "stacktraces"),
    ("call_site_id", "call_sites"),
)
"""The columns of ``events`` that refer to another table's row, and that table (keys but on PostgreSQL)."""


events = sa.Table(
    "events",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("when_ts", Timestamp, nullable=False),
    sa.Column("process_id", sa.Integer, nullable=False),
    sa.Column("digest", Digest),
    sa.Column("stacktrace_id", sa.Integer),
    sa.Column("exc_type", Name),
    sa.Column("exc_message", LongText),
    # Schema 3: the chained exceptions' types and messages, as JSON (beside the trace, whose
    # digest must not depend on messages); null without a chain.
    sa.Column("exc_chain", LongText),
    # Copies of the process's (schema 2), so that a filter by app, version or environment
    # is one index range in time order. No foreign keys: the process's own cover them,
    # and each would cost a lookup per inserted event.
    sa.Column("app_id", sa.Integer),
    sa.Column("app_vsn_id", sa.Integer),
    sa.Column("environment_id", sa.Integer),
    # The event's call site (schema 4), whose items are part of its data; null: it has none.
    sa.Column("call_site_id", sa.Integer),
    # Foreign keys but on PostgreSQL, which checks one by reading and share-locking the row
    # it refers to for every event written: half of the INSERT's time. The writer locks
    # each row its batch refers to once instead (`_references`); docs/stores.md, "Foreign keys".
    *(
        sa.ForeignKeyConstraint([column], [f"{table}.id"]).ddl_if(callable_=_is_not_postgresql)
        for column, table in EVENT_REFERENCES
    ),
    sa.Index("ix_events_process_id_when_ts", "process_id", "when_ts"),
    sa.Index("ix_events_when_ts", "when_ts"),
    _where_set("ix_events_stacktrace_id", "stacktrace_id"),
    _where_set("ix_events_exc_type_when_ts", "exc_type"),
    sa.Index("ix_events_app_id_when_ts", "app_id", "when_ts"),
    _where_set("ix_events_app_vsn_id_when_ts", "app_vsn_id"),
    _where_set("ix_events_environment_id_when_ts", "environment_id"),
    _where_set("ix_events_call_site_id_when_ts", "call_site_id"),
    **_MYSQL_TABLE,
)

events_data = sa.Table(
    "events_data",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("key", Name, nullable=False),
    sa.Column("val", LongText),
    # No foreign key to events.id: a batch writes an event and its data rows in one
    # transaction, and prune deletes the rows before their event, so none is ever an
    # orphan; PostgreSQL checked the key by reading and share-locking the event for
    # every data row, a quarter of a batch's time (docs/stores.md, "Foreign keys").
    sa.Column("event_id", Id, nullable=False),
    # The event's time (schema 2): the (key, value) index holds it, so that the
    # newest events carrying a term come first from the index, without a sort.
    sa.Column("when_ts", Timestamp),
    sa.Index("ix_events_data_event_id", "event_id"),
    **_MYSQL_TABLE,
)

ALL_TIME = 0
"""The `event_counts` span of the rows that count all of time (their ``bucket_ts`` is 0)."""

COUNT_SPANS = (86_400, 3_600)
"""The bucket sizes of `event_counts`, in seconds: UTC days and hours, largest first."""

event_counts = sa.Table(
    "event_counts",
    metadata,
    # One row per bucket (an hour or a day, `span` seconds from `bucket_ts`; or all of
    # time, span 0) and per app, version, environment, stack trace and exception type.
    # "None" is 0 (ids) or "" (type): a NULL in a key would make every row with it distinct.
    sa.Column("span", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("bucket_ts", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("app_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("app_vsn_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("environment_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("stacktrace_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("exc_type", Name, primary_key=True),
    sa.Column("n", sa.BigInteger, nullable=False),
    sa.Column("first_ts", Timestamp, nullable=False),
    sa.Column("last_ts", Timestamp, nullable=False),
    sa.Column("last_event_id", Id, nullable=False),
    # The questions of someone paged: one app version in one environment, since yesterday.
    sa.Index("ix_event_counts_scope", "span", "app_id", "app_vsn_id", "environment_id", "bucket_ts"),
    # Clustered on the key on SQLite too (as InnoDB is): a time range is one contiguous read.
    sqlite_with_rowid=False,
    **_MYSQL_TABLE,
)
"""Events counted per hour, per day and in all; kept in step with `events` by the store (schema 2)."""

schema_version = sa.Table(
    "code_wake_schema",
    metadata,
    sa.Column("version", sa.Integer, nullable=False),
    **_MYSQL_TABLE,
)
"""One row: the `SCHEMA_VERSION` the database was last created or upgraded to."""


def val_prefix(val: sa.ColumnElement[Any]) -> sa.ColumnElement[str]:
    """The indexed prefix of a data value, rendered exactly as in the index.

    SQLite and PostgreSQL only use an expression index when the query repeats
    the expression itself; the lengths are literal columns because bound
    parameters (``substr(val, ?, ?)``) would not match the index.
    """
    return sa.func.substr(val, sa.literal_column("1"), sa.literal_column(str(VAL_PREFIX_LENGTH)))


def _is_mysql(
    ddl: object, target: object, bind: object, tables: object = None, state: object = None, **kw: Any
) -> bool:
    """ddl_if test: is the DDL for MySQL/MariaDB?"""
    return bool(kw["dialect"].name in MYSQL_DIALECTS)


def _is_not_mysql(
    ddl: object, target: object, bind: object, tables: object = None, state: object = None, **kw: Any
) -> bool:
    """ddl_if test: is the DDL for anything but MySQL/MariaDB?"""
    return not _is_mysql(ddl, target, bind, **kw)


def _key_val_index(name: str, table: sa.Table, *after: sa.Column[Any]) -> None:
    """The (key, value, `after`...) index of `table`: one name, two definitions, each dialect makes its own.

    MySQL/MariaDB cannot index TEXT without a prefix length (and MariaDB has no
    expression indexes): a prefix index, which MySQL uses for ``val = ?`` itself.
    SQLite and PostgreSQL: an expression index on the value's prefix (`val_prefix`).
    """
    key, val = table.c.key, table.c.val
    sa.Index(name, key, val_prefix(val), *after).ddl_if(callable_=_is_not_mysql)
    lengths = {"key": MYSQL_PREFIX_LENGTH, "val": MYSQL_PREFIX_LENGTH}
    sa.Index(name, key, val, *after, mysql_length=lengths, mariadb_length=lengths).ddl_if(callable_=_is_mysql)


# Time and event id follow the term (schema 2): the events carrying a term, newest first.
_key_val_index("ix_events_data_key_val", events_data, events_data.c.when_ts, events_data.c.event_id)
# The call sites carrying a term (schema 4).
_key_val_index("ix_call_site_data_key_val", call_site_data, call_site_data.c.call_site_id)

ADDED_COLUMNS: tuple[sa.Column[Any], ...] = (
    stackframes.c.function,
    events.c.exc_type,
    events.c.exc_message,
    events.c.app_id,
    events.c.app_vsn_id,
    events.c.environment_id,
    events_data.c.when_ts,
    events.c.call_site_id,
)
"""Columns older databases lack (pycodewake 0.2's all of them, schema 1 the last five, schemas 2
and 3 the last one); opening adds them."""

CHANGED_INDEXES: tuple[tuple[str, str], ...] = (
    ("events_data", "ix_events_data_key_val"),
    ("events", "ix_events_stacktrace_id"),
)
"""(table, index) whose columns schema 2 changed: an older database's are dropped and made again."""
