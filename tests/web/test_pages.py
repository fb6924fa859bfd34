"""The web view's pages, asked as a browser asks them (through the WSGI app), over a real SQLite file.

Each test reads what a person would read: the rows, counts, links and
traces in the HTML, compared with what the library recorded.
"""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest

from code_wake import EventFilter
from code_wake.web._app import WebApp

from .conftest import DAY, MESSAGE_PAYLOAD, ONERROR_PAYLOAD, SCRIPT_PAYLOAD, Browserless, Recorded


def links(html: str, pattern: str = "") -> list[str]:
    """The hrefs of the page's links (unescaped), those containing `pattern`."""
    return [unescape(h) for h in re.findall(r'href="([^"]*)"', html) if pattern in unescape(h)]


def group_rows(html: str) -> list[tuple[str, int]]:
    """(group link, count) of each row of the errors table, in order."""
    body = html.split('<table class="list groups">', 1)[1] if "list groups" in html else ""
    rows = re.findall(r'<a class="exc" href="([^"]+)">.*?<td class="num count">([\d,]+)<span', body, re.S)
    return [(unescape(href), int(count.replace(",", ""))) for href, count in rows]


def event_ids(html: str) -> list[int]:
    """The event ids the page links to, in order (each once)."""
    found: list[int] = []
    for number in re.findall(r'href="/event/(\d+)"', html):
        if int(number) not in found:
            found.append(int(number))
    return found


class TestErrors:
    """The home page: trace groups of the window, with counts, charts and marks."""

    def test_groups_and_counts(self, web: Browserless, recorded: Recorded, app: WebApp) -> None:
        """Each group of the week is a row with its count, most frequent first; the old one is not."""
        html = web.page("/?window=7d")
        rows = group_rows(html)
        expected = app.store.query_trace_groups(EventFilter(errors=True, since=recorded.now - 7 * DAY))
        assert [count for _, count in rows] == [g.count for g in expected]
        assert [g.exc_type for g in expected] == ["RuntimeError", "KeyError", "ValueError"]
        assert rows[0][1] == 16  # two shop versions, 8 each in the week (the tenth-day ones are older)
        assert "checkout of cake failed" in html
        assert "conftest.py" in html and "in checkout" in html  # where: the app's innermost frame

    def test_new_marks_groups_first_seen_in_the_window(self, web: Browserless) -> None:
        """KeyError and ValueError were first seen today; RuntimeError ten days ago."""
        html = web.page("/?window=7d")
        marked = re.findall(r'class="exc" href="[^"]+">([^<]+)</a>\s*<span class="badge new"', html)
        assert marked == ["KeyError", "ValueError"]
        assert group_rows(web.page("/?window=all"))[0][1] == 18
        assert 'class="badge new"' not in web.page("/?window=all")

    def test_charts_have_axes_and_titled_bars(self, web: Browserless) -> None:
        """The window's chart (hourly for a day) has tick labels and a hover title on every bar."""
        html = web.page("/?window=24h")
        chart = html.split('<svg class="chart"', 1)[1].split("</svg>", 1)[0]
        assert '<g class="ylabels">' in chart and '<g class="xlabels">' in chart
        bars = re.findall(r'<rect class="bar err"[^>]*><title>([^<]+)</title>', chart)
        assert bars and all(re.search(r"\d\d:00-\d\d:00 UTC: \d+ errors?$", title) for title in bars)
        total = sum(int(re.search(r": (\d+) error", t).group(1)) for t in bars)  # type: ignore[union-attr]
        assert total == sum(count for _, count in group_rows(html))
        daily = web.page("/?window=30d").split('<svg class="chart"', 1)[1].split("</svg>", 1)[0]
        assert re.search(r"<title>\w{3} \d{4}-\d\d-\d\d \(UTC\): \d+ errors?</title>", daily)
        assert html.count('<svg class="spark"') == len(group_rows(html))

    def test_filters_narrow(self, web: Browserless) -> None:
        """App, version and environment narrow the groups; the links keep the filters."""
        html = web.page("/?window=7d&app=billing")
        assert [href.split("?")[0] for href, _ in group_rows(html)] == [
            "/group/2/KeyError",
            "/group/-/ValueError",
        ]
        assert all("app=billing" in href and "window=7d" in href for href, _ in group_rows(html))
        staging = group_rows(web.page("/?window=7d&vsn=1.2.4&env=staging"))
        assert [count for _, count in staging] == [8]
        assert group_rows(web.page("/?window=7d&env=nowhere")) == []
        assert "No errors" in web.page("/?window=7d&env=nowhere")

    def test_sort_by_last_seen(self, web: Browserless) -> None:
        """sort=last puts the most recently seen group first."""
        by_count = [href.split("?")[0] for href, _ in group_rows(web.page("/?window=7d"))]
        by_last = [href.split("?")[0] for href, _ in group_rows(web.page("/?window=7d&sort=last"))]
        assert by_count == ["/group/1/RuntimeError", "/group/2/KeyError", "/group/-/ValueError"]
        assert by_last == ["/group/2/KeyError", "/group/1/RuntimeError", "/group/-/ValueError"]

    def test_windows(self, web: Browserless, recorded: Recorded) -> None:
        """A one-hour window holds the KeyErrors of the last hour; since/until name any window."""
        assert [count for _, count in group_rows(web.page("/?window=1h"))] == [2]
        custom = web.page(f"/?since=@{recorded.now - 100 * 60:.0f}&until=@{recorded.now - 65 * 60:.0f}")
        assert [count for _, count in group_rows(custom)] == [1]  # the KeyError 70 minutes ago
        assert "(UTC)" in custom


