"""The web view's pieces that need no store: charts, traces as shown, query strings."""

from __future__ import annotations

import pytest
from werkzeug.datastructures import MultiDict

from code_wake.query import DAY, HOUR
from code_wake.records import StackframeRecord, StacktraceRecord
from code_wake.stack_trace import CAUSE_MARKER
from code_wake.web._charts import bar_chart, bucket_title
from code_wake.web._filters import BadQuery, Query, read_cursor, read_terms, read_window
from code_wake.web._format import ago, is_library, parse_group_key, trace_sections, trace_text, where

T0 = 1_764_460_800  # 2025-11-30 00:00 UTC, a Sunday


class TestCharts:
    def test_hourly_bars_ticks_and_titles(self) -> None:
        """One bar per hour with counts, titled; y ticks at round numbers up to the peak."""
        chart = bar_chart({T0 + 3 * HOUR: [7], T0 + 5 * HOUR: [2]}, T0, T0 + DAY, HOUR, units=("error",))
        assert [bar.title for bar in chart.bars] == [
            "Sun 2025-11-30 03:00-04:00 UTC: 7 errors",
            "Sun 2025-11-30 05:00-06:00 UTC: 2 errors",
        ]
        assert [tick.label for tick in chart.y_ticks] == ["0", "2", "4", "6", "8"]
        assert chart.x_ticks and all(t.label.endswith(":00") or t.label == "Nov 30" for t in chart.x_ticks)
        assert chart.total == 9 and "9 errors" in chart.label
        tall, short = chart.bars
        assert tall.height > short.height and tall.y + tall.height == pytest.approx(short.y + short.height)

    def test_stacked_days(self) -> None:
        """Series stack bottom up, each with its class; the title names every part."""
        chart = bar_chart(
            {T0: [1, 4000]}, T0 - 6 * DAY, T0 + DAY, DAY, kinds=("err", "ok"), units=("error", "other event")
        )
        err, ok = chart.bars
        assert (err.kind, ok.kind) == ("err", "ok")
        assert err.height >= 1.0  # one error among thousands still shows
        assert ok.y < err.y
        assert err.title == "Sun 2025-11-30 (UTC): 1 error, 4,000 other events"
        assert chart.y_ticks[-1].label == "6,000"

    def test_empty_and_sparkline(self) -> None:
        """No counts, no bars; a sparkline has no axes."""
        empty = bar_chart({}, T0, T0 + 3 * DAY, DAY)
        assert (empty.bars, empty.total) == ((), 0)
        spark = bar_chart({T0: [3]}, T0, T0 + DAY, HOUR, axes=False, width=240, height=40)
        assert (spark.x_ticks, spark.y_ticks, spark.axes) == ((), (), False)
        big = bar_chart({T0: [25_000]}, T0, T0 + DAY, HOUR)
        assert big.y_ticks[-1].label == "30k"
        long = bar_chart({T0: [1]}, T0 - 365 * DAY, T0, DAY)
        assert 1 < len(long.x_ticks) <= 13

    def test_bucket_titles(self) -> None:
        assert bucket_title(T0 + 23 * 3600, 3600) == "Sun 2025-11-30 23:00-00:00 UTC"
        assert bucket_title(T0, 86_400) == "Sun 2025-11-30 (UTC)"


def frame(filename: str, lineno: int, function: str | None, src: str | None) -> StackframeRecord:
    return StackframeRecord(filename, lineno, src, function)


CHAINED = StacktraceRecord(
    7,
    b"d" * 32,
    (  # innermost first: the raised exception's frames, its cause's after the marker
        frame("/usr/lib/python3.11/json/decoder.py", 355, "raw_decode", "raise JSONDecodeError()"),
        frame("/srv/shop/shop/api.py", 20, "handle", "data = json.loads(body)"),
        frame(CAUSE_MARKER, 0, None, "KeyError"),
        frame("/srv/shop/.venv/lib/python3.11/site-packages/lib/x.py", 3, "get", "return d[k]"),
        frame("/srv/shop/shop/api.py", 12, "lookup", "return get(d, k)"),
    ),
)


