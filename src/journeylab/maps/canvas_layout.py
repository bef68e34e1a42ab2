"""Layout and drawing of the journey canvas (:mod:`journeylab.maps.canvas`).

The canvas is laid out in inches on one axes whose data coordinates are
inches from the top-left corner, so every position is explicit:

1. Text is measured before it is placed (matplotlib's Agg renderer, with the
   same fonts, including the CJK fallback), wrapped to its cell's width and
   stacked at a line height measured from tall glyphs (brackets, Hangul), so
   no two texts overlap by construction; the tests check it on the drawn
   figure with renderer extents.
2. A cell holds at most :data:`MAX_LINES` lines. Items are added in order
   while they fit; the rest are counted in a ``+k more`` line. The first item
   is shortened with ``…`` when it alone does not fit.
3. All text is drawn with ``parse_math=False``: names are data, not mathtext.
4. Font sizes are fixed for A4 landscape (cell text 7–7.5 pt) and scaled
   down only when the canvas is drawn on a smaller axes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Circle, FancyArrowPatch, Polygon, Rectangle

from journeylab.core.fonts import font_families
from journeylab.core.results import fmt_pct
from journeylab.core.viz import PALETTE

__all__ = ["draw_canvas", "canvas_size", "A4_LANDSCAPE", "MAX_LINES"]

#: Page size the canvas is laid out for, in inches.
A4_LANDSCAPE = (11.69, 8.27)
#: Most lines of text in one cell.
MAX_LINES = 4

ROW_TITLES = {
    "events": ("Customers do", "top events, by count"),
    "channels": ("Touchpoints & channels", "share of the stage's touches"),
    "kpis": ("KPIs", "value and change"),
    "conversion": ("Purchase journey", "conversion to the next stage"),
    "emotion": ("Experience journey", ""),
    "pains": ("Pain points", "value at stake"),
    "opportunities": ("Opportunities", "what each pain point suggests"),
}
INK = "0.12"
MUTED = "0.42"
CELL = "#f2f4f7"
BAND = "#e9eef5"
WIDTH_SAFETY = 0.96  # wrap a little short of the cell: hinting differs slightly between dpi


def canvas_size(n_stages: int) -> tuple[float, float]:
    """Figure size in inches: A4 landscape, wider only beyond 8 stages."""
    width = max(A4_LANDSCAPE[0], 0.5 + 1.45 + n_stages * 1.15)
    return (width, A4_LANDSCAPE[1])


# ---------------------------------------------------------------------------
# Measuring and wrapping text
# ---------------------------------------------------------------------------
class _Measure:
    """Text extents in inches, with the canvas's fonts."""

    def __init__(self, dpi: float, families: list[str]) -> None:
        self.dpi = dpi
        self.families = families
        self.renderer = RendererAgg(8, 8, dpi)
        self._cache: dict[tuple, tuple[float, float]] = {}

    def props(self, size: float, weight: str = "normal", style: str = "normal") -> FontProperties:
        return FontProperties(family=self.families, size=size, weight=weight, style=style)

    def extent(
        self, text: str, size: float, weight: str = "normal", style: str = "normal"
    ) -> tuple[float, float]:
        key = (text, size, weight, style)
        if key not in self._cache:
            w, h, _ = self.renderer.get_text_width_height_descent(
                text, self.props(size, weight, style), ismath=False
            )
            self._cache[key] = (w / self.dpi, h / self.dpi)
        return self._cache[key]

    def width(self, text: str, size: float, weight: str = "normal", style: str = "normal") -> float:
        return self.extent(text, size, weight, style)[0]

    def line_height(self, size: float, weight: str = "normal") -> float:
        """Distance between lines: the tallest of brackets, accents, arrows and Hangul, plus a little air."""
        tall = max(
            self.extent(s, size, weight)[1] for s in ("lp", "Ág[]", "(|)", "↑↓", "예약 완료")
        )
        return tall * 1.12


