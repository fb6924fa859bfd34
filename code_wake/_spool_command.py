"""``code-wake spool``: what waits in a store's disk spool, and writing it on purpose (``--deliver``).

Showing reads the spool's files and changes nothing, and does not connect to
the store: it works while the database is down, which is when one looks.
Delivering writes every file no running process holds, oldest first, the way
a logging process's queue does (`_spool.deliver_spool`).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, TextIO

from . import _output
from ._queue_spool import spool_directory_of, write_to
from ._spool import Delivery, SpoolFile, deliver_spool, list_spool
from .config import Config
from .errors import StoreError
from .store import Store

__all__ = ["add_options", "run"]

_BATCH = 500


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--deliver",
        action="store_true",
        help="write what waits to the store (files a running process still holds are left to it)",
    )


def run(args: argparse.Namespace, store: Store, out: TextIO) -> int:
    directory = spool_directory_of(store, Config.load().queue_settings())
    if directory is None:
        out.write(f"{store.describe()} has no spool (turned off, or the store keeps none)\n")
        return 0
    if args.deliver:
        return _deliver(args, store, directory, out)
    files = list_spool(directory)
    if args.json:
        _output.write_json_lines(files, _file_json, out)
        return 0
    out.write(f"spool of {store.describe()}: {directory}\n")
    if not files:
        out.write("nothing waits\n")
        return 0
    _output.write_table(files, _COLUMNS, out)
    waiting = sum(f.events for f in files)
    held = sum(1 for f in files if f.in_use)
    out.write(f"{waiting} events wait in {_files(len(files))}")
    out.write(f" ({held} held by a running process, which writes them itself)\n" if held else "\n")
    return 0


def _deliver(args: argparse.Namespace, store: Store, directory: Path, out: TextIO) -> int:
    delivery = Delivery()
    try:
        deliver_spool(directory, write_to(store), _BATCH, delivery)
    except Exception as exc:
        raise StoreError(
            f"writing the spool stopped after {delivery.written} events "
            f"({delivery.files} files done; the rest waits): {exc}"
        ) from exc
    left = list_spool(directory)
    if args.json:
        out.write(json.dumps(_delivery_json(delivery, left)) + "\n")
        return 0
    out.write(f"wrote {delivery.written} events from {_files(delivery.files)} to {store.describe()}\n")
    if delivery.others_rejected:
        out.write(f"{delivery.others_rejected} events refused by the store, dropped\n")
    if delivery.torn:
        out.write(f"{delivery.torn} files ended in a cut-off record (a crash while writing); read up to it\n")
    for damaged in delivery.damaged:
        out.write(f"not a spool file, moved aside: {damaged}\n")
    if left:
        waiting = sum(f.events for f in left)
        out.write(f"{waiting} events in {_files(len(left))} held by a running process, which writes them\n")
    return 0


def _files(count: int) -> str:
    return "1 file" if count == 1 else f"{count} files"


def _when(ts: float | None) -> str:
    return "" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _state(found: SpoolFile) -> str:
    if found.header is None:
        return "not a spool file"
    state = "held by its process" if found.in_use else "waiting"
    return f"{state}, {found.torn_bytes} bytes cut off at the end" if found.torn_bytes else state


_COLUMNS: tuple[_output.Column[SpoolFile], ...] = (
    _output.Column("FILE", lambda f: f.path.name),
    _output.Column("PID", lambda f: "" if f.header is None else str(f.header.pid), right=True),
    _output.Column("EVENTS", lambda f: str(f.events), right=True),
    _output.Column("BYTES", lambda f: str(f.size), right=True),
    _output.Column("FIRST", lambda f: _when(f.first_ts)),
    _output.Column("LAST", lambda f: _when(f.last_ts)),
    _output.Column("STATE", _state),
)


def _file_json(found: SpoolFile) -> dict[str, Any]:
    return {
        "file": str(found.path),
        "pid": None if found.header is None else found.header.pid,
        "store": None if found.header is None else found.header.store,
        "events": found.events,
        "bytes": found.size,
        "first_ts": found.first_ts,
        "last_ts": found.last_ts,
        "in_use": found.in_use,
        "torn_bytes": found.torn_bytes,
    }


def _delivery_json(delivery: Delivery, left: list[SpoolFile]) -> dict[str, Any]:
    return {
        "written": delivery.written,
        "files": delivery.files,
        "rejected": delivery.others_rejected,
        "torn": delivery.torn,
        "damaged": delivery.damaged,
        "held": sum(f.events for f in left),
    }