class TestGroup:
    """A trace group: charts, breakdowns, trace and latest events."""

    def test_a_chained_group(self, web: Browserless, recorded: Recorded) -> None:
        """The RuntimeError: both exceptions of the chain, outermost first, and its events newest first."""
        html = web.page("/group/1/RuntimeError?window=7d")
        cause = html.index("OutOfStock")
        chain = html.index("The above exception was the direct cause of the following exception:")
        assert cause < chain < html.index("raise RuntimeError(f&#34;checkout of {item} failed&#34;) from exc")
        assert '<span class="fn">reserve</span>' in html
        members = [e.id for e in recorded.of("RuntimeError") if e.when_ts >= recorded.now - 7 * DAY]
        assert event_ids(html) == members
        assert "shop 1.2.3" in html and "shop 1.2.4" in html and "staging" in html
        assert "Traceback (most recent call last):" in html  # the plain printout, for a ticket

    def test_breakdown_by_version_and_environment(self, web: Browserless) -> None:
        """Counts per version and per environment add up to the group's count in the window."""
        html = web.page("/group/1/RuntimeError?window=7d")
        by_version = html.split("<h2>By version</h2>", 1)[1].split("</section>", 1)[0]
        assert re.findall(
            r"<td>([^<]+)</td><td class=\"chart-col\">.*?<td class=\"num\">(\d+)</td>", by_version, re.S
        ) == [
            ("shop 1.2.3", "8"),
            ("shop 1.2.4", "8"),
        ]

    def test_a_group_without_a_trace(self, web: Browserless, recorded: Recorded) -> None:
        """An exception recorded without its trace is a group of its own, its message escaped."""
        html = web.page("/group/-/ValueError?window=7d")
        assert "recorded without a stack trace" in html
        assert event_ids(html) == [e.id for e in recorded.of("ValueError")]
        assert MESSAGE_PAYLOAD not in html and "bad &lt;b&gt;input&lt;/b&gt;" in html

    def test_a_caller_trace_group(self, web: Browserless, recorded: Recorded) -> None:
        """A stack recorded without an exception opens too (from its events)."""
        audit = recorded.of(None, -1)
        trace = next(e.stacktrace for e in audit if e.stacktrace)
        assert trace is not None
        html = web.page(f"/group/{trace.id}/-?window=all")
        assert event_ids(html) == [e.id for e in audit if e.stacktrace]
        assert "(no exception)" in html

    @pytest.mark.parametrize("path", ["/group/999/RuntimeError", "/group/-/-", "/group/x/KeyError"])
    def test_unknown_groups(self, web: Browserless, path: str) -> None:
        """A group nobody recorded is a 404 page."""
        response = web.get(path)
        assert response.status_code == 404
        assert "Not found" in response.get_data(as_text=True)


