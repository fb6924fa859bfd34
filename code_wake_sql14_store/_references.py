"""Holding the rows a batch's events refer to, where no foreign key holds them (PostgreSQL).

An event refers to its process, its stack trace and its call site. Prune
removes those nothing uses any more, while a writer may still hold one in its
cache (a quiet process, a line of code last run long ago). A foreign key
stops that race: the database reads and share-locks the referred row for every
event, and a write that refers to a removed row fails, so the writer stores
it again (`_writes.EventWriter`).

PostgreSQL's check costs half of an ``events`` INSERT, row by row, and a
batch of 500 events refers to a handful of rows. So its new databases have no
such keys, and the writer takes the same lock, ``FOR KEY SHARE``, once per
referred row, in its batch's transaction, in a statement it sent anyway: the
one that takes a batch's ids (`ids_locking_references`), or a lone event's
INSERT (`insert_one_locking`). Prune locks a row ``FOR UPDATE`` before it
deletes it (`_prune`): it waits for the writer's commit, and then sees its
events; or it got there first, and the writer waits for it, and finds the
row gone.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter
from typing import Any, Protocol

import sqlalchemy as sa

from ._batch import serial_sequence
from .schema import EVENT_REFERENCES, events

__all__ = ["MissingReferences", "Referring", "ids_locking_references", "insert_one_locking"]


class Referring(Protocol):
    """An ``events`` row to write (a named tuple of its columns): what it refers to, by `EVENT_REFERENCES`."""

    @property
    def process_id(self) -> int: ...
    @property
    def stacktrace_id(self) -> int | None: ...
    @property
    def call_site_id(self) -> int | None: ...
    def _asdict(self) -> dict[str, Any]: ...


class MissingReferences(Exception):
    """A batch refers to a process, stack trace or call site that is no longer stored (a prune removed it)."""


def _locked_count(table: str) -> str:
    """How many of the rows of `table` that the parameter named `table` lists were there to lock."""
    return f"(SELECT count(*) FROM (SELECT 1 FROM {table} WHERE id = ANY(:{table}) FOR KEY SHARE) AS locked)"


_LOCKED_COUNTS = [_locked_count(table) for _, table in EVENT_REFERENCES]

_IDS_AND_LOCKS = sa.text(
    f"SELECT nextval({serial_sequence(events.name)}), "
    + ", ".join(_LOCKED_COUNTS)
    + " FROM generate_series(1, :count)"
)
"""New event ids, one per row, beside the counts of referred rows locked (each computed once).

The statement the ids took anyway; its text never changes, so the driver prepares it once."""

_COLUMNS = [column for column in events.c if column.name != "id"]

_INSERT_ONE = (
    sa.insert(events)
    .from_select(
        [column.name for column in _COLUMNS],
        sa.select(*(sa.cast(sa.bindparam(column.name), column.type) for column in _COLUMNS)).where(
            sa.text(" + ".join(_LOCKED_COUNTS) + " = :referred")
        ),
    )
    .returning(events.c.id)
)
"""One event's INSERT, made only if every row it refers to was there to lock; it returns the new id."""


def _referred(rows: Sequence[Referring]) -> dict[str, list[int]]:
    """The ids `rows` refer to, by table."""
    return {table: sorted(set(map(attrgetter(column), rows)) - {None}) for column, table in EVENT_REFERENCES}


def _missing(tables: Sequence[str]) -> MissingReferences:
    return MissingReferences(f"a row of {' or '.join(tables)} that the events refer to was removed")


def ids_locking_references(conn: sa.Connection, rows: Sequence[Referring]) -> list[int]:
    """New ids for `rows` (``events`` rows to write), with the rows they refer to share-locked.

    The caller is on PostgreSQL, in the transaction that writes `rows`: the
    locks last until it ends. MissingReferences if a referred row is gone.
    """
    referred = _referred(rows)
    result = conn.execute(_IDS_AND_LOCKS, {"count": len(rows), **referred}).all()
    counts = result[0][1:]
    short = [table for (table, ids), count in zip(referred.items(), counts, strict=True) if count < len(ids)]
    if short:
        raise _missing(short)
    return [int(row[0]) for row in result]


def insert_one_locking(conn: sa.Connection, row: Referring) -> int:
    """Insert one ``events`` row, with the rows it refers to share-locked; its new id.

    As `ids_locking_references`, for a lone event in one round trip, as its
    INSERT took before.
    """
    referred = _referred([row])
    params = {**row._asdict(), **referred, "referred": sum(map(len, referred.values()))}
    new_id = conn.execute(_INSERT_ONE, params).scalar()
    if new_id is None:
        raise _missing([table for table, ids in referred.items() if ids])
    return int(new_id)
