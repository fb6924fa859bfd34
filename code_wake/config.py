"""Configuration: files, environment variables, defaults, validation, store construction.

Sources, later ones winning key by key: the defaults, the global file
(``/etc/code_wake.conf`` or ``$CODE_WAKE_GLOBAL_CONFIG``), the local file
(``./etc/code_wake.conf``), the environment variables; ``$CODE_WAKE_CONFIG``
replaces both files. `Process` arguments override all of these. This is the
only module of the package that reads environment variables.
docs/configuration.md is the user's description.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeAlias
from urllib.parse import unquote

import sqlalchemy as sa
import yaml

from .errors import ConfigError
from .event import DEFAULT_MAX_VALUE_LENGTH, DEFAULT_SECRET_KEYS, EventPolicy, _fold
from .queue_store import QueueSettings, QueueStore
from .store import Store

__all__ = [
    "DEFAULT_GLOBAL_CONFIG",
    "ENV_CONFIG",
    "ENV_GLOBAL_CONFIG",
    "LOCAL_CONFIG",
    "Config",
    "default_store_path",
    "default_store_url",
    "mask_secret_url",
    "user_data_dir",
]

logger = logging.getLogger("code_wake")

ENV_CONFIG = "CODE_WAKE_CONFIG"
"""Names the one configuration file to read instead of the global and local ones."""

ENV_GLOBAL_CONFIG = "CODE_WAKE_GLOBAL_CONFIG"
"""Names the global configuration file instead of `DEFAULT_GLOBAL_CONFIG`."""

DEFAULT_GLOBAL_CONFIG = Path("/etc/code_wake.conf")
"""The global configuration file, shared by every app on the machine."""

LOCAL_CONFIG = Path("etc", "code_wake.conf")
"""The local configuration file, relative to the current directory."""

_QUEUE_DEFAULTS = QueueSettings()
_DEFAULT_STORE_ADAPTER = "code_wake_sql14_store,Sql14Store"
_BOOL_WORDS = {
    "true": True,
    "1": True,
    "yes": True,
    "on": True,
    "false": False,
    "0": False,
    "no": False,
    "off": False,
}
_BOOL_EXPECTED = "a boolean: true or false (also 1/0, yes/no, on/off; any case)"
_SHOWN_MAX = 100


# -- validating single values --------------------------------------------------------


class _Invalid(Exception):
    """A value is not what its key needs; carries what was expected, the caller adds where."""

    def __init__(self, expected: str) -> None:
        super().__init__(expected)
        self.expected = expected


def _text_value(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise _Invalid("a non-empty string")
    return value


def _version_value(value: object) -> str:
    # YAML reads an unquoted 1.2 or 2 as a number; a version is text, so take its string.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    try:
        return _text_value(value)
    except _Invalid:
        raise _Invalid("a non-empty string (or a number, taken as its string)") from None


def _bool_value(value: object) -> bool:
    if not isinstance(value, bool):
        raise _Invalid("a boolean (true or false)")
    return value


def _bool_text(text: str) -> bool:
    try:
        return _BOOL_WORDS[text.strip().lower()]
    except KeyError:
        raise _Invalid(_BOOL_EXPECTED) from None


def _positive_int_value(value: object) -> int:
    # bool is an int subclass: `max_value_length: true` must not read as 1.
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise _Invalid("a positive integer")
    return value


def _positive_int_text(text: str) -> int:
    try:
        return _positive_int_value(int(text.strip()))
    except ValueError:
        raise _Invalid("a positive integer") from None


def _positive_number_value(value: object) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
        raise _Invalid("a positive number of seconds")
    return float(value)


def _positive_number_text(text: str) -> float:
    try:
        return _positive_number_value(float(text.strip()))
    except ValueError:
        raise _Invalid("a positive number of seconds") from None


def _split_adapter(text: str) -> tuple[str, str]:
    """``"module,Class"`` as its two parts, whitespace around them stripped."""
    parts = [part.strip() for part in text.split(",")]
    if len(parts) != 2 or not all(parts):
        raise _Invalid('a store adapter as "module,Class" (two non-empty parts separated by one comma)')
    return parts[0], parts[1]


def _adapter_text(text: str) -> str:
    return ",".join(_split_adapter(text))


def _adapter_value(value: object) -> str:
    if not isinstance(value, str):
        raise _Invalid('a store adapter string "module,Class"')
    return _adapter_text(value)


def _store_args_value(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise _Invalid("a string (one adapter argument) or a list of strings")


def _comma_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(","))


def _secret_keys(items: Iterable[object]) -> tuple[str, ...]:
    keys = tuple(items)
    # A fragment without letters or digits folds to "" and would silently match nothing.
    if not all(isinstance(key, str) and _fold(key) for key in keys):
        raise _Invalid("a list of key fragments (strings containing letters or digits)")
    return tuple(str(key) for key in keys)


def _secret_keys_value(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _Invalid("a list of key fragments (strings containing letters or digits)")
    return _secret_keys(value)


def _secret_keys_text(text: str) -> tuple[str, ...]:
    return _secret_keys(part for part in _comma_list(text) if part)


# -- the settings: one row per key, with its attribute and environment variable ------------


@dataclass(frozen=True)
class _Setting:
    """One configuration key: where it sits in the file and in the environment."""

    key: str
    attribute: str
    check: Callable[[object], object]
    env: str
    parse_env: Callable[[str], object]


_SETTINGS: tuple[_Setting, ...] = (
    _Setting("store.adapter", "store_adapter", _adapter_value, "CODE_WAKE_STORE_ADAPTER", _adapter_text),
    _Setting("store.config", "store_args", _store_args_value, "CODE_WAKE_STORE_CONFIG", _comma_list),
    _Setting("environment.name", "env_name", _text_value, "CODE_WAKE_ENVIRONMENT", str),
    _Setting("app.name", "app_name", _text_value, "CODE_WAKE_APP_NAME", str),
    _Setting("app.vsn", "app_vsn", _version_value, "CODE_WAKE_APP_VSN", str),
    _Setting(
        "stacktraces.include.from_exceptions",
        "st_from_exceptions",
        _bool_value,
        "CODE_WAKE_ST_FROM_EXCEPTIONS",
        _bool_text,
    ),
    _Setting(
        "stacktraces.include.for_non_exceptions",
        "st_for_non_exceptions",
        _bool_value,
        "CODE_WAKE_ST_FOR_NON_EXCEPTIONS",
        _bool_text,
    ),
    _Setting(
        "events.max_value_length",
        "max_value_length",
        _positive_int_value,
        "CODE_WAKE_MAX_VALUE_LENGTH",
        _positive_int_text,
    ),
    _Setting(
        "events.secret_keys", "secret_keys", _secret_keys_value, "CODE_WAKE_SECRET_KEYS", _secret_keys_text
    ),
    _Setting("queue.enabled", "queue_enabled", _bool_value, "CODE_WAKE_QUEUE", _bool_text),
    _Setting(
        "queue.max_events",
        "queue_max_events",
        _positive_int_value,
        "CODE_WAKE_QUEUE_MAX_EVENTS",
        _positive_int_text,
    ),
    _Setting(
        "queue.batch_size",
        "queue_batch_size",
        _positive_int_value,
        "CODE_WAKE_QUEUE_BATCH_SIZE",
        _positive_int_text,
    ),
    _Setting(
        "queue.retry_for",
        "queue_retry_for",
        _positive_number_value,
        "CODE_WAKE_QUEUE_RETRY_FOR",
        _positive_number_text,
    ),
    _Setting(
        "queue.exit_timeout",
        "queue_exit_timeout",
        _positive_number_value,
        "CODE_WAKE_QUEUE_EXIT_TIMEOUT",
        _positive_number_text,
    ),
    _Setting(
        "queue.sync_timeout",
        "queue_sync_timeout",
        _positive_number_value,
        "CODE_WAKE_QUEUE_SYNC_TIMEOUT",
        _positive_number_text,
    ),
)

_Tree: TypeAlias = "dict[str, _Tree | _Setting]"


def _tree(settings: Iterable[_Setting]) -> _Tree:
    """The settings as the nested mapping a file holds them in."""
    root: _Tree = {}
    for setting in settings:
        *parents, leaf = setting.key.split(".")
        node = root
        for name in parents:
            child = node.setdefault(name, {})
            assert isinstance(child, dict)
            node = child
        node[leaf] = setting
    return root


_SCHEMA = _tree(_SETTINGS)


# -- showing values safely ------------------------------------------------------------


def mask_secret_url(text: str) -> str:
    """`text` with any password in it replaced by ``***``; fit for messages and logs.

    Database URLs are rendered by SQLAlchemy with the password hidden; anything
    else that looks like ``user:password@host`` (or holds several ``@``) has
    everything between the first colon of the user part and the last ``@``
    masked, erring on the side of hiding too much. Other text is returned
    unchanged.
    """
    if text.count("@") > 1:
        # SQLAlchemy would split an unescaped "@" of a password at the first one and
        # show the rest as the host: mask up to the last one instead.
        return _mask_userinfo(text)
    try:
        url = sa.make_url(text)
    except (sa.exc.ArgumentError, ValueError):
        return _mask_userinfo(text)
    if url.password is None:
        return text
    return url.render_as_string(hide_password=True)


def _mask_userinfo(text: str) -> str:
    scheme, sep, rest = text.rpartition("://")
    # The last "@" so that a password containing "@" is masked whole.
    userinfo, at, host = rest.rpartition("@")
    user, colon, _password = userinfo.partition(":")
    if not at or not colon:
        return text
    return f"{scheme}{sep}{user}:***@{host}"


def _passwords(text: str) -> set[str]:
    """The password in `text` as written and URL-decoded, so that both can be scrubbed."""
    userinfo = text.rpartition("://")[2].rpartition("@")[0]
    raw = userinfo.partition(":")[2] if ":" in userinfo else ""
    found = {raw, unquote(raw)}
    if text.count("@") == 1:
        with contextlib.suppress(sa.exc.ArgumentError, ValueError):
            found.add(str(sa.make_url(text).password or ""))
    found.discard("")
    return found


def _scrub(message: str, secrets_from: Iterable[str]) -> str:
    """`message` with the store arguments masked and their passwords removed."""
    for arg in secrets_from:
        message = message.replace(arg, mask_secret_url(arg))
        for password in _passwords(arg):
            message = message.replace(password, "***")
    return message


def _shown(value: object) -> str:
    """``type value`` for a message: masked, and short enough to read."""
    text = mask_secret_url(repr(value))
    if len(text) > _SHOWN_MAX:
        text = text[:_SHOWN_MAX] + "..."
    return f"{type(value).__name__} {text}"


# -- files --------------------------------------------------------------------------


def _resolve(raw: str, cwd: Path) -> Path:
    path = Path(raw).expanduser()
    return path if path.is_absolute() else cwd / path


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:
        # Cannot even look: report it when reading rather than ignore the file.
        return True


def _config_files(environ: Mapping[str, str], cwd: Path) -> list[tuple[Path, str]]:
    """The files to read, lowest precedence first, each with what named it (for messages)."""
    named = environ.get(ENV_CONFIG)
    if named:
        path = _resolve(named, cwd)
        named_by = f" (named by environment variable {ENV_CONFIG})"
        if not path.is_file():
            raise ConfigError(f"config file {path}{named_by} does not exist or is not a file")
        return [(path, named_by)]
    global_raw = environ.get(ENV_GLOBAL_CONFIG)
    global_file = _resolve(global_raw, cwd) if global_raw else DEFAULT_GLOBAL_CONFIG
    global_by = f" (named by environment variable {ENV_GLOBAL_CONFIG})" if global_raw else ""
    candidates = [(global_file, global_by), (cwd / LOCAL_CONFIG, "")]
    return [(path, named_by) for path, named_by in candidates if _exists(path)]


def _read_yaml(path: Path, named_by: str) -> object:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"config file {path}{named_by} cannot be read: {exc.strerror or exc}") from exc
    # The YAML error is not chained: its text quotes the file, which may hold a password.
    try:
        return yaml.safe_load(raw)
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(_yaml_message(path, exc)) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path}: malformed YAML: {exc}") from None


def _yaml_message(path: Path, exc: yaml.MarkedYAMLError) -> str:
    # str(exc) quotes the offending line (get_snippet), so the message is built from its parts.
    mark = exc.problem_mark
    where = "" if mark is None else f" at line {mark.line + 1}, column {mark.column + 1}"
    context = f" ({exc.context})" if exc.context else ""
    return f"config file {path}: malformed YAML{where}: {exc.problem}{context}"


def _read_file(path: Path, named_by: str) -> dict[str, object]:
    """The validated settings of one file, by dotted key."""
    document = _read_yaml(path, named_by)
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(
            f"config file {path}: expected a mapping of settings at the top level "
            f"(keys {_keys(_SCHEMA)}), found {_shown(document)}"
        )
    found: dict[str, object] = {}
    _collect(document, _SCHEMA, path, "", found)
    return found


def _keys(node: _Tree) -> str:
    return ", ".join(sorted(node))


def _collect(mapping: dict[Any, Any], node: _Tree, path: Path, prefix: str, found: dict[str, object]) -> None:
    """Validate one level of a file against the schema, adding its values to `found`."""
    for key, value in mapping.items():
        dotted = f"{prefix}{key}"
        spec = node.get(key) if isinstance(key, str) else None
        if spec is None:
            level = f"under {prefix[:-1]}" if prefix else "at the top level"
            raise ConfigError(
                f"config file {path}: unknown key {dotted!r}; valid keys {level}: {_keys(node)}"
            )
        if value is None:
            # `key:` with nothing after it: treated as absent.
            continue
        if isinstance(spec, _Setting):
            found[spec.key] = _checked(spec, value, path)
        elif isinstance(value, dict):
            _collect(value, spec, path, dotted + ".", found)
        else:
            raise ConfigError(
                f"config file {path}, key {dotted}: expected a mapping (with keys {_keys(spec)}), "
                f"found {_shown(value)}"
            )


def _checked(setting: _Setting, value: object, path: Path) -> object:
    try:
        return setting.check(value)
    except _Invalid as exc:
        raise ConfigError(
            f"config file {path}, key {setting.key}: expected {exc.expected}, found {_shown(value)}"
        ) from None


# -- environment variables ------------------------------------------------------------------


def _from_environment(setting: _Setting, text: str) -> object:
    try:
        return setting.parse_env(text)
    except _Invalid as exc:
        raise ConfigError(
            f"environment variable {setting.env}={mask_secret_url(text)!r}: expected {exc.expected}"
        ) from None


def _env_origin(name: str) -> str:
    return f"environment variable {name}"


# -- the data directory and the embedded default store ----------------------------------------


def user_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The user's data directory (XDG): ``$XDG_DATA_HOME``, else ``~/.local/share``.

    As the XDG specification says, an empty or relative ``XDG_DATA_HOME`` is
    ignored.
    """
    env = os.environ if environ is None else environ
    xdg = env.get("XDG_DATA_HOME", "")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg)
    home = env.get("HOME", "")
    try:
        base = Path(home) if home else Path.home()
    except RuntimeError as exc:
        raise ConfigError(
            "cannot find a data directory for the embedded default store: set XDG_DATA_HOME or HOME, "
            "or configure a store"
        ) from exc
    return base / ".local" / "share"


