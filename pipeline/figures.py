"""The report's charts as inline SVG text: matplotlib, fonts as paths, the same bytes every run."""

from __future__ import annotations

import io
import re
import textwrap
from collections.abc import Sequence

import numpy as np
from matplotlib import rc_context
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from pipeline.formatting import nl_percent

RC = {
    "svg.fonttype": "path",  # no font files or font names: text is drawn as paths
    "svg.hashsalt": "buurtlens",  # stable ids for clip paths and glyphs
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
INK = "#1f2933"
MUTED = "#9aa5b1"
CURRENT = "#0b6e99"
PREVIOUS = "#b7c9d6"
EMPTY_CELL = "#eceff1"
HEAT = LinearSegmentedColormap.from_list("buurtlens", ["#f4f8fb", "#7fb3d5", "#0b4f71"])

_ID = re.compile(r'\bid="([^"]+)"')


def to_svg(fig: Figure, prefix: str) -> str:
    """The figure as an <svg> element for inline use: no XML header, ids prefixed so several
    figures can share one HTML page, width set by CSS (the viewBox keeps the proportions)."""
    buffer = io.StringIO()
    FigureCanvasSVG(fig)
    with rc_context(RC):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, count=1, flags=re.DOTALL)
    for name in sorted(set(_ID.findall(text)), key=len, reverse=True):
        new = f"{prefix}-{name}"
        text = text.replace(f'id="{name}"', f'id="{new}"')
        text = text.replace(f'"#{name}"', f'"#{new}"').replace(f"url(#{name})", f"url(#{new})")
    text = re.sub(r'<svg([^>]*?) width="[^"]+" height="[^"]+"', r"<svg\1", text, count=1)
    return text.replace("<svg", f'<svg class="figuur" role="img" aria-label="{prefix}"', 1)


def _percent_axis(ax, axis: str = "x") -> None:
    formatter = FuncFormatter(lambda v, _pos: nl_percent(v, 0))
    (ax.xaxis if axis == "x" else ax.yaxis).set_major_formatter(formatter)


def heatmap(
    rows: Sequence[str],
    columns: Sequence[str],
    values: Sequence[Sequence[float | None]],
    prefix: str,
    empty_label: str = "geen sessies",
    decimals: int = 1,
) -> str:
    """Rows x columns of shares (0..1) with the percentage written in each cell; None or NaN
    cells are grey and say `empty_label`."""
    data = np.array([[np.nan if v is None else float(v) for v in row] for row in values])
    with rc_context(RC):
        fig = Figure(figsize=(1.1 * len(columns) + 1.9, 0.55 * len(rows) + 0.9))
        ax = fig.add_subplot()
        top = np.nanmax(data) if np.isfinite(data).any() else 1.0
        ax.imshow(np.ma.masked_invalid(data), cmap=HEAT, vmin=0, vmax=max(top, 1e-9), aspect="auto")
        for i in range(len(rows)):
            for j in range(len(columns)):
                value = data[i, j]
                if np.isnan(value):
                    ax.add_patch(_cell(i, j))
                    ax.text(j, i, empty_label, ha="center", va="center", color=MUTED, fontsize=10)
                else:
                    dark = value > 0.6 * top
                    ax.text(
                        j,
                        i,
                        nl_percent(value, decimals),
                        ha="center",
                        va="center",
                        color="white" if dark else INK,
                        fontsize=12,
                        fontweight="bold",
                    )
        ax.set_xticks(range(len(columns)), labels=[textwrap.fill(c, 12) for c in columns])
        ax.set_yticks(range(len(rows)), labels=list(rows))
        ax.tick_params(length=0, labelsize=11)
        ax.xaxis.tick_top()
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_xticks(np.arange(-0.5, len(columns)), minor=True)
        ax.set_yticks(np.arange(-0.5, len(rows)), minor=True)
        ax.grid(which="minor", color="white", linewidth=3)
        ax.tick_params(which="minor", length=0)
        fig.tight_layout()
        return to_svg(fig, prefix)


def _cell(i: int, j: int):
    from matplotlib.patches import Rectangle

    return Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor=EMPTY_CELL, edgecolor="none")


def bars(
    labels: Sequence[str],
    current: Sequence[float | None],
    previous: Sequence[float | None] | None,
    year: int,
    prefix: str,
) -> str:
    """Horizontal bars of a theme's share per gemeente, this year (and last year, lighter)."""
    y = np.arange(len(labels))
    cur = np.array([np.nan if v is None else v for v in current], dtype=float)
    with rc_context(RC):
        fig = Figure(figsize=(6.4, 0.5 * len(labels) + 1.0))
        ax = fig.add_subplot()
        height = 0.38 if previous is not None else 0.6
        if previous is not None:
            prev = np.array([np.nan if v is None else v for v in previous], dtype=float)
            ax.barh(
                y + height / 2, np.nan_to_num(prev), height, color=PREVIOUS, label=str(year - 1)
            )
            ax.barh(y - height / 2, np.nan_to_num(cur), height, color=CURRENT, label=str(year))
            ax.legend(
                frameon=False, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2, fontsize=9
            )
            offsets = y - height / 2
        else:
            ax.barh(y, np.nan_to_num(cur), height, color=CURRENT, label=str(year))
            offsets = y
        top = np.nanmax(cur) if np.isfinite(cur).any() else 0.0
        for pos, value in zip(offsets, cur):
            text = "geen sessies" if np.isnan(value) else nl_percent(value)
            ax.text(
                (0 if np.isnan(value) else value) + top * 0.01 + 0.002,
                pos,
                text,
                va="center",
                fontsize=9,
                color=MUTED if np.isnan(value) else INK,
            )
        ax.set_yticks(y, labels=list(labels))
        ax.invert_yaxis()
        ax.set_xlim(0, max(top * 1.25, 0.05))
        _percent_axis(ax, "x")
        ax.set_xlabel("aandeel van de beurten")
        ax.tick_params(axis="y", length=0)
        fig.tight_layout()
        return to_svg(fig, prefix)
