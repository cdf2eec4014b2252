"""A small inline-SVG line chart (no library, no script): pending items over time."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

WIDTH = 640
HEIGHT = 220
PAD_LEFT = 56
PAD_RIGHT = 16
PAD_TOP = 16
PAD_BOTTOM = 32


@dataclass(frozen=True)
class Chart:
    svg: str
    summary: str


def nice_ceiling(value: float) -> int:
    """The smallest of 1, 2, 4, 6, 8 × 10^n at or above ``value``, at least 2 (so the
    middle grid line is a whole number too)."""
    if value <= 2:
        return 2
    exp = 10 ** math.floor(math.log10(value))
    for m in (1, 2, 4, 6, 8, 10):
        if m * exp >= value:
            return int(m * exp)
    return int(10 * exp)  # pragma: no cover


def _fmt(n: float) -> str:
    return f"{n:,.0f}"


def _clock(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, tz=UTC).strftime("%H:%M")


def line_chart(series: list[tuple[int, int]], *, title: str, chart_id: str = "chart") -> Chart:
    """An accessible SVG chart of ``(unix microseconds, value)`` points, oldest first."""
    if not series:
        series = [(0, 0)]
    t0, t1 = series[0][0], series[-1][0]
    span = max(1, t1 - t0)
    top = nice_ceiling(max(v for _, v in series))
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM

    def x(t: int) -> float:
        return PAD_LEFT + (t - t0) / span * plot_w

    def y(v: float) -> float:
        return PAD_TOP + plot_h - v / top * plot_h

    points = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in series)
    base = y(0)
    area = (
        f"M{x(series[0][0]):.1f},{base:.1f} L"
        + " L".join(f"{x(t):.1f},{y(v):.1f}" for t, v in series)
        + f" L{x(series[-1][0]):.1f},{base:.1f} Z"
    )
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
    ]
    values = [v for _, v in series]
    first, last, peak = values[0], values[-1], max(values)
    summary = (
        f"{_fmt(first)} at {_clock(t0)} UTC, {_fmt(last)} now ({_clock(t1)} UTC); "
        f"peak {_fmt(peak)}."
    )
    parts.append(f'<desc id="{chart_id}-desc">{escape(summary)}</desc>')
    for frac in (0.0, 0.5, 1.0):
        gy = y(top * frac)
        parts.append(
            f'<line class="grid" x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" '
            f'y1="{gy:.1f}" y2="{gy:.1f}"/>'
        )
        parts.append(
            f'<text class="axis" x="{PAD_LEFT - 8}" y="{gy + 4:.1f}" '
            f'text-anchor="end">{_fmt(top * frac)}</text>'
        )
    for frac, anchor in ((0.0, "start"), (0.5, "middle"), (1.0, "end")):
        t = int(t0 + span * frac)
        parts.append(
            f'<text class="axis" x="{x(t):.1f}" y="{HEIGHT - 10}" '
            f'text-anchor="{anchor}">{_clock(t)}</text>'
        )
    parts.append(f'<path class="area" d="{area}"/>')
    parts.append(f'<polyline class="line" points="{points}"/>')
    lx, ly = x(series[-1][0]), y(last)
    parts.append(f'<circle class="dot" cx="{lx:.1f}" cy="{ly:.1f}" r="4"/>')
    parts.append("</svg>")
    return Chart("".join(parts), summary)
