"""The report theme and shared plotting helpers (seaborn/matplotlib).

Every figure journeylab draws goes through :func:`new_axes` and uses
:data:`PALETTE` so notebooks and reports look alike: white grid, readable
font sizes, one qualitative palette for channels and one diverging map for
heatmaps of rates. Korean (CJK) text draws with the bundled Noto Sans KR as a
fallback font (:mod:`journeylab.core.fonts`): importing this module, the theme
and :func:`new_axes` append it to ``rcParams["font.family"]``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import seaborn as sns

from journeylab.core.fonts import use_cjk_fallback

__all__ = ["PALETTE", "SEQUENTIAL", "DIVERGING", "set_theme", "new_axes", "percent_axis"]

#: Qualitative palette (colour-blind safe) for channels, variants and stages.
PALETTE = sns.color_palette("colorblind", 10)
#: Colour map for rates and counts (light = low).
SEQUENTIAL = "Blues"
#: Colour map for signed differences (centred on zero).
DIVERGING = "RdBu"


def set_theme(context: str = "notebook") -> None:
    """Apply the journeylab figure theme (seaborn whitegrid, colour-blind palette, CJK font fallback, no mathtext)."""
    sns.set_theme(
        context=context,
        style="whitegrid",
        palette=PALETTE,
        rc={
            "figure.dpi": 100,
            "savefig.dpi": 120,
            "figure.figsize": (8, 4.5),
            "axes.titlesize": 13,
            "axes.titleweight": "bold",
            "axes.labelsize": 11,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "legend.frameon": False,
            # Labels come from data (channel, event, segment names): "$x$" in one must stay
            # text, never start mathtext (an unknown macro would crash the figure and the report).
            "text.parse_math": False,
        },
    )
    use_cjk_fallback()  # seaborn resets the font family; Korean labels need the fallback after it


def new_axes(ax=None, figsize: tuple[float, float] | None = None):
    """Return ``ax`` if given, else the axes of a new figure of ``figsize``."""
    use_cjk_fallback()
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=figsize)
    return ax


def percent_axis(ax, axis: str = "x", decimals: int = 0) -> None:
    """Format an axis whose values are proportions as percentages."""
    from matplotlib.ticker import PercentFormatter

    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_formatter(PercentFormatter(1.0, decimals=decimals))


# Every journeylab figure imports this module before drawing: Korean text renders from the start.
use_cjk_fallback()
