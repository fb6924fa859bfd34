"""Many writers: 8 processes x 4 threads, all started in the same instant, into one database.

Every event must be stored exactly once, under the process that logged it;
no lock or deadlock may surface (nothing on any child's stderr, no event
dropped, lost or rejected); and the registrations the processes race for
(the schema, the app, its version, the environment) must come out as one
row each, with one process row per process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from code_wake_sql14_store import schema

from .helpers import REPO

PROCESSES = 8
THREADS = 4
PER_THREAD = 100
APP, VSN, ENV = "many-writers", "6.1", "stress"

CHILD = """
    import dataclasses
    import json
    import sys
    import threading
    import time

    url, proc_no, threads, per_thread = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

    import sqlalchemy

    import code_wake
    from code_wake import _report
    from code_wake_sql14_store import Sql14QueueStore

    sqlalchemy.create_engine(url).dispose()  # imports the driver, so that all start at once
    print("ready", flush=True)
    sys.stdin.readline()  # the release: every process gets it in the same instant

    store = Sql14QueueStore(url)
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
    flushed = store.flush(timeout=120)
    stats = store.queue_stats
    closed = store.close(timeout=30)
    print(json.dumps({{
        "pid": proc.pid,
        "process_id": proc.id,
        "flushed": flushed,
        "closed": closed,
        "stats": dataclasses.asdict(stats),
        "problems": _report.counts(),
        "done_ts": time.time(),
    }}), flush=True)
"""


def run_writers(
    tmp_path: Path, url: str, processes: int, threads: int, per_thread: int
) -> list[dict[str, Any]]:
    """Start `processes` children, release them together, return what each reported at its end."""
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(CHILD.format(app=APP, vsn=VSN, env=ENV)))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    children: list[subprocess.Popen[str]] = []
    try:
        for proc_no in range(processes):
            children.append(
                subprocess.Popen(
                    [sys.executable, str(script), url, str(proc_no), str(threads), str(per_thread)],
                    cwd=tmp_path,
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        for child in children:  # all imported and waiting
            assert child.stdout is not None
            line = child.stdout.readline()
            assert line == "ready\n", f"child did not start: {line!r} {child.stderr and child.stderr.read()}"
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        reports = []
        for proc_no, child in enumerate(children):
            out, err = child.communicate(timeout=120)
            assert child.returncode == 0, f"writer {proc_no} exited with {child.returncode}:\n{out}\n{err}"
            assert err == "", f"writer {proc_no} reported problems on stderr:\n{err}"
            reports.append(json.loads(out))
        return reports
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()


def select_rows(url: str, query: sa.Select[Any]) -> list[tuple[Any, ...]]:
    """Rows of a SQLAlchemy query (portable where plain SQL is not: `key` is reserved in MySQL)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(query)]
    finally:
        engine.dispose()


def check_stored(url: str, reports: list[dict[str, Any]], threads: int, per_thread: int) -> None:
    """Every (proc, thread, n) stored once, under its own process; one registration of each kind."""
    processes = len(reports)
    expected = processes * threads * per_thread

    # Registrations: one row per process, and one app, version and environment for all of them.
    process_rows = select_rows(
        url,
        sa.select(
            schema.processes.c.id,
            schema.processes.c.pid,
            schema.processes.c.app_id,
            schema.processes.c.app_vsn_id,
            schema.processes.c.environment_id,
        ),
    )
    assert sorted(r[1] for r in process_rows) == sorted(r["pid"] for r in reports)
    assert sorted(r[0] for r in process_rows) == sorted(r["process_id"] for r in reports)
    apps = select_rows(url, sa.select(schema.apps.c.id, schema.apps.c.name))
    vsns = select_rows(url, sa.select(schema.app_vsns.c.id, schema.app_vsns.c.vsn, schema.app_vsns.c.app_id))
    envs = select_rows(url, sa.select(schema.environments.c.id, schema.environments.c.name))
    assert [r[1] for r in apps] == [APP]
    assert [(r[1], r[2]) for r in vsns] == [(VSN, apps[0][0])]
    assert [r[1] for r in envs] == [ENV]
    assert {r[2:] for r in process_rows} == {(apps[0][0], vsns[0][0], envs[0][0])}

    # Events: each (proc, thread, n) exactly once, under the process that logged it.
    process_of_event = dict(select_rows(url, sa.select(schema.events.c.id, schema.events.c.process_id)))
    data = schema.events_data
    fields: dict[int, dict[str, int]] = {}
    for event_id, key, val in select_rows(url, sa.select(data.c.event_id, data.c.key, data.c.val)):
        assert key not in fields.setdefault(event_id, {}), f"event {event_id} has {key} twice"
        fields[event_id][key] = int(val)
    assert len(process_of_event) == len(fields) == expected
    proc_of_process = {r["process_id"]: p for p, r in enumerate(reports)}
    seen: Counter[tuple[int, int, int]] = Counter()
    misplaced = 0
    for event_id, item in fields.items():
        assert set(item) == {"proc", "thread", "n"}, f"event {event_id} carries {item}"
        seen[item["proc"], item["thread"], item["n"]] += 1
        misplaced += proc_of_process.get(process_of_event[event_id]) != item["proc"]
    wanted = {(p, t, n) for p in range(processes) for t in range(threads) for n in range(per_thread)}
    missing = sorted(wanted - set(seen))
    doubled = sorted(k for k, c in seen.items() if c > 1)
    strays = sorted(set(seen) - wanted)
    assert (len(missing), missing[:5], len(doubled), doubled[:5], strays[:5]) == (0, [], 0, [], []), (
        "events missing (count, first), doubled (count, first), unexpected"
    )
    assert misplaced == 0, f"{misplaced} events are recorded under another process"

    # The store's summary counted each event once too.
    ((counted,),) = select_rows(
        url, sa.select(sa.func.sum(schema.event_counts.c.n)).where(schema.event_counts.c.span == 0)
    )
    assert counted == expected


def test_many_writers_store_every_event_once(tmp_path: Path, db_url: str) -> None:
    """8 processes x 4 threads log at full speed, released together: nothing lost, doubled or raced."""
    reports = run_writers(tmp_path, db_url, PROCESSES, THREADS, PER_THREAD)
    for proc_no, report in enumerate(reports):
        stats = report["stats"]
        assert (report["flushed"], report["closed"]) == (True, True), f"writer {proc_no}: {report}"
        assert (stats["pending"], stats["dropped"], stats["lost"], stats["rejected"]) == (0, 0, 0, 0), (
            f"writer {proc_no}: {report}"
        )
        assert stats["written"] == THREADS * PER_THREAD, f"writer {proc_no}: {report}"
        assert report["problems"] == {}, f"writer {proc_no}: {report}"
    check_stored(db_url, reports, THREADS, PER_THREAD)
