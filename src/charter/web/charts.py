"""Charts as inline SVG, drawn on the server: no scripts, no external fetches, readable when printed.

Every function returns markup (`markupsafe.Markup`) ready to put in a page; all text is escaped.
Colours and line styles come from classes styled by the site's stylesheet (the content security
policy allows no inline styles), with SVG presentation attributes only where the drawing needs them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape

Format = Callable[[float], str]


def number(value: float) -> str:
    """Four significant digits, no exponent for everyday magnitudes."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    if 1e-3 <= abs(value) < 1e6:
        return f"{value:.4g}"
    return f"{value:.3g}"


def percent(value: float) -> str:
    return f"{value * 100:.1f} %"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1, 2, 2.5 or 5 × a power of ten apart)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0]
    if high <= low:
        return [low]
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


@dataclass(frozen=True)
class Line:
    """A series: (time, value, tooltip) points, drawn with `css` (baseline, candidate, …)."""

    name: str
    css: str
    points: Sequence[tuple[datetime, float, str]]


@dataclass(frozen=True)
class Step:
    """A bound held over an interval (drawn as a dashed step line)."""

    start: datetime
    end: datetime
    value: float
    tooltip: str


@dataclass(frozen=True)
class Band:
    """A labelled interval of the x axis (a rollout stage)."""

    label: str
    start: datetime
    end: datetime


def time_series(
    lines: Sequence[Line],
    *,
    start: datetime,
    end: datetime,
    steps: Sequence[Step] = (),
    bands: Sequence[Band] = (),
    label: str,
    fmt: Format = number,
    width: int = 760,
    height: int = 260,
) -> Markup:
    """Lines over time with an optional bound (step line) and labelled background bands."""
    left, right, top, bottom = 58, 12, 26, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for line in lines for _, v, _ in line.points] + [s.value for s in steps]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    pad = (high - low) * 0.08 or abs(high) * 0.05 or 1.0
    low, high = low - pad, high + pad
    span = max((end - start).total_seconds(), 1.0)

    def x(when: datetime) -> float:
        return left + plot_w * min(max((when - start).total_seconds() / span, 0.0), 1.0)

    def y(value: float) -> float:
        return top + plot_h * (1 - (value - low) / (high - low))

    out = [_open(width, height, label)]
    for i, band in enumerate(bands):
        x0, x1 = x(band.start), x(band.end)
        out.append(
            f'<rect class="band band-{i % 2}" x="{x0:.1f}" y="{top}" width="{max(x1 - x0, 0.5):.1f}" '
            f'height="{plot_h}"><title>{escape(band.label)}</title></rect>'
        )
        if x1 - x0 >= 6 * len(band.label):  # a label only where it fits
            out.append(f'<text class="band-label" x="{x0 + 3:.1f}" y="{top - 6}">{escape(band.label)}</text>')
    for tick in nice_ticks(low, high):
        ty = y(tick)
        out.append(f'<line class="grid" x1="{left}" x2="{left + plot_w}" y1="{ty:.1f}" y2="{ty:.1f}"/>')
        out.append(
            f'<text class="tick" x="{left - 6}" y="{ty + 4:.1f}" text-anchor="end">{escape(fmt(tick))}</text>'
        )
    out.append(
        f'<line class="axis" x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}"/>'
    )
    for when, anchor in ((start, "start"), (end, "end")):
        out.append(
            f'<text class="tick" x="{x(when):.1f}" y="{height - 10}" text-anchor="{anchor}">'
            f"{escape(when.strftime('%Y-%m-%d %H:%M'))}</text>"
        )
    if steps:
        path = " ".join(f"M{x(s.start):.1f},{y(s.value):.1f} H{x(s.end):.1f}" for s in steps)
        out.append(f'<path class="bound" d="{path}"/>')
        for s in steps:
            out.append(
                f'<line class="hit" x1="{x(s.start):.1f}" x2="{x(s.end):.1f}" y1="{y(s.value):.1f}" '
                f'y2="{y(s.value):.1f}"><title>{escape(s.tooltip)}</title></line>'
            )
    for line in lines:
        if not line.points:
            continue
        coords = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v, _ in line.points)
        out.append(f'<polyline class="line {escape(line.css)}" points="{coords}"/>')
        for t, v, tip in line.points:
            out.append(
                f'<circle class="dot {escape(line.css)}" cx="{x(t):.1f}" cy="{y(v):.1f}" r="2.5">'
                f"<title>{escape(tip)}</title></circle>"
            )
    legend = [(line.name, line.css) for line in lines] + ([("bound", "bound")] if steps else [])
    lx = left + plot_w
    for name, css in reversed(legend):
        lx -= 12 + 7 * len(name) + 18
        out.append(f'<line class="legend {escape(css)}" x1="{lx}" x2="{lx + 14}" y1="10" y2="10"/>')
        out.append(f'<text class="legend-label" x="{lx + 18}" y="14">{escape(name)}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def bars(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    label: str,
    fmt: Format = number,
    width: int = 520,
    row: int = 18,
) -> Markup:
    """Horizontal bars, one per label (categories, top values, histogram bins)."""
    left, right = 170, 70
    height = row * len(labels) + 8
    top = max(values, default=0.0) or 1.0
    out = [_open(width, height, label)]
    for i, (name, value) in enumerate(zip(labels, values, strict=True)):
        y0 = 4 + i * row
        w = (width - left - right) * max(value, 0.0) / top
        text = escape(name if len(name) <= 26 else name[:25] + "…")
        out.append(f'<text class="tick" x="{left - 6}" y="{y0 + row - 6}" text-anchor="end">{text}</text>')
        out.append(
            f'<rect class="bar" x="{left}" y="{y0 + 2}" width="{max(w, 0.5):.1f}" height="{row - 5}">'
            f"<title>{escape(name)}: {escape(fmt(value))}</title></rect>"
        )
        out.append(
            f'<text class="tick" x="{left + w + 4:.1f}" y="{y0 + row - 6}">{escape(fmt(value))}</text>'
        )
    out.append("</svg>")
    return Markup("".join(out))


