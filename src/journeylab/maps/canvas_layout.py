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

import pandas as pd
from matplotlib.patches import Polygon

from journeylab.core.fonts import font_families
from journeylab.core.results import fmt_pct
from journeylab.core.viz import PALETTE
from journeylab.maps.canvas_drawing import (
    CELL,
    _conversion_band,
    _emotion_curve,
    _Grid,
    _Painter,
    _row_title,
)
from journeylab.maps.canvas_text import (
    INK,
    MAX_LINES,
    MUTED,
    Line,
    _Measure,
    fit_items,
    fmt_change,
    fmt_compact,
    items_that_fit,
    shorten,
    wrap,
)

__all__ = [
    "draw_canvas",
    "canvas_size",
    "A4_LANDSCAPE",
    "MAX_LINES",
]


#: Page size the canvas is laid out for, in inches.
A4_LANDSCAPE = (11.69, 8.27)


ROW_TITLES = {
    "events": ("Customers do", "top events, by count"),
    "channels": ("Touchpoints & channels", "share of the stage's touches"),
    "kpis": ("KPIs", "value and change"),
    "conversion": ("Purchase journey", "conversion to the next stage"),
    "emotion": ("Experience journey", ""),
    "pains": ("Pain points", "value at stake"),
    "opportunities": ("Opportunities", "what each pain point suggests"),
}


def canvas_size(n_stages: int) -> tuple[float, float]:
    """Figure size in inches: A4 landscape, wider only beyond 8 stages."""
    width = max(A4_LANDSCAPE[0], 0.5 + 1.45 + n_stages * 1.15)
    return (width, A4_LANDSCAPE[1])


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
            "Experience journey: Net Promoter Score (−100 to +100) of the answers per stage, "
            f"{level} adjusted-Wald interval."
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
