"""code_wake's SQL store: SQLite, PostgreSQL and MySQL/MariaDB through SQLAlchemy 2.

Configure it as ``code_wake_sql14_store,Sql14Store`` with a SQLAlchemy URL.
`Sql14QueueStore` is the same store behind code_wake's background queue.
"""

from code_wake.queue_store import QueueStore as _QueueStore

from .store import Sql14Store


class Sql14QueueStore(_QueueStore, Sql14Store):  # type: ignore[misc]  # close() gains a timeout
    """`Sql14Store` whose writes go through a bounded background queue (docs/queue.md)."""


__all__ = ["Sql14QueueStore", "Sql14Store"]
