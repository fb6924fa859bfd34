"""Every example of pycodewake's README, run as written against a real SQLite file.

The README's queue store example (`class Sql14QueueStore(QueueStore, Sql14Store)`)
belongs to the queue (issue 3) and is tested with it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import rows, run_python

CANONICAL_CONFIG = """\
store:
  adapter: "code_wake_sql14_store,Sql14Store"
  config: "{url}"
environment:
  name: "production"
app:
  name: "my_app"
  vsn: "1.2.3"
stacktraces:
  include:
    from_exceptions: true
    for_non_exceptions: false
"""


@pytest.fixture
def configured(tmp_path: Path, sqlite_url: str) -> dict[str, str]:
    """The README's canonical configuration file, named by CODE_WAKE_CONFIG."""
    path = tmp_path / "code_wake.conf"
    path.write_text(CANONICAL_CONFIG.format(url=sqlite_url))
    return {"CODE_WAKE_CONFIG": str(path)}


def stored_events(url: str) -> list[tuple[object, ...]]:
    return rows(
        url,
        "SELECT e.id, a.name, v.vsn, env.name, e.stacktrace_id, e.exc_type FROM events e "
        "JOIN processes p ON p.id = e.process_id JOIN apps a ON a.id = p.app_id "
        "LEFT JOIN app_vsns v ON v.id = p.app_vsn_id LEFT JOIN environments env ON env.id = p.environment_id "
        "ORDER BY e.id",
    )


def test_concept_with_configuration(tmp_path: Path, sqlite_url: str, configured: dict[str, str]) -> None:
    """`Process().log()`, events and an exception, with only a configuration file."""
    run_python(
        """
        import code_wake
        cwproc = code_wake.Process()
        cwproc.log()

        customer = "c42"
        cwproc.log({"event": "order", "type": "special", "customer": customer})
        try:
            raise RuntimeError("cannot create order")
        except RuntimeError as exc:
            cwproc.log({"event": "fault", "doing": "create_order", "customer": customer}, exc)
        """,
        tmp_path,
        configured,
    )
    events = stored_events(sqlite_url)
    assert [e[1:4] for e in events] == [("my_app", "1.2.3", "production")] * 3
    assert events[0][4] is None and events[1][4] is None
    assert events[2][4] is not None and events[2][5] == "RuntimeError"
    data = rows(sqlite_url, "SELECT key, val FROM events_data WHERE event_id = 2 ORDER BY id")
    assert data == [("event", "order"), ("type", "special"), ("customer", "c42")]


def test_local_configuration_file(tmp_path: Path, sqlite_url: str) -> None:
    """./etc/code_wake.conf is found without any environment variable."""
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "code_wake.conf").write_text(CANONICAL_CONFIG.format(url=sqlite_url))
    run_python("import code_wake\ncode_wake.Process().log({'what': 'ever'})\n", tmp_path)
    assert [e[1:4] for e in stored_events(sqlite_url)] == [("my_app", "1.2.3", "production")]


def test_use_without_config(tmp_path: Path, sqlite_url: str) -> None:
    """A store passed to Process, then `Process()` anywhere logs to it."""
    run_python(
        f"""
        import code_wake
        from code_wake_sql14_store import Sql14Store
        cwproc = code_wake.Process(store=Sql14Store({sqlite_url!r}))

        def elsewhere():
            cwproc = code_wake.Process()
            cwproc.log({{"what": "ever"}})

        elsewhere()
        """,
        tmp_path,
    )
    assert rows(sqlite_url, "SELECT key, val FROM events_data") == [("what", "ever")]


def test_other_process_options(tmp_path: Path, sqlite_url: str) -> None:
    """app_name, app_vsn, env_name and the stack trace switches given to the constructor."""
    run_python(
        f"""
        import code_wake
        from code_wake_sql14_store import Sql14Store
        cwproc = code_wake.Process(
            app_name="my_app",
            app_vsn="1.2.3",
            env_name="production",
            store=Sql14Store({sqlite_url!r}),
            st_for_non_exceptions=True,
        )
        cwproc.log({{"with": "trace"}})
        """,
        tmp_path,
    )
    ((_, app, vsn, env, trace, _),) = stored_events(sqlite_url)
    assert (app, vsn, env) == ("my_app", "1.2.3", "production")
    assert trace is not None


def test_environment_variables(tmp_path: Path, sqlite_url: str, configured: dict[str, str]) -> None:
    """Every variable of the README's table overrides the file."""
    env = {
        **configured,
        "CODE_WAKE_STORE_ADAPTER": "code_wake_sql14_store,Sql14Store",
        "CODE_WAKE_STORE_CONFIG": sqlite_url,
        "CODE_WAKE_ENVIRONMENT": "staging",
        "CODE_WAKE_APP_NAME": "env_app",
        "CODE_WAKE_APP_VSN": "9.9",
        "CODE_WAKE_ST_FROM_EXCEPTIONS": "FALSE",
        "CODE_WAKE_ST_FOR_NON_EXCEPTIONS": "True",
    }
    run_python(
        """
        import code_wake
        cwproc = code_wake.Process()
        cwproc.log({"plain": "event"})
        cwproc.log({"with": "exception"}, ValueError("no trace wanted"))
        """,
        tmp_path,
        env,
    )
    plain, with_exc = stored_events(sqlite_url)
    assert plain[1:4] == ("env_app", "9.9", "staging")
    assert plain[4] is not None
    assert with_exc[4] is None and with_exc[5] == "ValueError"
