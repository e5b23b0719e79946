"""Charts as inline SVG, laid out here and drawn by templates/portal/_chart_*.html.

No JavaScript library and no CDN: the server computes every rectangle, the template escapes every
label, and each chart carries a <title>/<desc> plus per-column titles for screen readers and hover.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    color: str


@dataclass(frozen=True)
class Segment:
    x: float
    y: float
    width: float
    height: float
    color: str


@dataclass(frozen=True)
class Column:
    x: float
    width: float
    title: str
    segments: list[Segment]


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class XLabel:
    x: float
    text: str


@dataclass(frozen=True)
class StackedBars:
    title: str
    description: str
    width: int
    height: int
    left: int
    top: int
    bottom: float
    right: int
    columns: list[Column]
    ticks: list[Tick]
    x_labels: list[XLabel]
    legend: list[Series]

    @property
    def plot_height(self) -> float:
        return self.bottom - self.top

    @property
    def tick_label_x(self) -> int:
        return self.left - 6

    @property
    def x_label_y(self) -> int:
        return self.height - 6


@dataclass(frozen=True)
class Row:
    """One column's data: its short axis label (may be blank), its full name, a value per series."""

    label: str
    name: str
    values: Mapping[str, int]


def nice_scale(maximum: int, *, steps: int = 4) -> tuple[int, int]:
    """(top, step): a round axis top at or above `maximum`, split into about `steps` steps of 1, 2 or 5 x 10^n."""
    if maximum <= 0:
        return steps, 1
    raw = maximum / steps
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    step = max(1, int(step))
    return step * math.ceil(maximum / step), step


def stacked_bars(
    *,
    title: str,
    description: str,
    rows: Sequence[Row],
    series: Sequence[Series],
    width: int = 960,
    height: int = 240,
) -> StackedBars:
    """A stacked bar chart: one column per row, one segment per series with a value, bottom up."""
    left, right, top, bottom_margin = 44, 8, 10, 24
    bottom = height - bottom_margin
    plot_width, plot_height = width - left - right, bottom - top
    totals = [sum(row.values.get(s.key, 0) for s in series) for row in rows]
    axis_top, step = nice_scale(max(totals, default=0))
    slot = plot_width / max(1, len(rows))
    gap = min(2.0, slot * 0.2)
    columns = []
    for n, row in enumerate(rows):
        x = left + n * slot
        y = float(bottom)
        segments = []
        for s in series:
            value = row.values.get(s.key, 0)
            if value <= 0:
                continue
            h = plot_height * value / axis_top
            y -= h
            segments.append(
                Segment(
                    x=round(x + gap / 2, 2),
                    y=round(y, 2),
                    width=round(slot - gap, 2),
                    height=round(h, 2),
                    color=s.color,
                )
            )
        parts = [f"{row.values[s.key]} {s.label.lower()}" for s in series if row.values.get(s.key)]
        columns.append(
            Column(
                x=round(x, 2),
                width=round(slot, 2),
                title=f"{row.name}: {', '.join(parts) or 'none'}",
                segments=segments,
            )
        )
    ticks = [
        Tick(y=round(bottom - plot_height * value / axis_top, 2), label=f"{value:,}")
        for value in range(0, axis_top + 1, step)
    ]
    x_labels = [XLabel(x=round(left + (n + 0.5) * slot, 2), text=row.label) for n, row in enumerate(rows) if row.label]
    return StackedBars(
        title=title,
        description=description,
        width=width,
        height=height,
        left=left,
        top=top,
        bottom=bottom,
        right=width - right,
        columns=columns,
        ticks=ticks,
        x_labels=x_labels,
        legend=list(series),
    )


BAR_WIDTH = 160


def bar_widths(values: Sequence[int]) -> list[float]:
    """Pixel widths (out of BAR_WIDTH) of horizontal bars for these values, the largest full width."""
    largest = max(values, default=0)
    return [round(BAR_WIDTH * value / largest, 2) if largest else 0.0 for value in values]
