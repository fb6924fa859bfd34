"""The database as the store uses it: connections, transactions, the schema on first use, and errors.

`Database` owns the engine. Every statement the store runs goes through one
of its connections (`connect`, `read`, `begin`), which hold the fork guard,
create or upgrade the schema on first use, and refuse a closed store;
`translating` turns SQLAlchemy's errors into code_wake's, with the password
masked (`translate_error`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, TypeVar

import sqlalchemy as sa

from code_wake.config import mask_secret_url
from code_wake.errors import StoreError, StoreRefusedError, StoreUnavailableError
from code_wake.store import ForkGuard, create_private_file

from ._batch import BatchWriter, SqlalchemyBatch, batch_writer
from ._counts import upsert_statement
from ._engine import build_engine, is_memory_sqlite, masked, parse_url, spool_key
from ._migrate import ensure_schema, upgrade_layout
from ._read_only import check_schema, sqlite_file
from ._stall import StallGuard

__all__ = [
    "CHUNK",
    "OUTCOME_UNKNOWN",
    "RACE_ATTEMPTS",
    "Database",
    "chunks",
    "deadlocked",
    "describe_error",
    "lost_race",
    "outcome_unknown",
    "transient",
    "translate_error",
    "unavailable",
]

_T = TypeVar("_T")

CHUNK = 500
"""Ids or digests per ``IN (...)`` list: far below every backend's parameter limit."""

RACE_ATTEMPTS = 5
"""Tries of a transaction before giving up on rows other processes keep racing for."""


def chunks(items: Sequence[_T]) -> Iterator[Sequence[_T]]:
    """`items` in slices of at most `CHUNK`, one ``IN (...)`` list each."""
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def deadlocked(exc: sa.exc.DBAPIError) -> bool:
    """True for a deadlock or serialization failure: the transaction was rolled back whole."""
    return _error_code(exc) in ("40P01", "40001", 1213)  # PostgreSQL deadlock / serialization; MySQL deadlock


_LOCK_TIMEOUTS = ("55P03", "57014", 1205)
"""PostgreSQL lock_not_available and query_canceled (a statement or lock timeout); MySQL lock wait timeout."""


def transient(exc: sa.exc.DBAPIError) -> bool:
    """True for a failure the same transaction may not meet again: tried anew, on a fresh connection.

    A deadlock or serialization failure, a lock or statement timeout, or a lost
    connection (SQLAlchemy has invalidated it, so the next try connects anew:
    a dead server, a restart, or a connection `StallGuard` cut).
    """
    return exc.connection_invalidated or deadlocked(exc) or _error_code(exc) in _LOCK_TIMEOUTS


def _error_code(exc: sa.exc.DBAPIError) -> object:
    orig = exc.orig
    return getattr(orig, "sqlstate", None) or (orig.args[0] if orig is not None and orig.args else None)


def lost_race(exc: sa.exc.DBAPIError) -> bool:
    """True when another transaction got there first (a unique violation), or for any `transient` failure."""
    return isinstance(exc, sa.exc.IntegrityError) or transient(exc)


OUTCOME_UNKNOWN = "code_wake_outcome_unknown"
"""Set (True) on a SQLAlchemy error after which nobody knows whether the transaction committed:
raised by the COMMIT itself, or by the look that was to tell."""


def outcome_unknown(exc: BaseException) -> bool:
    """Whether the transaction `exc` ended may have committed after all (`OUTCOME_UNKNOWN`)."""
    return bool(getattr(exc, OUTCOME_UNKNOWN, False))


