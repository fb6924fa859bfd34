"""The write path: a batch of events in one transaction, with their data rows and summary counts.

Processes, new stack traces and new call sites are stored before the
batch, each in a transaction of its own (`_lookups`, `_traces`,
`_call_sites`); the batch's transaction then writes the ``events`` rows,
the ``events_data`` rows of each event's own items (its call site's are
stored once) and the ``event_counts`` additions, in the statement forms of
`_batch`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa

from code_wake.event import Pairs, PendingEvent
from code_wake.records import DataItem, EventRecord, ProcessRecord, StacktraceRecord

from ._batch import new_id
from ._call_sites import CallSites, SiteItems
from ._counts import CountRow, add_counts
from ._database import Database, chunks, outcome_unknown, transient
from ._digests import DataDigests
from ._records import chain_text, clip, clip_data, event_record, process_values
from ._references import MissingReferences, ids_locking_references, insert_one_locking
from ._traces import StackTraces
from .schema import LONG_TEXT_LIMIT, NAME_LENGTH, call_sites, events, events_data, processes, stacktraces

__all__ = ["EventWriter"]

# Statements are built once; SQLAlchemy caches their compiled form by statement.
_INSERT_EVENT = sa.insert(events)
_INSERT_PROCESS = sa.insert(processes)


class _EventRow(NamedTuple):
    """An ``events`` row to insert, its fields named and ordered as the columns."""

    when_ts: float
    process_id: int
    digest: bytes | None
    stacktrace_id: int | None
    exc_type: str | None
    exc_message: str | None
    exc_chain: str | None
    app_id: int
    app_vsn_id: int | None
    environment_id: int | None
    call_site_id: int | None


_ID_AND_EVENT_COLUMNS = ("id", *_EventRow._fields)
"""The ``events`` columns of a batch whose ids were taken beforehand (PostgreSQL)."""

_DATA_COLUMNS = ("event_id", "key", "val", "when_ts")
"""The ``events_data`` columns a batch writes, in the order of its row tuples."""


class EventWriter:
    """Writes batches of events into one store's database."""

    def __init__(self, db: Database, traces: StackTraces, sites: CallSites) -> None:
        self._db = db
        self._traces = traces
        self._sites = sites
        self._digests = DataDigests()
        self._locks_references = db.dialect == "postgresql"
        """Whether to lock the rows the events refer to by hand: PostgreSQL's events have no foreign keys."""
        self._unsure: list[_EventRow] | None = None
        """The rows of the last batch whose COMMIT got no answer: it may be stored already."""
        self._landed: dict[_EventRow, int] = {}
        """The rows of such a batch found stored after all, with their ids, until written again."""

    def insert_events(
        self,
        events: Sequence[PendingEvent],
        owners: Sequence[ProcessRecord],
        wanted: Iterable[int],
        maybe_stored: Sequence[bool] = (),
    ) -> dict[int, EventRecord]:
        """Write `events` (of the processes `owners`, stored) in one transaction; the records of `wanted`.

        Records are made only for the positions in `wanted`: the queue's writer
        wants none for the events nobody waits on, and making them (a
        `DataItem` per value, an `EventRecord`) was a tenth of its time per log
        record. The events flagged in `maybe_stored` are written only if no
        stored event is alike (`Store.write_spooled`).
        """
        # New stack traces commit on their own, before the batch.
        traces = self._traces.for_events(events)
        datas = [clip_data(event.data) for event in events]
        try:
            ids, rows = self._write_batch(events, owners, traces, datas, maybe_stored)
        except (sa.exc.IntegrityError, MissingReferences):
            # A prune may have removed a process, stack trace or call site this store
            # still knows (a quiet, long-running process; a trace or a line of code
            # last seen long ago): a foreign key refused the rows, or on PostgreSQL
            # the lock found one gone (`_references`). Store them again and try once
            # more; any other violation raises again.
            if not self._restore_references(owners, traces):
                raise
            traces = self._traces.for_events(events)
            ids, rows = self._write_batch(events, owners, traces, datas, maybe_stored)
        return {
            p: event_record(ids[p], rows[p], owners[p], tuple(map(DataItem._make, datas[p])), traces[p])
            for p in wanted
        }

    def _write_batch(
        self,
        events: Sequence[PendingEvent],
        owners: Sequence[ProcessRecord],
        traces: Sequence[StacktraceRecord | None],
        datas: Sequence[Pairs],
        maybe_stored: Sequence[bool],
    ) -> tuple[list[int], list[_EventRow]]:
        """The batch's one transaction: events, their data, their counts. Retried after a deadlock.

        Summary rows are shared: concurrent batches can deadlock on MySQL's gap
        locks. The loser's transaction was rolled back whole; it can run again.
        """
        parts = [self._sites.split(data) for data in datas]
        sites = self._sites.ids_for([site for site, _ in parts])
        digests = [self._digests.digest(event.data) for event in events]
        rows = [_event_row(*of_one) for of_one in zip(events, owners, digests, traces, sites, strict=True)]

        found = self._already_stored(rows)
        if any(maybe_stored):
            found.update(self._stored_alike(rows, maybe_stored, found))
        if not found:
            return self._write_rows(rows, parts), rows
        # Some (or all) of them are stored already: write only the others.
        rest = [p for p in range(len(rows)) if p not in found]
        written = iter(self._write_rows([rows[p] for p in rest], [parts[p] for p in rest]) if rest else ())
        return [found[p] if p in found else next(written) for p in range(len(rows))], rows

    def _write_rows(self, rows: list[_EventRow], parts: list[tuple[SiteItems, Pairs]]) -> list[int]:
        """Write `rows` and their own data rows in one transaction (retried); their ids."""

        def write(conn: sa.Connection) -> list[int]:
            ids = self._insert_event_rows(conn, rows)
            data_rows = [
                (event_id, key, val, row.when_ts)
                for event_id, row, (_, own) in zip(ids, rows, parts, strict=True)
                for key, val in own
            ]
            if data_rows:
                self._db.batch.insert_rows(conn, events_data, _DATA_COLUMNS, data_rows)
            add_counts(conn, self._db.upsert_counts, _count_rows(ids, rows))
            return ids

        def landed(conn: sa.Connection) -> list[int] | None:
            return _stored_ids(conn, rows)

        try:
            ids = self._db.retrying(write, transient, landed)
        except Exception as exc:
            # Whatever raised, the mark says whether the rows may be stored (the look could not tell).
            self._unsure = rows if outcome_unknown(exc) else None
            raise
        self._unsure = None
        return ids

    def _already_stored(self, rows: list[_EventRow]) -> dict[int, int]:
        """Those of `rows` that a batch whose COMMIT got no answer stored after all: position -> id.

        The queue writes such a batch again, whole or one event at a time, or
        (after setting it aside in the spool) among other events; each of its
        rows is found stored once, and not written twice. The rows found are
        kept until written again, or until another batch's COMMIT gets no answer.
        """
        if self._unsure is not None:
            unsure = self._unsure
            with self._db.connect() as conn:
                ids = _stored_ids(conn, unsure)
            self._unsure = None
            self._landed = {} if ids is None else dict(zip(unsure, ids, strict=True))
        found: dict[int, int] = {}
        if self._landed:
            for position, row in enumerate(rows):
                event_id = self._landed.pop(row, None)
                if event_id is not None:
                    found[position] = event_id
        return found

    def _stored_alike(
        self, rows: list[_EventRow], maybe_stored: Sequence[bool], found: dict[int, int]
    ) -> dict[int, int]:
        """Those of `rows` flagged in `maybe_stored` (and not `found`) that are stored: position -> id."""
        positions = [p for p, flag in enumerate(maybe_stored) if flag and p not in found]
        if not positions:
            return {}
        with self._db.connect() as conn:
            ids = _alike_ids(conn, [rows[p] for p in positions])
        return {p: event_id for p, event_id in zip(positions, ids, strict=True) if event_id is not None}

    def _insert_event_rows(self, conn: sa.Connection, rows: list[_EventRow]) -> list[int]:
        if self._locks_references and len(rows) == 1:
            return [insert_one_locking(conn, rows[0])]
        if self._locks_references:
            # PostgreSQL: the ids and the locks in one round trip, then one INSERT.
            ids = ids_locking_references(conn, rows)
            with_ids = [(event_id, *row) for event_id, row in zip(ids, rows, strict=True)]
            self._db.batch.insert_rows(conn, events, _ID_AND_EVENT_COLUMNS, with_ids)
            return ids
        if len(rows) == 1:
            return [new_id(conn.execute(_INSERT_EVENT, rows[0]._asdict()))]
        return self._db.batch.insert_events(conn, events, _EventRow._fields, rows)

    def _restore_references(
        self, owners: Sequence[ProcessRecord], traces: Sequence[StacktraceRecord | None]
    ) -> bool:
        """Store again the processes and traces of a batch that a prune removed; False if none was."""
        process_ids = sorted({owner.id for owner in owners})
        trace_ids = sorted({trace.id for trace in traces if trace is not None})
        site_ids = sorted(self._sites.remembered_ids())
        with self._db.connect() as conn:
            present_processes = _present(conn, processes.c.id, process_ids)
            present_traces = _present(conn, stacktraces.c.id, trace_ids)
            present_sites = _present(conn, call_sites.c.id, site_ids)
        missing = {owner.id: owner for owner in owners if owner.id not in present_processes}
        lost_sites = len(present_sites) < len(site_ids)
        if not missing and len(present_traces) == len(trace_ids) and not lost_sites:
            return False
        if len(present_traces) < len(trace_ids):
            self._traces.forget()
        if lost_sites:
            self._sites.forget()
        for owner in missing.values():
            self._restore_process(owner)
        return True

    def _restore_process(self, owner: ProcessRecord) -> None:
        """Insert a pruned process again, under its old id (events and Process objects hold it).

        The id cannot have been given to another process: prune always keeps the
        newest process, so SQLite never hands a removed id out again.
        """
        try:
            with self._db.begin() as conn:
                conn.execute(_INSERT_PROCESS, {"id": owner.id, **process_values(owner)})
        except sa.exc.IntegrityError:
            pass  # another thread or process put it back first


