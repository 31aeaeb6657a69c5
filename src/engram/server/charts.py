"""Small SVG charts computed on the server (nothing loads from the internet): coordinates and
labels for Jinja templates to draw. Pure."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#9d755d")
WIDTH, HEIGHT, PAD = 560, 180, 28
ARROW = 10  # arrowhead length in the transitions picture, whatever the line's width


@dataclass(frozen=True, slots=True)
class Line:
    name: str
    color: str
    points: str  # "x,y x,y …" for <polyline>
    last: int


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    color: str
    title: str


def lines(series: dict[str, list[int]]) -> tuple[list[Line], int]:
    """One polyline per series over the same days; and the y axis maximum. A single day is
    drawn as a level line across the chart (one point would draw nothing)."""
    top = max((max(v) for v in series.values() if v), default=0) or 1
    out = []
    for i, (name, values) in enumerate(series.items()):
        drawn = values * 2 if len(values) == 1 else values
        step = (WIDTH - 2 * PAD) / max(len(drawn) - 1, 1)
        points = " ".join(f"{PAD + j * step:.1f},{_y(v, top):.1f}" for j, v in enumerate(drawn))
        out.append(Line(name, PALETTE[i % len(PALETTE)], points, values[-1] if values else 0))
    return out, top


def bars(days: list[str], groups: dict[str, dict[str, int]]) -> tuple[list[Bar], int]:
    """Side-by-side bars per day, one colour per group (e.g. promotions, expiries)."""
    top = max((v for g in groups.values() for v in g.values()), default=0) or 1
    slot = (WIDTH - 2 * PAD) / max(len(days), 1)
    width = min(max(slot / (len(groups) + 1), 1.0), 36.0)
    out = []
    for d, day in enumerate(days):
        for g, (name, values) in enumerate(groups.items()):
            value = values.get(day, 0)
            if value:
                y = _y(value, top)
                out.append(Bar(PAD + d * slot + g * width, y, width, HEIGHT - PAD - y,
                               PALETTE[g % len(PALETTE)], f"{day}: {value} {name}"))
    return out, top


def _y(value: float, top: float) -> float:
    return HEIGHT - PAD - (HEIGHT - 2 * PAD) * value / top


# Where each state sits in the transitions picture.
NODES = {"new": (60, 110), "short_term": (210, 110), "long_term": (360, 60),
         "persistent": (510, 60), "expired": (360, 180), "superseded": (510, 180),
         "forgotten": (510, 120)}


@dataclass(frozen=True, slots=True)
class Edge:
    x1: float
    y1: float
    x2: float
    y2: float
    width: float
    count: int
    label_x: float
    label_y: float
    title: str


def transitions(counts: Counter[tuple[str, str]]) -> list[Edge]:
    """Arrows between tier states, as thick as the log of how often each happened."""
    out = []
    for (a, b), count in sorted(counts.items()):
        if a not in NODES or b not in NODES or a == b:
            continue
        (x1, y1), (x2, y2) = NODES[a], NODES[b]
        dx, dy = x2 - x1, y2 - y1
        norm = math.hypot(dx, dy) or 1
        # stop short of the boxes so arrowheads show
        sx, sy = x1 + dx / norm * 48, y1 + dy / norm * 16
        ex, ey = x2 - dx / norm * 48, y2 - dy / norm * 16
        width = 1.5 + 2 * math.log10(count + 1)
        # the count sits beside the line a third of the way along, clear of the arrowhead
        # (ARROW long at the end) and of the line's own width, on its upper side
        lx, ly = sx + (ex - sx) / 3, sy + (ey - sy) / 3
        nx, ny = dy / norm, -dx / norm
        if ny > 0:
            nx, ny = -nx, -ny
        gap = width / 2 + 5
        out.append(Edge(sx, sy, ex, ey, width, count, lx + nx * gap, ly + ny * gap,
                        f"{a} → {b}: {count}"))
    return out