class Database:
    """The engine of one store, its connections and transactions; see the module's docstring.

    `dsn` is a SQLAlchemy URL; `engine_kwargs` go to `sqlalchemy.create_engine`.
    Nothing connects until the first connection is asked for. `read_only`
    opens it to read: SQLite in read-only mode, and the schema checked on
    first use, never created or upgraded (`_read_only`).
    """

    def __init__(self, dsn: str | sa.URL, engine_kwargs: dict[str, Any], read_only: bool = False) -> None:
        self.url = parse_url(dsn)
        self.where = masked(self.url)
        """The URL as messages show it, password masked."""
        self.spool_key = spool_key(self.url)
        """What names this database alike in every process, for the queue's spool."""
        self.read_only = read_only
        self._engine_kwargs = engine_kwargs
        self.engine = build_engine(self.url, engine_kwargs, read_only)
        self.dialect: str = self.engine.dialect.name
        self.sqlite = self.dialect == "sqlite"
        self._postgresql = self.dialect == "postgresql"
        self.batch: BatchWriter = SqlalchemyBatch()
        """The batch statement forms for this database, chosen once connected (`_batch`)."""
        self.upsert_counts: sa.Executable | None = upsert_statement(self.engine.dialect)
        """The statement that adds to the ``event_counts`` summary (`_counts`)."""
        self._memory = is_memory_sqlite(self.url)
        # A memory database is one shared DBAPI connection (StaticPool): one user at a time.
        self._lock: AbstractContextManager[Any] = threading.Lock() if self._memory else nullcontext()
        self._schema_lock = threading.Lock()
        self._fork_guard = ForkGuard()
        self.stall_guard = StallGuard()
        """The time limit of each write transaction, and of each pre-ping, on a server (`_stall`)."""
        self.stall_guard.guard_pings(self.engine)
        self._ready = False
        self._closed = False

    def close(self) -> None:
        """Dispose of the engine's connections; connecting afterwards raises `StoreError`."""
        self._closed = True
        self.engine.dispose()

    def after_fork_in_child(self) -> None:
        """In a forked child: connections of its own, and locks no parent thread can hold."""
        self._schema_lock = threading.Lock()
        if self._memory:
            # The child's copy of the memory database lives in the inherited connection.
            self._lock = threading.Lock()
        else:
            # SQLAlchemy's recipe for fork: forget the pooled connections without
            # closing them, which would end the parent's sessions and SQLite locks.
            self.engine.dispose(close=False)

    def check_readable(self) -> None:
        """Refuse a SQLite file that does not exist, and (read-only) a schema a reader cannot read."""
        self.check_file_exists()
        if self.read_only:
            with self.read():
                pass
            return
        # A writer about to change existing data (prune) checks as a reader would, changing nothing.
        reader = Database(self.url, self._engine_kwargs, read_only=True)
        try:
            reader.check_readable()
        finally:
            reader.close()

    def check_file_exists(self) -> None:
        """Refuse a SQLite file that does not exist: opening it would create an empty database."""
        database = sqlite_file(self.url.database or "") if self.sqlite and not self._memory else ""
        if database and not os.path.exists(database):
            raise StoreError(f"no database file at {database} (nothing was recorded there)")

    @contextmanager
    def translating(self, operation: str) -> Iterator[None]:
        """Raise SQLAlchemy's errors as code_wake's, naming `operation` (a verb phrase)."""
        try:
            yield
        except sa.exc.SQLAlchemyError as exc:
            error = translate_error(exc, operation, self.url)
            error.maybe_stored = outcome_unknown(exc)
            raise error from exc
        except StoreError as exc:
            # Already code_wake's: a refused connection after an unanswered COMMIT (`_look`) is marked.
            exc.maybe_stored = exc.maybe_stored or outcome_unknown(exc)
            raise

    @contextmanager
    def connect(self) -> Iterator[sa.Connection]:
        """A connection (SQLAlchemy begins a transaction on first use; it is rolled back at the end)."""
        # os.fork() waits for this to end (`code_wake.store.ForkGuard`).
        with self._fork_guard:
            if not self._ready:
                self._prepare()
            with self._lock, self._checkout() as conn:
                yield conn

    @contextmanager
    def unprepared(self) -> Iterator[sa.Connection]:
        """A connection that neither creates nor checks the schema: for looking at what is there."""
        with self._fork_guard, self._lock, self._checkout() as conn:
            yield conn

    def prepare(self) -> None:
        """Create or upgrade the schema now, as the first use would (a reader only checks it)."""
        with self._fork_guard:
            self._prepare()

    def upgrade(self) -> None:
        """`prepare`, and the layout changes that only an upgrade on purpose makes."""
        with self._fork_guard:
            self._prepare()
            with self.translating("upgrade the code_wake schema"), self._lock:
                upgrade_layout(self._checkout)

    @contextmanager
    def read(self) -> Iterator[sa.Connection]:
        """A connection for the analysis queries.

        On PostgreSQL in autocommit: no BEGIN and ROLLBACK round trips (a third
        of a short query's time), and nothing lost, since each statement there
        reads its own snapshot anyway (READ COMMITTED).
        """
        with self.connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT") if self._postgresql else conn

    @contextmanager
    def begin(self) -> Iterator[sa.Connection]:
        """A connection in a transaction, committed at the end (rolled back on an error).

        A transaction that waits on the server past the stall guard's limit has
        its connection cut, and fails as a lost connection (`transient`).
        """
        if self.read_only:
            # Every write goes through here: a reader's store refuses them all, on every backend.
            raise StoreError(f"This store for {self.where} was opened read-only; it cannot write.")
        committing = False
        try:
            with (
                self.connect() as conn,
                self.stall_guard.watching(conn.connection.dbapi_connection),
                conn.begin(),
            ):
                yield conn
                committing = True
        except sa.exc.DBAPIError as exc:
            if committing:
                # The COMMIT was sent and no answer came: the transaction may have committed.
                setattr(exc, OUTCOME_UNKNOWN, True)
            raise

    def retrying(
        self,
        work: Callable[[sa.Connection], _T],
        retry: Callable[[sa.exc.DBAPIError], bool] = lost_race,
        landed: Callable[[sa.Connection], _T | None] | None = None,
    ) -> _T:
        """`work` in a transaction of its own, run again while it fails in a way `retry` accepts.

        Each try is a new transaction: after losing a race (a unique violation)
        the next one must see the winner's row, which MySQL's REPEATABLE READ
        snapshot of an ongoing transaction would not show. At most `RACE_ATTEMPTS` tries,
        and two for a lost connection: when the fresh one is lost too the server is
        down, and the caller (the queue's backoff) decides when to try again.

        `landed` tells, after a COMMIT that got no answer, whether `work`
        committed after all (its result, or None): then it is not run twice.
        """
        attempt = 0
        while True:
            try:
                with self.begin() as conn:
                    return work(conn)
            except sa.exc.DBAPIError as exc:
                if landed is not None and outcome_unknown(exc):
                    found = self._look(landed)
                    if found is not None:
                        return found
                attempt += 1
                lost_again = exc.connection_invalidated and attempt >= 2
                if attempt >= RACE_ATTEMPTS or lost_again or not retry(exc):
                    raise

    def _look(self, landed: Callable[[sa.Connection], _T | None]) -> _T | None:
        """Whether a transaction whose COMMIT got no answer committed (`landed`'s answer).

        If the look fails too, its error says the outcome is still unknown:
        a failed query, and as much a connection refused (`StoreError`), which
        is how it fails while the server is down.
        """
        try:
            with self.connect() as conn:
                return landed(conn)
        except (sa.exc.DBAPIError, StoreError) as exc:
            setattr(exc, OUTCOME_UNKNOWN, True)
            raise

    def _checkout(self) -> sa.Connection:
        if self._closed:
            raise StoreError(f"This store for {self.where} is closed; create a new one.")
        try:
            return self.engine.connect()
        except sa.exc.DBAPIError as exc:
            # SQLAlchemy 2 checks a connection out of the pool here: a failure is the database's.
            raise unavailable(exc, self.url) from exc

    def _prepare(self) -> None:
        """Create or upgrade the schema, once per store, and choose the batch writer."""
        with self._schema_lock:
            if self._ready:
                return
            if self.read_only:
                with self.translating("read the code_wake schema"), self._lock, self._checkout() as conn:
                    check_schema(conn, self.where)
                self._ready = True
                return
            self._create_private_file()
            with self.translating("prepare the code_wake schema"), self._lock:
                ensure_schema(self._checkout, self.where)
                # Chosen once connected: a choice may depend on the server's settings.
                with self._checkout() as conn:
                    self.batch = batch_writer(conn)
            self._ready = True

    def _create_private_file(self) -> None:
        """A new SQLite file made 0600 before SQLite makes it with the umask's mode (issue 13)."""
        database = sqlite_file(self.url.database or "") if self.sqlite and not self._memory else ""
        if not database:
            return
        try:
            create_private_file(database)
        except OSError as exc:
            # SQLite's own attempt will report the problem with its own words.
            del exc


