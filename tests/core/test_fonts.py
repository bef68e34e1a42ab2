"""Korean text in figures: the bundled CJK font is the fallback after the default sans font."""

from __future__ import annotations

import warnings

import matplotlib as mpl
import matplotlib.pyplot as plt
import pytest
from matplotlib import font_manager

from journeylab.core import fonts
from journeylab.core.viz import new_axes, set_theme

KOREAN = "예약 완료"
MIXED = "Booking 예약 $5"


def _missing_glyph_warnings(record) -> list[str]:
    return [str(w.message) for w in record if "missing from font" in str(w.message)]


def _draw(families: list[str], tmp_path, name: str) -> list[str]:
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        fig, ax = plt.subplots(figsize=(4, 2))
        ax.set_title(KOREAN, fontfamily=families, fontweight="bold")
        ax.text(0.05, 0.5, MIXED, fontfamily=families, parse_math=False)
        ax.set_xlabel(KOREAN, fontfamily=families)
        fig.savefig(tmp_path / f"{name}.png")
        fig.savefig(tmp_path / f"{name}.svg")
        plt.close(fig)
    return _missing_glyph_warnings(record)


def test_bundled_font_is_offline_package_data_with_its_licence():
    path = fonts.cjk_font_path()
    assert path is not None and path.suffix == ".otf"
    assert path.stat().st_size > 1_000_000  # the font itself ships, not a downloader
    licence = [p for p in path.parent.parent.glob("pylopdf_fonts_ko-*.dist-info/licenses/LICENSE")]
    assert licence and "SIL Open Font License" in licence[0].read_text(encoding="utf-8")
    assert fonts.cjk_family() == "Noto Sans KR"
    entry = font_manager.FontProperties(family="Noto Sans KR")
    assert font_manager.fontManager.findfont(entry, fallback_to_default=False) == str(path)


def test_without_the_fallback_hangul_is_missing(tmp_path):
    # The control: DejaVu Sans alone has no Hangul, and matplotlib says so.
    missing = _draw(["DejaVu Sans"], tmp_path, "without")
    assert any("HANGUL" in m for m in missing)


def test_with_the_fallback_korean_and_mixed_labels_render_without_missing_glyphs(tmp_path):
    missing = _draw(fonts.font_families(["DejaVu Sans"]), tmp_path, "with")
    assert missing == []


def test_theme_and_new_axes_register_the_fallback_after_the_default_font(tmp_path, recwarn):
    with mpl.rc_context():
        mpl.rcParams["font.family"] = ["DejaVu Sans"]
        set_theme()
        families = list(mpl.rcParams["font.family"])
        assert families[-1] == "Noto Sans KR" and families[0] != "Noto Sans KR"
        mpl.rcParams["font.family"] = ["DejaVu Sans"]
        ax = new_axes(figsize=(4, 2))  # a figure made without the theme gets it too
        assert list(mpl.rcParams["font.family"]) == ["DejaVu Sans", "Noto Sans KR"]
        ax.set_title(KOREAN, fontweight="bold")
        ax.text(0.1, 0.5, MIXED, parse_math=False)
        ax.figure.savefig(tmp_path / "theme.png")
        plt.close(ax.figure)
    assert _missing_glyph_warnings(recwarn) == []


def test_fallback_is_idempotent_and_keeps_the_users_font_first():
    with mpl.rc_context():
        mpl.rcParams["font.family"] = ["Liberation Sans"]
        fonts.use_cjk_fallback()
        fonts.use_cjk_fallback()
        assert list(mpl.rcParams["font.family"]) == ["Liberation Sans", "Noto Sans KR"]


def test_bold_hangul_logs_no_weight_warning(caplog, tmp_path):
    fonts.cjk_family()
    font_manager.fontManager._findfont_cached.cache_clear()  # the warning is logged once per look-up
    with caplog.at_level("WARNING", logger="matplotlib.font_manager"):
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.set_title(
            "굵은 제목 bold", fontfamily=fonts.font_families(["DejaVu Sans"]), fontweight="bold"
        )
        fig.savefig(tmp_path / "bold.png")
        plt.close(fig)
    assert not [r for r in caplog.records if "Failed to find font weight" in r.getMessage()]


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
def test_korean_figure_saves_in_every_report_format(tmp_path, fmt):
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.set_title(KOREAN, fontfamily=fonts.font_families(["DejaVu Sans"]))
    fig.savefig(tmp_path / f"k.{fmt}")
    plt.close(fig)
    assert (tmp_path / f"k.{fmt}").stat().st_size > 1000
