"""Stacked SVG charts for the analytics page: memories per tier as stacked areas over the days,
and tier transitions per day as stacked bars, both as `<path>` outlines computed here (nothing
loads from the internet). Pure."""

from __future__ import annotations

from dataclasses import dataclass

from engram.server.charts import HEIGHT, PAD, PALETTE, WIDTH


@dataclass(frozen=True, slots=True)
class Band:
    """One series of a stacked chart: its outline (`d` of a path), colour and total."""

    name: str
    color: str
    d: str
    total: int


def stacked_areas(series: dict[str, list[int]]) -> tuple[list[Band], int]:
    """Each series stacked on the ones before it, one band per series over the same days;
    and the y axis maximum (the largest day's total)."""
    length = max((len(v) for v in series.values()), default=0)
    totals = [sum(v[i] for v in series.values()) for i in range(length)]
    top = max(totals, default=0) or 1
    xs = _xs(length)
    below = [0] * length
    bands = []
    for i, (name, values) in enumerate(series.items()):
        above = [b + v for b, v in zip(below, values, strict=True)]
        upper = [f"{x:.1f},{_y(v, top):.1f}" for x, v in zip(xs, _widen(above), strict=True)]
        lower = [f"{x:.1f},{_y(v, top):.1f}"
                 for x, v in reversed(list(zip(xs, _widen(below), strict=True)))]
        bands.append(Band(name, PALETTE[i % len(PALETTE)],
                          "M" + " L".join(upper + lower) + " Z", values[-1] if values else 0))
        below = above
    return bands, top


def stacked_bars(days: list[str], moves: dict[str, dict[str, int]]) -> tuple[list[Band], int]:
    """A bar per day, split by kind of move (`moves[move][day]`); one path per move."""
    totals = [sum(m.get(d, 0) for m in moves.values()) for d in days]
    top = max(totals, default=0) or 1
    slot = (WIDTH - 2 * PAD) / max(len(days), 1)
    width = max(min(slot * 0.7, 40.0), 1.0)
    below = [0] * len(days)
    bands = []
    for i, (move, per_day) in enumerate(sorted(moves.items())):
        rects = []
        for d, day in enumerate(days):
            value = per_day.get(day, 0)
            if value:
                x, y = PAD + d * slot + (slot - width) / 2, _y(below[d] + value, top)
                height = _y(below[d], top) - y
                rects.append(f"M{x:.1f},{y:.1f} h{width:.1f} v{height:.1f} h{-width:.1f} Z")
                below[d] += value
        if rects:
            bands.append(Band(move, PALETTE[i % len(PALETTE)], " ".join(rects),
                              sum(per_day.values())))
    return bands, top


def _xs(length: int) -> list[float]:
    """x of each day; a single day spans the whole width (an area needs two points)."""
    if length <= 1:
        return [float(PAD), float(WIDTH - PAD)]
    step = (WIDTH - 2 * PAD) / (length - 1)
    return [PAD + i * step for i in range(length)]


def _widen(values: list[int]) -> list[int]:
    return values * 2 if len(values) == 1 else values


def _y(value: float, top: float) -> float:
    return HEIGHT - PAD - (HEIGHT - 2 * PAD) * value / top
