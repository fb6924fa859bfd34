"""Many writers: 8 processes x 4 threads logging at full speed into one database.

The scenario lives here (`run_writers`, `problems`);
tests/integration/test_many_writers.py runs it small. Each backend gets it at
full size: 8 child interpreters, each with 4 threads logging 2,500 events
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

from code_wake_sql14_store.schema import (
    app_vsns,
    apps,
    call_site_data,
    environments,
    event_counts,
    events,
    events_data,
    processes,
)

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
    from code_wake import QueueSettings, _report
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
        "pid": proc.pid,
        "process_id": proc.id,
        "problems": _report.counts(),
        "flushed": flushed,
        "closed": closed,
        "stats": dataclasses.asdict(stats),
        "done_ts": done_ts,
    }}), flush=True)
"""


@dataclass(frozen=True)
class Writers:
    """What one run of the scenario left: each child's report, when they were released, their stderr."""

    reports: list[dict[str, Any]]
    released: float
    stderr: list[str]


def run_writers(workdir: Path, url: str, processes: int, threads: int, per_thread: int) -> Writers:
    """Start `processes` children logging into `url`, release them in the same instant, wait for all."""
    script = workdir / "writer.py"
    script.write_text(textwrap.dedent(CHILD.format(app=APP, vsn=VSN, env=ENV)))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    children: list[subprocess.Popen[str]] = []
    try:
        for proc_no in range(processes):
            children.append(
                subprocess.Popen(
                    [sys.executable, str(script), url, str(proc_no), str(threads), str(per_thread)],
                    cwd=workdir,
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        for child in children:  # all imported, driver included, and waiting
            assert child.stdout is not None
            if child.stdout.readline() != "ready\n":
                raise RuntimeError(f"a writer did not start: {child.communicate(timeout=60)}")
        released = time.time()
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        reports: list[dict[str, Any]] = []
        stderr: list[str] = []
        for proc_no, child in enumerate(children):
            out, err = child.communicate(timeout=900)
            if child.returncode != 0:
                raise RuntimeError(f"writer {proc_no} exited with {child.returncode}:\n{out}\n{err}")
            reports.append(json.loads(out))
            stderr.append(err)
        return Writers(reports, released, stderr)
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()


def problems(url: str, reports: list[dict[str, Any]], threads: int, per_thread: int) -> list[str]:
    """What went wrong, if anything: every (proc, thread, n) must be stored once under its own
    process, every queue empty with nothing dropped, lost or rejected, and one app, version and
    environment row for all, one process row per child, the summary counting every event once."""
    found = [
        f"writer {n}: {r}"
        for n, r in enumerate(reports)
        if not (r["flushed"] and r["closed"])
        or r["problems"]
        or any(r["stats"][k] for k in ("pending", "dropped", "lost", "rejected"))
        or r["stats"]["written"] != threads * per_thread
    ]
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            process_rows = conn.execute(
                sa.select(
                    processes.c.id,
                    processes.c.pid,
                    processes.c.app_id,
                    processes.c.app_vsn_id,
                    processes.c.environment_id,
                )
            ).all()
            app_rows = conn.execute(sa.select(apps.c.id, apps.c.name)).all()
            vsn_rows = conn.execute(sa.select(app_vsns.c.id, app_vsns.c.vsn, app_vsns.c.app_id)).all()
            env_rows = conn.execute(sa.select(environments.c.id, environments.c.name)).all()
            event_rows = conn.execute(
                sa.select(events.c.id, events.c.process_id, events.c.call_site_id)
            ).all()
            process_of = {r.id: r.process_id for r in event_rows}
            data = conn.execute(sa.select(events_data.c.event_id, events_data.c.key, events_data.c.val)).all()
            # The "thread" item of these events is in their call site (docs/stores.md).
            site_items: dict[int, list[tuple[str, str]]] = {}
            for site_id, key, val in conn.execute(
                sa.select(call_site_data.c.call_site_id, call_site_data.c.key, call_site_data.c.val)
            ):
                site_items.setdefault(site_id, []).append((key, val))
            data += [
                (r.id, key, val)
                for r in event_rows
                if r.call_site_id
                for key, val in site_items[r.call_site_id]
            ]
            counted = conn.execute(sa.select(sa.func.sum(event_counts.c.n)).where(event_counts.c.span == 0))
            summary = counted.scalar()
    finally:
        engine.dispose()
    found += _registration_problems(reports, process_rows, app_rows, vsn_rows, env_rows)
    fields: dict[int, dict[str, int]] = {}
    repeated_keys = 0
    for event_id, key, val in data:
        repeated_keys += key in fields.setdefault(event_id, {})
        fields[event_id][key] = int(val)
    proc_of_process = {r["process_id"]: n for n, r in enumerate(reports)}
    seen = Counter((d.get("proc"), d.get("thread"), d.get("n")) for d in fields.values())
    wanted = {(p, t, n) for p in range(len(reports)) for t in range(threads) for n in range(per_thread)}
    missing = len(wanted - set(seen))
    doubled = sum(c - 1 for c in seen.values() if c > 1)
    strays = len(set(seen) - wanted) + len(set(process_of) ^ set(fields)) + repeated_keys
    misplaced = sum(1 for e, d in fields.items() if proc_of_process.get(process_of.get(e)) != d.get("proc"))
    if missing or doubled or strays or misplaced:
        found.append(
            f"{missing} events missing, {doubled} doubled, {strays} unexpected, {misplaced} misplaced"
        )
    if summary != len(wanted):
        found.append(f"the summary counts {summary} events, not {len(wanted)}")
    return found


def _registration_problems(
    reports: list[dict[str, Any]], process_rows: Any, app_rows: Any, vsn_rows: Any, env_rows: Any
) -> list[str]:
    """One app, version and environment row, and one process row per child linked to them."""
    found = []
    if sorted(r.pid for r in process_rows) != sorted(r["pid"] for r in reports):
        found.append(f"process rows {[r.pid for r in process_rows]} are not the writers' pids")
    if sorted(r.id for r in process_rows) != sorted(r["process_id"] for r in reports):
        found.append("process rows are not the ids the writers were given")
    names = ([r.name for r in app_rows], [r.vsn for r in vsn_rows], [r.name for r in env_rows])
    if names != ([APP], [VSN], [ENV]):
        found.append(f"apps, versions, environments registered: {names}")
    elif vsn_rows[0].app_id != app_rows[0].id or {tuple(r[2:]) for r in process_rows} != {
        (app_rows[0].id, vsn_rows[0].id, env_rows[0].id)
    }:
        found.append("processes or the version are not linked to the one app, version and environment")
    return found


def _measure(
    workdir: Path, url: str, processes: int, threads: int, per_thread: int
) -> tuple[float, int, int]:
    """One verified run: events/s from the release to the last close, retries, stderr lines."""
    writers = run_writers(workdir, url, processes, threads, per_thread)
    for proc_no, err in enumerate(writers.stderr):
        if err:
            print(f"writer {proc_no} on stderr:\n{textwrap.indent(err, '    ')}", file=sys.stderr)
    found = problems(url, writers.reports, threads, per_thread)
    if found:
        raise RuntimeError(f"many writers into {sa.make_url(url).get_backend_name()}: " + "; ".join(found))
    elapsed = max(r["done_ts"] for r in writers.reports) - writers.released
    retries = sum(r["stats"]["retries"] for r in writers.reports)
    return (
        processes * threads * per_thread / elapsed,
        retries,
        sum(len(e.splitlines()) for e in writers.stderr),
    )


def run(quick: bool = False, repeats: int | None = None) -> list[Row]:
    """Events/s stored by 8 processes x 4 threads at once vs one process with one thread, per backend."""
    repeats = repeats or (1 if quick else 3)
    per_thread = 250 if quick else 2_500
    total = PROCESSES * THREADS * per_thread
    shapes = {"one": (1, 1, total), "many": (PROCESSES, THREADS, per_thread)}
    table: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend, title in BACKENDS.items():
            with database(backend) as url:
                if url is None:
                    table.append(Row(f"{title}: no server", 0, "", "skipped"))
                    continue
            outcomes: dict[str, list[tuple[float, int, int]]] = {name: [] for name in shapes}
            for _ in range(repeats):
                for name, shape in shapes.items():
                    with database(backend) as url:  # a fresh database for every run
                        if url is None:
                            raise RuntimeError(f"the {title} server stopped answering")
                        outcomes[name].append(_measure(Path(tmp), url, *shape))
            one = statistics.median(o[0] for o in outcomes["one"])
            many = statistics.median(o[0] for o in outcomes["many"])
            retries = sum(o[1] for o in outcomes["many"] + outcomes["one"])
            warnings = sum(o[2] for o in outcomes["many"] + outcomes["one"])
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
