"""Configuration: real files in temporary directories, real environment variables."""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import code_wake
from code_wake import _adapters
from code_wake.config import Config, default_store_path, default_store_url, mask_secret_url
from code_wake.errors import ConfigError
from code_wake.event import DEFAULT_MAX_VALUE_LENGTH, DEFAULT_SECRET_KEYS
from code_wake.queue_store import QueueSettings, QueueStore
from code_wake.testing.memory import MemoryStore

CANONICAL = """\
store:
  adapter: "code_wake_sql14_store,Sql14Store"
  config: "sqlite:////tmp/some_file.sqlite"
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

PASSWORD = "s3cr3t-Pa55"
SECRET_URL = f"postgresql://scott:{PASSWORD}@db.example.com/events"

ADAPTERS = """\
from code_wake.errors import StoreError
from code_wake.testing.memory import MemoryStore


class RecordingStore(MemoryStore):
    def __init__(self, *args):
        super().__init__()
        self.args = args


class FailingStore(MemoryStore):
    def __init__(self, dsn):
        raise StoreError(f"cannot connect to {dsn}")


class CrashingStore(MemoryStore):
    def __init__(self, dsn):
        raise ValueError(f"bad dsn {dsn!r}")


class LeakyStore(MemoryStore):
    def __init__(self, dsn):
        from sqlalchemy import make_url

        raise StoreError(f"authentication failed for password {make_url(dsn).password}")


class NotAStore:
    pass
"""


def write(path: Path, text: str) -> Path:
    """Write a config file (creating its directory) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def global_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the global config file is looked for in this test (not written yet)."""
    path = tmp_path / "global" / "code_wake.conf"
    monkeypatch.setenv("CODE_WAKE_GLOBAL_CONFIG", str(path))
    return path


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current directory of this test, where ./etc/code_wake.conf is looked for."""
    path = tmp_path / "app"
    path.mkdir()
    monkeypatch.chdir(path)
    return path


@pytest.fixture
def local_file(app_dir: Path) -> Path:
    """The local config file ./etc/code_wake.conf (not written yet)."""
    return app_dir / "etc" / "code_wake.conf"