def wrap(text: str, width: float, size: float, measure: _Measure, weight: str = "normal",
         style: str = "normal") -> list[str]:  # fmt: skip
    """Greedy word wrap to ``width`` inches; a word wider than a line is broken between characters."""
    width *= WIDTH_SAFETY
    lines: list[str] = []
    current = ""
    for word in str(text).split():
        candidate = f"{current} {word}" if current else word
        if measure.width(candidate, size, weight, style) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = ""
        while measure.width(word, size, weight, style) > width and len(word) > 1:
            cut = _longest_prefix(word, width, size, measure, weight=weight, style=style)
            lines.append(word[:cut])
            word = word[cut:]
        current = word
    if current or not lines:
        lines.append(current)
    return lines


def _longest_prefix(
    word: str, width: float, size: float, measure: _Measure, *, weight: str, style: str
) -> int:
    lo, hi = 1, len(word)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if measure.width(word[:mid], size, weight, style) <= width:
            lo = mid
        else:
            hi = mid - 1
    return lo


def shorten(text: str, width: float, size: float, measure: _Measure, weight: str = "normal",
            style: str = "normal") -> str:  # fmt: skip
    """``text`` cut with ``…`` to fit ``width`` inches on one line."""
    width *= WIDTH_SAFETY
    if measure.width(text, size, weight, style) <= width:
        return text
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if measure.width(text[:mid].rstrip() + "…", size, weight, style) <= width:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip() + "…"


@dataclass
class Line:
    """One line of a cell: text on the left, optionally a figure on the right."""

    left: str
    right: str | None = None
    style: dict = field(default_factory=dict)


def item_lines(
    left: str, right: str | None, width: float, size: float, measure: _Measure
) -> list[Line]:
    """Lines of one item: the wrapped label, with the figure beside its last line or below it."""
    lines = [Line(text) for text in wrap(left, width, size, measure)]
    if right is None:
        return lines
    gap = measure.width("  ", size)
    if (
        measure.width(lines[-1].left, size) + gap + measure.width(right, size)
        <= width * WIDTH_SAFETY
    ):
        lines[-1].right = right
    else:
        lines.append(Line("", right))
    return lines


def _blocks(items, width, size, measure) -> list[list[Line]]:
    return [item_lines(left, right, width, size, measure) for left, right in items]


def items_that_fit(items: list[tuple[str, str | None]], width: float, size: float, measure: _Measure,
                   max_lines: int = MAX_LINES) -> int:  # fmt: skip
    """How many whole items fit in ``max_lines`` lines, keeping one line for ``+k more`` (at least 1)."""
    blocks = _blocks(items, width, size, measure)
    for n in range(len(blocks), 0, -1):
        if sum(len(b) for b in blocks[:n]) + (1 if n < len(blocks) else 0) <= max_lines:
            return n
    return 1


def fit_items(items: list[tuple[str, str | None]], width: float, size: float, measure: _Measure,
              max_lines: int = MAX_LINES, limit: int | None = None) -> list[Line]:  # fmt: skip
    """Lay out the first ``limit`` items (default: as many as fit), then ``+k more``; shorten a lone long item."""
    blocks = _blocks(items, width, size, measure)
    n = min(limit or len(blocks), items_that_fit(items, width, size, measure, max_lines))
    room = max_lines - (1 if n < len(blocks) else 0)
    lines = [line for b in blocks[:n] for line in b]
    if len(lines) > room:
        # The first item alone is too long: keep its first lines, end them with "…", keep its figure.
        left, right = items[0]
        label = [line.left for line in blocks[0] if line.left]
        if right is None:
            lines = [Line(text) for text in label[:room]]
            lines[-1].left = shorten(lines[-1].left + " …", width, size, measure)
        elif room == 1:
            lines = [
                Line(
                    shorten(
                        " ".join(label), width - measure.width(f"  {right}", size), size, measure
                    ),
                    right,
                )
            ]
        else:
            lines = [Line(text) for text in label[: room - 1]]
            lines[-1].left = shorten(lines[-1].left + " …", width, size, measure)
            lines.append(Line("", right))
    if n < len(blocks):
        lines.append(Line(f"+{len(blocks) - n} more", style={"color": MUTED, "style": "italic"}))
    return lines


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


