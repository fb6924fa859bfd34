"""Bar charts of counts over time, laid out on the server and drawn as SVG by the templates.

A chart is geometry only: bars (each with the hover title a browser shows),
axis ticks with their labels, and the plot area. `bar_chart` computes it
from counts per bucket; templates/_macros.html draws it. Nothing runs in
the browser, so the charts need no script and obey the page's
Content-Security-Policy.
"""

from __future__ import annotations

import datetime
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from code_wake.query import HOUR, BucketCount

__all__ = ["Bar", "Chart", "Tick", "bar_chart", "bucket_title", "svg"]

_HOUR_STEPS = (1, 2, 3, 6, 12, 24, 48)
_DAY_STEPS = (1, 2, 7, 14, 28, 56, 91, 182, 364)


@dataclass(frozen=True)
class Bar:
    """One bar (or one part of a stacked bar), and the hit area of its bucket for hovering."""

    x: float
    y: float
    width: float
    height: float
    kind: str
    """CSS class: which series the bar belongs to."""
    title: str
    """What a browser shows on hover: the bucket's time and its counts."""


@dataclass(frozen=True)
class Tick:
    """An axis tick: where (x or y, in chart units) and its label."""

    at: float
    label: str


@dataclass(frozen=True)
class Chart:
    """A bar chart's geometry, in the units of its SVG viewBox (`width` x `height`)."""

    width: int
    height: int
    left: float
    top: float
    right: float
    bottom: float
    bars: tuple[Bar, ...]
    hits: tuple[Bar, ...]
    """Per bucket with counts, a transparent full-height area carrying the same title."""
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    axes: bool
    label: str
    """A one-line summary for screen readers (aria-label)."""
    total: int


def _when(ts: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)


@functools.lru_cache(maxsize=4096)
def bucket_title(bucket_ts: int, span: int) -> str:
    """``Fri 2026-11-28 08:00-09:00 UTC`` for an hour, ``Fri 2026-11-28 (UTC)`` for a day."""
    start = _when(bucket_ts)
    if span == HOUR:
        return f"{start:%a %Y-%m-%d %H:00}-{_when(bucket_ts + span):%H:00} UTC"
    return f"{start:%a %Y-%m-%d} (UTC)"


def _plural(count: int, unit: str) -> str:
    return f"{count:,} {unit}" + ("" if count == 1 else "s")


def _nice_step(peak: int, ticks: int = 4) -> int:
    """A round step (1, 2 or 5 times a power of ten) so that `peak` needs at most `ticks` steps."""
    rough = max(peak, 1) / ticks
    power = 10 ** max(0, math.floor(math.log10(rough))) if rough >= 1 else 1
    return next((m * power for m in (1, 2, 5, 10) if m * power >= rough), 10 * power)


def _compact(value: int) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 10_000:
        return f"{value / 1000:g}k"
    return f"{value:,}"


def bar_chart(
    counts: Mapping[int, Sequence[int]],
    start: float,
    end: float,
    span: int,
    *,
    kinds: Sequence[str] = ("bar",),
    units: Sequence[str] = ("event",),
    width: int = 960,
    height: int = 180,
    axes: bool = True,
) -> Chart:
    """Bars for the buckets of `span` seconds from `start` to `end`: `counts` maps a bucket's
    start to its counts, one per series (stacked bottom up, drawn with the CSS class of
    `kinds` and named by `units` in the hover titles)."""
    first = BucketCount.bucket_of(start, span)
    last = BucketCount.bucket_of(max(start, end - 1e-6), span)
    buckets = list(range(first, last + span, span))
    left, right, top, bottom = (44.0, 8.0, 8.0, 22.0) if axes else (0.0, 0.0, 1.0, 0.0)
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = {b: sum(counts.get(b, ())) for b in buckets}
    peak = max(totals.values(), default=0)
    step = _nice_step(peak)
    ceiling = step * max(1, math.ceil(peak / step)) if axes else max(peak, 1)
    slot = plot_w / len(buckets)
    gap = min(2.0, slot * 0.2) if slot > 3 else 0.0
    bars: list[Bar] = []
    hits: list[Bar] = []
    for index, bucket in enumerate(buckets):
        values = counts.get(bucket, ())
        if not totals[bucket]:
            continue
        x = left + index * slot
        title = _title(bucket, span, values, units)
        if axes:
            # A full-height area to hover: a one-event bar among thousands is a pixel high.
            hits.append(Bar(_r(x), _r(top), _r(slot), _r(plot_h), "hit", title))
        base = top + plot_h
        for value, kind in zip(values, kinds, strict=False):
            if not value:
                continue
            # At least a pixel high, so that a single event among thousands still shows.
            h = max(plot_h * value / ceiling, 1.0)
            base -= h
            bars.append(Bar(_r(x + gap / 2), _r(base), _r(max(slot - gap, 0.5)), _r(h), kind, title))
    total = sum(totals.values())
    return Chart(
        width=width,
        height=height,
        left=left,
        top=top,
        right=width - right,
        bottom=top + plot_h,
        bars=tuple(bars),
        hits=tuple(hits),
        x_ticks=_x_ticks(buckets, span, left, slot, plot_w) if axes else (),
        y_ticks=tuple(
            Tick(_r(top + plot_h - plot_h * v / ceiling), _compact(v)) for v in range(0, ceiling + 1, step)
        )
        if axes
        else (),
        axes=axes,
        label=f"{_plural(total, units[0])} from {bucket_title(first, span)} to {bucket_title(last, span)}",
        total=total,
    )