class TestFormat:
    def test_library_frames(self) -> None:
        assert is_library("/usr/lib/python3.11/json/decoder.py")
        assert is_library("/app/.venv/lib/python3.12/site-packages/flask/app.py")
        assert is_library("C:\\Python311\\Lib\\site-packages\\x.py")
        assert is_library("<frozen runpy>")
        assert not is_library("/srv/shop/shop/api.py")

    def test_where_is_the_apps_innermost_frame_of_the_raised_exception(self) -> None:
        assert where(CHAINED) == "/srv/shop/shop/api.py:20 in handle"
        library_only = StacktraceRecord(1, b"x" * 32, (frame("<frozen runpy>", 1, None, None),))
        assert where(library_only) == "<frozen runpy>:1"
        assert where(None) == ""

    def test_sections_read_like_python(self) -> None:
        """Causes first, each with its type line and the sentence Python prints; frames outermost first."""
        cause, raised = trace_sections(CHAINED, "ValueError", "bad body")
        assert [f.function for f in cause.frames] == ["lookup", "get"]
        assert (cause.exc_type, cause.then) == (
            "KeyError",
            "The above exception was the direct cause of the following exception:",
        )
        assert [f.function for f in raised.frames] == ["handle", "raw_decode"]
        assert [f.library for f in raised.frames] == [False, True]
        assert (raised.exc_type, raised.message, raised.then) == ("ValueError", "bad body", None)
        assert raised.frames[0].directory == "/srv/shop/shop/" and raised.frames[0].name == "api.py"
        assert trace_sections(None, "RuntimeError", "m")[0].frames == ()
        assert trace_sections(None, None, None) == []
        text = trace_text(CHAINED, "ValueError", "bad body")
        assert text.startswith("Traceback (most recent call last):") and text.endswith(
            "ValueError: bad body\n"
        )
        assert trace_text(None, "E", None) == "E\n"

    def test_sections_carry_the_causes_messages(self) -> None:
        """With the event's exc_chain, each cause's section has its message, as Python prints it."""
        cause, _ = trace_sections(CHAINED, "ValueError", "bad body", (("KeyError", "'sku'"),))
        assert (cause.exc_type, cause.message) == ("KeyError", "'sku'")
        assert "KeyError: 'sku'\n\nThe above exception" in trace_text(
            CHAINED, "ValueError", "bad body", (("KeyError", "'sku'"),)
        )
        mismatched, _ = trace_sections(CHAINED, "ValueError", "bad body", (("OSError", "x"),))
        assert mismatched.message is None

    def test_ago(self) -> None:
        assert ago(100, 100) == "just now"
        assert ago(100, 100 + 59 * 60) == "59 min ago"
        assert ago(0, 3 * 3600 + 5) == "3 h ago"
        assert ago(0, 3 * 86_400) == "3 d ago"
        assert ago(10, 0) == "in the future"

    @pytest.mark.parametrize(
        ("trace", "exc", "key"),
        [
            ("7", "KeyError", ("KeyError", 7)),
            ("-", "KeyError", ("KeyError", None)),
            ("7", "-", (None, 7)),
            ("-", "-", None),
            ("0", "E", None),
            ("x", "E", None),
        ],
    )
    def test_group_keys(self, trace: str, exc: str, key: object) -> None:
        assert parse_group_key(trace, exc) == key


class TestQueryStrings:
    def test_windows(self) -> None:
        now = 1_000_000.0
        assert read_window(MultiDict(), now, "7d").since == now - 7 * DAY
        assert read_window(MultiDict({"window": "all"}), now, "7d").since is None
        assert read_window(MultiDict({"window": "custom"}), now, "24h").name == "24h"
        custom = read_window(MultiDict({"since": "2h", "until": "@999000"}), now, "7d")
        assert (custom.since, custom.until, custom.name, custom.end) == (
            now - 7200,
            999_000.0,
            "custom",
            999_000.0,
        )
        assert custom.label.endswith("(UTC)")
        assert read_window(MultiDict({"until": "1h"}), now, "7d").label.startswith("the beginning - ")
        assert read_window(MultiDict({"window": "7d"}), now, "24h").label == "the last 7 days"
        with pytest.raises(BadQuery, match="window"):
            read_window(MultiDict({"window": "1y"}), now, "7d")

    def test_chart_ranges(self) -> None:
        now = 10 * DAY + 1234.0
        day = read_window(MultiDict({"window": "24h"}), now, "7d")
        assert day.chart_range(None) == (now - DAY, now, HOUR)
        week = read_window(MultiDict({"window": "7d"}), now, "7d")
        assert week.chart_range(None)[2] == DAY
        whole = read_window(MultiDict({"window": "all"}), now, "7d")
        start, end, span = whole.chart_range(now - 1000)
        assert (end, span) == (now, HOUR) and start <= now - DAY

    def test_terms_and_cursors(self) -> None:
        assert read_terms(MultiDict([("where", "a=b=c"), ("where", ""), ("where", "k=")])) == (
            ("a", "b=c"),
            ("k", ""),
        )
        assert read_cursor(MultiDict({"before": "12.5,7"})) == (12.5, 7)
        for bad in ("12.5", "x,1", "nan,3", "1,0"):
            with pytest.raises(BadQuery, match="before"):
                read_cursor(MultiDict({"before": bad}))

    def test_query(self) -> None:
        q = Query([("app", "shop"), ("where", "a=1"), ("where", "b=2"), ("empty", "")])
        assert q.string() == "?app=shop&where=a%3D1&where=b%3D2"
        assert q.set(app=None).string() == "?where=a%3D1&where=b%3D2"
        assert q.set({"window": "7d"}).get("window") == "7d"
        assert q.without("where", "a=1").getlist("where") == ["b=2"]
        assert q.only("app").pairs == (("app", "shop"),)
        assert not Query() and Query().string() == ""