def _event_row(
    event: PendingEvent,
    owner: ProcessRecord,
    digest: bytes | None,
    trace: StacktraceRecord | None,
    site_id: int | None,
) -> _EventRow:
    return _EventRow(
        float(event.when_ts),
        owner.id,
        digest,
        None if trace is None else trace.id,
        clip(event.exc_type, NAME_LENGTH),
        clip(event.exc_message, LONG_TEXT_LIMIT),
        chain_text(event.exc_chain),
        owner.app.id,
        None if owner.app_vsn is None else owner.app_vsn.id,
        None if owner.environment is None else owner.environment.id,
        site_id,
    )


def _count_rows(ids: Sequence[int], rows: Sequence[_EventRow]) -> Iterator[CountRow]:
    """What the summary counts of each event written."""
    for event_id, row in zip(ids, rows, strict=True):
        yield (
            event_id,
            row.when_ts,
            row.app_id,
            row.app_vsn_id,
            row.environment_id,
            row.stacktrace_id,
            row.exc_type,
        )


def _present(conn: sa.Connection, column: sa.Column[Any], ids: Sequence[int]) -> set[int]:
    """Those of `ids` that `column` (a primary key) holds."""
    found: set[int] = set()
    for chunk in chunks(ids):
        found.update(int(i) for i in conn.execute(sa.select(column).where(column.in_(chunk))).scalars())
    return found