class TestEvent:
    """One event: its data, process, trace, and neighbours in its group."""

    def test_event_whole(self, web: Browserless, recorded: Recorded) -> None:
        """Data, process and trace are all there; recorded markup is text."""
        fault = recorded.of("RuntimeError")[0]
        html = web.page(f"/event/{fault.id}")
        assert f"Event #{fault.id}" in html
        assert "checkout of cake failed" in html
        assert SCRIPT_PAYLOAD not in html and "&lt;script&gt;window.__cw_xss = 1&lt;/script&gt;" in html
        process = fault.process
        for text in (
            process.app.name,
            str(process.pid),
            process.fqdn or "-",
            "1.2.3" if process.app_vsn else "",
        ):
            assert text in html
        assert "OutOfStock" in html

    def test_neighbours(self, web: Browserless, recorded: Recorded) -> None:
        """Older and newer links walk the group's events in time order, end to end."""
        members = recorded.of("RuntimeError")  # newest first
        for position, member in enumerate(members):
            html = web.page(f"/event/{member.id}")
            older = re.search(r'class="older" href="/event/(\d+)"', html)
            newer = re.search(r'class="newer" href="/event/(\d+)"', html)
            expected_older = members[position + 1].id if position + 1 < len(members) else None
            expected_newer = members[position - 1].id if position > 0 else None
            assert (int(older.group(1)) if older else None) == expected_older
            assert (int(newer.group(1)) if newer else None) == expected_newer

    def test_plain_event(self, web: Browserless, recorded: Recorded) -> None:
        """An event without an exception has no group and says it has no trace."""
        order = recorded.of(None, None)[0]
        html = web.page(f"/event/{order.id}")
        assert "This event has no stack trace." in html
        assert ONERROR_PAYLOAD not in html
        assert 'class="neighbours"' not in html

    def test_unknown_event(self, web: Browserless) -> None:
        assert web.get("/event/99999").status_code == 404
        assert web.get("/event/abc").status_code == 404


