"""Record a week of a small shop's events, serve the web view, and take the screenshots of docs/web.md.

    python examples/web_screenshot.py [OUTPUT_DIR]   # default: docs/

Needs the web and dev extras and Debian's Chromium (/usr/bin/chromium),
driven by Playwright. Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import random
import sys
import tempfile
import threading
import time
from pathlib import Path

import code_wake
from code_wake.web import create_app
from code_wake_sql14_store import Sql14Store

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class OutOfStock(Exception):
    """Raised when an order asks for more than there is."""


class PaymentDeclined(Exception):
    """Raised when the payment provider says no."""


def reserve(item: str) -> None:
    raise OutOfStock(f"no {item} left")


def checkout(item: str) -> None:
    try:
        reserve(item)
    except OutOfStock as exc:
        raise RuntimeError(f"checkout of {item} failed") from exc


def charge(amount: int) -> None:
    raise PaymentDeclined(f"card declined for {amount} EUR")


def price(item: str) -> int:
    return {"tea": 3}[item]


def record(url: str, now: float) -> None:
    """Two weeks of three app versions: a chained checkout error, a new payment error, a price bug."""
    rng = random.Random(7)
    store = Sql14Store(url)
    for app, vsn, env, share in [
        ("shop", "1.4.1", "production", 1.0),
        ("shop", "1.5.0", "staging", 0.3),
        ("billing", "2.0.3", "production", 0.6),
    ]:
        code_wake.Process.reset()
        proc = code_wake.Process(app_name=app, app_vsn=vsn, env_name=env, store=store)
        for _ in range(int(400 * share)):
            when = now - rng.random() ** 0.7 * 14 * 86_400
            customer = f"c{rng.randrange(500)}"
            proc.log({"event": "order", "customer": customer}, when_ts=when, sync=True)
            roll = rng.random()
            try:
                if roll < 0.25 and app == "shop":
                    checkout(rng.choice(["cake", "scones"]))
                elif roll < 0.3 and app == "billing" and when > now - 2 * 86_400:
                    charge(rng.randrange(10, 90))
                elif roll < 0.33:
                    price(rng.choice(["coffee", "cocoa"]))
            except Exception as exc:  # noqa: BLE001 - every error is recorded
                proc.log({"event": "fault", "customer": customer}, exc, when_ts=when + 0.5, sync=True)
    code_wake.Process.reset()
    store.close()


def main() -> None:
    from playwright.sync_api import sync_playwright
    from waitress.server import create_server

    out = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent.parent / "docs")
    now = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/shop.sqlite"
        record(url, now)
        app = create_app(url, clock=lambda: now)
        server = create_server(app, host="127.0.0.1", port=0)
        threading.Thread(target=server.run, daemon=True).start()
        base = f"http://127.0.0.1:{server.effective_port}"  # type: ignore[union-attr]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 820})
            page.goto(base + "/?window=7d")
            page.screenshot(path=str(out / "web-errors.png"))
            page.locator("table.groups a.exc").first.click()
            page.wait_for_load_state()
            page.screenshot(path=str(out / "web-group.png"))
            browser.close()
        server.close()
        app.close()
    print(f"wrote {out / 'web-errors.png'} and {out / 'web-group.png'}")


if __name__ == "__main__":
    main()
