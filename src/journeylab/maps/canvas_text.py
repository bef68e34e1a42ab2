"""Text of the journey canvas: measured, wrapped, shortened and fitted into a cell.

Rules 1 and 2 of :mod:`journeylab.maps.canvas_layout`: text is measured with
matplotlib's Agg renderer before it is placed, and a cell holds at most
:data:`MAX_LINES` lines, the rest counted in a ``+k more`` line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.font_manager import FontProperties

__all__ = [
    "MAX_LINES",
    "INK",
    "MUTED",
    "Line",
    "wrap",
    "shorten",
    "item_lines",
    "items_that_fit",
    "fit_items",
    "fmt_change",
    "fmt_compact",
]


#: Most lines of text in one cell.
MAX_LINES = 4


INK = "0.12"
MUTED = "0.42"


WIDTH_SAFETY = 0.96  # wrap a little short of the cell: hinting differs slightly between dpi


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
