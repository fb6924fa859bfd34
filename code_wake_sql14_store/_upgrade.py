"""``code-wake upgrade``: what bringing a database to our schema would do, and doing it on purpose.

Writers create and upgrade the schema on first use (`_migrate.ensure_schema`);
readers never do (`_read_only`). This is the explicit door between them: it
says what it would do (`plan`, run by ``--dry-run``) and then does it through
the same `ensure_schema` the writers run, so both paths upgrade alike, then
makes the layout changes only it makes (`_migrate.upgrade_layout`).
"""

from __future__ import annotations

import sqlalchemy as sa

from ._migrate import row_checked_keys
from .schema import SCHEMA_VERSION, metadata, schema_version

__all__ = ["plan"]


def plan(conn: sa.Connection) -> list[str]:
    """The steps an upgrade of the database behind `conn` would take, in words; empty: none."""
    inspector = sa.inspect(conn)
    ours = set(inspector.get_table_names()) & set(metadata.tables)
    if not ours:
        return [f"create code_wake's tables and indexes (schema version {SCHEMA_VERSION})"]
    version = None
    if schema_version.name in ours:
        version = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar()
    layout = [
        f"drop the foreign key {name} of {table}.{column}: PostgreSQL checked it for every row written "
        f"(it locks {table} for a moment)"
        for table, column, name in row_checked_keys(conn)
    ]
    if version is not None and int(version) >= SCHEMA_VERSION:
        return layout
    steps = [f"upgrade from schema version {version or 0} to {SCHEMA_VERSION}", *layout]
    missing = sorted(set(metadata.tables) - ours)
    if missing:
        steps.append(f"create the tables {', '.join(missing)}")
    if version is None:
        steps.append("pycodewake 0.2 layout: add its missing columns and indexes, tie versions to their app")
    if int(version or 0) < 2:
        steps.append(
            "copy app, version and environment onto events and the time onto events_data, "
            "remake two indexes, count events into event_counts (long on a large database)"
        )
    if int(version or 0) < 3:
        steps.append("add the column events.exc_chain (chained exceptions' messages; no rows rewritten)")
    if int(version or 0) < 4:
        steps.append(
            "add the column events.call_site_id and its index, for call sites stored once "
            "(no rows rewritten; the index takes a while on a large database)"
        )
    steps.append(f"record schema version {SCHEMA_VERSION}")
    return steps
