"""Many writers: 8 processes x 4 threads logging at full speed into one database.

Each backend gets the same scenario as tests/integration/test_many_writers.py
at full size: 8 child interpreters, each with 4 threads logging 2,500 events
(80,000 in all; ``--quick``: 250, 8,000 in all) through ``Sql14QueueStore``,
all released in the same instant once every child has imported its modules
and its database driver. The figure is events per second stored end to end:
from the release (which includes opening the store and registering the
process) until the last child has flushed and closed its store.

The anchor, in the same run, is one process with one thread logging the same
number of events through the queue into the same backend (also a fresh
database, released the same way): the table shows the many-writer rate beside
the one-writer rate. Each child's queue may hold all of its events, so the
figure is the store's, not the drop policy's. Runs alternate, three of each,
medians reported (``--quick``: one of each). Every run is verified: each (proc, thread, n) stored
exactly once, under the process that logged it, one app, version and
environment row, one process row per child; a run that fails raises.

SQLite is a file in a temporary directory; PostgreSQL and MySQL/MariaDB a
scratch database (`queries.database`: CODE_WAKE_TEST_POSTGRESQL /
CODE_WAKE_TEST_MYSQL, else the local defaults), skipped where no server answers.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from code_wake_sql14_store.schema import app_vsns, apps, environments, events, events_data, processes

from .queries import database
from .timing import Row

REPO = Path(__file__).resolve().parents[1]
PROCESSES = 8
THREADS = 4
BACKENDS = {"sqlite": "SQLite file", "postgresql": "PostgreSQL", "mysql": "MariaDB/MySQL"}
APP, VSN, ENV = "many-writers", "6.1", "bench"

CHILD = """
    import dataclasses
    import json
    import sys
    import threading
    import time

    url, proc_no, threads, per_thread = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

    import sqlalchemy

    import code_wake
    from code_wake import QueueSettings
    from code_wake_sql14_store import Sql14QueueStore

    sqlalchemy.create_engine(url).dispose()  # imports the driver, as a running app has
    print("ready", flush=True)
    sys.stdin.readline()  # the release

    store = Sql14QueueStore(url, queue_settings=QueueSettings(max_events=threads * per_thread + 1))
    proc = code_wake.Process(store=store, app_name={app!r}, app_vsn={vsn!r}, env_name={env!r})
    start = threading.Barrier(threads)

    def work(thread_no):
        start.wait()
        for n in range(per_thread):
            proc.log({{"proc": proc_no, "thread": thread_no, "n": n}})

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    flushed = store.flush(timeout=600)
    stats = store.queue_stats
    closed = store.close(timeout=60)
    done_ts = time.time()
    print(json.dumps({{
        "process_id": proc.id,
        "flushed": flushed,
        "closed": closed,
        "stats": dataclasses.asdict(stats),
        "done_ts": done_ts,
    }}), flush=True)
