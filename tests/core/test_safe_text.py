"""Data values are escaped for where they land (Markdown, HTML, matplotlib) and exported HTML is checked.

The Markdown is rendered by nbconvert's own renderer (``markdown2html``, what
the report export uses for ``text/markdown`` outputs), figures by matplotlib
with the report theme, so these tests exercise the paths a report takes.
"""

from __future__ import annotations

import html as std_html
import io
import re
from html.parser import HTMLParser

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nbconvert.filters.markdown import markdown2html

from journeylab.core.safe_text import (
    UnsafeHtmlError,
    check_html,
    display_text,
    html,
    html_table,
    md,
    mpl,
    require_safe_html,
)

#: Values a reviewer fed through device and channel names.
HOSTILE = [
    '<img src="http://127.0.0.1:8765/d.png" onerror="document.title=1">',
    "![x](http://127.0.0.1:8765/x.png)",
    "[x](javascript:alert(1))",
    r"$\undefinedmacro{x}$",
    "<script>window.__pwned = 1</script>",
    "<http://127.0.0.1:8765/auto>",
    "http://127.0.0.1:8765/bare www.example.com a@b.com",
    "*bold* _it_ `code` ~~s~~",
    "# heading",
    "| a | b |",
    "1. item",
    "&lt;script&gt;",
    "\u202eliamE",
    "line\nbreak\r\nand\x00nul",
    "trailing backslash \\",
    "[ref]: http://127.0.0.1:8765/ref",
    '"><svg onload=alert(1)>',
]


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def _parse(fragment: str) -> _Tags:
    parser = _Tags()
    parser.feed(fragment)
    parser.close()
    return parser


def _squash(text: str) -> str:
    return re.sub(r"[ \t\n\r\f]+", " ", text).strip()


def test_display_text_makes_hidden_characters_visible():
    assert display_text("\u202eliamE") == "\\u202eliamE"
    assert display_text("a\u2066b\u2069") == "a\\u2066b\\u2069"
    assert display_text("nul\x00here") == "nul\\u0000here"
    assert display_text("E\u200bmail") == "E\\u200bmail"
    assert display_text("two\nlines\r\nhere\u2028x") == "two lines  here x"
    assert display_text("👩\u200d💻 ok") == "👩\u200d💻 ok"  # joiners in emoji stay
    assert display_text(None) == "–" and display_text(float("nan")) == "–"


@pytest.mark.parametrize("value", HOSTILE)
def test_markdown_value_renders_as_its_own_text(value):
    rendered = markdown2html(f"Before {md(value)} after.")
    parsed = _parse(rendered)
    assert parsed.tags == ["p"], rendered
    assert _squash("".join(parsed.text)) == _squash(f"Before {display_text(value)} after.")


@pytest.mark.parametrize("value", HOSTILE)
def test_markdown_value_stays_in_its_table_cell_and_list_item(value):
    table = markdown2html(f"| KPI | value |\n| --- | --- |\n| {md(value)} | 1 |\n")
    parsed = _parse(table)
    assert parsed.tags.count("td") == 2 and set(parsed.tags) <= {
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
    }
    listing = _parse(markdown2html(f"1. {md(value)}\n2. second"))
    assert listing.tags == ["ol", "li", "li"]


def test_markdown_escapes_block_starts_and_maths():
    assert md("# title") == "\\# title"
    assert md("$5") == "\\$5"
    assert md("a|b") == "a\\|b"
    assert md("<b>") == "&lt;b&gt;"
    assert md("x\ny") == "x y"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_any_text_renders_as_text_in_markdown(value):
    parsed = _parse(markdown2html(f"x {md(value)} y"))
    assert parsed.tags == ["p"]
    assert _squash("".join(parsed.text)) == _squash(f"x {display_text(value)} y")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_any_text_renders_as_text_in_html(value):
    parsed = _parse(f'<p title="{html(value)}">{html(value)}</p>')
    assert parsed.tags == ["p"]
    assert "".join(parsed.text) == display_text(value)


