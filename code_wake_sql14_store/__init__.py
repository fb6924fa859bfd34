"""code_wake's SQL store: SQLite, PostgreSQL and MySQL/MariaDB through SQLAlchemy 2.

Configure it as ``code_wake_sql14_store,Sql14Store`` with a SQLAlchemy URL.
"""

from .store import Sql14Store

__all__ = ["Sql14Store"]