"""


@dataclass(frozen=True)
class Outcome:
    """One verified run: its rate, and what the children reported on the way."""

    events_per_second: float
    retries: int
    stderr_lines: int


def _spawn(script: Path, url: str, processes: int, threads: int, per_thread: int) -> Outcome:
    """Run the scenario once into the empty database at `url`; verify it; its events/s."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    children: list[subprocess.Popen[str]] = []
    try:
        for proc_no in range(processes):
            children.append(
                subprocess.Popen(
                    [sys.executable, str(script), url, str(proc_no), str(threads), str(per_thread)],
                    cwd=script.parent,
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        for child in children:
            assert child.stdout is not None
            if child.stdout.readline() != "ready\n":
                raise RuntimeError(f"a writer did not start: {child.communicate(timeout=60)}")
        released = time.time()
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        reports: list[dict[str, Any]] = []
        stderr_lines = 0
        for proc_no, child in enumerate(children):
            out, err = child.communicate(timeout=900)
            if child.returncode != 0:
                raise RuntimeError(f"writer {proc_no} exited with {child.returncode}:\n{out}\n{err}")
            if err:
                print(f"writer {proc_no} on stderr:\n{textwrap.indent(err, '    ')}", file=sys.stderr)
            stderr_lines += len(err.splitlines())
            reports.append(json.loads(out))
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    elapsed = max(r["done_ts"] for r in reports) - released
    _verify(url, reports, threads, per_thread)
    return Outcome(
        events_per_second=processes * threads * per_thread / elapsed,
        retries=sum(r["stats"]["retries"] for r in reports),
        stderr_lines=stderr_lines,
    )


def _verify(url: str, reports: list[dict[str, Any]], threads: int, per_thread: int) -> None:
    """Raise unless every event is stored once under its process, with one registration of each kind."""
    problems = [
        f"writer {n}: {r}"
        for n, r in enumerate(reports)
        if not (r["flushed"] and r["closed"])
        or any(r["stats"][k] for k in ("pending", "dropped", "lost", "rejected"))
        or r["stats"]["written"] != threads * per_thread
    ]
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            registered = {
                table.name: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                for table in (processes, apps, app_vsns, environments)
            }
            process_of = dict(conn.execute(sa.select(events.c.id, events.c.process_id)).all())
            fields: dict[int, dict[str, int]] = {}
            data_rows = 0
            for event_id, key, val in conn.execute(
                sa.select(events_data.c.event_id, events_data.c.key, events_data.c.val)
            ):
                fields.setdefault(event_id, {})[key] = int(val)
                data_rows += 1
    finally:
        engine.dispose()
    wanted_registrations = {"processes": len(reports), "apps": 1, "app_vsns": 1, "environments": 1}
    if registered != wanted_registrations:
        problems.append(f"registrations {registered}, expected {wanted_registrations}")
    proc_of_process = {r["process_id"]: n for n, r in enumerate(reports)}
    seen = Counter((d.get("proc"), d.get("thread"), d.get("n")) for d in fields.values())
    wanted = {(p, t, n) for p in range(len(reports)) for t in range(threads) for n in range(per_thread)}
    missing = len(wanted - set(seen))
    doubled = sum(c - 1 for c in seen.values() if c > 1)
    strays = len(set(seen) - wanted) + len(set(process_of) ^ set(fields)) + data_rows - 3 * len(fields)
    misplaced = sum(1 for e, d in fields.items() if proc_of_process.get(process_of.get(e)) != d.get("proc"))
    if missing or doubled or strays or misplaced:
        problems.append(
            f"{missing} events missing, {doubled} doubled, {strays} unexpected, {misplaced} misplaced"
        )
    if problems:
        raise RuntimeError(f"many writers into {sa.make_url(url).get_backend_name()}: " + "; ".join(problems))


def run(quick: bool = False, repeats: int | None = None) -> list[Row]:
    """Events/s stored by 8 processes x 4 threads at once vs one process with one thread, per backend."""
    repeats = repeats or (1 if quick else 3)
    per_thread = 250 if quick else 2_500
    total = PROCESSES * THREADS * per_thread
    shapes = {"one": (1, 1, total), "many": (PROCESSES, THREADS, per_thread)}
    table: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "writer.py"
        script.write_text(textwrap.dedent(CHILD.format(app=APP, vsn=VSN, env=ENV)))
        for backend, title in BACKENDS.items():
            with database(backend) as url:
                if url is None:
                    table.append(Row(f"{title}: no server", 0, "", "skipped"))
                    continue
            outcomes: dict[str, list[Outcome]] = {name: [] for name in shapes}
            for _ in range(repeats):
                for name, shape in shapes.items():
                    with database(backend) as url:  # a fresh database for every run
                        if url is None:
                            raise RuntimeError(f"the {title} server stopped answering")
                        outcomes[name].append(_spawn(script, url, *shape))
            one = statistics.median(o.events_per_second for o in outcomes["one"])
            many = statistics.median(o.events_per_second for o in outcomes["many"])
            retries = sum(o.retries for o in outcomes["many"] + outcomes["one"])
            warnings = sum(o.stderr_lines for o in outcomes["many"] + outcomes["one"])
            table.append(Row(f"{title}: 1 process x 1 thread, {total:,} events", one, "events/s", "anchor"))
            table.append(
                Row(
                    f"{title}: {PROCESSES} processes x {THREADS} threads, {total:,} events",
                    many,
                    "events/s",
                    f"ratio {many / one:.2f} x one writer; all stored once; "
                    f"{retries} retries, {warnings} stderr lines in {repeats} runs of each",
                )
            )
    return table
