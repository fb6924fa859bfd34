"""The ``code-wake`` command: the analysis door, a thin layer over the store's query API.

Each command opens the store (``--store``/``--adapter``, else the same
configuration the library reads, else the embedded default), calls one query
method and prints its answer as an aligned table or as JSON lines. Errors
come as one line on stderr, ``code-wake: error: ...``, with exit status 1
(2 for a bad command line, as argparse does); never a traceback, never a
password. docs/cli.md describes every command.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, TextIO, TypeVar

from . import _output
from ._adapters import DEFAULT_ADAPTER, parse_adapter
from ._masking import scrub
from ._readers import open_for_reading, open_store
from ._timespec import TimeSpecError, parse_time
from ._values import MAX_NUMBER, Invalid, whole_number_argument
from ._version import __version__
from .errors import CodeWakeError, StoreError
from .query import EventFilter, ProcessFilter
from .store import Store

__all__ = ["COMMANDS", "CommandError", "build_parser", "main"]

PROG = "code-wake"

DEFAULT_LIMIT = 100
"""Rows the listing commands print unless ``--limit`` says otherwise (0: all)."""

R = TypeVar("R")
Handler = Callable[[argparse.Namespace, Store, TextIO], int]


class CommandError(CodeWakeError):
    """Raised by a command for a failure the user must hear about (an unknown event id, ...)."""


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors as one line: ``code-wake: error: ...``, exit status 2."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix(PROG).strip()
        where = f"{command}: " if command else ""
        self.exit(2, f"{PROG}: error: {where}{message} (see '{self.prog} --help')\n")


# -- values of options ------------------------------------------------------------------------------


def _time(text: str) -> float:
    try:
        return parse_time(text, time.time())
    except TimeSpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _term(text: str) -> tuple[str, str]:
    key, equals, value = text.partition("=")
    if not equals or not key:
        raise argparse.ArgumentTypeError(
            f"expected KEY=VALUE (a data key, '=', the value to match), got {text!r}"
        )
    return key, value


_id = whole_number_argument(1, "an id (a whole number from 1 to {most})", most=MAX_NUMBER)
_count = whole_number_argument(0, "a whole number (0 to {most})", most=MAX_NUMBER)


def _adapter(text: str) -> str:
    try:
        return parse_adapter(text)
    except Invalid:
        raise argparse.ArgumentTypeError(
            f"expected module,Class (like {DEFAULT_ADAPTER}), got {text!r}"
        ) from None


# -- the parser -------------------------------------------------------------------------------------

_MAIN_EPILOG = """\
The store is the one given with --store (a SQLAlchemy URL), else the one the
configuration names (CODE_WAKE_CONFIG, ./etc/code_wake.conf, /etc/code_wake.conf,
CODE_WAKE_STORE_*), else the embedded default. Times are UTC. docs/cli.md has more.

example:
  code-wake errors --app shop --env production --since 1d