def describe_error(exc: BaseException, password: str | None, url: sa.URL | None = None) -> str:
    """One line about a driver error, without the SQL, its parameters or the password.

    With `url`, the values of its query parameters with secret names are masked too.
    """
    orig = getattr(exc, "orig", None)
    cause = orig if isinstance(orig, BaseException) else exc
    lines = str(cause).strip().splitlines()
    text = f"{type(cause).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    text = text.replace(password, "***") if password else text
    return text if url is None else mask_secret_url(text)


def translate_error(exc: sa.exc.SQLAlchemyError, operation: str, url: sa.URL) -> StoreError:
    """The code_wake error for a SQLAlchemy error raised while doing `operation`."""
    unreachable = isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated
    # A value the database refuses (too long, out of range, invalid text) is refused again on every try.
    refused = isinstance(exc, sa.exc.DataError)
    cls = StoreUnavailableError if unreachable else StoreRefusedError if refused else StoreError
    return cls(f"Could not {operation} in {masked(url)}: {describe_error(exc, url.password, url)}")


def unavailable(exc: sa.exc.SQLAlchemyError, url: sa.URL) -> StoreUnavailableError:
    """The error for a database that cannot be connected to."""
    return StoreUnavailableError(f"Cannot connect to {masked(url)}: {describe_error(exc, url.password, url)}")
