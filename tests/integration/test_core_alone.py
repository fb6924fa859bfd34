"""The core works without SQLAlchemy and without the SQL adapter: only the default store needs them."""

from __future__ import annotations

from pathlib import Path

from .helpers import run_python


def test_core_without_sqlalchemy_or_the_sql_adapter(tmp_path: Path) -> None:
    """With sqlalchemy and code_wake_sql14_store unimportable, every core module imports and records."""
    out = run_python(
        """
        import sys

        BLOCKED = ("sqlalchemy", "code_wake_sql14_store")

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"{name} is blocked in this test")
                return None

        sys.meta_path.insert(0, Block())

        import logging

        import code_wake
        import code_wake.cli
        import code_wake.config
        import code_wake.logging
        import code_wake.structlog
        import code_wake.testing
        from code_wake.testing import MemoryStore

        store = MemoryStore()
        proc = code_wake.Process(store=store, app_name="alone")
        proc.log({"door": "process"})
        logger = logging.getLogger("alone")
        logger.addHandler(code_wake.logging.CodeWakeHandler())
        logger.warning("through the %s", "handler")
        print(sorted(e.data_dict().get("door") or e.data_dict()["message"] for e in store.query_events()))

        print(code_wake.config.mask_secret_url("postgresql://scott:p@ss@host/db"))
        code_wake.Process.reset()
        try:
            code_wake.Config.load().build_store()
        except code_wake.ConfigError as exc:
            print(exc)
        print(sorted(m for m in sys.modules if m.startswith(BLOCKED)))
        """,
        tmp_path,
        env={"XDG_DATA_HOME": str(tmp_path / "data")},
    )
    events, masked, default_store, imported = out.splitlines()
    assert events == "['process', 'through the handler']"
    assert masked == "postgresql://scott:***@host/db"
    assert "the embedded default store" in default_store
    assert "module 'code_wake_sql14_store' cannot be imported" in default_store
    assert imported == "[]"