"""


@dataclass(frozen=True)
class _Command:
    """One subcommand: its help, its example, its options and what it runs."""

    name: str
    summary: str
    description: str
    example: str
    options: Callable[[argparse.ArgumentParser], None]
    handler: Handler
    opens: str = "read"
    """How the command opens the store: "read" (read-only), "write" (existing data), "upgrade",
    "spool" (unchecked: read-only to show, for writing with --deliver)."""


def _store_options(parser: argparse.ArgumentParser, default: Any) -> None:
    group = parser.add_argument_group("store and output")
    group.add_argument(
        "--store",
        metavar="URL",
        default=default,
        help="the database, a SQLAlchemy URL (sqlite:///events.sqlite, postgresql+psycopg://user@host/db); "
        "with --adapter, that adapter's argument",
    )
    group.add_argument(
        "--adapter",
        metavar="MODULE,CLASS",
        type=_adapter,
        default=default,
        help=f"the store adapter class --store is given to (default {DEFAULT_ADAPTER})",
    )
    group.add_argument(
        "--json", action="store_true", default=default, help="print JSON lines, one object per row"
    )


def _limit_option(parser: argparse.ArgumentParser, default: int | None) -> None:
    shown = "all" if default is None else str(default)
    parser.add_argument(
        "--limit",
        metavar="N",
        type=_count,
        default=default,
        help=f"print at most N rows; 0 for all (default {shown})",
    )


def _scope_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("filters (each one given narrows the answer)")
    group.add_argument("--app", metavar="NAME", help="of this application")
    group.add_argument(
        "--vsn", metavar="VERSION", help="of this application version (of any app without --app)"
    )
    group.add_argument("--env", metavar="NAME", help="of this environment")
    group.add_argument(
        "--since", metavar="TIME", type=_time, help="at or after TIME: 2h, 7d, 1w, today, 2026-11-27T10:00"
    )
    group.add_argument("--until", metavar="TIME", type=_time, help="before TIME (same forms as --since)")


def _event_options(parser: argparse.ArgumentParser) -> None:
    _scope_options(parser)
    group = parser.add_argument_group("event filters")
    group.add_argument(
        "--where",
        metavar="KEY=VALUE",
        type=_term,
        action="append",
        default=[],
        help="carrying this data; repeat for several (all must match)",
    )
    group.add_argument("--process", metavar="ID", type=_id, help="logged by the process with this id")
    group.add_argument(
        "--exc-type", metavar="NAME", help="with this exception type (ValueError, package.module.Error)"
    )
    group.add_argument("--trace", metavar="ID", type=_id, help="with the stack trace with this id")


def _events_options(parser: argparse.ArgumentParser) -> None:
    _event_options(parser)
    parser.add_argument("--errors", action="store_true", help="only events with an exception")
    _limit_option(parser, DEFAULT_LIMIT)


def _errors_options(parser: argparse.ArgumentParser) -> None:
    _event_options(parser)
    parser.add_argument(
        "--all-traces",
        action="store_true",
        help="also group stack traces recorded without an exception (caller traces, pycodewake databases)",
    )
    _limit_option(parser, 20)


def _stats_options(parser: argparse.ArgumentParser) -> None:
    _event_options(parser)
    parser.add_argument("--errors", action="store_true", help="count only events with an exception")
    _limit_option(parser, None)


def _processes_options(parser: argparse.ArgumentParser) -> None:
    _scope_options(parser)
    _limit_option(parser, DEFAULT_LIMIT)


def _show_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("event_id", metavar="EVENT_ID", type=_id, help="the id of the event")


def _prune_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--older-than",
        metavar="TIME",
        type=_time,
        required=True,
        help="delete events recorded before TIME: a duration before now (30d, 12w) or a date (2026-01-01)",
    )
    parser.add_argument("--dry-run", action="store_true", help="count what would be deleted, delete nothing")
    parser.add_argument(
        "--batch-size",
        metavar="N",
        type=_id,
        default=5000,
        help="events deleted per transaction (default 5000)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``code-wake`` command."""
    parser = _Parser(
        prog=PROG,
        description="Analyse the events code_wake recorded: list, filter, group, count, prune.",
        epilog=_MAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    _store_options(parser, None)
    commands = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    for command in COMMANDS:
        sub = commands.add_parser(
            command.name,
            help=command.summary,
            description=command.description,
            epilog=f"example:\n  {command.example}\n",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.options(sub)
        # SUPPRESS: an option given before the command is not reset by the command's parser.
        _store_options(sub, argparse.SUPPRESS)
        sub.set_defaults(handler=command.handler, opens=command.opens)
    return parser


# -- the commands -----------------------------------------------------------------------------------


def _limit(args: argparse.Namespace) -> int | None:
    return None if args.limit in (None, 0) else int(args.limit)


def _event_filter(args: argparse.Namespace, errors: bool = False) -> EventFilter:
    return EventFilter(
        where=tuple(args.where),
        app=args.app,
        vsn=args.vsn,
        env=args.env,
        process_id=args.process,
        exc_type=args.exc_type,
        stacktrace_id=args.trace,
        errors=errors,
        since=args.since,
        until=args.until,
        limit=_limit(args),
    )


def _print(
    args: argparse.Namespace,
    rows: Iterable[R],
    columns: Sequence[_output.Column[R]],
    to_json: Callable[[R], dict[str, Any]],
    out: TextIO,
) -> int:
    """Print `rows` as JSON lines or as a table; the command's exit status."""
    if args.json:
        _output.write_json_lines(rows, to_json, out)
    else:
        _output.write_table(rows, columns, out)
    return 0


def _run_processes(args: argparse.Namespace, store: Store, out: TextIO) -> int:
    process_filter = ProcessFilter(
        app=args.app, vsn=args.vsn, env=args.env, since=args.since, until=args.until, limit=_limit(args)
    )
    return _print(
        args, store.query_processes(process_filter), _output.PROCESS_COLUMNS, _output.process_json, out
    )


def _run_events(args: argparse.Namespace, store: Store, out: TextIO) -> int:
    events = store.query_events(_event_filter(args, errors=args.errors))
    return _print(args, events, _output.EVENT_COLUMNS, _output.event_json, out)


def _run_show(args: argparse.Namespace, store: Store, out: TextIO) -> int:
    event = store.get_event_by_id(args.event_id)
    if event is None:
        raise CommandError(f"no event with id {args.event_id} in {store.describe()}")
    if args.json:
        out.write(json.dumps(_output.event_json(event, whole=True), ensure_ascii=False) + "\n")
    else:
        out.writelines(_output.format_event(event))
    return 0


def _run_errors(args: argparse.Namespace, store: Store, out: TextIO) -> int:
    groups = store.query_trace_groups(_event_filter(args, errors=not args.all_traces))
    return _print(args, groups, _output.GROUP_COLUMNS, _output.group_json, out)


def _run_stats(args: argparse.Namespace, store: Store, out: TextIO) -> int:
    rows = store.query_daily_counts(_event_filter(args, errors=args.errors))
    return _print(args, rows, _output.DAILY_COLUMNS, _output.daily_json, out)


def _run_prune(args: argparse.Namespace, store: Store, out: TextIO) -> int:
    report = store.prune(args.older_than, dry_run=args.dry_run, batch_size=args.batch_size)
    out.write(json.dumps(_output.prune_json(report)) + "\n" if args.json else _output.prune_text(report))
    return 0


def _upgrade_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="say what it would do, change nothing")


def _run_upgrade(args: argparse.Namespace, store: Store, out: TextIO) -> int:
    steps = store.upgrade(dry_run=args.dry_run)
    if not steps:
        out.write(f"{store.describe()} is up to date; nothing to do\n")
        return 0
    out.write(f"{'would upgrade' if args.dry_run else 'upgraded'} {store.describe()}:\n")
    out.writelines(f"  {step}\n" for step in steps)
    return 0


def _serve_options(parser: argparse.ArgumentParser) -> None:
    from .web.serve import add_options  # the web view loads its dependencies only when it runs

    add_options(parser)


def _spool_options(parser: argparse.ArgumentParser) -> None:
    from ._spool_command import add_options

    add_options(parser)


def _run_spool(args: argparse.Namespace, store: Store, out: TextIO) -> int:
    from ._spool_command import run

    return run(args, store, out)


def _run_serve(args: argparse.Namespace, store: Store, out: TextIO) -> int:
    from .web.serve import run

    return run(args, store, out)


COMMANDS: tuple[_Command, ...] = (
    _Command(
        "processes",
        "list the processes that recorded events",
        "List processes (runs of programs), newest start first, with their app, version, environment, "
        "pid, user, host and program. --since and --until bound the start time.",
        "code-wake processes --app shop --env production --since 7d",
        _processes_options,
        _run_processes,
    ),
    _Command(
        "events",
        "list events, newest first, filtered",
        "List events, newest first, with their time, app, version, environment, process, exception "
        "type and data. Every filter given narrows the list; the rows are printed as they are read.",
        "code-wake events --app shop --where customer=c42 --since 2h",
        _events_options,
        _run_events,
    ),
    _Command(
        "show",
        "print one event whole, with its stack trace",
        "Print one event whole: its time (UTC and local), app, version, environment, process, "
        "exception, data, and its stack trace as Python prints one (most recent call last).",
        "code-wake show 1234",
        _show_options,
        _run_show,
    ),
    _Command(
        "errors",
        "group exceptions by stack trace, most frequent first",
        "Group the events that carry an exception by exception type and stack trace, most frequent "
        "first: count, first and last seen, where it was raised, the apps, versions and environments "
        "it was seen in, and the message and id of its latest event (for code-wake show).",
        "code-wake errors --app shop --vsn 1.2.3 --env production --since yesterday",
        _errors_options,
        _run_errors,
    ),
    _Command(
        "stats",
        "count events per day, app, version and environment",
        "Count events (and those with an exception) per UTC day, app, version and environment, "
        "newest day first.",
        "code-wake stats --since 7d",
        _stats_options,
        _run_stats,
    ),
    _Command(
        "prune",
        "delete old events and what only they used",
        "Delete the events recorded before a time, their data, the stack traces and frames no "
        "remaining event uses, and the processes that started before that time and have no events "
        "left; in batches, each its own short transaction, so that writers are not held up for long.",
        "code-wake prune --older-than 30d --dry-run",
        _prune_options,
        _run_prune,
        opens="write",
    ),
    _Command(
        "upgrade",
        "bring a database to this code_wake's schema",
        "Upgrade the store's database to the schema this code_wake writes (an older code_wake's, or "
        "pycodewake 0.2's), or create code_wake's tables in an existing database. Reading commands "
        "never upgrade; programs that record events upgrade on first use. --dry-run says what it "
        "would do and changes nothing.",
        "code-wake upgrade --store sqlite:///old.sqlite --dry-run",
        _upgrade_options,
        _run_upgrade,
        opens="upgrade",
    ),
    _Command(
        "spool",
        "show what waits in the store's disk spool; --deliver writes it",
        "Show the events a program set aside in its disk spool because the store could not take "
        "them (the database down, memory full, the exit deadline), file by file: the process that "
        "wrote it, how many events, from when to when. Works while the database is down and changes "
        "nothing. --deliver writes them to the store now, oldest first, as the next program that "
        "logs to the store would; files a running program still holds are left to it.",
        "code-wake spool --store postgresql://app@db/events --deliver",
        _spool_options,
        _run_spool,
        opens="spool",
    ),
    _Command(
        "serve",
        "serve the web view: errors over time, events, processes",
        "Serve the web view of the store in a browser: errors grouped by stack trace with their "
        "counts over time, each group's trace and events, events, processes and daily counts. "
        "Read-only; listens on 127.0.0.1 unless --host says otherwise, which needs a token. "
        "Needs pip install 'code-wake[web]'.",
        "code-wake serve --port 8000",
        _serve_options,
        _run_serve,
    ),
)


# -- the store ----------------------------------------------------------------------------------------


def _open_store(args: argparse.Namespace) -> Store:
    """The store of ``--store``/``--adapter``, else the configured one, as the command opens it.

    Reading commands open it read-only; ``prune`` for writing, checked to
    hold code_wake's current schema first; ``upgrade`` for writing, unchecked
    (``--dry-run`` read-only).
    """
    opens = args.opens
    try:
        if opens == "spool":
            return _unchecked(args, read_only=not args.deliver)
        if opens == "read" or (opens == "upgrade" and args.dry_run):
            return open_for_reading(args.store, args.adapter) if opens == "read" else _unchecked(args, True)
        store = _unchecked(args, False)
        if opens == "write":
            _checked(store)
        return store
    except StoreError as exc:
        raise CommandError(str(exc)) from None


def _unchecked(args: argparse.Namespace, read_only: bool) -> Store:
    return open_store(args.store, args.adapter, read_only=read_only)


def _checked(store: Store) -> None:
    try:
        store.check_readable()
    except BaseException:
        store.close()
        raise


# -- running --------------------------------------------------------------------------------------------


def _fail(message: str, args: argparse.Namespace | None) -> int:
    store = getattr(args, "store", None)
    # The --store URL's password, as written or decoded, never reaches the terminal.
    line = " ".join(scrub(message, [store] if store else []).split())  # one line, whatever the message held
    sys.stderr.write(f"{PROG}: error: {line}\n")
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with `argv` (default: the process's arguments); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return _run(args)
    except CodeWakeError as exc:
        return _fail(str(exc), args)
    except BrokenPipeError:
        # The reader went away (code-wake events | head): stop quietly, as Unix tools do.
        _silence_stdout()
        return 1
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130
    except Exception as exc:  # noqa: BLE001 - an adapter's own failure: still one line, not a traceback
        return _fail(f"{type(exc).__name__}: {exc}", args)


def _run(args: argparse.Namespace) -> int:
    store = _open_store(args)
    try:
        status = int(args.handler(args, store, sys.stdout))
        sys.stdout.flush()
        return status
    finally:
        store.close()


def _silence_stdout() -> None:
    # Python flushes stdout at exit and would complain of the broken pipe again.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
