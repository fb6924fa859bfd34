"""The demo behind `make demo`: record real events into the default store and show them.

No configuration is needed: with none, code_wake records into its embedded
default store, a SQLite file in your data directory (it says where).
"""

from __future__ import annotations

import logging
import uuid

import code_wake
from code_wake.render import format_event_exception


class OutOfStock(Exception):
    """Raised when an order asks for more than there is."""


def reserve(item: str, wanted: int, in_stock: int) -> None:
    if wanted > in_stock:
        raise OutOfStock(f"{item}: wanted {wanted}, have {in_stock}")


def checkout(item: str, wanted: int) -> None:
    try:
        reserve(item, wanted, in_stock=2)
    except OutOfStock as exc:
        raise RuntimeError(f"checkout of {item} failed") from exc


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    proc = code_wake.Process(app_name="code-wake-demo", app_vsn=code_wake.__version__, env_name="demo")
    run = uuid.uuid4().hex[:8]

    proc.log({"demo_run": run, "event": "started"})
    proc.log(
        {
            "demo_run": run,
            "event": "order",
            "customer": "c42",
            "items": ["tea", "cake"],
            "password": "hunter2",
        }
    )
    try:
        checkout("cake", wanted=5)
    except RuntimeError as exc:
        proc.log({"demo_run": run, "event": "fault", "doing": "checkout"}, exc)

    # The default store is queued: wait until what was logged is written before reading it back.
    flush = getattr(proc.store, "flush", None)
    if flush is not None:
        flush(timeout=10)
    events = proc.store.get_events_by_data([("demo_run", run)])
    print(f"\nStored {len(events)} events for process {proc.id} ({proc.app.name}, pid {proc.pid}):")
    for event in events:
        data = ", ".join(f"{item.key}={item.val}" for item in event.data)
        print(f"  event {event.id}: {data}")
    fault = events[-1]
    print(f"\nEvent {fault.id} carried an exception:\n")
    print(format_event_exception(fault))
    print("In a browser: `code-wake serve` (pip install 'code-wake[web]'), then open http://127.0.0.1:8000/")


if __name__ == "__main__":
    main()
