"""Configuration: files, environment variables, defaults and validation.

Sources, later ones winning key by key: the defaults, the global file
(``/etc/code_wake.conf`` or ``$CODE_WAKE_GLOBAL_CONFIG``), the local file
(``./etc/code_wake.conf``), the environment variables; ``$CODE_WAKE_CONFIG``
replaces both files. `Process` arguments override all of these. This is the
only module of the package that reads environment variables. The store it
names is built by `code_wake._adapters`. docs/configuration.md is the user's
description.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeAlias

import yaml

from ._adapters import DEFAULT_ADAPTER, build_default_store, build_store, parse_adapter
from ._hooks import hook_name, load_hook
from ._masking import mask_secret_url
from ._setting_values import (
    bool_text,
    bool_value,
    comma_list,
    directory_text,
    directory_value,
    patterns_text,
    patterns_value,
    positive_int_text,
    positive_int_value,
    positive_number_text,
    positive_number_value,
    seconds_text,
    seconds_value,
    secret_keys_text,
    secret_keys_value,
    store_args_value,
    whole_int_text,
    whole_int_value,
)
from ._trust import trusted_global, trusted_local
from ._values import Invalid, text_value, version_value
from .errors import ConfigError
from .event import DEFAULT_MAX_VALUE_LENGTH, DEFAULT_SECRET_KEYS, EventPolicy
from .queue_store import QueueSettings
from .store import Store

__all__ = [
    "DEFAULT_GLOBAL_CONFIG",
    "ENV_CONFIG",
    "ENV_GLOBAL_CONFIG",
    "LOCAL_CONFIG",
    "Config",
    "default_spool_root",
    "default_store_path",
    "default_store_url",
    "mask_secret_url",
    "user_data_dir",
]

ENV_CONFIG = "CODE_WAKE_CONFIG"
"""Names the one configuration file to read instead of the global and local ones."""

ENV_GLOBAL_CONFIG = "CODE_WAKE_GLOBAL_CONFIG"
"""Names the global configuration file instead of `DEFAULT_GLOBAL_CONFIG`."""

DEFAULT_GLOBAL_CONFIG = Path("/etc/code_wake.conf")
"""The global configuration file, shared by every app on the machine."""

LOCAL_CONFIG = Path("etc", "code_wake.conf")
"""The local configuration file, relative to the current directory."""

_QUEUE_DEFAULTS = QueueSettings()
_SHOWN_MAX = 100


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
    _Setting("store.adapter", "store_adapter", parse_adapter, "CODE_WAKE_STORE_ADAPTER", parse_adapter),
    _Setting("store.config", "store_args", store_args_value, "CODE_WAKE_STORE_CONFIG", comma_list),
    _Setting("environment.name", "env_name", text_value, "CODE_WAKE_ENVIRONMENT", str),
    _Setting("app.name", "app_name", text_value, "CODE_WAKE_APP_NAME", str),
    _Setting("app.vsn", "app_vsn", version_value, "CODE_WAKE_APP_VSN", str),
    _Setting(
        "stacktraces.include.from_exceptions",
        "st_from_exceptions",
        bool_value,
        "CODE_WAKE_ST_FROM_EXCEPTIONS",
        bool_text,
    ),
    _Setting(
        "stacktraces.include.for_non_exceptions",
        "st_for_non_exceptions",
        bool_value,
        "CODE_WAKE_ST_FOR_NON_EXCEPTIONS",
        bool_text,
    ),
    _Setting(
        "events.max_value_length",
        "max_value_length",
        positive_int_value,
        "CODE_WAKE_MAX_VALUE_LENGTH",
        positive_int_text,
    ),
    _Setting(
        "events.secret_keys", "secret_keys", secret_keys_value, "CODE_WAKE_SECRET_KEYS", secret_keys_text
    ),
    _Setting(
        "events.secret_patterns",
        "secret_patterns",
        patterns_value,
        "CODE_WAKE_SECRET_PATTERNS",
        patterns_text,
    ),
    _Setting("events.scrub_values", "scrub_values", bool_value, "CODE_WAKE_SCRUB_VALUES", bool_text),
    _Setting("events.before_record", "before_record", hook_name, "CODE_WAKE_BEFORE_RECORD", hook_name),
    _Setting("queue.enabled", "queue_enabled", bool_value, "CODE_WAKE_QUEUE", bool_text),
    _Setting(
        "queue.max_bytes",
        "queue_max_bytes",
        positive_int_value,
        "CODE_WAKE_QUEUE_MAX_BYTES",
        positive_int_text,
    ),
    _Setting(
        "queue.max_events",
        "queue_max_events",
        positive_int_value,
        "CODE_WAKE_QUEUE_MAX_EVENTS",
        positive_int_text,
    ),
    _Setting(
        "queue.batch_size",
        "queue_batch_size",
        positive_int_value,
        "CODE_WAKE_QUEUE_BATCH_SIZE",
        positive_int_text,
    ),
    _Setting("queue.linger", "queue_linger", seconds_value, "CODE_WAKE_QUEUE_LINGER", seconds_text),
    _Setting(
        "queue.retry_for",
        "queue_retry_for",
        positive_number_value,
        "CODE_WAKE_QUEUE_RETRY_FOR",
        positive_number_text,
    ),
    _Setting(
        "queue.exit_timeout",
        "queue_exit_timeout",
        positive_number_value,
        "CODE_WAKE_QUEUE_EXIT_TIMEOUT",
        positive_number_text,
    ),
    _Setting(
        "queue.sync_timeout",
        "queue_sync_timeout",
        positive_number_value,
        "CODE_WAKE_QUEUE_SYNC_TIMEOUT",
        positive_number_text,
    ),
    _Setting(
        "queue.spool_max_bytes",
        "queue_spool_max_bytes",
        whole_int_value,
        "CODE_WAKE_QUEUE_SPOOL_MAX_BYTES",
        whole_int_text,
    ),
    _Setting(
        "queue.spool_dir",
        "queue_spool_dir",
        directory_value,
        "CODE_WAKE_QUEUE_SPOOL_DIR",
        directory_text,
    ),
    _Setting("crashes.record", "record_crashes", bool_value, "CODE_WAKE_RECORD_CRASHES", bool_text),
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
    found = [(global_file, global_by)] if _exists(global_file) and trusted_global(global_file) else []
    local = cwd / LOCAL_CONFIG
    if _exists(local) and trusted_local(local):
        found.append((local, ""))
    return found


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
    except Invalid as exc:
        raise ConfigError(
            f"config file {path}, key {setting.key}: expected {exc.expected}, found {_shown(value)}"
        ) from None


# -- environment variables ------------------------------------------------------------------


def _from_environment(setting: _Setting, text: str) -> object:
    try:
        return setting.parse_env(text)
    except Invalid as exc:
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


def default_spool_root(data_dir: Path | None = None) -> Path:
    """Where spools live, one directory per store, under `data_dir` (default: `user_data_dir`)."""
    return (user_data_dir() if data_dir is None else data_dir) / "code_wake" / "spool"


def _store_file(data_dir: Path) -> Path:
    return data_dir / "code_wake" / "events.sqlite"


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def _frozen(tree: dict[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType({k: _frozen(v) if isinstance(v, dict) else v for k, v in tree.items()})


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
    secret_patterns: tuple[str, ...] = ()
    scrub_values: bool = True
    before_record: str | None = None
    queue_enabled: bool = True
    queue_max_bytes: int = _QUEUE_DEFAULTS.max_bytes
    queue_max_events: int = _QUEUE_DEFAULTS.max_events
    queue_batch_size: int = _QUEUE_DEFAULTS.batch_size
    queue_linger: float = _QUEUE_DEFAULTS.linger
    queue_retry_for: float = _QUEUE_DEFAULTS.retry_for
    queue_exit_timeout: float = _QUEUE_DEFAULTS.exit_timeout
    queue_sync_timeout: float = _QUEUE_DEFAULTS.sync_timeout
    queue_spool_max_bytes: int = _QUEUE_DEFAULTS.spool_max_bytes
    queue_spool_dir: str | None = None
    record_crashes: bool = True
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
        """The data limits and secret filtering this configuration asks for (the hook imported)."""
        hook = None
        if self.before_record is not None:
            hook = load_hook(self.before_record, self.origin("events.before_record"))
        return EventPolicy(
            max_value_length=self.max_value_length,
            secret_keys=self.secret_keys,
            secret_patterns=self.secret_patterns,
            scrub_values=self.scrub_values,
            before_record=hook,
        )

    def queue_settings(self) -> QueueSettings:
        """The queue's knobs as this configuration sets them."""
        return QueueSettings(
            max_bytes=self.queue_max_bytes,
            max_events=self.queue_max_events,
            batch_size=self.queue_batch_size,
            linger=self.queue_linger,
            retry_for=self.queue_retry_for,
            exit_timeout=self.queue_exit_timeout,
            sync_timeout=self.queue_sync_timeout,
            spool_max_bytes=self.queue_spool_max_bytes,
            spool_dir=self.queue_spool_dir or self._default_spool_dir(),
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

    def _default_spool_dir(self) -> str | None:
        """Beside the default store; None (the queue looks when it first needs it) if unknown now."""
        return None if self.data_dir is None else str(default_spool_root(self.data_dir))

    def default_store_url(self) -> str:
        """The SQLAlchemy URL of the embedded default store (nothing is created)."""
        return _sqlite_url(self.default_store_path())

    def __getitem__(self, section: str) -> Mapping[str, Any]:
        """pycodewake's mapping access, by the file's keys.

        ``config["stacktraces"]["include"]["from_exceptions"]`` is `st_from_exceptions`.
        Read-only; values are this configuration's, validated (``store.config``
        as a list). Unknown sections raise `KeyError`, as a mapping does.
        """
        return self.as_mapping()[section]  # type: ignore[no-any-return]

    def store(self) -> Store:
        """pycodewake's name for `build_store`: the configured store."""
        return self.build_store()

    def as_mapping(self) -> Mapping[str, Any]:
        """The whole configuration as nested read-only mappings, laid out as the file is."""
        tree: dict[str, Any] = {}
        for setting in _SETTINGS:
            *sections, leaf = setting.key.split(".")
            node = tree
            for name in sections:
                node = node.setdefault(name, {})
            value = getattr(self, setting.attribute)
            node[leaf] = list(value) if isinstance(value, tuple) else value
        return _frozen(tree)

    def build_store(self, queued: bool | None = None, *, read_only: bool = False) -> Store:
        """The configured store, or the embedded default; `ConfigError` says why not.

        `queued` asks for the store behind a background queue (the default for
        stores code_wake builds, see docs/queue.md) or without one (the CLI
        reads, it does not write); None follows the configuration.
        `read_only` asks the adapter to open it only to read (`Store.supports_read_only`).
        """
        queue = self.queue_enabled if queued is None else queued
        if self.store_adapter is None:
            if self.store_args:
                raise ConfigError(
                    f"store arguments are configured ({self.origin('store.config')}) but no store adapter "
                    f'is: set store.adapter or CODE_WAKE_STORE_ADAPTER (e.g. "{DEFAULT_ADAPTER}")'
                )
            return build_default_store(
                self.default_store_path(),
                self.default_store_url(),
                queued=queue,
                queue_settings=self.queue_settings(),
                read_only=read_only,
            )
        return build_store(
            self.store_adapter,
            self.store_args,
            queued=queue,
            queue_settings=self.queue_settings(),
            where=f"store adapter {self.store_adapter!r} (from {self.origin('store.adapter')})",
            args_origin=self.origin("store.config") if "store.config" in self.origins else "",
            read_only=read_only,
        )


def _data_dir_or_none(environ: Mapping[str, str]) -> Path | None:
    try:
        return user_data_dir(environ)
    except ConfigError:
        # Only the embedded default store needs it; report it if that is ever built.
        return None