class TestEvents:
    """The events list: the filters of ``code-wake events``, a page at a time."""

    @pytest.mark.parametrize(
        ("query", "keep"),
        [
            ("where=customer%3Dc1", lambda e: e.data_dict().get("customer") == "c1"),
            (
                "where=customer%3Dc1&where=event%3Dfault",
                lambda e: (
                    e.data_dict() | {} == e.data_dict()
                    and e.data_dict().get("customer") == "c1"
                    and e.data_dict().get("event") == "fault"
                ),
            ),
            ("exc_type=KeyError", lambda e: e.exc_type == "KeyError"),
            ("errors=1", lambda e: e.exc_type is not None),
            (
                "app=shop&env=staging",
                lambda e: (
                    e.process.app.name == "shop"
                    and e.process.environment is not None
                    and e.process.environment.name == "staging"
                ),
            ),
            ("trace=2", lambda e: e.stacktrace is not None and e.stacktrace.id == 2),
            ("window=1h", lambda e: True),
        ],
    )
    def test_filters(self, web: Browserless, recorded: Recorded, query: str, keep: object) -> None:
        """Each filter selects exactly the events it describes, newest first."""
        html = web.page(f"/events?{query}")
        expected = [e.id for e in recorded.newest_first(keep)]  # type: ignore[arg-type]
        if query == "window=1h":
            expected = [e.id for e in recorded.newest_first(lambda e: e.when_ts >= recorded.now - 3600)]
        assert event_ids(html) == expected[:50]

    def test_process_filter(self, web: Browserless, recorded: Recorded) -> None:
        process = recorded.events[0].process
        html = web.page(f"/events?process={process.id}")
        assert event_ids(html) == [e.id for e in recorded.newest_first(lambda e: e.process.id == process.id)]

    def test_pages_cover_everything_once(self, recorded: Recorded) -> None:
        """Following "Older" from the first page lists every event once, newest first."""
        from code_wake.web._app import WebApp
        from code_wake_sql14_store import Sql14Store

        store = Sql14Store(recorded.url)
        web = Browserless(WebApp(store, clock=lambda: recorded.now, page_size=7))
        seen: list[int] = []
        path: str | None = "/events"
        while path is not None:
            html = web.page(path)
            seen.extend(event_ids(html))
            older = re.search(r'class="older" href="([^"]+)"', html)
            path = unescape(older.group(1)) if older else None
        store.close()
        assert seen == [e.id for e in recorded.newest_first()]

    def test_terms_can_be_removed(self, web: Browserless) -> None:
        """Each data term shows as a chip whose link drops it and keeps the rest."""
        html = web.page("/events?where=customer%3Dc1&where=event%3Dfault&app=billing")
        chips = [unescape(h) for h in re.findall(r'class="chip" href="([^"]+)"', html)]
        assert [parse_qs(urlsplit(chip).query) for chip in chips] == [
            {"app": ["billing"], "where": ["event=fault"]},
            {"app": ["billing"], "where": ["customer=c1"]},
        ]

    @pytest.mark.parametrize(
        "query",
        ["where=nokey", "process=x", "trace=0", "window=2y", "since=yesterdayish", "before=x,1", "sort=up"],
    )
    def test_bad_query(self, web: Browserless, query: str) -> None:
        """A value the page cannot read is a 400 page that says which."""
        path = "/?" + query if query.startswith("sort") else "/events?" + query
        response = web.get(path)
        assert response.status_code == 400
        assert query.split("=", maxsplit=1)[0] in response.get_data(as_text=True)


class TestProcessesAndDaily:
    def test_processes(self, web: Browserless, recorded: Recorded) -> None:
        """Every process that recorded, newest start first, linking to its events."""
        html = web.page("/processes")
        ids = sorted({e.process.id for e in recorded.events}, reverse=True)
        assert [int(i) for i in re.findall(r'href="/events\?process=(\d+)" title="its events"', html)] == ids
        billing = web.page("/processes?app=billing").split("<tbody>", 1)[1]
        assert "billing" in billing and "shop" not in billing

    def test_processes_pages(self, recorded: Recorded) -> None:
        from code_wake.web._app import WebApp
        from code_wake_sql14_store import Sql14Store

        store = Sql14Store(recorded.url)
        web = Browserless(WebApp(store, clock=lambda: recorded.now, page_size=2))
        first = web.page("/processes")
        older = re.search(r'class="older" href="([^"]+)"', first)
        assert older is not None
        second = web.page(unescape(older.group(1)))
        assert "« Newest" in second and 'class="older"' not in second
        store.close()

    def test_daily(self, web: Browserless, recorded: Recorded) -> None:
        """Events and errors per day: the totals and a stacked chart with titled bars."""
        html = web.page("/daily?window=30d")
        errors = sum(1 for e in recorded.events if e.exc_type)
        assert f"{len(recorded.events)} events, {errors} with an exception" in html
        titles = re.findall(r'<rect class="bar err"[^>]*><title>([^<]+)</title>', html)
        assert titles and all("error" in t for t in titles)
        assert '<rect class="bar ok"' in html