def default_store_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the embedded default store keeps its SQLite file (nothing is created)."""
    return _store_file(user_data_dir(environ))


def default_store_url(environ: Mapping[str, str] | None = None) -> str:
    """The SQLAlchemy URL of the embedded default store (nothing is created)."""
    return _sqlite_url(default_store_path(environ))


def _store_file(data_dir: Path) -> Path:
    return data_dir / "code_wake" / "events.sqlite"


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


class _Once:
    """Lets exactly one caller through per process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done = False

    def claim(self) -> bool:
        """True the first time it is called, False ever after."""
        with self._lock:
            if self._done:
                return False
            self._done = True
            return True


_default_store_announced = _Once()


def _announce_default_store(path: Path) -> None:
    if _default_store_announced.claim():
        logger.info(
            "code_wake: no store configured; recording into the embedded default store at %s "
            "(set store.adapter/store.config or CODE_WAKE_STORE_ADAPTER to choose one)",
            path,
        )


# -- the configuration ------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """Validated configuration, read once and handed down as plain values.

    `origins` says where each value that is not a default came from, by
    dotted key: ``{"store.adapter": "/etc/code_wake.conf"}`` or
    ``{"app.name": "environment variable CODE_WAKE_APP_NAME"}``. `data_dir`
    is where the embedded default store lives (None: looked up in the
    process environment when needed).
    """

    store_adapter: str | None = None
    store_args: tuple[str, ...] = ()
    app_name: str | None = None
    app_vsn: str | None = None
    env_name: str | None = None
    st_from_exceptions: bool = True
    st_for_non_exceptions: bool = False
    max_value_length: int = DEFAULT_MAX_VALUE_LENGTH
    secret_keys: tuple[str, ...] = DEFAULT_SECRET_KEYS
    queue_enabled: bool = True
    queue_max_events: int = _QUEUE_DEFAULTS.max_events
    queue_batch_size: int = _QUEUE_DEFAULTS.batch_size
    queue_retry_for: float = _QUEUE_DEFAULTS.retry_for
    queue_exit_timeout: float = _QUEUE_DEFAULTS.exit_timeout
    queue_sync_timeout: float = _QUEUE_DEFAULTS.sync_timeout
    origins: Mapping[str, str] = field(default_factory=dict)
    data_dir: Path | None = None

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Config:
        """Read the files and environment variables (docs/configuration.md) and validate them.

        `environ` defaults to ``os.environ`` and `cwd` (where ``./etc/code_wake.conf``
        is looked for) to the current directory. Raises `ConfigError` naming the
        file and key, or the variable, of any bad value.
        """
        env = os.environ if environ is None else environ
        here = Path.cwd() if cwd is None else cwd
        values: dict[str, object] = {}
        origins: dict[str, str] = {}
        for path, named_by in _config_files(env, here):
            for key, value in _read_file(path, named_by).items():
                values[key] = value
                origins[key] = str(path)
        for setting in _SETTINGS:
            # An empty variable counts as unset, as shells and container files often leave them.
            text = env.get(setting.env)
            if text:
                values[setting.key] = _from_environment(setting, text)
                origins[setting.key] = _env_origin(setting.env)
        attributes: dict[str, Any] = {s.attribute: values[s.key] for s in _SETTINGS if s.key in values}
        return cls(**attributes, origins=MappingProxyType(origins), data_dir=_data_dir_or_none(env))

    def event_policy(self) -> EventPolicy:
        """The data limits and secret filtering this configuration asks for."""
        return EventPolicy(max_value_length=self.max_value_length, secret_keys=self.secret_keys)

    def queue_settings(self) -> QueueSettings:
        """The queue's knobs as this configuration sets them."""
        return QueueSettings(
            max_events=self.queue_max_events,
            batch_size=self.queue_batch_size,
            retry_for=self.queue_retry_for,
            exit_timeout=self.queue_exit_timeout,
            sync_timeout=self.queue_sync_timeout,
        )

    def origin(self, key: str) -> str:
        """Where the value of dotted `key` came from, for messages."""
        source = self.origins.get(key)
        if source is None:
            return "the defaults"
        if source.startswith("environment variable "):
            return source
        return f"config file {source}, key {key}"

    def default_store_path(self) -> Path:
        """Where the embedded default store keeps its SQLite file (nothing is created)."""
        return _store_file(self.data_dir if self.data_dir is not None else user_data_dir())

    def default_store_url(self) -> str:
        """The SQLAlchemy URL of the embedded default store (nothing is created)."""
        return _sqlite_url(self.default_store_path())

    def build_store(self, queued: bool | None = None) -> Store:
        """The configured store, or the embedded default; `ConfigError` says why not.

        `queued` asks for the store behind a background queue (the default for
        stores code_wake builds, see docs/queue.md) or without one (the CLI
        reads, it does not write); None follows the configuration.
        """
        queue = self.queue_enabled if queued is None else queued
        if self.store_adapter is None:
            if self.store_args:
                raise ConfigError(
                    f"store arguments are configured ({self.origin('store.config')}) but no store adapter "
                    "is: set store.adapter or CODE_WAKE_STORE_ADAPTER "
                    f'(e.g. "{_DEFAULT_STORE_ADAPTER}")'
                )
            return self._build_default_store(queue)
        where = f"store adapter {self.store_adapter!r} (from {self.origin('store.adapter')})"
        store_class = self._adapter_class(self.store_adapter, where)
        return self._construct(_queued(store_class) if queue else store_class, self.store_args, where)

    def _adapter_class(self, adapter: str, where: str) -> type[Store]:
        """Import the adapter's module and return its class, checked to be a `Store`."""
        try:
            module_name, class_name = _split_adapter(adapter)
        except _Invalid as exc:
            raise ConfigError(f"{where}: expected {exc.expected}") from None
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # any failure to import (even a SyntaxError) is a configuration error
            raise ConfigError(
                f"{where}: module {module_name!r} cannot be imported: {type(exc).__name__}: {exc}"
            ) from exc
        try:
            found = getattr(module, class_name)
        except AttributeError as exc:
            raise ConfigError(f"{where}: module {module_name!r} has no {class_name!r}: {exc}") from exc
        if not (isinstance(found, type) and issubclass(found, Store)):
            raise ConfigError(f"{where}: {found!r} is not a subclass of code_wake.store.Store")
        return found

    def _construct(self, store_class: type[Store], args: tuple[str, ...], what: str) -> Store:
        """Call the adapter's constructor; its failure becomes a `ConfigError` without passwords."""
        try:
            if issubclass(store_class, QueueStore):
                return store_class(*args, queue_settings=self.queue_settings())
            return store_class(*args)
        except Exception as exc:  # an adapter may raise anything; we add where and why
            detail = _scrub(f"{type(exc).__name__}: {exc}", args)
            raise ConfigError(f"{what} could not be created {self._shown_args(args)}: {detail}") from exc

    def _shown_args(self, args: tuple[str, ...]) -> str:
        """The constructor arguments for a message, passwords masked, with their origin."""
        shown = ", ".join(repr(mask_secret_url(arg)) for arg in args)
        origin = f" (from {self.origin('store.config')})" if "store.config" in self.origins else ""
        return f"with arguments ({shown}){origin}"

    def _build_default_store(self, queued: bool) -> Store:
        """The embedded default: a SQLite file in the user's data directory."""
        path = self.default_store_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the directory {path.parent} for the embedded default store: "
                f"{exc.strerror or exc}; configure a store (store.adapter) or set XDG_DATA_HOME"
            ) from exc
        try:
            from code_wake_sql14_store import Sql14Store
        except ImportError as exc:
            raise ConfigError(
                f"the embedded default store needs code_wake_sql14_store, which cannot be imported: {exc}"
            ) from exc
        store_class = _queued(Sql14Store) if queued else Sql14Store
        store = self._construct(store_class, (_sqlite_url(path),), f"the embedded default store at {path}")
        _announce_default_store(path)
        return store


_queued_classes: dict[type[Store], type[Store]] = {}


def _queued(store_class: type[Store]) -> type[Store]:
    """`store_class` behind the background queue: ``class Queued(QueueStore, store_class)``."""
    if issubclass(store_class, QueueStore):
        return store_class
    known = _queued_classes.get(store_class)
    if known is None:
        known = type(f"Queued{store_class.__name__}", (QueueStore, store_class), {"__module__": __name__})
        _queued_classes[store_class] = known
    return known


def _data_dir_or_none(environ: Mapping[str, str]) -> Path | None:
    try:
        return user_data_dir(environ)
    except ConfigError:
        # Only the embedded default store needs it; report it if that is ever built.
        return None