@pytest.fixture
def adapters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The name of a freshly written, importable module of test adapter classes."""
    name = f"cw_test_adapters_{uuid.uuid4().hex}"
    write(tmp_path / "modules" / f"{name}.py", ADAPTERS)
    monkeypatch.syspath_prepend(str(tmp_path / "modules"))
    yield name
    sys.modules.pop(name, None)


def load_error() -> str:
    """The message of the ConfigError that Config.load() raises."""
    with pytest.raises(ConfigError) as info:
        Config.load()
    return str(info.value)


def build_error(config: Config) -> ConfigError:
    """The ConfigError that build_store() raises."""
    with pytest.raises(ConfigError) as info:
        config.build_store()
    return info.value


class TestDefaults:
    def test_no_files_no_variables(self, app_dir: Path) -> None:
        """With nothing configured every value is its default and nothing has an origin."""
        config = Config.load()
        assert config == Config(data_dir=config.data_dir)
        assert config.store_adapter is None
        assert config.store_args == ()
        assert (config.app_name, config.app_vsn, config.env_name) == (None, None, None)
        assert config.st_from_exceptions is True
        assert config.st_for_non_exceptions is False
        assert config.max_value_length == DEFAULT_MAX_VALUE_LENGTH
        assert config.secret_keys == DEFAULT_SECRET_KEYS
        assert dict(config.origins) == {}

    def test_empty_file(self, local_file: Path) -> None:
        """An empty file (or one with only comments) is valid and sets nothing."""
        write(local_file, "# nothing here yet\n")
        assert Config.load().origins == {}

    def test_event_policy(self, local_file: Path) -> None:
        """The event policy carries the configured limits and secret keys."""
        write(local_file, "events:\n  max_value_length: 10\n  secret_keys: [pin]\n")
        policy = Config.load().event_policy()
        assert policy.max_value_length == 10
        assert policy.is_secret("Card-PIN")
        assert not policy.is_secret("password")


class TestFiles:
    def test_canonical_yaml(self, local_file: Path) -> None:
        """The seed README's canonical configuration loads with every value as written."""
        write(local_file, CANONICAL)
        config = Config.load()
        assert config.store_adapter == "code_wake_sql14_store,Sql14Store"
        assert config.store_args == ("sqlite:////tmp/some_file.sqlite",)
        assert config.env_name == "production"
        assert config.app_name == "my_app"
        assert config.app_vsn == "1.2.3"
        assert config.st_from_exceptions is True
        assert config.st_for_non_exceptions is False
        assert config.origins["store.adapter"] == str(local_file)

    def test_our_keys(self, local_file: Path) -> None:
        """The events section sets the value limit and replaces the secret key list."""
        write(local_file, "events:\n  max_value_length: 100\n  secret_keys: [pin, otp]\n")
        config = Config.load()
        assert config.max_value_length == 100
        assert config.secret_keys == ("pin", "otp")

    def test_store_config_list(self, local_file: Path) -> None:
        """store.config may be a list of positional adapter arguments."""
        write(local_file, 'store:\n  config: ["a", "b"]\n')
        assert Config.load().store_args == ("a", "b")

    def test_numeric_version(self, local_file: Path) -> None:
        """An unquoted numeric version becomes its string."""
        write(local_file, "app:\n  vsn: 1.2\n")
        assert Config.load().app_vsn == "1.2"
        write(local_file, "app:\n  vsn: 2\n")
        assert Config.load().app_vsn == "2"

    def test_null_is_absent(self, local_file: Path) -> None:
        """A key with no value is treated as if it were not there."""
        write(local_file, "app:\n  name:\nenvironment:\n")
        config = Config.load()
        assert config.app_name is None
        assert "app.name" not in config.origins

    def test_adapter_whitespace_stripped(self, local_file: Path) -> None:
        """Whitespace around the two parts of the adapter string is dropped."""
        write(local_file, 'store:\n  adapter: " mod , Cls "\n')
        assert Config.load().store_adapter == "mod,Cls"

    def test_global_only(self, global_file: Path, app_dir: Path) -> None:
        """The global file alone is read when there is no local one."""
        write(global_file, "app:\n  name: from_global\n")
        config = Config.load()
        assert config.app_name == "from_global"
        assert config.origins["app.name"] == str(global_file)

    def test_local_only(self, global_file: Path, local_file: Path) -> None:
        """The local file alone is read when there is no global one."""
        write(local_file, "app:\n  name: from_local\n")
        config = Config.load()
        assert config.app_name == "from_local"
        assert config.origins["app.name"] == str(local_file)

    def test_local_overrides_global_key_by_key(self, global_file: Path, local_file: Path) -> None:
        """The local file wins per key; global keys it does not set survive, even in the same section."""
        write(
            global_file,
            """\
            store:
              adapter: "gmod,GStore"
              config: "global-dsn"
            app:
              name: global_app
              vsn: "1.0"
            stacktraces:
              include:
                from_exceptions: false
                for_non_exceptions: true
            """,
        )
        write(
            local_file,
            """\
            app:
              name: local_app
            stacktraces:
              include:
                for_non_exceptions: false
            """,
        )
        config = Config.load()
        assert config.app_name == "local_app"
        assert config.app_vsn == "1.0"
        assert config.store_adapter == "gmod,GStore"
        assert config.store_args == ("global-dsn",)
        assert config.st_from_exceptions is False
        assert config.st_for_non_exceptions is False
        assert config.origins["app.name"] == str(local_file)
        assert config.origins["app.vsn"] == str(global_file)

    def test_cwd_argument(self, global_file: Path, tmp_path: Path) -> None:
        """The local file is looked for under the cwd argument when one is given."""
        write(tmp_path / "elsewhere" / "etc" / "code_wake.conf", "app:\n  name: elsewhere\n")
        assert Config.load(cwd=tmp_path / "elsewhere").app_name == "elsewhere"

    def test_code_wake_config_alone(
        self, global_file: Path, local_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The file named by CODE_WAKE_CONFIG is the only one read."""
        write(global_file, "app:\n  name: global\n  vsn: '9'\n")
        write(local_file, "environment:\n  name: local\n")
        named = write(tmp_path / "named.conf", "app:\n  name: named\n")
        monkeypatch.setenv("CODE_WAKE_CONFIG", str(named))
        config = Config.load()
        assert config.app_name == "named"
        assert config.app_vsn is None
        assert config.env_name is None

    def test_code_wake_config_missing(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """CODE_WAKE_CONFIG naming a missing file is an error naming the path and the variable."""
        missing = tmp_path / "missing.conf"
        monkeypatch.setenv("CODE_WAKE_CONFIG", str(missing))
        message = load_error()
        assert str(missing) in message
        assert "CODE_WAKE_CONFIG" in message

    def test_code_wake_config_directory(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """CODE_WAKE_CONFIG naming a directory is an error too."""
        monkeypatch.setenv("CODE_WAKE_CONFIG", str(tmp_path))
        assert str(tmp_path) in load_error()

    def test_explicit_environ(self, tmp_path: Path) -> None:
        """An environ mapping given to load() is used instead of os.environ."""
        named = write(tmp_path / "named.conf", "app:\n  name: named\n")
        config = Config.load(environ={"CODE_WAKE_CONFIG": str(named), "CODE_WAKE_APP_VSN": "3"})
        assert (config.app_name, config.app_vsn) == ("named", "3")


class TestEnvironment:
    @pytest.mark.parametrize(
        ("variable", "value", "attribute", "expected"),
        [
            ("CODE_WAKE_STORE_ADAPTER", "envmod,EnvStore", "store_adapter", "envmod,EnvStore"),
            ("CODE_WAKE_STORE_CONFIG", "one, two", "store_args", ("one", "two")),
            ("CODE_WAKE_ENVIRONMENT", "staging", "env_name", "staging"),
            ("CODE_WAKE_APP_NAME", "env_app", "app_name", "env_app"),
            ("CODE_WAKE_APP_VSN", "7.7", "app_vsn", "7.7"),
            ("CODE_WAKE_ST_FROM_EXCEPTIONS", "true", "st_from_exceptions", True),
            ("CODE_WAKE_ST_FOR_NON_EXCEPTIONS", "false", "st_for_non_exceptions", False),
            ("CODE_WAKE_MAX_VALUE_LENGTH", "42", "max_value_length", 42),
            ("CODE_WAKE_SECRET_KEYS", "pin, otp,", "secret_keys", ("pin", "otp")),
        ],
    )
    def test_overrides_file(
        self,
        local_file: Path,
        monkeypatch: pytest.MonkeyPatch,
        variable: str,
        value: str,
        attribute: str,
        expected: object,
    ) -> None:
        """Each environment variable overrides the file's value and records itself as the origin."""
        write(
            local_file,
            """\
            store:
              adapter: "filemod,FileStore"
              config: "file-dsn"
            environment:
              name: production
            app:
              name: file_app
              vsn: "1.0"
            stacktraces:
              include:
                from_exceptions: false
                for_non_exceptions: true
            events:
              max_value_length: 1000
              secret_keys: [password]
            """,
        )
        monkeypatch.setenv(variable, value)
        config = Config.load()
        assert getattr(config, attribute) == expected
        key = next(k for k, v in config.origins.items() if v == f"environment variable {variable}")
        assert key.split(".")[0] in {"store", "environment", "app", "stacktraces", "events"}

    def test_empty_variable_is_unset(self, local_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """An empty variable leaves the file's value in place."""
        write(local_file, "app:\n  name: file_app\n")
        monkeypatch.setenv("CODE_WAKE_APP_NAME", "")
        assert Config.load().app_name == "file_app"

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("true", True),
            ("TRUE", True),
            ("True", True),
            ("1", True),
            ("yes", True),
            ("On", True),
            ("false", False),
            ("FALSE", False),
            ("0", False),
            ("no", False),
            ("off", False),
            (" false ", False),
        ],
    )
    def test_boolean_spellings(self, monkeypatch: pytest.MonkeyPatch, text: str, expected: bool) -> None:
        """Every accepted spelling of a boolean reads as its value."""
        monkeypatch.setenv("CODE_WAKE_ST_FROM_EXCEPTIONS", text)
        monkeypatch.setenv("CODE_WAKE_ST_FOR_NON_EXCEPTIONS", text)
        config = Config.load()
        assert config.st_from_exceptions is expected
        assert config.st_for_non_exceptions is expected

    @pytest.mark.parametrize("text", ["ture", "2", "y", "disabled"])
    def test_bad_boolean(self, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
        """A bad boolean is an error naming the variable, the value and what is accepted."""
        monkeypatch.setenv("CODE_WAKE_ST_FOR_NON_EXCEPTIONS", text)
        message = load_error()
        assert "CODE_WAKE_ST_FOR_NON_EXCEPTIONS" in message
        assert repr(text) in message
        assert "true or false" in message

    @pytest.mark.parametrize("text", ["0", "-5", "many", "1.5"])
    def test_bad_max_value_length(self, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
        """CODE_WAKE_MAX_VALUE_LENGTH must be a positive integer."""
        monkeypatch.setenv("CODE_WAKE_MAX_VALUE_LENGTH", text)
        message = load_error()
        assert "CODE_WAKE_MAX_VALUE_LENGTH" in message
        assert "a positive integer" in message

    @pytest.mark.parametrize("text", ["a,b,c", "nocomma", ",X", "mod,"])
    def test_bad_adapter_variable(self, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
        """CODE_WAKE_STORE_ADAPTER must be "module,Class"."""
        monkeypatch.setenv("CODE_WAKE_STORE_ADAPTER", text)
        message = load_error()
        assert "CODE_WAKE_STORE_ADAPTER" in message
        assert '"module,Class"' in message

    def test_bad_secret_key_fragment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A secret key fragment without letters or digits is refused rather than ignored."""
        monkeypatch.setenv("CODE_WAKE_SECRET_KEYS", "pin,--")
        assert "CODE_WAKE_SECRET_KEYS" in load_error()


class TestFileValidation:
    def test_malformed_yaml(self, local_file: Path) -> None:
        """Malformed YAML is an error naming the file and the line, without quoting the line."""
        write(local_file, f'store:\n  config: "{SECRET_URL}"\napp:\n  name: "unterminated\n  vsn: [1,\n')
        message = load_error()
        assert str(local_file) in message
        assert "malformed YAML at line 6" in message
        assert PASSWORD not in message

    def test_tab_indentation(self, local_file: Path) -> None:
        """A tab where YAML wants spaces is reported with its line."""
        write(local_file, "app:\n\tname: x\n")
        assert "line 2" in load_error()

    def test_top_level_not_mapping(self, local_file: Path) -> None:
        """A file whose top level is not a mapping is refused, saying what was found."""
        write(local_file, "- store\n- app\n")
        message = load_error()
        assert str(local_file) in message
        assert "expected a mapping of settings at the top level" in message
        assert "found list" in message

    def test_scalar_top_level(self, local_file: Path) -> None:
        """A file holding one plain word is refused too."""
        write(local_file, "production\n")
        assert "found str 'production'" in load_error()

    @pytest.mark.parametrize(
        ("yaml_text", "key", "expected", "found"),
        [
            ('app: "x"\n', "app", "expected a mapping (with keys name, vsn)", "found str 'x'"),
            (
                'stacktraces:\n  include:\n    from_exceptions: "yes"\n',
                "stacktraces.include.from_exceptions",
                "expected a boolean (true or false)",
                "found str 'yes'",
            ),
            (
                "stacktraces:\n  include: true\n",
                "stacktraces.include",
                "expected a mapping",
                "found bool True",
            ),
            (
                "events:\n  max_value_length: -1\n",
                "events.max_value_length",
                "expected a positive integer",
                "found int -1",
            ),
            (
                "events:\n  max_value_length: true\n",
                "events.max_value_length",
                "expected a positive integer",
                "found bool True",
            ),
            (
                "events:\n  secret_keys: password\n",
                "events.secret_keys",
                "expected a list",
                "found str 'password'",
            ),
            ("events:\n  secret_keys: [1]\n", "events.secret_keys", "expected a list", "found list [1]"),
            ("app:\n  name: 5\n", "app.name", "expected a non-empty string", "found int 5"),
            ("app:\n  vsn: true\n", "app.vsn", "expected a non-empty string", "found bool True"),
            ("environment:\n  name: ''\n", "environment.name", "expected a non-empty string", "found str ''"),
            ("store:\n  config: 5\n", "store.config", "expected a string", "found int 5"),
            ("store:\n  config: [a, 5]\n", "store.config", "a list of strings", "found list ['a', 5]"),
            ("store:\n  adapter: [m, C]\n", "store.adapter", '"module,Class"', "found list ['m', 'C']"),
        ],
    )
    def test_wrong_type(self, local_file: Path, yaml_text: str, key: str, expected: str, found: str) -> None:
        """A value of the wrong type names the file, the dotted key, the expectation and the finding."""
        write(local_file, yaml_text)
        message = load_error()
        assert f"config file {local_file}, key {key}:" in message
        assert expected in message
        assert found in message

    @pytest.mark.parametrize("adapter", ["a,b,c", "nocomma", ",X", " , "])
    def test_bad_adapter_string(self, local_file: Path, adapter: str) -> None:
        """An adapter string that is not exactly "module,Class" is refused with the file and key."""
        write(local_file, f'store:\n  adapter: "{adapter}"\n')
        message = load_error()
        assert f"{local_file}, key store.adapter" in message
        assert '"module,Class"' in message
        assert repr(adapter) in message

    def test_unknown_top_level_key(self, local_file: Path) -> None:
        """A misspelt section is refused, listing the valid keys."""
        write(local_file, "enviroment:\n  name: production\n")
        message = load_error()
        assert str(local_file) in message
        assert "unknown key 'enviroment'" in message
        assert "app, crashes, environment, events, queue, stacktraces, store" in message

    def test_unknown_nested_key(self, global_file: Path, app_dir: Path) -> None:
        """A misspelt nested key is refused with its dotted path and its siblings."""
        write(global_file, "stacktraces:\n  include:\n    from_exception: true\n")
        message = load_error()
        assert str(global_file) in message
        assert "unknown key 'stacktraces.include.from_exception'" in message
        assert "for_non_exceptions, from_exceptions" in message

    def test_unreadable_global_file(self, global_file: Path, app_dir: Path) -> None:
        """A global path that exists but is no file is reported, not skipped."""
        global_file.mkdir(parents=True)
        message = load_error()
        assert str(global_file) in message
        assert "CODE_WAKE_GLOBAL_CONFIG" in message


class TestMaskSecretUrl:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            (SECRET_URL, "postgresql://scott:***@db.example.com/events"),
            ("postgresql://scott:p%40ss@host/db", "postgresql://scott:***@host/db"),
            ("postgresql://scott:p@ss@host/db", "postgresql://scott:***@host/db"),
            ("postgresql://scott:pw@host:notaport/db", "postgresql://scott:***@host:notaport/db"),
            ("scott:tiger@host", "scott:***@host"),
            ("sqlite:////tmp/events.sqlite", "sqlite:////tmp/events.sqlite"),
            ("postgresql://scott@host/db", "postgresql://scott@host/db"),
            ("user@example.com", "user@example.com"),
            ("plain words", "plain words"),
            ("", ""),
        ],
    )
    def test_masks(self, text: str, expected: str) -> None:
        """Passwords are replaced by *** and everything else is left readable."""
        assert mask_secret_url(text) == expected


class TestBuildStore:
    def test_configured_adapter(self, local_file: Path, adapters: str) -> None:
        """The configured class is imported and called with the configured arguments."""
        write(local_file, f'store:\n  adapter: "{adapters},RecordingStore"\n  config: [a, b]\n')
        store = Config.load().build_store(queued=False)
        assert type(store).__name__ == "RecordingStore"
        assert store.args == ("a", "b")  # type: ignore[attr-defined]

    def test_configured_adapter_is_queued_by_default(self, local_file: Path, adapters: str) -> None:
        """A store code_wake builds sits behind the background queue unless the configuration says not to."""
        write(local_file, f'store:\n  adapter: "{adapters},RecordingStore"\n  config: [a, b]\n')
        store = Config.load().build_store()
        assert isinstance(store, QueueStore)
        assert type(store).__mro__[2].__name__ == "RecordingStore"
        assert store.args == ("a", "b")  # type: ignore[attr-defined]
        write(local_file, f'store:\n  adapter: "{adapters},RecordingStore"\nqueue:\n  enabled: false\n')
        assert not isinstance(Config.load().build_store(), QueueStore)

    def test_adapter_from_environment(self, monkeypatch: pytest.MonkeyPatch, adapters: str) -> None:
        """The adapter and its arguments may come from environment variables alone."""
        monkeypatch.setenv("CODE_WAKE_STORE_ADAPTER", f"{adapters},RecordingStore")
        monkeypatch.setenv("CODE_WAKE_STORE_CONFIG", "x,y")
        assert Config.load().build_store().args == ("x", "y")  # type: ignore[attr-defined]

    def test_real_adapter_class(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A package's own store class is found by its module path."""
        monkeypatch.setenv("CODE_WAKE_STORE_ADAPTER", "code_wake.testing.memory,MemoryStore")
        assert isinstance(Config.load().build_store(), MemoryStore)

    def test_module_does_not_import(self, local_file: Path) -> None:
        """A missing module names the adapter, the file and key, and the ImportError."""
        write(local_file, 'store:\n  adapter: "no_such_module_cw,Store"\n')
        error = build_error(Config.load())
        message = str(error)
        assert "'no_such_module_cw,Store'" in message
        assert f"config file {local_file}, key store.adapter" in message
        assert "No module named 'no_such_module_cw'" in message
        assert isinstance(error.__cause__, ImportError)

    def test_class_missing(self, monkeypatch: pytest.MonkeyPatch, adapters: str) -> None:
        """A class missing from its module names the adapter, the variable and the AttributeError."""
        monkeypatch.setenv("CODE_WAKE_STORE_ADAPTER", f"{adapters},NoSuchStore")
        error = build_error(Config.load())
        message = str(error)
        assert f"'{adapters},NoSuchStore'" in message
        assert "environment variable CODE_WAKE_STORE_ADAPTER" in message
        assert "has no attribute 'NoSuchStore'" in message
        assert isinstance(error.__cause__, AttributeError)

    def test_not_a_store(self, monkeypatch: pytest.MonkeyPatch, adapters: str) -> None:
        """A class that is not a Store subclass is refused."""
        monkeypatch.setenv("CODE_WAKE_STORE_ADAPTER", f"{adapters},NotAStore")
        message = str(build_error(Config.load()))
        assert "NotAStore" in message
        assert "is not a subclass of code_wake.store.Store" in message

    def test_not_a_class(self, monkeypatch: pytest.MonkeyPatch, adapters: str) -> None:
        """A module attribute that is not a class at all is refused too."""
        monkeypatch.setenv("CODE_WAKE_STORE_ADAPTER", f"{adapters},MemoryStore")
        assert isinstance(Config.load().build_store(), MemoryStore)
        monkeypatch.setenv("CODE_WAKE_STORE_ADAPTER", f"{adapters},StoreError")
        assert "is not a subclass" in str(build_error(Config.load()))

    def test_constructor_raises_store_error(self, local_file: Path, adapters: str) -> None:
        """A StoreError from the constructor becomes a ConfigError that never shows the password."""
        write(local_file, f'store:\n  adapter: "{adapters},FailingStore"\n  config: "{SECRET_URL}"\n')
        error = build_error(Config.load())
        message = str(error)
        assert PASSWORD not in message
        assert "postgresql://scott:***@db.example.com/events" in message
        assert "StoreError: cannot connect to" in message
        assert f"config file {local_file}, key store.config" in message
        assert isinstance(error.__cause__, code_wake.StoreError)

    def test_constructor_raises_anything(self, monkeypatch: pytest.MonkeyPatch, adapters: str) -> None:
        """Any exception from the constructor becomes a ConfigError, the password scrubbed from it."""
        monkeypatch.setenv("CODE_WAKE_STORE_ADAPTER", f"{adapters},CrashingStore")
        monkeypatch.setenv("CODE_WAKE_STORE_CONFIG", SECRET_URL)
        message = str(build_error(Config.load()))
        assert PASSWORD not in message
        assert "ValueError: bad dsn" in message
        assert "environment variable CODE_WAKE_STORE_CONFIG" in message

    def test_decoded_password_scrubbed(self, monkeypatch: pytest.MonkeyPatch, adapters: str) -> None:
        """A password the adapter quotes URL-decoded is scrubbed from the message too."""
        monkeypatch.setenv("CODE_WAKE_STORE_ADAPTER", f"{adapters},LeakyStore")
        monkeypatch.setenv("CODE_WAKE_STORE_CONFIG", "postgresql://scott:p%40ss-w0rd@host/db")
        message = str(build_error(Config.load()))
        assert "p@ss-w0rd" not in message
        assert "p%40ss-w0rd" not in message
        assert "authentication failed for password ***" in message

    def test_password_never_in_messages(self, local_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """No load or build error shows the password of a store URL, whatever went wrong."""
        messages = []
        write(local_file, f'store:\n  adapter: "no_such_module_cw,X"\n  config: "{SECRET_URL}"\n')
        messages.append(str(build_error(Config.load())))
        write(local_file, f"store:\n  config: {{url: '{SECRET_URL}'}}\n")
        messages.append(load_error())
        write(local_file, f'store:\n  config: "{SECRET_URL}"\n')
        messages.append(str(build_error(Config.load())))
        monkeypatch.setenv("CODE_WAKE_STORE_ADAPTER", SECRET_URL)
        messages.append(load_error())
        assert all(PASSWORD not in message for message in messages), messages

    def test_arguments_without_adapter(self, local_file: Path) -> None:
        """Store arguments without an adapter are refused rather than silently ignored."""
        write(local_file, 'store:\n  config: "sqlite:////tmp/x.sqlite"\n')
        message = str(build_error(Config.load()))
        assert "no store adapter" in message
        assert f"config file {local_file}, key store.config" in message

    def test_adapter_string_of_direct_config(self) -> None:
        """A Config made directly with a bad adapter string fails cleanly in build_store."""
        assert '"module,Class"' in str(build_error(Config(store_adapter="nocomma")))


class TestDefaultStore:
    @pytest.fixture(autouse=True)
    def _fresh_announcement(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Let this test see the once-per-process announcement again."""
        monkeypatch.setattr(_adapters, "_default_store_announced", _adapters._Once())

    def test_embedded_default(self, caplog: pytest.LogCaptureFixture) -> None:
        """With no store configured, a SQLite store under XDG_DATA_HOME is made and announced once."""
        from code_wake_sql14_store import Sql14Store

        expected = Path(os.environ["XDG_DATA_HOME"]) / "code_wake" / "events.sqlite"
        caplog.set_level(logging.INFO, logger="code_wake")
        stores = [Config.load().build_store(), Config.load().build_store()]
        try:
            assert all(isinstance(store, Sql14Store) for store in stores)
            assert expected.parent.is_dir()
        finally:
            for store in stores:
                store.close()
        announcements = [
            r for r in caplog.records if r.name == "code_wake" and "embedded default" in r.getMessage()
        ]
        assert len(announcements) == 1
        assert announcements[0].levelno == logging.INFO
        assert str(expected) in announcements[0].getMessage()

    def test_url_without_creating(self, tmp_path: Path) -> None:
        """default_store_url() says where the store would be without creating anything."""
        data = tmp_path / "xdg"
        url = default_store_url({"XDG_DATA_HOME": str(data)})
        assert url == f"sqlite:///{data}/code_wake/events.sqlite"
        assert not data.exists()
        assert Config.load().default_store_url() == default_store_url()

    @pytest.mark.parametrize("xdg", ["", "relative/dir"])
    def test_falls_back_to_home(self, tmp_path: Path, xdg: str) -> None:
        """An empty or relative XDG_DATA_HOME is ignored for ~/.local/share, as the XDG spec says."""
        path = default_store_path({"XDG_DATA_HOME": xdg, "HOME": str(tmp_path)})
        assert path == tmp_path / ".local" / "share" / "code_wake" / "events.sqlite"

    def test_uncreatable_directory(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A data directory that cannot be created is a ConfigError naming it."""
        blocker = write(tmp_path / "file", "not a directory\n")
        monkeypatch.setenv("XDG_DATA_HOME", str(blocker))
        message = str(build_error(Config.load()))
        assert str(blocker / "code_wake") in message


class TestProcessIntegration:
    def test_process_reads_file(self, local_file: Path) -> None:
        """Process() takes its app, version, environment and stack trace flags from the local file."""
        write(
            local_file,
            """\
            environment:
              name: staging
            app:
              name: file_app
              vsn: 4.5
            stacktraces:
              include:
                from_exceptions: false
                for_non_exceptions: true
            """,
        )
        proc = code_wake.Process(store=MemoryStore())
        assert (proc.app_name, proc.app_vsn_name, proc.env_name) == ("file_app", "4.5", "staging")
        assert proc.st_from_exceptions is False
        assert proc.st_for_non_exceptions is True

    def test_process_uses_configured_store(self, monkeypatch: pytest.MonkeyPatch, app_dir: Path) -> None:
        """Process() builds the store the environment names and records into it."""
        monkeypatch.setenv("CODE_WAKE_STORE_ADAPTER", "code_wake.testing.memory,MemoryStore")
        monkeypatch.setenv("CODE_WAKE_MAX_VALUE_LENGTH", "5")
        proc = code_wake.Process()
        assert isinstance(proc.store, MemoryStore)
        record = proc.log({"note": "abcdefgh"}, sync=True)
        assert record is not None
        assert record.data_dict()["note"] == "abcde...[truncated 3 chars]"


class TestQueueSettings:
    def test_defaults(self) -> None:
        """Without configuration the queue is on, with QueueSettings' defaults."""
        config = Config.load()
        assert config.queue_enabled
        settings = config.queue_settings()
        assert dataclasses.replace(settings, spool_dir=None) == QueueSettings()
        # The spool lives beside the default store, in the data directory.
        assert settings.spool_dir == str(default_store_path().parent / "spool")

    def test_from_file(self, local_file: Path) -> None:
        """Every queue key is read from the file."""
        write(
            local_file,
            "queue:\n  enabled: false\n  max_events: 7\n  batch_size: 3\n  linger: 0\n"
            "  retry_for: 1.5\n  exit_timeout: 2\n  sync_timeout: 4\n"
            "  spool_max_bytes: 0\n  spool_dir: /var/spool/app\n",
        )
        config = Config.load()
        assert not config.queue_enabled
        assert config.queue_settings() == QueueSettings(
            max_events=7,
            batch_size=3,
            linger=0.0,
            retry_for=1.5,
            exit_timeout=2.0,
            sync_timeout=4.0,
            spool_max_bytes=0,
            spool_dir="/var/spool/app",
        )

    def test_from_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Every queue key has its variable."""
        monkeypatch.setenv("CODE_WAKE_QUEUE", "off")
        monkeypatch.setenv("CODE_WAKE_QUEUE_MAX_EVENTS", "11")
        monkeypatch.setenv("CODE_WAKE_QUEUE_BATCH_SIZE", "5")
        monkeypatch.setenv("CODE_WAKE_QUEUE_LINGER", "0.05")
        monkeypatch.setenv("CODE_WAKE_QUEUE_RETRY_FOR", "0.5")
        monkeypatch.setenv("CODE_WAKE_QUEUE_EXIT_TIMEOUT", "3")
        monkeypatch.setenv("CODE_WAKE_QUEUE_SYNC_TIMEOUT", "9")
        monkeypatch.setenv("CODE_WAKE_QUEUE_SPOOL_MAX_BYTES", "1000")
        monkeypatch.setenv("CODE_WAKE_QUEUE_SPOOL_DIR", "~/spool")
        config = Config.load()
        assert not config.queue_enabled
        assert config.queue_settings() == QueueSettings(
            max_events=11,
            batch_size=5,
            linger=0.05,
            retry_for=0.5,
            exit_timeout=3.0,
            sync_timeout=9.0,
            spool_max_bytes=1000,
            spool_dir=str(Path.home() / "spool"),
        )

    @pytest.mark.parametrize(
        ("variable", "text", "expected"),
        [
            ("CODE_WAKE_QUEUE_SPOOL_MAX_BYTES", "-1", "a whole number (0 or more)"),
            ("CODE_WAKE_QUEUE_SPOOL_MAX_BYTES", "lots", "a whole number (0 or more)"),
            ("CODE_WAKE_QUEUE_SPOOL_DIR", "spool", "an absolute directory path"),
        ],
    )
    def test_bad_spool_setting(
        self, monkeypatch: pytest.MonkeyPatch, variable: str, text: str, expected: str
    ) -> None:
        """The spool's size must be 0 or more, its directory absolute; the error names the variable."""
        monkeypatch.setenv(variable, text)
        message = load_error()
        assert variable in message
        assert expected in message

    @pytest.mark.parametrize(
        ("variable", "text", "expected"),
        [
            *(
                ("CODE_WAKE_QUEUE_EXIT_TIMEOUT", t, "positive number of seconds")
                for t in ["0", "-1", "soon", "nan"]
            ),
            *(
                ("CODE_WAKE_QUEUE_LINGER", t, "a number of seconds, 0 or more")
                for t in ["-0.1", "soon", "nan", "inf"]
            ),
        ],
    )
    def test_bad_seconds(
        self, monkeypatch: pytest.MonkeyPatch, variable: str, text: str, expected: str
    ) -> None:
        """A timeout is a positive number, the linger 0 or more (finite); the error names the variable."""
        monkeypatch.setenv(variable, text)
        message = load_error()
        assert variable in message
        assert expected in message

    def test_bad_linger_in_file(self, local_file: Path) -> None:
        write(local_file, "queue:\n  linger: true\n")
        message = load_error()
        assert str(local_file) in message
        assert "queue.linger" in message

    def test_bad_size_in_file(self, local_file: Path) -> None:
        """A size must be a positive integer; the error names the file and key."""
        write(local_file, "queue:\n  max_events: 1.5\n")
        message = load_error()
        assert str(local_file) in message
        assert "queue.max_events" in message

    def test_built_store_gets_the_settings(self, local_file: Path, adapters: str) -> None:
        """A store code_wake builds is queued with the configured settings."""
        write(local_file, f'store:\n  adapter: "{adapters},RecordingStore"\nqueue:\n  max_events: 42\n')
        store = Config.load().build_store()
        assert isinstance(store, QueueStore)
        assert store.queue_settings.max_events == 42

    def test_embedded_default_is_queued(self) -> None:
        """The embedded default store sits behind the queue too."""
        store = Config.load().build_store()
        try:
            assert isinstance(store, QueueStore)
        finally:
            store.close()
