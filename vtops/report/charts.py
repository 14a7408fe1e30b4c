"""The report's pictures: matplotlib figures as inline SVG, text drawn as paths.

matplotlib because it draws offline with nothing but its own fonts; SVG because a chart of a
few hundred marks stays small and sharp at any zoom and prints well; text as paths so that
a phone without DejaVu Sans shows the same glyphs (Vietnamese included), at about 1 KB per
glyph used, kept once per page. Missing buckets are NaN, which matplotlib leaves as a break
in the line: a gap is never drawn as a drop.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable, Sequence
from datetime import datetime

import matplotlib

matplotlib.use("svg")

from matplotlib import pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

Format = Callable[[float], str]

COLOURS = ("#1f5f99", "#d9822b", "#3a8f4b", "#8e44ad", "#c0392b")
_ID = re.compile(r'id="([^"]+)"')
# matplotlib names a glyph's path after its font and glyph: DejaVuSans-50.
GLYPHS = "DejaVuSans"
_GLYPH = re.compile(r'<path id="(DejaVuSans[^"]*)" d="[^"]*"(?: transform="[^"]*")?/>\s*')
_SIZE = re.compile(r'<svg([^>]*?) width="[^"]*" height="[^"]*"')

plt.rcParams.update(
    {
        "svg.fonttype": "path",
        "font.family": "DejaVu Sans",
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.color": "#e4e4e4",
        "grid.linewidth": 0.6,
    }
)


def _svg(figure: Figure, name: str) -> str:
    """The figure as an <svg> element for inline use: no XML prolog, no fixed size (CSS
    scales it by its viewBox), and ids prefixed with `name` so that several charts in one page
    never share one."""
    buffer = io.StringIO()
    with plt.rc_context({"svg.hashsalt": name}):
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    plt.close(figure)
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    text = _SIZE.sub(r"<svg\1", text, count=1)
    # Glyphs keep their names: one glyph is the same path in every chart (`one_glyph_each`).
    ids = {found for found in _ID.findall(text) if not found.startswith(GLYPHS)}
    for found in sorted(ids, key=len, reverse=True):
        text = text.replace(f'id="{found}"', f'id="{name}-{found}"')
        text = text.replace(f'"#{found}"', f'"#{name}-{found}"')
        text = text.replace(f"url(#{found})", f"url(#{name}-{found})")
    return text.replace("<svg", f'<svg role="img" aria-label="{name}"', 1)


def one_glyph_each(svgs: Sequence[str]) -> list[str]:
    """The charts of one page, in page order, each glyph's path kept only where it first
    appears: ids are page-wide, so later charts draw it from there. About a third of a page
    of charts is glyphs drawn again otherwise."""
    seen: set[str] = set()

    def first_only(match: re.Match[str]) -> str:
        if match.group(1) in seen:
            return ""
        seen.add(match.group(1))
        return match.group(0)

    return [_GLYPH.sub(first_only, svg) for svg in svgs]


def trend(
    name: str,
    buckets: Sequence[datetime],
    series: dict[str, dict[datetime, float | None]],
    value_format: Format,
    references: dict[str, float] | None = None,
    hourly: bool = False,
) -> str:
    """Shares (0–100) over the period's buckets; a bucket without a value is a break in its
    line. `references`: the article's figure for the series of the same name, a dashed line
    in its colour."""
    figure, axes = plt.subplots(figsize=(7.5, 2.8), layout="constrained")
    for colour, (label, values) in zip(COLOURS, series.items(), strict=False):
        ys = [_value(values.get(b)) for b in buckets]
        axes.plot(range(len(buckets)), ys, marker="o", markersize=3, color=colour, label=label)
    colours = dict(zip(series, COLOURS, strict=False))
    for label, level in (references or {}).items():
        axes.axhline(level, color=colours[label], linestyle="--", linewidth=1)
    # Shares on their whole scale: a leader reads 47% to 48% as the small step it is.
    axes.set_ylim(0, 100)
    axes.yaxis.set_major_formatter(FuncFormatter(lambda v, _: value_format(v)))
    # Buckets are evenly spaced: their index is the x, about eight of them labelled.
    step = max(1, len(buckets) // 8)
    shown = "%H:%M" if hourly else "%d/%m"
    axes.set_xticks(
        range(0, len(buckets), step),
        [b.strftime(shown) for b in buckets[::step]],  # in city time already
    )
    if len(series) > 1:
        _legend_above(axes)
    return _svg(figure, name)


def bars(
    name: str,
    labels: Sequence[str],
    values: Sequence[float | None],
    value_format: Format,
    target: float | None = None,
) -> str:
    """Horizontal bars, in the order given (top first), each with its value written."""
    figure, axes = plt.subplots(figsize=(7.5, 0.3 * len(labels) + 0.7), layout="constrained")
    positions = range(len(labels))
    heights = [_value(v) for v in values]
    axes.barh(positions, [0 if math.isnan(h) else h for h in heights], color=COLOURS[0])
    for y, h in zip(positions, heights, strict=True):
        if not math.isnan(h):
            axes.annotate(
                value_format(h), (h, y), xytext=(3, 0), textcoords="offset points",
                va="center", fontsize=8,
            )  # fmt: skip
    if target is not None:
        axes.axvline(target, color=COLOURS[4], linestyle="--", linewidth=1)
    axes.set_yticks(list(positions), list(labels))
    axes.invert_yaxis()
    axes.grid(axis="y", visible=False)
    axes.xaxis.set_major_locator(MaxNLocator(5))  # room for a million written out
    axes.xaxis.set_major_formatter(FuncFormatter(lambda v, _: value_format(v)))
    axes.margins(x=0.12)
    return _svg(figure, name)


def hour_profile(
    name: str,
    hours: Sequence[int],
    vehicles: Sequence[float],
    pcu: Sequence[float],
    labels: tuple[str, str],
    value_format: Format,
) -> str:
    """Vehicles (bars) and PCU (line) in each hour of an average day."""
    figure, axes = plt.subplots(figsize=(7.5, 2.8), layout="constrained")
    axes.bar(hours, vehicles, color=COLOURS[0], label=labels[0], width=0.8)
    axes.plot(hours, pcu, color=COLOURS[1], marker="o", markersize=3, label=labels[1])
    axes.set_xticks(range(0, 24, 2))
    axes.set_xlim(-0.6, 23.6)
    axes.yaxis.set_major_formatter(FuncFormatter(lambda v, _: value_format(v)))
    _legend_above(axes)
    return _svg(figure, name)


def ward_hours(
    name: str,
    wards: Sequence[str],
    cells: dict[tuple[str, int], float],
    label: str,
    value_format: Format,
) -> str:
    """Wards (rows, in the order given) by hour of day (columns), darker for more; an hour
    without data is left white rather than coloured as zero."""
    grid = [[cells.get((ward, hour), math.nan) for hour in range(24)] for ward in wards]
    figure, axes = plt.subplots(figsize=(7.5, 0.28 * len(wards) + 1.0), layout="constrained")
    image = axes.imshow(grid, aspect="auto", cmap="Blues", interpolation="nearest")
    axes.set_yticks(range(len(wards)), list(wards))
    axes.set_xticks(range(0, 24, 2))
    axes.grid(visible=False)
    bar = figure.colorbar(image, ax=axes, fraction=0.04, pad=0.02)
    bar.set_label(label)
    bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: value_format(v)))
    return _svg(figure, name)


def _legend_above(axes: Axes) -> None:
    """Above the plot, where it never hides a bar or a point."""
    axes.legend(loc="lower left", bbox_to_anchor=(0, 1.0), fontsize=8, frameon=False, ncols=4)


def _value(value: float | None) -> float:
    return math.nan if value is None else float(value)
