"""A store adapter written the pycodewake 0.2 way, as adapter packages for it were.

A plain class (no code_wake base class) with nested ORM record classes, the
original's methods and nothing more, using only what pycodewake 0.2 offered
adapters: ``code_wake.config.Config`` mapping access,
``code_wake.stack_trace.Stacktrace`` and ``code_wake.utils.data_digest``. It
runs on SQLAlchemy 2 (``Session.get`` rather than the removed ``Query.get``).
code_wake must run it, and its test suite, unchanged.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from code_wake.config import Config
from code_wake.stack_trace import Stacktrace
from code_wake.utils import data_digest


class LegacySqlStore:
    """pycodewake-style SQL store: one ORM class per table, one session per call."""

    class Base(orm.DeclarativeBase):
        pass

    class Environment(Base):
        __tablename__ = "environments"
        id = sa.Column(sa.Integer, primary_key=True)
        name = sa.Column(sa.String(255), unique=True, nullable=False)

    class App(Base):
        __tablename__ = "apps"
        id = sa.Column(sa.Integer, primary_key=True)
        name = sa.Column(sa.String(255), unique=True, nullable=False)

    class AppVsn(Base):
        __tablename__ = "app_vsns"
        id = sa.Column(sa.Integer, primary_key=True)
        vsn = sa.Column(sa.String(255), nullable=False)
        app_id = sa.Column(sa.Integer, sa.ForeignKey("apps.id"), nullable=False)
        app = orm.relationship("App", lazy="joined")

    class Process(Base):
        __tablename__ = "processes"
        id = sa.Column(sa.Integer, primary_key=True)
        run_ts = sa.Column(sa.Float, nullable=False, default=time.time)
        pid = sa.Column(sa.Integer)
        username = sa.Column(sa.String(255))
        fqdn = sa.Column(sa.String(255))
        exe_path = sa.Column(sa.String(255))
        app_id = sa.Column(sa.Integer, sa.ForeignKey("apps.id"), nullable=False)
        app_vsn_id = sa.Column(sa.Integer, sa.ForeignKey("app_vsns.id"))
        environment_id = sa.Column(sa.Integer, sa.ForeignKey("environments.id"))
        app = orm.relationship("App", lazy="joined")
        app_vsn = orm.relationship("AppVsn", lazy="joined")
        environment = orm.relationship("Environment", lazy="joined")

    class Stackframe(Base):
        __tablename__ = "stackframes"
        id = sa.Column(sa.Integer, primary_key=True)
        stacktrace_id = sa.Column(sa.Integer, sa.ForeignKey("stacktraces.id"), nullable=False)
        filename = sa.Column(sa.String(255), nullable=False)
        lineno = sa.Column(sa.Integer, nullable=False)
        src = sa.Column(sa.Text)

    class Stacktrace(Base):
        __tablename__ = "stacktraces"
        id = sa.Column(sa.Integer, primary_key=True)
        digest = sa.Column(sa.LargeBinary(32), unique=True, nullable=False)
        # Stored outermost first; the original's records read them innermost first.
        stackframes = orm.relationship("Stackframe", lazy="joined", order_by="desc(Stackframe.id)")

    class EventData(Base):
        __tablename__ = "events_data"
        id = sa.Column(sa.Integer, primary_key=True)
        event_id = sa.Column(sa.Integer, sa.ForeignKey("events.id"), nullable=False)
        key = sa.Column(sa.String(255), nullable=False)
        val = sa.Column(sa.Text)

    class Event(Base):
        __tablename__ = "events"
        id = sa.Column(sa.Integer, primary_key=True)
        when_ts = sa.Column(sa.Float, nullable=False, default=time.time)
        process_id = sa.Column(sa.Integer, sa.ForeignKey("processes.id"), nullable=False)
        digest = sa.Column(sa.LargeBinary(32))
        stacktrace_id = sa.Column(sa.Integer, sa.ForeignKey("stacktraces.id"))
        process = orm.relationship("Process", lazy="joined")
        stacktrace = orm.relationship("Stacktrace", lazy="joined")
        data = orm.relationship("EventData", lazy="joined", order_by="EventData.id")

    def __init__(self, dsn: str, **kwargs: Any) -> None:
        self._engine = sa.create_engine(dsn, **kwargs)
        self.session = orm.sessionmaker(bind=self._engine, expire_on_commit=False)
        self.Base.metadata.create_all(self._engine)

    def close(self) -> None:
        self._engine.dispose()

    def _named(self, session: orm.Session, cls: Any, name: str) -> Any:
        found = session.scalars(sa.select(cls).where(cls.name == name)).unique().first()
        if found is None:
            found = cls(name=name)
            session.add(found)
            session.flush()
        return found

    def insert_app(self, name: str, vsn: str | None = None) -> Any:
        with self.session() as session:
            app = self._named(session, self.App, name)
            if vsn is not None:
                session.add(self.AppVsn(vsn=vsn, app_id=app.id))
            session.commit()
            return app

    def insert_process(self, unstored_process: Any) -> Any:
        with self.session() as session:
            app = self._named(session, self.App, unstored_process.app.name)
            env = unstored_process.environment
            env_id = None if env is None else self._named(session, self.Environment, env.name).id
            vsn_id = None
            if unstored_process.app_vsn is not None:
                vsn = self.AppVsn(vsn=unstored_process.app_vsn.vsn, app_id=app.id)
                session.add(vsn)
                session.flush()
                vsn_id = vsn.id
            process = self.Process(
                pid=unstored_process.pid,
                username=unstored_process.username,
                fqdn=unstored_process.fqdn,
                exe_path=unstored_process.exe_path,
                app_id=app.id,
                app_vsn_id=vsn_id,
                environment_id=env_id,
            )
            session.add(process)
            session.commit()
            return session.get(self.Process, process.id, populate_existing=True)

    def get_process_by_id(self, id: int) -> Any:
        with self.session() as session:
            return session.get(self.Process, id)

    def get_app_by_id(self, id: int) -> Any:
        with self.session() as session:
            return session.get(self.App, id)

    def get_environment_by_id(self, id: int) -> Any:
        with self.session() as session:
            return session.get(self.Environment, id)

    def get_app_vsn_by_id(self, id: int) -> Any:
        with self.session() as session:
            return session.get(self.AppVsn, id)

    def insert_event(
        self,
        process: Any,
        data: Any = None,
        exc: BaseException | None = None,
        inc_st: bool | None = None,
        st_len: int | None = None,
        st_data: Any = None,
        when_ts: float | None = None,
        sync: bool = False,
    ) -> Any:
        if inc_st is None:
            include = Config()["stacktraces"]["include"]
            inc_st = include["for_non_exceptions" if exc is None else "from_exceptions"]
        trace = None
        if inc_st:
            if st_data is not None:
                trace = Stacktrace.from_data(st_data, st_len=st_len)
            elif exc is not None:
                trace = Stacktrace.from_exc(exc, st_len=st_len)
            else:
                trace = Stacktrace.from_caller(st_len=st_len)
        with self.session() as session:
            event = self.Event(
                process_id=process.id,
                digest=None if data is None else data_digest(list(data)),
                stacktrace_id=None if trace is None else self._trace_id(session, trace),
                when_ts=when_ts,
            )
            session.add(event)
            session.flush()
            for key, val in data or ():
                session.add(self.EventData(event_id=event.id, key=key, val=val))
            session.commit()
            return session.get(self.Event, event.id, populate_existing=True) if sync else None

    def _trace_id(self, session: orm.Session, trace: Stacktrace) -> int:
        digest = trace.digest()
        found = session.scalars(sa.select(self.Stacktrace).where(self.Stacktrace.digest == digest)).first()
        if found is None:
            found = self.Stacktrace(digest=digest)
            session.add(found)
            session.flush()
            for frame in trace.stackframes:
                session.add(
                    self.Stackframe(
                        stacktrace_id=found.id, filename=frame.filename, lineno=frame.lineno, src=frame.src
                    )
                )
            session.flush()
        return int(found.id)

    def get_events_by_data(self, where: Any, process_id: int | None = None) -> list[Any]:
        with self.session() as session:
            query = sa.select(self.Event)
            if process_id is not None:
                query = query.where(self.Event.process_id == process_id)
            for key, val in where:
                term = orm.aliased(self.EventData)
                query = query.join(term, term.event_id == self.Event.id)
                query = query.where(term.key == key, term.val == val)
            return list(session.scalars(query.order_by(self.Event.id)).unique())
