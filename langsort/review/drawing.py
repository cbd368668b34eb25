"""Time-axis geometry for timelines: coloured bands and probability lines as percentages of
a recording's duration, so HTML (the review pages, report.html) can draw them with plain
CSS and SVG and every drawing of one recording lines up with the others."""

from __future__ import annotations

import math
from collections.abc import Iterable

from langsort import manifest

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
NO_LANGUAGE = "#c8c8c8"  # a stretch where no language is confident


def colours(labels: list[str]) -> dict[str, str]:
    """One colour per model label, stable for a model (labels come in the model's order)."""
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}


def axis_of(duration_s: float | None, *row_lists: Iterable[dict]) -> float:
    """The seconds a time axis covers: the recording, or its last stretch if that is later."""
    ends = [float(r["end_s"]) for rows in row_lists for r in rows]
    return max([float(duration_s or 0.0), *ends, 1e-9])


def bands(rows: list[dict], axis: float, palette: dict[str, str]) -> list[dict]:
    """Rows with start_s, end_s, language (may be None) -> the same rows with `left`, `width`
    (percent of the axis) and `colour`."""
    return [dict(row, left=100.0 * row["start_s"] / axis, width=100.0 * (row["end_s"] - row["start_s"]) / axis,
                 colour=palette.get(row.get("language"), NO_LANGUAGE)) for row in rows]


def probability_lines(clips: list[dict], labels: list[str], axis: float, palette: dict[str, str]) -> list[dict]:
    """One step line per label over the clips, as SVG polyline points in a 0..100 (time) by
    0..100 (probability, 100 at the bottom) box."""
    lines = []
    for label in labels:
        points = []
        for clip in clips:
            p = clip.get(manifest.prob_column(label))
            if p is None or p != p:  # null or NaN: no step
                continue
            y = 100.0 * (1.0 - float(p))
            points += [(100.0 * clip["start_s"] / axis, y), (100.0 * clip["end_s"] / axis, y)]
        lines.append(dict(label=label, colour=palette[label], points=" ".join(f"{x:.3f},{y:.2f}" for x, y in points)))
    return lines


def ticks(axis: float, most: int = 10) -> list[dict]:
    """Round times along the axis (1, 2, 5, 10, 15, 30 s, 1, 2, 5, 10, 15, 30 min, 1 h...)
    with their position in percent."""
    steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200]
    step = next((s for s in steps if axis / s <= most), steps[-1] * math.ceil(axis / steps[-1] / most))
    return [dict(left=100.0 * t / axis, label=clock(t)) for t in range(0, int(axis) + 1, step)]


def clock(seconds: float | None) -> str:
    """Seconds as a person reads them: 7.5 s -> 0:07.5, 60 s -> 1:00, 4000 s -> 1:06:40."""
    if seconds is None:
        return ""
    whole, tenth = divmod(round(float(seconds) * 10), 10)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}" + (f".{tenth}" if tenth else "")