def draw_canvas(result, ax=None, figsize: tuple[float, float] | None = None):
    """Draw ``result`` (a JourneyCanvasResult) on the whole of ``ax`` or on a new figure; return the axes."""
    import matplotlib.pyplot as plt

    from journeylab.core.fonts import use_cjk_fallback

    use_cjk_fallback()
    n = len(result.stage_map)
    if ax is None:
        fig = plt.figure(figsize=figsize or canvas_size(n))
        ax = fig.add_axes((0, 0, 1, 1))
    fig = ax.get_figure()
    box = ax.get_position()
    fig_w, fig_h = fig.get_size_inches()
    width, height = box.width * fig_w, box.height * fig_h
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_axis_off()
    measure = _Measure(fig.dpi, font_families())
    scale = max(0.5, min(1.0, width / canvas_size(n)[0], height / A4_LANDSCAPE[1]))
    for _ in range(4):
        plan = _plan(result, measure, width, height, scale=scale)
        if plan["fits"]:
            break
        scale *= plan["ratio"]
    _draw(result, ax, measure, plan)
    return ax


def _sizes(scale: float, n: int) -> dict[str, float]:
    cell = 7.5 if n <= 6 else (7.0 if n <= 8 else 6.8)
    return {
        "title": 13 * scale, "subtitle": 8.5 * scale, "header": 9.5 * scale, "row": 8.5 * scale,
        "caption": 7.0 * scale, "cell": cell * scale, "footer": 6.8 * scale,
    }  # fmt: skip