def paired_bars(
    labels: Sequence[str],
    first: Sequence[float],
    second: Sequence[float],
    *,
    names: tuple[str, str],
    label: str,
    fmt: Format = percent,
    width: int = 520,
    row: int = 26,
) -> Markup:
    """Two bars per label (training against production shares in a drift report)."""
    left, right = 170, 70
    height = row * len(labels) + 30
    top = max([*first, *second], default=0.0) or 1.0
    out = [_open(width, height, label)]
    for k, (name, css) in enumerate(((names[0], "first"), (names[1], "second"))):
        out.append(f'<rect class="bar {css}" x="{left + k * 120}" y="4" width="12" height="10"/>')
        out.append(f'<text class="legend-label" x="{left + k * 120 + 16}" y="13">{escape(name)}</text>')
    for i, name in enumerate(labels):
        y0 = 24 + i * row
        text = escape(name if len(name) <= 26 else name[:25] + "…")
        out.append(
            f'<text class="tick" x="{left - 6}" y="{y0 + row / 2 + 3:.1f}" text-anchor="end">{text}</text>'
        )
        for k, (value, css) in enumerate(((first[i], "first"), (second[i], "second"))):
            w = (width - left - right) * max(value, 0.0) / top
            yy = y0 + 2 + k * (row / 2 - 2)
            out.append(
                f'<rect class="bar {css}" x="{left}" y="{yy:.1f}" width="{max(w, 0.5):.1f}" '
                f'height="{row / 2 - 3:.1f}"><title>{escape(name)} ({escape(names[k])}): {escape(fmt(value))}'
                f"</title></rect>"
            )
            ty = yy + row / 2 - 4
            out.append(f'<text class="tick" x="{left + w + 4:.1f}" y="{ty:.1f}">{escape(fmt(value))}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def split_bar(candidate: float, shadow: float = 0.0, *, width: int = 240, height: int = 16) -> Markup:
    """The traffic split: the candidate's share of requests against the baseline's."""
    share = min(max(candidate, 0.0), 100.0) / 100
    label = f"candidate {candidate:g} %, baseline {100 - candidate:g} %"
    if shadow:
        label += f", shadow sample {shadow:g}"
    out = [_open(width, height, label)]
    out.append(f'<rect class="split baseline" x="0" y="0" width="{width}" height="{height}"/>')
    if share:
        out.append(
            f'<rect class="split candidate" x="0" y="0" width="{width * share:.1f}" height="{height}"/>'
        )
    out.append(f"<title>{escape(label)}</title></svg>")
    return Markup("".join(out))


def pipeline(stages: Sequence[tuple[str, str]], *, width: int = 760, height: int = 56) -> Markup:
    """A track's stages left to right, each with a state class: done, current, failed or pending."""
    count = max(len(stages), 1)
    slot = width / count
    out = [_open(width, height, "stages: " + ", ".join(f"{n} ({s})" for n, s in stages))]
    for i, (name, state) in enumerate(stages):
        cx = slot * i + slot / 2
        if i:
            x0, x1 = cx - slot + 11, cx - 11
            out.append(f'<line class="pipe {escape(state)}" x1="{x0:.1f}" x2="{x1:.1f}" y1="18" y2="18"/>')
        out.append(
            f'<circle class="stage {escape(state)}" cx="{cx:.1f}" cy="18" r="9"><title>{escape(name)}: '
            f"{escape(state)}</title></circle>"
        )
        out.append(
            f'<text class="stage-label" x="{cx:.1f}" y="{height - 8}" text-anchor="middle">'
            f"{escape(name)}</text>"
        )
    out.append("</svg>")
    return Markup("".join(out))


def _open(width: int, height: int, label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(label)}">'
    )