def _title(bucket: int, span: int, values: Sequence[int], units: Sequence[str]) -> str:
    parts = [_plural(v, unit) for v, unit in zip(values, units, strict=False) if v]
    return f"{bucket_title(bucket, span)}: {', '.join(parts)}"


def _x_ticks(buckets: Sequence[int], span: int, left: float, slot: float, plot_w: float) -> tuple[Tick, ...]:
    """Labels at round times (midnights, round hours), as many as fit, at least 70 units apart."""
    fit = max(1, int(plot_w // 70))
    steps = _HOUR_STEPS if span == HOUR else _DAY_STEPS
    every = next((s for s in steps if len(buckets) / s <= fit), steps[-1])
    ticks = []
    for index, bucket in enumerate(buckets):
        number = bucket // span
        if span == HOUR:
            if number % every:
                continue
            when = _when(bucket)
            label = f"{when:%b %d}" if when.hour == 0 else f"{when:%H:00}"
        else:
            # Weekly and longer steps fall on Mondays (epoch day 4 was a Monday).
            if (number - 4 if every % 7 == 0 else number) % every:
                continue
            label = f"{_when(bucket):%b %d}"
        ticks.append(Tick(_r(left + index * slot + slot / 2), label))
    return tuple(ticks)


def _r(value: float) -> float:
    return round(value, 2)


def svg(chart: Chart, css: str = "chart") -> Markup:
    """The chart as an inline SVG element (built here rather than in a template: a page of
    errors draws a hundred of them). Every text in it is escaped."""
    c = chart
    parts = [
        f'<svg class="{escape(css)}" viewBox="0 0 {c.width} {c.height}" role="img" '
        f'aria-label="{escape(c.label)}" xmlns="http://www.w3.org/2000/svg">'
    ]
    if c.axes:
        parts.append('<g class="grid">')
        parts.extend(f'<line x1="{c.left}" x2="{c.right}" y1="{t.at}" y2="{t.at}"/>' for t in c.y_ticks)
        parts.append('</g><g class="ylabels">')
        parts.extend(f'<text x="{c.left - 6}" y="{_r(t.at + 4)}">{escape(t.label)}</text>' for t in c.y_ticks)
        parts.append('</g><g class="xlabels">')
        parts.extend(
            f'<line x1="{t.at}" x2="{t.at}" y1="{c.bottom}" y2="{_r(c.bottom + 4)}"/>'
            f'<text x="{t.at}" y="{c.height - 5}">{escape(t.label)}</text>'
            for t in c.x_ticks
        )
        parts.append(f'</g><line class="axis" x1="{c.left}" x2="{c.right}" y1="{c.bottom}" y2="{c.bottom}"/>')
    else:
        base = c.height - 0.5
        parts.append(f'<line class="baseline" x1="0" x2="{c.width}" y1="{base}" y2="{base}"/>')
    for group in (c.bars, c.hits):
        parts.extend(
            f'<rect class="{"hit" if b.kind == "hit" else "bar " + b.kind}" x="{b.x}" y="{b.y}" '
            f'width="{b.width}" height="{b.height}"><title>{escape(b.title)}</title></rect>'
            for b in group
        )
    parts.append("</svg>")
    # Markup: the numbers are ours, and every text in it went through escape() above.
    return Markup("".join(parts))  # noqa: S704