def _stored_ids(conn: sa.Connection, rows: Sequence[_EventRow]) -> list[int] | None:
    """The ids of `rows` if every one of them is stored (their batch committed), else None.

    A batch is one transaction, so either all of it is there or none.
    """
    ids = _alike_ids(conn, rows)
    return None if None in ids else [event_id for event_id in ids if event_id is not None]


def _alike_ids(conn: sa.Connection, rows: Sequence[_EventRow]) -> list[int | None]:
    """For each of `rows`, the id of a stored event alike (None if there is none), each used once.

    Alike: the same process, exact time and data digest. Two such events of
    one process at the same instant take the ids in order.
    """
    times = [row.when_ts for row in rows]
    query = (
        sa.select(events.c.id, events.c.process_id, events.c.when_ts, events.c.digest)
        .where(events.c.process_id.in_(sorted({row.process_id for row in rows})))
        .where(events.c.when_ts.between(min(times), max(times)))
        .order_by(events.c.id)
    )
    stored: dict[tuple[int, float, bytes | None], list[int]] = {}
    for event_id, process_id, when_ts, digest in conn.execute(query):
        key = (process_id, when_ts, None if digest is None else bytes(digest))
        stored.setdefault(key, []).append(event_id)
    ids: list[int | None] = []
    for row in rows:
        candidates = stored.get((row.process_id, row.when_ts, row.digest))
        ids.append(candidates.pop(0) if candidates else None)
    return ids
