"""Korean (CJK) text in figures: a bundled font registered as matplotlib's fallback.

The default sans font (DejaVu Sans) has no Hangul, so Korean stage names,
labels and comments would render as empty boxes with a "Glyph … missing from
font" warning. journeylab depends on ``pylopdf-fonts-ko``, a data-only PyPI
package that ships Noto Sans KR Regular (the Korean subset of Noto Sans CJK,
SIL Open Font License 1.1, about 4.6 MB of the package's 12 MB) as package
data, so it works offline and nothing is downloaded at run time.

Rules:

1. :func:`cjk_family` adds the font file to matplotlib's font manager once per
   process and returns its family name (``"Noto Sans KR"``); None when the
   package is not installed, in which case figures still draw (Korean as boxes).
2. :func:`font_families` is the family list to draw with: the current
   ``rcParams["font.family"]`` (``["sans-serif"]`` under the report theme, so
   Latin text keeps its usual font) followed by the CJK family. Matplotlib
   (>= 3.6) takes each glyph from the first family in the list that has it.
3. :func:`use_cjk_fallback` writes that list into ``rcParams``; the report
   theme (:func:`journeylab.core.viz.set_theme`) and every figure journeylab
   makes (through :mod:`journeylab.core.viz`) call it. It only appends, so a
   user's own font choice stays first.
4. The package ships one weight. The regular face is registered for bold too,
   so bold labels with Hangul draw the regular Hangul glyphs (beside bold Latin
   ones) instead of matplotlib logging a weight warning for every bold label.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import matplotlib as mpl
from matplotlib import font_manager, ft2font

__all__ = ["cjk_family", "cjk_font_path", "font_families", "use_cjk_fallback"]


def cjk_font_path() -> Path | None:
    """Path of the bundled Korean font file, or None when its package is not installed."""
    try:
        import pylopdf_fonts_ko
    except ImportError:
        return None
    path = Path(pylopdf_fonts_ko.sans_path())
    return path if path.is_file() else None


@functools.cache
def cjk_family() -> str | None:
    """Register the bundled Korean font with matplotlib (once) and return its family name.

    Examples
    --------
    >>> cjk_family()
    'Noto Sans KR'
    """
    path = cjk_font_path()
    if path is None:
        return None
    manager = font_manager.fontManager
    regular = font_manager.ttfFontProperty(ft2font.FT2Font(str(path)))
    if not _is_bold(regular.weight):
        # One weight shipped: let bold requests use it rather than log a warning each time.
        # (Added before addfont, which clears matplotlib's font look-up cache.)
        manager.ttflist.append(dataclasses.replace(regular, weight=700))
    manager.addfont(str(path))
    return regular.name


def _is_bold(weight: str | int) -> bool:
    try:
        return int(weight) >= 600
    except (TypeError, ValueError):
        return str(weight).lower() in {
            "semibold",
            "demibold",
            "demi",
            "bold",
            "heavy",
            "extra bold",
            "black",
        }


def font_families(base: list[str] | str | None = None) -> list[str]:
    """Return the family list with the CJK fallback last: ``base`` (default the rcParams list) + CJK.

    Examples
    --------
    >>> font_families(["DejaVu Sans"])
    ['DejaVu Sans', 'Noto Sans KR']
    """
    if base is None:
        base = mpl.rcParams["font.family"]
    families = [base] if isinstance(base, str) else list(base)
    family = cjk_family()
    if family is not None and family not in families:
        families.append(family)
    return families


def use_cjk_fallback() -> list[str]:
    """Append the CJK family to ``rcParams["font.family"]`` (idempotent) and return the list."""
    families = font_families()
    if list(mpl.rcParams["font.family"]) != families:
        mpl.rcParams["font.family"] = families
    return families
