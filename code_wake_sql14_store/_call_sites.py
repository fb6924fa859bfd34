"""Call sites: the data every log record from one line of code repeats, stored once (schema 4).

A record from the logging handler carries its logger, level, template,
module, function and line: the same on every call from one line of code,
as a stack trace is. Stored with every event they were two thirds of its
data rows, each with its index entries. Now an event's items under those
keys (`CALL_SITE_KEYS`), with their positions in its data, are its call
site: stored once in ``call_sites`` (by digest) and ``call_site_data``, and
referred to by ``events.call_site_id``. The event's other items (the
message, ``extra`` fields) stay its own ``events_data`` rows.

The thread is part of the site too, but only for the first
`THREADS_IN_SITES` thread names a store meets (`ThreadNames`): a pool's or
the main thread's name recurs, while a server that starts a thread per
request names a new one each time, and would make a new site of every line
it logs from. Past the bound a thread name stays the event's own row; a
name can so be held both ways (by different processes), which the readers
resolve per term (`_filters.placed_terms`).

Reading puts the site's items back at their positions among the event's
own (`merged`), so an event reads back exactly as it was logged; finding
events by a call-site item goes through ``call_site_data`` (`_filters`).
A site never changes once stored, so both caches stay right.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import TypeAlias

import sqlalchemy as sa

from code_wake.event import Pairs
from code_wake.records import DataItem
from code_wake.stack_trace import bencode

from ._batch import new_id
from ._cache import BoundedCache
from ._database import Database, chunks
from .schema import call_site_data, call_sites

__all__ = [
    "CALL_SITE_KEYS",
    "THREADS_IN_SITES",
    "THREAD_KEY",
    "CallSites",
    "SiteItems",
    "ThreadNames",
    "merged",
    "site_digest",
    "split",
]

CALL_SITE_KEYS = frozenset({"logger", "level", "msg_template", "module", "func", "lineno"})
"""The data keys whose items make an event's call site (the handler's and structlog's fields).

Not ``message``: it varies with the arguments. ``thread`` is in a site or
not, by its value (`ThreadNames`).
"""

THREAD_KEY = "thread"
"""The key of the logging handler's thread name: in the call site for the names `ThreadNames` admits."""

THREADS_IN_SITES = 32
"""Thread names a store puts in call sites; the names it meets after these stay events' own rows."""

SiteItems: TypeAlias = tuple[tuple[int, str, "str | None"], ...]
"""A call site: its items as ``(position in the event's data, key, value)``, in position order."""

SITES_CACHED = 4096
"""Call sites each cache of a store remembers (by items to write, by id to read)."""

_INSERT_SITE = sa.insert(call_sites)
_INSERT_ITEMS = sa.insert(call_site_data)


class ThreadNames:
    """The thread names one store puts in call sites: the first `bound` it meets.

    Deterministic for the life of the store: a name admitted stays admitted,
    and one refused once (the bound reached) is refused again, so an event
    written twice (a retried batch) has the same call site both times. Two
    threads admitting at once may pass the bound by one; that is harmless.
    """

    def __init__(self, bound: int = THREADS_IN_SITES) -> None:
        self._admitted: set[str | None] = set()
        self._bound = bound

    def admits(self, name: str | None) -> bool:
        """Whether `name` goes into the call site, admitting it while there is room."""
        admitted = self._admitted
        if name in admitted:
            return True
        if len(admitted) >= self._bound:
            return False
        admitted.add(name)
        return True


def split(data: Pairs, threads: ThreadNames | None = None) -> tuple[SiteItems, Pairs]:
    """An event's data as its call site's items (positioned) and its own items (in order).

    The thread is in the site if `threads` admits its name (never without `threads`).
    """
    site: list[tuple[int, str, str | None]] = []
    own: list[tuple[str, str | None]] = []
    for position, item in enumerate(data):
        key = item[0]
        if key in CALL_SITE_KEYS or (key == THREAD_KEY and threads is not None and threads.admits(item[1])):
            site.append((position, key, item[1]))
        else:
            own.append(item)
    return tuple(site), tuple(own) if site else tuple(data)