def _plan(result, measure: _Measure, width: float, height: float, *, scale: float) -> dict:
    """Font sizes, row heights and every cell's lines; ``fits`` says whether it all fits ``height``."""
    n = len(result.stage_map)
    grid = _Grid(width, height, scale, n)
    size = _sizes(scale, n)
    lh = measure.line_height(size["cell"])
    lh_header = measure.line_height(size["header"], "bold")
    pad = grid.pad
    cells = result.cells
    names = result.stage_map.names

    # Header: chevrons with the stage labels, users and reach below.
    tip = min(0.12 * scale, grid.col_w * 0.12)
    label_w = grid.col_w - 2 * tip - 2 * pad
    header_lines = {}
    for s in names:
        lines = wrap(result.stage_labels[s], label_w, size["header"], measure, "bold")
        if len(lines) > 3:
            lines = lines[:2] + [
                shorten(" ".join(lines[2:]), label_w, size["header"], measure, "bold")
            ]
        header_lines[s] = lines
    chevron_h = max(2, *(len(lines) for lines in header_lines.values())) * lh_header + 2 * pad
    stage_rows = cells.loc[cells["row"] == "stage"].set_index("stage")
    reach_lines = {}
    for s in names:
        users, reach = stage_rows.at[s, "n"], stage_rows.at[s, "value"]
        text = f"{fmt_compact(users)} users · {fmt_pct(reach, 0)} reach"
        reach_lines[s] = fit_items([(text, None)], grid.text_w, size["cell"], measure, max_lines=2)
    header_h = chevron_h + 0.04 * scale + 2 * lh

    # List rows.
    content: dict[str, dict[str, list[Line]]] = {}
    for row in ("events", "channels", "kpis", "pains", "opportunities"):
        content[row] = {}
        if row in result.row_notes:
            continue
        for s in names:
            items = _items(row, cells.loc[(cells["row"] == row) & (cells["stage"] == s)], result)
            limit = None
            if row in ("pains", "opportunities") and "opportunities" not in result.row_notes:
                # A pain point and its opportunity are shown together, or neither is.
                pair = [_items(r, cells.loc[(cells["row"] == r) & (cells["stage"] == s)], result)
                        for r in ("pains", "opportunities")]  # fmt: skip
                limit = min(items_that_fit(i, grid.text_w, size["cell"], measure) for i in pair)
            content[row][s] = fit_items(items, grid.text_w, size["cell"], measure, limit=limit)
    list_h = 2 * pad + MAX_LINES * lh
    conv_h = 2 * pad + 3 * lh + 0.2 * scale
    emotion_label_h = 2 * lh
    emotion_min_h = 2 * pad + emotion_label_h + 0.55 * scale

    # Row titles in the left column.
    titles = {}
    for row, (name, caption) in ROW_TITLES.items():
        if row == "emotion":
            caption = {"nps": "NPS per stage", "sentiment": "mean comment sentiment"}.get(
                result.emotion_metric, ""
            )
        if row == "kpis" and result.previous is not None:
            caption = f"change vs {result.previous.label}; * significant"
        if row == "pains" and result.currency:
            caption = "value at stake"
        titles[row] = (
            wrap(name, grid.label_w, size["row"], measure, "bold")[:2],
            wrap(caption, grid.label_w, size["caption"], measure)[:3] if caption else [],
        )
    lh_row = measure.line_height(size["row"], "bold")
    lh_caption = measure.line_height(size["caption"])

    def title_h(row: str) -> float:
        name_lines, caption_lines = titles[row]
        return pad + len(name_lines) * lh_row + len(caption_lines) * lh_caption + pad

    heights = {
        "events": list_h, "channels": list_h, "kpis": list_h, "conversion": conv_h,
        "emotion": emotion_min_h, "pains": list_h, "opportunities": list_h,
    }  # fmt: skip
    heights = {row: max(h, title_h(row)) for row, h in heights.items()}

    # Title block and footer.
    lh_title = measure.line_height(size["title"], "bold")
    lh_sub = measure.line_height(size["subtitle"])
    title_text = result.canvas_title or f"Customer journey map · {result.period.label}"
    title_line = shorten(title_text, width - 2 * grid.margin, size["title"], measure, "bold")
    subtitle = _subtitle(result)
    subtitle_line = shorten(subtitle, width - 2 * grid.margin, size["subtitle"], measure)
    footer_lines = []
    for note in _footnotes(result):
        footer_lines += wrap(note, width - 2 * grid.margin, size["footer"], measure)
    if len(footer_lines) > 5:
        footer_lines = footer_lines[:4] + [
            shorten(" ".join(footer_lines[4:]), width - 2 * grid.margin, size["footer"], measure)
        ]
    lh_footer = measure.line_height(size["footer"])
    row_gap = 0.05 * scale
    top = 0.22 * scale
    fixed = (
        top + lh_title + lh_sub + 0.12 * scale + header_h + 0.06 * scale
        + sum(heights.values()) + row_gap * (len(heights) - 1)
        + 0.1 * scale + len(footer_lines) * lh_footer + 0.15 * scale
    )  # fmt: skip
    fits = fixed <= height
    extra = max(height - fixed, 0.0)
    heights["emotion"] += 0.55 * extra
    heights["conversion"] += 0.15 * extra
    row_gap += 0.3 * extra / (len(heights) - 1)
    return {
        "fits": fits, "ratio": max(0.6, min(0.97, height / fixed)) if not fits else 1.0,
        "grid": grid, "size": size, "lh": lh, "lh_header": lh_header, "tip": tip, "chevron_h": chevron_h,
        "header_lines": header_lines, "reach_lines": reach_lines, "header_h": header_h,
        "content": content, "heights": heights, "titles": titles, "lh_row": lh_row, "lh_caption": lh_caption,
        "title_line": title_line, "subtitle_line": subtitle_line, "lh_title": lh_title, "lh_sub": lh_sub,
        "footer_lines": footer_lines, "lh_footer": lh_footer, "row_gap": row_gap, "top": top, "scale": scale,
    }  # fmt: skip