def test_html_table_escapes_cells_index_and_columns():
    frame = pd.DataFrame(
        {"<b>segment</b>": ["<img src=x onerror=alert(1)>", "ok"], "users": [3, 4]},
        index=pd.Index(["<i>a</i>", "b"], name="<u>n</u>"),
    )
    out = html_table(frame, border=0)
    assert "<img" not in out and "<b>" not in out and "<i>" not in out and "<u>" not in out
    assert "&lt;img src=x onerror=alert(1)&gt;" in out
    assert check_html(out) == []


@pytest.mark.parametrize("value", HOSTILE)
def test_matplotlib_labels_are_never_mathtext(value):
    fig, ax = plt.subplots()
    ax.set_title(mpl(value))
    ax.set_yticks([0], [mpl(value)])
    ax.plot([0, 1], [0, 1], label=mpl(value))
    ax.legend(title=mpl(value))
    fig.savefig(io.BytesIO(), format="png")  # an unknown macro would raise here
    title = ax.title
    shown, is_math = title._preprocess_math(title.get_text())
    plt.close(fig)
    assert not is_math
    assert shown == display_text(value)


@pytest.mark.filterwarnings("ignore:Glyph")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=20).map(lambda s: "$" + s + "$"))
def test_any_dollar_text_draws_as_text(value):
    fig, ax = plt.subplots(figsize=(2, 1))
    text = ax.text(0, 0, mpl(value))
    fig.canvas.draw()
    shown, is_math = text._preprocess_math(text.get_text())
    plt.close(fig)
    assert not is_math and shown == display_text(value)


# -- the second wall ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("page", "what"),
    [
        ("<script>alert(1)</script>", "<script> element"),
        ('<img src="http://127.0.0.1:8765/d.png">', "src= is a URL outside the report"),
        ('<img src="data:image/png;base64,AAAA" onerror="x()">', "attribute onerror= runs code"),
        ('<a href="javascript:alert(1)">x</a>', "href= is a script URL"),
        ('<a href="&#106;avascript:alert(1)">x</a>', "href= is a script URL"),
        ('<a href="java\tscript:alert(1)">x</a>', "href= is a script URL"),
        ('<a href="https://example.com">x</a>', "href= is a URL outside the report"),
        ('<iframe srcdoc="<b>x</b>"></iframe>', "<iframe> element"),
        ('<meta http-equiv="refresh" content="0;url=http://x">', "redirects"),
        ('<link rel="stylesheet" href="data:text/css,">', "<link> element"),
        ("<style>@import url(http://x/s.css);</style>", "imports a style sheet"),
        (
            "<style>body{background:url('http://x/b.png')}</style>",
            "url() is a URL outside the report",
        ),
        ('<div style="background:url(//x/b.png)">x</div>', "url() is a URL outside the report"),
        (
            '<img srcset="data:image/png;base64,AA 1x, http://x/b.png 2x">',
            "srcset= is a URL outside",
        ),
        ('<svg><use href="http://x/s.svg#a"></use></svg>', "href= is a URL outside the report"),
        (
            '<svg><animate attributeName="href" to="javascript:alert(1)"/></svg>',
            "holds a script URL",
        ),
        ('<form action="http://x/collect"><button>x</button></form>', "action= is a URL outside"),
        ('<object data="http://x/x.swf"></object>', "<object> element"),
        ('<base href="http://x/">', "<base> element"),
    ],
)
def test_check_html_finds_what_runs_or_fetches(page, what):
    problems = check_html(f"<html><body><p>text</p>\n{page}</body></html>")
    assert problems, page
    assert any(what in p.what for p in problems), [p.what for p in problems]
    assert problems[0].line == 2
    with pytest.raises(UnsafeHtmlError, match="not safe to share") as info:
        require_safe_html(page, "report.html")
    assert info.value.source == "report.html" and info.value.problems


def test_check_html_lets_a_static_report_through():
    page = (
        '<html><head><meta charset="utf-8"><style>.x{background:url("data:image/svg+xml;utf8,<svg/>")}</style>'
        '</head><body><h2 id="Top">Top<a class="anchor-link" href="#Top">¶</a></h2>'
        '<img src="data:image/png;base64,iVBORw0KGgo=" alt="figure">'
        f"<p>{html(HOSTILE[0])}</p><td>{html(HOSTILE[2])}</td></body></html>"
    )
    assert check_html(page) == []
    assert std_html.unescape(html(HOSTILE[0])) == HOSTILE[0]