def merged(site: SiteItems, own: Sequence[DataItem]) -> tuple[DataItem, ...]:
    """An event's data again: its own items, with the site's put back at their positions."""
    data: list[DataItem] = []
    rest = iter(own)
    for position, key, val in site:
        while len(data) < position:
            item = next(rest, None)
            if item is None:
                break
            data.append(item)
        data.append(DataItem(key, val))
    data.extend(rest)
    return tuple(data)


def site_digest(site: SiteItems) -> bytes:
    """sha256 of the bencoded ``[[position, key, value], ...]`` (a null value as an empty list)."""
    listed = [[pos, key, [] if val is None else val] for pos, key, val in site]
    return hashlib.sha256(bencode(listed)).digest()


class CallSites:
    """The call sites of one store's database: stored once each, cached by items and by id."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._ids: BoundedCache[SiteItems, int] = BoundedCache(SITES_CACHED)
        self._items: BoundedCache[int, SiteItems] = BoundedCache(SITES_CACHED)
        self.threads = ThreadNames()
        """The thread names this store's writes put in call sites."""

    def after_fork(self) -> None:
        """In a forked child: caches with locks no parent thread can hold."""
        self._ids.after_fork()
        self._items.after_fork()

    def forget(self) -> None:
        """Forget every cached site: the next write of one finds, or stores, the current row."""
        self._ids.clear()
        self._items.clear()

    def split(self, data: Pairs) -> tuple[SiteItems, Pairs]:
        """`split` with this store's thread names."""
        return split(data, self.threads)

    def ids_for(self, sites: Sequence[SiteItems]) -> list[int | None]:
        """The stored id of each site (None for an event without one); new ones stored, together."""
        known: dict[SiteItems, int] = {}
        missing: dict[bytes, SiteItems] = {}
        for site in sites:
            if site and site not in known:
                cached = self._ids.get(site)
                if cached is None:
                    missing[site_digest(site)] = site
                else:
                    known[site] = cached
        if missing:
            known.update(self._fetch_or_create(missing))
        return [known[site] if site else None for site in sites]

    def remembered_ids(self) -> set[int]:
        """The ids of the sites this store has cached for writing."""
        return set(self._ids.values())

    def with_ids(self, conn: sa.Connection, ids: set[int]) -> dict[int, SiteItems]:
        """The call sites with these ids, cached by id."""

        def load(wanted: list[int]) -> Iterator[tuple[int, SiteItems]]:
            c = call_site_data.c
            for chunk in chunks(sorted(wanted)):
                query = (
                    sa.select(c.call_site_id, c.pos, c.key, c.val)
                    .where(c.call_site_id.in_(chunk))
                    .order_by(c.call_site_id, c.pos)
                )
                items: dict[int, list[tuple[int, str, str | None]]] = {}
                for site_id, pos, key, val in conn.execute(query):
                    items.setdefault(int(site_id), []).append((int(pos), key, val))
                for site_id, site in items.items():
                    yield site_id, tuple(site)

        return self._items.get_many(ids, load)

    def _fetch_or_create(self, missing: dict[bytes, SiteItems]) -> dict[SiteItems, int]:
        """The ids of these sites (by digest): those stored found, the others stored, in one transaction.

        Two writers storing the same new site: the loser's unique violation
        rolls its transaction back, and its next try finds the winner's row.
        """

        def store(conn: sa.Connection) -> dict[bytes, int]:
            found: dict[bytes, int] = {}
            for chunk in chunks(list(missing)):
                query = sa.select(call_sites.c.digest, call_sites.c.id).where(call_sites.c.digest.in_(chunk))
                found.update((bytes(digest), int(site_id)) for digest, site_id in conn.execute(query))
            items: list[dict[str, object]] = []
            for digest, site in missing.items():
                if digest not in found:
                    site_id = found[digest] = new_id(conn.execute(_INSERT_SITE, {"digest": digest}))
                    items.extend(_item_row(site_id, *item) for item in site)
            if items:
                conn.execute(_INSERT_ITEMS, items)
            return found

        found = self._db.retrying(store)
        return {site: self._remember(site, found[digest]) for digest, site in missing.items()}

    def _remember(self, site: SiteItems, site_id: int) -> int:
        self._items.put(site_id, site)
        return self._ids.put(site, site_id)


def _item_row(site_id: int, pos: int, key: str, val: str | None) -> dict[str, object]:
    return {"call_site_id": site_id, "pos": pos, "key": key, "val": val}