def _subtitle(result) -> str:
    users = (
        int(result.journey.stages["users_in_period"].iloc[0]) if len(result.journey.stages) else 0
    )
    parts = [f"{fmt_compact(users)} users active in {result.period.label}"]
    if result.previous is not None:
        parts.append(f"compared with {result.previous.label}")
    parts.append(f"{1 - result.alpha:.0%} intervals")
    return " · ".join(parts)


def _footnotes(result) -> list[str]:
    level = f"{1 - result.alpha:.0%}"
    notes = [
        f"Purchase journey: of the users who reached a stage in {result.period.label}, the share who reached the "
        f"next stage afterwards, with its {level} Wilson interval"
        + (f" and its change against {result.previous.label} in percentage points (* p < {result.alpha:g})."
           if result.previous is not None else "."),
    ]  # fmt: skip
    if result.previous is not None:
        notes.append(
            f"KPIs: ↑/↓ relative change against {result.previous.label}; * significant at α = {result.alpha:g} "
            "(z-test of two totals over users, allowing for heavy users)."
        )
    if result.emotion_metric == "nps":
        notes.append(
            f"Experience journey: Net Promoter Score (−100 to +100) of the answers per stage, {level} adjusted-Wald interval."
        )
    elif result.emotion_metric == "sentiment":
        notes.append(
            f"Experience journey: mean comment sentiment (−1 to +1) per stage, {level} t interval."
        )
    notes += result.notes
    return notes


def _items(row: str, part: pd.DataFrame, result) -> list[tuple[str, str | None]]:
    """Return the (label, figure) items of one cell; a cell without data has its note as the only item."""
    if part.empty:
        return [("–", None)]
    if part["value"].isna().all() and row not in ("opportunities",) and part["note"].notna().any():
        return [(str(part["note"].dropna().iloc[0]), None)]
    if row == "opportunities" and part["note"].notna().all():
        return [(str(part["note"].iloc[0]), None)]
    items = []
    for rec in part.to_dict("records"):
        if row == "events":
            items.append((rec["label"], fmt_compact(rec["value"])))
        elif row == "channels":
            share = rec["value"]
            items.append((rec["label"], "<1%" if 0 < share < 0.005 else fmt_pct(share, 0)))
        elif row == "kpis":
            money = result.currency if rec.get("measure") == "value" else None
            figure = fmt_compact(rec["value"], money)
            if result.previous is not None:
                figure += " " + fmt_change(rec["change"], rec["significant"])
            items.append((rec["label"], figure))
        elif row == "pains":
            items.append(
                (f"{int(rec['item'])}. {rec['label']}", fmt_compact(rec["value"], result.currency))
            )
        elif row == "opportunities":
            items.append((f"{int(rec['item'])}. {rec['label']}", None))
    return items


