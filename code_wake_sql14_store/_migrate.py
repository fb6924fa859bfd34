"""Creating the schema, and bringing a pycodewake 0.2 database up to it.

`ensure_schema` runs once per store, on first use. The usual case (the
database is at our version) costs two small queries. Otherwise it takes a
database-wide lock, so that many processes starting at once against a fresh
or old database do the work once, and then creates what is missing: tables,
columns, indexes, and finally the version row.

Upgrades, each step checking first so that a run interrupted on MySQL (whose
DDL cannot be rolled back) is finished by the next one:

- from pycodewake 0.2 (version 0): its columns and indexes, its app versions
  repaired, on MySQL its single precision FLOAT times made DOUBLE, then
  everything schema 1 to 2 does;
- from 1 to 2: the copies of app, version and environment on ``events`` and
  of the time on ``events_data`` are added and filled in from the rows they
  copy, the two indexes whose columns changed are made again, and
  ``event_counts`` is created and counted from ``events``;
- from 2 to 3: ``events.exc_chain`` is added, null for the events already
  there;
- from 3 to 4: the call-site tables and ``events.call_site_id`` with its
  index are added. Events already there keep their call-site items as data
  rows (no row is rewritten); queries find them either way.

One change needs no new version, since every reader and writer works with
either layout: on PostgreSQL, the foreign keys of ``events`` and
``events_data``, which it checks row by row, are dropped (`drop_row_checked_keys`),
by an upgrade of an older version and by ``code-wake upgrade``
(`upgrade_layout`), never by a writer's first use of a database at our
version: each takes an exclusive lock on its table and the one it refers to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from code_wake.errors import StoreError, StoreRefusedError

from ._counts import rebuild_counts, upsert_statement
from .schema import (
    ADDED_COLUMNS,
    CHANGED_INDEXES,
    MYSQL_DIALECTS,
    SCHEMA_VERSION,
    app_vsns,
    events,
    events_data,
    metadata,
    processes,
    schema_version,
)

__all__ = ["drop_row_checked_keys", "ensure_schema", "row_checked_keys", "upgrade_layout"]

_PG_LOCK_KEY = 0x636F64655F77616B  # "code_wak": an arbitrary, fixed advisory lock key
_LOCK_WAIT_SECONDS = 120
_VSN_INDEX = "uq_app_vsns_app_id_vsn"


def ensure_schema(connect: Callable[[], sa.Connection], where: str) -> None:
    """Make the database hold our schema; `where` is the masked URL for messages."""
    with connect() as conn:
        if _check_version(conn, where) == SCHEMA_VERSION:
            return
    with connect() as conn, _schema_lock(conn):
        version = _check_version(conn, where)
        if version != SCHEMA_VERSION:
            _create_or_upgrade(conn, version)
        conn.commit()


def upgrade_layout(connect: Callable[[], sa.Connection]) -> None:
    """What ``code-wake upgrade`` does past `ensure_schema`: the layout changes no writer makes by itself."""
    with connect() as conn, _schema_lock(conn):
        drop_row_checked_keys(conn)
        conn.commit()


def row_checked_keys(conn: sa.Connection) -> list[tuple[str, str, str]]:
    """PostgreSQL: the foreign keys of ``events`` and ``events_data``, as (table, column, name).

    Databases made before they were left out have them. PostgreSQL checks one
    by reading and share-locking the referred row for every row written;
    SQLite and MySQL check theirs at no measurable cost, and keep them: empty there.
    """
    if conn.dialect.name != "postgresql":
        return []
    inspector = sa.inspect(conn)
    found = []
    for table in (events, events_data):
        if inspector.has_table(table.name):
            for key in inspector.get_foreign_keys(table.name):
                if key["name"]:
                    found.append((table.name, ", ".join(key["constrained_columns"]), str(key["name"])))
    return sorted(found)


def drop_row_checked_keys(conn: sa.Connection) -> None:
    """Drop the keys `row_checked_keys` names."""
    preparer = conn.dialect.identifier_preparer
    for table, _, name in row_checked_keys(conn):
        conn.exec_driver_sql(f"ALTER TABLE {preparer.quote(table)} DROP CONSTRAINT {preparer.quote(name)}")


def _check_version(conn: sa.Connection, where: str) -> int | None:
    """The recorded schema version (None: none recorded); refuses a newer one."""
    if not sa.inspect(conn).has_table(schema_version.name):
        return None
    version = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar()
    if version is not None and version > SCHEMA_VERSION:
        raise StoreRefusedError(
            f"The database at {where} has code_wake schema version {version}, newer than this "
            f"code_wake understands ({SCHEMA_VERSION}); upgrade code_wake to use it."
        )
    return None if version is None else int(version)


@contextmanager
def _schema_lock(conn: sa.Connection) -> Iterator[None]:
    """Hold a lock that one schema writer at a time can have, for the transaction."""
    name = conn.dialect.name
    if name == "sqlite":
        # pysqlite (legacy transaction mode) opens no transaction for DDL on its
        # own; BEGIN IMMEDIATE takes SQLite's write lock now (waiting out the busy
        # timeout), and SQLite's DDL is transactional, so the commit publishes all.
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield
    elif name == "postgresql":
        # PostgreSQL's DDL is transactional too; the lock ends with the transaction.
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_LOCK_KEY)))
        yield
    elif name in MYSQL_DIALECTS:
        # MySQL commits each DDL statement implicitly: a session lock, released by hand.
        lock_name = sa.func.concat("code_wake_schema:", sa.func.database())
        if conn.execute(sa.select(sa.func.get_lock(lock_name, _LOCK_WAIT_SECONDS))).scalar() != 1:
            raise StoreError("Timed out waiting for another process to create the code_wake schema.")
        try:
            yield
        finally:
            conn.execute(sa.select(sa.func.release_lock(lock_name)))
    else:
        yield


def _create_or_upgrade(conn: sa.Connection, version: int | None) -> None:
    """Create the schema in a new database, or complete an existing one; record the version."""
    if not set(sa.inspect(conn).get_table_names()) & set(metadata.tables):
        # A new database: everything at once, without a catalog query per object.
        metadata.create_all(conn, checkfirst=False)
    else:
        _upgrade(conn, version or 0)
        if (version or 0) < 3:
            _add_exception_chains(conn)
        drop_row_checked_keys(conn)
    conn.execute(sa.delete(schema_version))
    conn.execute(sa.insert(schema_version).values(version=SCHEMA_VERSION))


def _upgrade(conn: sa.Connection, version: int) -> None:
    """Add what an existing database at `version` lacks; on a pycodewake database, also repair its versions.

    Every step checks first, so a run interrupted on MySQL (whose DDL cannot
    be rolled back) is finished by the next one.
    """
    metadata.create_all(conn, checkfirst=True)
    inspector = sa.inspect(conn)
    for column in ADDED_COLUMNS:
        if column.name not in {c["name"] for c in inspector.get_columns(column.table.name)}:
            _add_column(conn, column)
    if version < 1 and conn.dialect.name in MYSQL_DIALECTS:
        _widen_timestamps(conn)
    existing = _index_names(conn)
    if version < 2:
        for table_name, index_name in CHANGED_INDEXES:
            if index_name in existing and not _replace_index(conn, table_name, index_name):
                existing.discard(index_name)
    if _VSN_INDEX not in existing:
        # Only a pycodewake database lacks it: one row per (app, version) first.
        _merge_duplicate_versions(conn)
    for table in metadata.sorted_tables:
        for index in sorted(table.indexes, key=lambda ix: str(ix.name)):
            if index.name not in existing:
                # Index.create runs the DDL only where the index's ddl_if allows it.
                index.create(conn)
    if version < 1:
        # Not gated on the unique index, as the merge is: the index is made (and on MySQL
        # committed, as all DDL is) before this repair, so an upgrade stopped in between left
        # it in place with the versions still shared, and the next run skipped the repair.
        # A no-op where no process has another app's version.
        _repair_cross_app_versions(conn)
    if version < 2:
        # After the version repair: events copy their process's (repaired) version.
        _fill_copied_columns(conn)
        rebuild_counts(conn, upsert_statement(conn.dialect))


def _add_exception_chains(conn: sa.Connection) -> None:
    """Schema 3: ``events.exc_chain``; null for the events stored before (their chains' messages are gone)."""
    if "exc_chain" not in {c["name"] for c in sa.inspect(conn).get_columns(events.name)}:
        _add_column(conn, events.c.exc_chain)


def _replace_index(conn: sa.Connection, table_name: str, index_name: str) -> bool:
    """Drop an index whose columns changed; on MySQL swap in the new one too. True if it was swapped in.

    MySQL refuses to drop the only index a foreign key can use (events.stacktrace_id's),
    but accepts dropping and adding it in one ALTER TABLE.
    """
    preparer = conn.dialect.identifier_preparer
    table, name = preparer.quote(table_name), preparer.quote(index_name)
    if conn.dialect.name not in MYSQL_DIALECTS:
        conn.exec_driver_sql(f"DROP INDEX {name}")
        return False
    definitions = [ix for ix in metadata.tables[table_name].indexes if ix.name == index_name]
    if len(definitions) != 1:
        # One definition per dialect (the data index): no foreign key needs it, drop it alone.
        conn.exec_driver_sql(f"DROP INDEX {name} ON {table}")
        return False
    create = str(sa.schema.CreateIndex(definitions[0]).compile(dialect=conn.dialect))
    columns = create[create.index("(", create.index(" ON ")) :]
    conn.exec_driver_sql(f"ALTER TABLE {table} DROP INDEX {name}, ADD INDEX {name} {columns}")
    return True


def _fill_copied_columns(conn: sa.Connection) -> None:
    """Give old events their process's app, version and environment, and old data rows their event's time."""
    owner = processes.alias("owner")

    def of_owner(column: str) -> sa.ScalarSelect[Any]:
        return sa.select(owner.c[column]).where(owner.c.id == events.c.process_id).scalar_subquery()

    conn.execute(
        sa.update(events)
        .where(events.c.app_id.is_(None))
        .values(
            app_id=of_owner("app_id"),
            app_vsn_id=of_owner("app_vsn_id"),
            environment_id=of_owner("environment_id"),
        )
    )
    event = events.alias("event")
    conn.execute(
        sa.update(events_data)
        .where(events_data.c.when_ts.is_(None))
        .values(
            when_ts=sa.select(event.c.when_ts).where(event.c.id == events_data.c.event_id).scalar_subquery()
        )
    )


def _add_column(conn: sa.Connection, column: sa.Column[Any]) -> None:
    preparer = conn.dialect.identifier_preparer
    spec = sa.schema.CreateColumn(column).compile(dialect=conn.dialect)
    conn.exec_driver_sql(f"ALTER TABLE {preparer.format_table(column.table)} ADD COLUMN {spec}")


def _widen_timestamps(conn: sa.Connection) -> None:
    """Make pycodewake's FLOAT times on MySQL our DOUBLE (checking first, as every step).

    pycodewake's ``sa.Float`` is MySQL's 4-byte FLOAT: it keeps epoch seconds to
    128 s, and MySQL sends it to the driver printed to 6 significant digits, so
    times hours apart read back equal (keyset pages then skip events), and every
    event written after the upgrade would lose its time the same way.
    """
    preparer = conn.dialect.identifier_preparer
    for column in (processes.c.run_ts, events.c.when_ts):
        found = {c["name"]: c["type"] for c in sa.inspect(conn).get_columns(column.table.name)}
        if str(found[column.name].compile(dialect=conn.dialect)).startswith("FLOAT"):
            spec = sa.schema.CreateColumn(column).compile(dialect=conn.dialect)
            conn.exec_driver_sql(f"ALTER TABLE {preparer.format_table(column.table)} MODIFY COLUMN {spec}")


def _index_names(conn: sa.Connection) -> set[str]:
    """Names of the indexes that exist on our tables."""
    if conn.dialect.name == "sqlite":
        # SQLAlchemy cannot reflect SQLite expression indexes (it warns and skips them).
        query = sa.text("SELECT name FROM sqlite_master WHERE type = 'index' AND name IS NOT NULL")
        return {str(name) for name in conn.execute(query).scalars()}
    inspector = sa.inspect(conn)
    names: set[str] = set()
    for table in metadata.sorted_tables:
        names.update(str(ix["name"]) for ix in inspector.get_indexes(table.name))
    return names


def _merge_duplicate_versions(conn: sa.Connection) -> None:
    """Point processes at one row per (app, version) and delete the others."""
    keep = sa.func.min(app_vsns.c.id).label("keep")
    groups = conn.execute(
        sa.select(app_vsns.c.app_id, app_vsns.c.vsn, keep)
        .group_by(app_vsns.c.app_id, app_vsns.c.vsn)
        .having(sa.func.count() > 1)
    ).all()
    for group in groups:
        same = (
            (app_vsns.c.app_id == group.app_id)
            & (app_vsns.c.vsn == group.vsn)
            & (app_vsns.c.id != group.keep)
        )
        duplicates = list(conn.execute(sa.select(app_vsns.c.id).where(same)).scalars())
        conn.execute(
            sa.update(processes).where(processes.c.app_vsn_id.in_(duplicates)).values(app_vsn_id=group.keep)
        )
        conn.execute(sa.delete(app_vsns).where(app_vsns.c.id.in_(duplicates)))


def _repair_cross_app_versions(conn: sa.Connection) -> None:
    """pycodewake matched versions by string alone: give each process its own app's version."""
    wrong = conn.execute(
        sa.select(processes.c.id, processes.c.app_id, app_vsns.c.vsn)
        .join(app_vsns, processes.c.app_vsn_id == app_vsns.c.id)
        .where(app_vsns.c.app_id != processes.c.app_id)
    ).all()
    for process in wrong:
        match = (app_vsns.c.app_id == process.app_id) & (app_vsns.c.vsn == process.vsn)
        if conn.execute(sa.select(app_vsns.c.id).where(match)).first() is None:
            conn.execute(sa.insert(app_vsns).values(app_id=process.app_id, vsn=process.vsn))
        vsn_id = conn.execute(sa.select(app_vsns.c.id).where(match)).scalar_one()
        conn.execute(sa.update(processes).where(processes.c.id == process.id).values(app_vsn_id=vsn_id))
