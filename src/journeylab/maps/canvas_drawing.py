"""Drawing on the journey canvas: the column grid, the painter, the row titles and the two graphic rows.

The conversion band (the purchase journey) and the emotion curve (the
experience journey) are drawn here; the plan they draw from is made in
:mod:`journeylab.maps.canvas_layout`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.patches import Circle, FancyArrowPatch, Rectangle

from journeylab.core.results import fmt_pct
from journeylab.core.viz import PALETTE
from journeylab.maps.canvas_text import INK, MUTED, Line, _Measure, fmt_compact, shorten, wrap

CELL = "#f2f4f7"
BAND = "#e9eef5"


# ---------------------------------------------------------------------------
# Drawing
# ---------------------------------------------------------------------------
class _Painter:
    """Places texts and shapes in inch coordinates on one axes (y grows downwards)."""

    def __init__(self, ax, measure: _Measure, scale: float) -> None:
        self.ax = ax
        self.m = measure
        self.scale = scale

    def text(self, x: float, y: float, s: str, size: float, *, ha: str = "left", va: str = "top",
             weight: str = "normal", style: str = "normal", color: str = INK) -> None:  # fmt: skip
        if not s:
            return
        self.ax.text(
            x, y, s, fontsize=size, ha=ha, va=va, fontweight=weight, fontstyle=style, color=color,
            fontfamily=self.m.families, parse_math=False, clip_on=False,
        )  # fmt: skip

    def lines(self, x: float, y: float, width: float, lines: list[Line], size: float, lh: float,
              color: str = INK) -> None:  # fmt: skip
        for i, line in enumerate(lines):
            yy = y + i * lh
            self.text(x, yy, line.left, size, color=line.style.get("color", color),
                      style=line.style.get("style", "normal"), weight=line.style.get("weight", "normal"))  # fmt: skip
            if line.right:
                self.text(x + width, yy, line.right, size, ha="right", color=color)

    def rect(self, x: float, y: float, w: float, h: float, color: str) -> None:
        self.ax.add_patch(Rectangle((x, y), w, h, facecolor=color, edgecolor="none", zorder=0))


@dataclass
class _Grid:
    width: float
    height: float
    scale: float
    n: int
    margin: float = 0.0
    label_w: float = 0.0
    col_w: float = 0.0
    gap: float = 0.0
    pad: float = 0.0

    def __post_init__(self) -> None:
        s = self.scale
        self.margin = 0.25 * s
        self.label_w = 1.3 * s
        self.gap = 0.07 * s
        self.pad = 0.06 * s
        self.col_w = (
            self.width - 2 * self.margin - self.label_w - 0.1 * s - (self.n - 1) * self.gap
        ) / self.n

    def x(self, k: int) -> float:
        return self.margin + self.label_w + 0.1 * self.scale + k * (self.col_w + self.gap)

    def centre(self, k: int) -> float:
        return self.x(k) + self.col_w / 2

    @property
    def text_w(self) -> float:
        return self.col_w - 2 * self.pad


def _row_title(p: _Painter, plan: dict, row: str, y: float) -> None:
    grid: _Grid = plan["grid"]
    name_lines, caption_lines = plan["titles"][row]
    yy = y + grid.pad
    for line in name_lines:
        p.text(grid.margin, yy, line, plan["size"]["row"], weight="bold")
        yy += plan["lh_row"]
    for line in caption_lines:
        p.text(grid.margin, yy, line, plan["size"]["caption"], color=MUTED)
        yy += plan["lh_caption"]


def _conversion_band(p: _Painter, plan: dict, result, y: float, *, h: float) -> None:
    """Arrows from stage to stage, thicker for higher conversion, with the rate, interval and change."""
    grid: _Grid = plan["grid"]
    size, lh, pad, m = plan["size"], plan["lh"], grid.pad, p.m
    names = result.stage_map.names
    n = len(names)
    p.rect(grid.x(0), y, grid.x(n - 1) + grid.col_w - grid.x(0), h, BAND)
    arrow_y = y + pad + lh + (h - 2 * pad - 3 * lh) / 2
    conv = result.cells.loc[result.cells["row"] == "conversion"].set_index("stage")
    for k, s in enumerate(names):
        p.ax.add_patch(
            Circle((grid.centre(k), arrow_y), 0.045 * plan["scale"], facecolor=PALETTE[0], edgecolor="white",
                   linewidth=0.8, zorder=3)
        )  # fmt: skip
        if k == n - 1 or s not in conv.index:
            continue
        rec = conv.loc[s]
        mid = (grid.centre(k) + grid.centre(k + 1)) / 2
        room = grid.col_w - 2 * pad
        if pd.isna(rec["value"]):
            lines = wrap(str(rec["note"]), room, size["cell"], m)[:2]
            for i, line in enumerate(lines):
                p.text(mid, arrow_y + 0.09 * plan["scale"] + i * lh, line, size["cell"], ha="center", style="italic",
                       color=MUTED)  # fmt: skip
            continue
        value = float(rec["value"])
        p.ax.add_patch(
            FancyArrowPatch(
                (grid.centre(k) + 0.07 * plan["scale"], arrow_y), (grid.centre(k + 1) - 0.08 * plan["scale"], arrow_y),
                arrowstyle="-|>", mutation_scale=9 + 6 * value, linewidth=(0.8 + 5 * value) * plan["scale"],
                color=PALETTE[0], shrinkA=0, shrinkB=0, zorder=2,
            )
        )  # fmt: skip
        p.text(mid, arrow_y - 0.07 * plan["scale"], shorten(fmt_pct(value), room, size["cell"], m, "bold"),
               size["cell"], ha="center", va="bottom", weight="bold")  # fmt: skip
        below = [f"[{fmt_pct(rec['ci_low'])}, {fmt_pct(rec['ci_high'])}]"]
        if result.previous is not None and pd.notna(rec.get("change")):
            change = float(rec["change"]) * 100
            arrow = "↑" if change > 0 else ("↓" if change < 0 else "→")
            below.append(f"{arrow}{abs(change):.1f} pp{'*' if rec['significant'] else ''}")
        for i, line in enumerate(below):
            p.text(mid, arrow_y + 0.09 * plan["scale"] + i * lh, shorten(line, room, size["cell"], m), size["cell"],
                   ha="center", color=MUTED)  # fmt: skip


def _emotion_curve(p: _Painter, plan: dict, result, y: float, *, h: float) -> None:
    """Value labels per stage on top, the curve with its interval band below, aligned to the columns."""
    grid: _Grid = plan["grid"]
    size, lh, pad, m = plan["size"], plan["lh"], grid.pad, p.m
    names = result.stage_map.names
    n = len(names)
    p.rect(grid.x(0), y, grid.x(n - 1) + grid.col_w - grid.x(0), h, BAND)
    emo = result.cells.loc[result.cells["row"] == "emotion"].set_index("stage")
    nps = result.emotion_metric == "nps"

    def fmt(v: float) -> str:
        return f"{v:+.0f}" if nps else f"{v:+.2f}"

    for k, s in enumerate(names):
        rec = emo.loc[s] if s in emo.index else None
        room = grid.text_w
        if rec is None or pd.isna(rec["value"]):
            note = "no answers at this stage" if rec is None else str(rec["note"])
            lines = wrap(note, room, size["cell"], m, style="italic")[:2]
            for i, line in enumerate(lines):
                p.text(
                    grid.centre(k),
                    y + pad + i * lh,
                    line,
                    size["cell"],
                    ha="center",
                    style="italic",
                    color=MUTED,
                )
            continue
        head = f"{'NPS ' if nps else ''}{fmt(rec['value'])}"
        detail = f"[{fmt(rec['ci_low'])}, {fmt(rec['ci_high'])}] n={fmt_compact(rec['n'])}"
        if m.width(detail, size["cell"]) > room * 0.96:
            detail = f"[{fmt(rec['ci_low'])}, {fmt(rec['ci_high'])}]"
        p.text(grid.centre(k), y + pad, shorten(head, room, size["cell"], m, "bold"), size["cell"], ha="center",
               weight="bold", color=PALETTE[3] if rec["value"] < 0 else INK)  # fmt: skip
        p.text(grid.centre(k), y + pad + lh, shorten(detail, room, size["cell"], m), size["cell"], ha="center",
               color=MUTED)  # fmt: skip

    # The curve: an inset axes whose x positions are the column centres.
    top = y + pad + 2 * lh + 0.04 * plan["scale"]
    bottom = y + h - pad
    x_left = grid.x(0) - grid.gap / 2
    x_right = grid.x(n - 1) + grid.col_w + grid.gap / 2
    fig = p.ax.get_figure()
    to_fig = p.ax.transData + fig.transFigure.inverted()
    (fx0, fy_top), (fx1, fy_bottom) = to_fig.transform([(x_left, top), (x_right, bottom)])
    curve = fig.add_axes((fx0, fy_bottom, fx1 - fx0, fy_top - fy_bottom))
    curve.set_xlim(-0.5, n - 0.5)
    curve.set_axis_off()
    curve.patch.set_alpha(0)
    have = emo.loc[emo["value"].notna()] if len(emo) else emo
    if have.empty:
        return
    index = [names.index(s) for s in have.index]
    order = np.argsort(index)
    xs = np.asarray(index, dtype=float)[order]
    value = have["value"].to_numpy(float)[order]
    low = have["ci_low"].to_numpy(float)[order]
    high = have["ci_high"].to_numpy(float)[order]
    span = max(float(np.nanmax(high)), 0.0) - min(float(np.nanmin(low)), 0.0)
    span = span if span > 0 else (20.0 if nps else 0.2)
    curve.set_ylim(
        min(float(np.nanmin(low)), 0.0) - 0.08 * span,
        max(float(np.nanmax(high)), 0.0) + 0.08 * span,
    )
    inset = (grid.gap / 2) / (grid.col_w + grid.gap)  # the zero line stays inside the band
    curve.hlines(
        0,
        -0.5 + inset,
        n - 0.5 - inset,
        color="0.55",
        lw=0.7 * plan["scale"],
        ls=(0, (3, 3)),
        zorder=1,
    )
    # Contiguous stages are joined; a stage without answers breaks the curve.
    runs = np.split(np.arange(len(xs)), np.flatnonzero(np.diff(xs) > 1) + 1)
    for run in runs:
        curve.fill_between(
            xs[run], low[run], high[run], color=PALETTE[0], alpha=0.18, lw=0, zorder=2
        )
        curve.plot(xs[run], value[run], color=PALETTE[0], lw=1.8 * plan["scale"], zorder=3)
    curve.vlines(xs, low, high, color=PALETTE[0], lw=0.9 * plan["scale"], alpha=0.6, zorder=3)
    colours = [PALETTE[3] if v < 0 else PALETTE[2] for v in value]
    curve.scatter(
        xs,
        value,
        s=28 * plan["scale"] ** 2,
        color=colours,
        edgecolor="white",
        linewidth=0.8,
        zorder=4,
    )