def _draw(result, ax, measure: _Measure, plan: dict) -> None:
    p = _Painter(ax, measure, plan["scale"])
    grid: _Grid = plan["grid"]
    size = plan["size"]
    lh = plan["lh"]
    pad = grid.pad
    names = result.stage_map.names
    n = len(names)
    cells = result.cells

    # Title block.
    y = plan["top"]
    p.text(grid.margin, y, plan["title_line"], size["title"], weight="bold")
    y += plan["lh_title"]
    p.text(grid.margin, y, plan["subtitle_line"], size["subtitle"], color=MUTED)
    y += plan["lh_sub"] + 0.12 * plan["scale"]

    # Header: chevrons.
    tip, ch = plan["tip"], plan["chevron_h"]
    for k, s in enumerate(names):
        x0, x1 = grid.x(k), grid.x(k) + grid.col_w
        notch = tip if k > 0 else 0.0
        points = [
            (x0, y),
            (x1 - tip, y),
            (x1, y + ch / 2),
            (x1 - tip, y + ch),
            (x0, y + ch),
            (x0 + notch, y + ch / 2),
        ]
        ax.add_patch(Polygon(points, closed=True, facecolor=PALETTE[0], edgecolor="none", zorder=1))
        lines = plan["header_lines"][s]
        block = len(lines) * plan["lh_header"]
        ty = y + (ch - block) / 2
        for i, line in enumerate(lines):
            p.text((x0 + notch + x1 - tip) / 2, ty + i * plan["lh_header"], line, size["header"], ha="center",
                   weight="bold", color="white")  # fmt: skip
        p.lines(grid.x(k) + pad, y + ch + 0.04 * plan["scale"], grid.text_w, plan["reach_lines"][s], size["cell"], lh,
                color=MUTED)  # fmt: skip
    y += plan["header_h"] + 0.06 * plan["scale"]

    heights = plan["heights"]
    for row in ("events", "channels", "kpis", "conversion", "emotion", "pains", "opportunities"):
        h = heights[row]
        _row_title(p, plan, row, y)
        if row in result.row_notes:
            p.rect(grid.x(0), y, grid.x(n - 1) + grid.col_w - grid.x(0), h, CELL)
            p.text(
                grid.x(0) + pad,
                y + pad,
                result.row_notes[row],
                size["cell"],
                style="italic",
                color=MUTED,
            )
        elif row == "conversion":
            _conversion_band(p, plan, result, y, h=h)
        elif row == "emotion":
            _emotion_curve(p, plan, result, y, h=h)
        else:
            for k, s in enumerate(names):
                p.rect(grid.x(k), y, grid.col_w, h, CELL)
                lines = plan["content"][row][s]
                part = cells.loc[(cells["row"] == row) & (cells["stage"] == s)]
                is_note = (
                    part.empty
                    or part["value"].isna().all()
                    and row != "opportunities"
                    or (row == "opportunities" and part["note"].notna().all())
                )
                p.lines(grid.x(k) + pad, y + pad, grid.text_w, lines, size["cell"], lh,
                        color=MUTED if is_note else INK)  # fmt: skip
        y += h + plan["row_gap"]

    # Footer.
    y += 0.1 * plan["scale"] - plan["row_gap"]
    for line in plan["footer_lines"]:
        p.text(grid.margin, y, line, size["footer"], color=MUTED)
        y += plan["lh_footer"]


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


def fmt_change(change: float, significant: bool | None) -> str:
    """``↑12%`` / ``↓3.4%`` with ``*`` when significant; ``–`` without a change."""
    if change is None or not math.isfinite(change):
        return "–"
    arrow = "↑" if change > 0 else ("↓" if change < 0 else "→")
    pct = abs(change) * 100
    text = f"{pct:.0f}%" if pct >= 10 else f"{pct:.1f}%"
    return f"{arrow}{text}{'*' if significant else ''}"


def fmt_compact(x: float, currency: str | None = None) -> str:
    """Format counts and money for a narrow cell: ``7,035``, ``23.1k``, ``216k``, ``1.25M`` (currency first)."""
    if x is None or not math.isfinite(x):
        return "–"
    sign = "-" if x < 0 else ""
    x = abs(float(x))
    unit = currency or ""
    if x < 10_000:
        body = f"{x:,.0f}" if (x >= 100 or x.is_integer() or currency is None) else f"{x:,.2f}"
    elif x < 1_000_000:
        body = f"{x / 1e3:.1f}k" if x < 100_000 else f"{x / 1e3:.0f}k"
    else:
        body = f"{x / 1e6:.2f}M" if x < 1e7 else f"{x / 1e6:.1f}M"
    return f"{sign}{unit}{body}"
