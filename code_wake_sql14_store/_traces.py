"""Stack traces: each distinct trace stored once, by digest, with its frames; read by id; cached both ways.

A trace id is never reused (prune keeps the newest trace), so a cached
trace stays right until a prune deletes it; the store then forgets them
all (`StackTraces.forget`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import sqlalchemy as sa

from code_wake.event import PendingEvent
from code_wake.records import StackframeRecord, StacktraceRecord
from code_wake.stack_trace import ResolvedTrace, resolve_frames

from ._batch import new_id
from ._cache import BoundedCache
from ._database import Database, chunks
from ._records import clip, frame_values, select_traces
from .schema import TEXT_LIMIT, stackframes, stacktraces

__all__ = ["StackTraces"]

_INSERT_TRACE = sa.insert(stacktraces)
_INSERT_FRAMES = sa.insert(stackframes)


class StackTraces:
    """The stack traces of one store's database, and their caches by digest and by id."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._traces_by_digest: BoundedCache[bytes, StacktraceRecord] = BoundedCache()
        self._traces_by_id: BoundedCache[int, StacktraceRecord] = BoundedCache()

    def after_fork(self) -> None:
        """In a forked child: caches with locks no parent thread can hold."""
        self._traces_by_digest.after_fork()
        self._traces_by_id.after_fork()

    def forget(self) -> None:
        """Forget every cached trace: the next lookup by digest finds, or stores, the current row."""
        self._traces_by_digest.clear()
        self._traces_by_id.clear()

    def for_events(self, batch: Sequence[PendingEvent]) -> list[StacktraceRecord | None]:
        """The stored trace of each event (None: it has none); each new digest stored once."""
        resolved = [None if event.frames is None else resolve_frames(event.frames) for event in batch]
        known: dict[bytes, StacktraceRecord] = {}
        missing: dict[bytes, ResolvedTrace] = {}
        for trace in resolved:
            if trace is not None and trace.digest not in known:
                cached = self._traces_by_digest.get(trace.digest)
                if cached is None:
                    missing[trace.digest] = trace
                else:
                    known[trace.digest] = cached
        if missing:
            known.update(self._fetch_or_create(missing))
        return [None if trace is None else known[trace.digest] for trace in resolved]

    def with_ids(self, conn: sa.Connection, ids: Iterable[int]) -> dict[int, StacktraceRecord]:
        """The stack traces with these ids (with their frames), cached by id."""

        def load(missing: list[int]) -> Iterator[tuple[int, StacktraceRecord]]:
            for chunk in chunks(sorted(missing)):
                yield from select_traces(conn, stacktraces.c.id.in_(chunk)).items()

        return self._traces_by_id.get_many(ids, load)

    def _fetch_or_create(self, missing: dict[bytes, ResolvedTrace]) -> dict[bytes, StacktraceRecord]:
        digests = list(missing)
        found: dict[bytes, StacktraceRecord] = {}
        with self._db.connect() as conn:
            for chunk in chunks(digests):
                for trace in select_traces(conn, stacktraces.c.digest.in_(chunk)).values():
                    found[trace.digest] = trace
        for digest in digests:
            if digest not in found:
                found[digest] = self._create(missing[digest])
        return {digest: self._traces_by_digest.put(digest, trace) for digest, trace in found.items()}

    def _create(self, trace: ResolvedTrace) -> StacktraceRecord:
        """Store a trace and its frames in one transaction (so nobody sees it without frames)."""
        frames = tuple(
            StackframeRecord(
                clip(frame.filename, TEXT_LIMIT),
                frame.lineno,
                clip(frame.src, TEXT_LIMIT),
                clip(frame.function, TEXT_LIMIT),
            )
            for frame in trace.frames
        )
        lost = False

        def store(conn: sa.Connection) -> StacktraceRecord:
            nonlocal lost
            if lost:
                # The last try lost a race: another writer may have stored this trace first.
                winner = select_traces(conn, stacktraces.c.digest == trace.digest)
                if winner:
                    return next(iter(winner.values()))
            lost = True  # until the insert commits
            trace_id = new_id(conn.execute(_INSERT_TRACE, {"digest": trace.digest}))
            if frames:
                conn.execute(_INSERT_FRAMES, [frame_values(trace_id, frame) for frame in frames])
            # Stored outermost first (ascending id); records give them innermost first.
            return StacktraceRecord(trace_id, trace.digest, frames[::-1])

        return self._db.retrying(store)
