"""Bar charts of the dashboard's series as inline SVG geometry, computed on
the server: no chart library, no CDN, nothing to load for a console on a
closed network."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

WIDTH, HEIGHT = 720, 200
LEFT, BOTTOM, TOP = 40, 20, 10  # room for the axis labels

LABEL_FORMATS = {"minute": "%H:%M", "hour": "%H:%M", "day": "%m-%d"}


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    value: int
    title: str


@dataclass(frozen=True)
class Chart:
    name: str
    width: int
    height: int
    bars: list[Bar]
    peak: int
    axis_y: float  # the baseline
    left: int
    labels: list[tuple[float, str]]  # (x, text) under the axis

    @property
    def total(self) -> int:
        return sum(bar.value for bar in self.bars)


def bar_chart(series: list[dict], field: str, bucket: str) -> Chart:
    """One bar per point of ``series`` for its ``field`` ("requests" or "errors")."""
    plot_width, plot_height = WIDTH - LEFT, HEIGHT - BOTTOM - TOP
    peak = max((point[field] for point in series), default=0)
    slot = plot_width / max(len(series), 1)
    gap = min(2.0, slot * 0.2)
    fmt = LABEL_FORMATS.get(bucket, "%m-%d %H:%M")
    bars, labels = [], []
    every = max(1, len(series) // 6)  # about six labels, whatever the bucket count
    for i, point in enumerate(series):
        moment = datetime.fromisoformat(point["t"])
        height = plot_height * point[field] / peak if peak else 0.0
        x = LEFT + i * slot
        bars.append(
            Bar(
                x=round(x + gap / 2, 2),
                y=round(TOP + plot_height - height, 2),
                width=round(slot - gap, 2),
                height=round(height, 2),
                value=point[field],
                title=f"{moment:%Y-%m-%d %H:%M} UTC: {point[field]} {field}",
            )
        )
        if i % every == 0:
            labels.append((round(x + slot / 2, 2), moment.strftime(fmt)))
    return Chart(field, WIDTH, HEIGHT, bars, peak, TOP + plot_height, LEFT, labels)
