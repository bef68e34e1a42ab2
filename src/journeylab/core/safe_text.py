r"""Data values made safe for the place they are shown in: Markdown, HTML, figures.

Every value that comes from data (a device, a channel, a segment, an event or
stage name, a file name) and lands in a shared report goes through one of the
three escapers here, chosen by where it lands:

1. :func:`md` for Markdown prose (``display(Markdown(...))``): every ASCII
   punctuation character is backslash-escaped (CommonMark allows it for all of
   them), and ``<``, ``>`` and ``&`` become entities, so a value cannot open a
   tag, a link, an image, emphasis, a table cell, a heading or ``$`` maths;
2. :func:`html` for HTML (result objects' ``_repr_html_``): ``<``, ``>``,
   ``&`` and ``"`` become entities;
3. :func:`mpl` for matplotlib text (titles, tick labels, legends,
   annotations): ``$`` is escaped, so a value never starts mathtext (an
   unknown TeX macro would crash the figure and with it the report).

All three first pass the value through :func:`display_text`: line breaks
become spaces (a value cannot start a new Markdown block) and control,
bidirectional and zero-width characters are written as visible ``\uXXXX``
escapes (``"\u202eliamE"`` cannot pose as a second "Email").

:func:`check_html` is the second wall: the report runner parses every
exported HTML file and refuses to publish one that holds a ``<script>``, an
``on*=`` attribute, a ``javascript:`` URL, an element that embeds or
redirects (``iframe``, ``object``, ``embed``, ``base``, ``meta refresh``), or
a ``src``/``href``/CSS ``url()`` that is not a ``data:`` URL or an in-page
``#anchor``, i.e. anything that runs code or fetches from another host.
"""

from __future__ import annotations

import html as _html
import re
import string
import unicodedata
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import pandas as pd

from journeylab.core.errors import JourneylabError

__all__ = [
    "display_text",
    "md",
    "html",
    "mpl",
    "html_table",
    "HtmlProblem",
    "UnsafeHtmlError",
    "check_html",
    "require_safe_html",
]

#: Characters written as visible escapes: bidirectional controls (they reorder
#: what a reader sees) and invisible characters that make two labels look alike.
_ALWAYS_VISIBLE = frozenset(
    "\u061c\u200b\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2066\u2067\u2068\u2069\ufeff"
)
#: Format characters that carry meaning in real text (joiners in emoji and Indic scripts).
_KEEP_FORMAT = frozenset("\u200c\u200d")
_LINE_BREAKS = frozenset("\n\r\t\v\f\x85\u2028\u2029")
_MD_PUNCTUATION = frozenset(string.punctuation) - set("<>&")


def display_text(value: Any) -> str:
    r"""Return ``value`` as one line of plain text with hidden characters made visible.

    Line breaks and tabs become spaces; control characters, bidirectional
    controls, zero-width and other format characters (except the joiners
    U+200C/U+200D used in emoji and many scripts) and lone surrogates are
    written as ``\uXXXX``. Missing values (None, NaN, NA) become ``"–"``.

    Examples
    --------
    >>> display_text("\u202eliamE")
    '\\u202eliamE'
    >>> display_text("two\nlines")
    'two lines'
    """
    if value is None or (not isinstance(value, str) and _is_missing(value)):
        return "–"
    text = value if isinstance(value, str) else str(value)
    out = []
    for ch in text:
        if ch in _LINE_BREAKS:
            out.append(" ")
        elif ch in _ALWAYS_VISIBLE or (
            ch not in _KEEP_FORMAT and unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp")
        ):
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def _is_missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def md(value: Any) -> str:
    r"""Escape a data value for Markdown prose (including a table cell).

    Examples
    --------
    >>> md("[x](javascript:alert(1))")
    '\\[x\\]\\(javascript\\:alert\\(1\\)\\)'
    >>> md("<b>")
    '&lt;b&gt;'
    >>> md("organic_search")
    'organic\\_search'
    """
    out = []
    for ch in display_text(value):
        if ch == "&":
            out.append("&amp;")
        elif ch == "<":
            out.append("&lt;")
        elif ch == ">":
            out.append("&gt;")
        elif ch in _MD_PUNCTUATION:
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def html(value: Any) -> str:
    """Escape a data value for HTML text or a double-quoted attribute value.

    ``<``, ``>``, ``&`` and ``"`` become entities (an apostrophe stays as it is,
    so never put the result in a single-quoted attribute).

    Examples
    --------
    >>> html('<img src=x onerror="alert(1)">')
    '&lt;img src=x onerror=&quot;alert(1)&quot;&gt;'
    """
    return _html.escape(display_text(value), quote=False).replace('"', "&quot;")


def mpl(value: Any) -> str:
    r"""Escape a data value for matplotlib text: ``$`` never starts mathtext.

    Matplotlib shows ``\$`` as a dollar sign, so the label reads as the data.

    Examples
    --------
    >>> mpl(r"$\undefinedmacro{x}$")
    '\\$\\undefinedmacro{x}\\$'
    """
    return display_text(value).replace("$", r"\$")


def html_table(frame: pd.DataFrame, **to_html: Any) -> str:
    """Render a DataFrame as an HTML table with every text cell and label escaped by :func:`html`.

    Keyword arguments go to :meth:`pandas.DataFrame.to_html` (``escape`` is
    always False here: the cells are escaped already).
    """
    to_html.pop("escape", None)
    shown = frame.copy()
    for column in shown.columns:
        values = shown[column]
        if (
            pd.api.types.is_string_dtype(values.dtype)
            or values.dtype == object
            or isinstance(values.dtype, pd.CategoricalDtype)
        ):
            shown[column] = [v if _is_missing_scalar(v) else html(v) for v in values.astype(object)]
    shown.columns = _escaped_index(shown.columns)
    shown.index = _escaped_index(shown.index)
    return shown.to_html(escape=False, **to_html)


def _is_missing_scalar(value: Any) -> bool:
    return not isinstance(value, str) and _is_missing(value)


def _escaped_index(index: pd.Index) -> pd.Index:
    if isinstance(index, pd.MultiIndex):
        return pd.MultiIndex.from_tuples(
            [tuple(html(v) if isinstance(v, str) else v for v in t) for t in index],
            names=[html(n) if isinstance(n, str) else n for n in index.names],
        )
    if isinstance(index, pd.RangeIndex) or not (
        index.dtype == object or pd.api.types.is_string_dtype(index.dtype)
    ):
        return index
    name = html(index.name) if isinstance(index.name, str) else index.name
    return pd.Index([html(v) if isinstance(v, str) else v for v in index], name=name)


# -- the second wall: exported HTML is checked before it is published ---------------

#: Attributes whose value is a URL the browser may fetch or navigate to.
_URL_ATTRIBUTES = frozenset(
    {
        "href",
        "src",
        "xlink:href",
        "action",
        "formaction",
        "poster",
        "background",
        "data",
        "codebase",
        "cite",
        "longdesc",
        "lowsrc",
        "dynsrc",
        "ping",
        "manifest",
        "srcset",
        "imagesrcset",
    }
)
#: Elements that run code, embed other documents or redirect the page.
_FORBIDDEN_ELEMENTS = frozenset(
    {"script", "iframe", "frame", "frameset", "object", "embed", "applet", "base", "portal"}
)
_SCRIPT_SCHEME = re.compile(r"(?:java|vb|live)script\s*:", re.I)
_CSS_URL = re.compile(r"url\(\s*(['\"]?)\s*([^'\")\s]*)", re.I)
_CSS_IMPORT = re.compile(r"@import\b", re.I)
_CSS_EXPRESSION = re.compile(r"expression\s*\(|-moz-binding|behavior\s*:", re.I)
_STRIP_URL = re.compile(r"[\x00-\x20\x7f]+")


@dataclass(frozen=True)
class HtmlProblem:
    """One reason an HTML document is not safe to share.

    Attributes
    ----------
    line : int
        1-based line of the offending tag.
    what : str
        What is wrong, e.g. ``"<img> attribute onerror= runs code"``.
    excerpt : str
        The start of the offending tag (escaped for a terminal).
    """

    line: int
    what: str
    excerpt: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.what} ({self.excerpt})"


class UnsafeHtmlError(JourneylabError, ValueError):
    """An exported HTML file would run code or fetch from another host.

    Attributes
    ----------
    source : str
        The file that was checked.
    problems : list of HtmlProblem
        Every problem found (the message lists the first five).
    """

    def __init__(self, source: str, problems: list[HtmlProblem]) -> None:
        self.source = source
        self.problems = list(problems)
        shown = "\n    ".join(str(p) for p in problems[:5])
        more = f"\n    … and {len(problems) - 5} more" if len(problems) > 5 else ""
        super().__init__(
            f"{source} is not safe to share: {len(problems)} problem"
            f"{'' if len(problems) == 1 else 's'}:\n    {shown}{more}\n"
            "  A data value or an output reached the HTML unescaped; pass data values through "
            "journeylab.core.safe_text (md, html, mpl) before displaying them."
        )


#: Attributes that navigate (a link, a form) rather than fetch an embedded resource.
_NAVIGATING = frozenset({"href", "xlink:href", "action", "formaction", "ping"})


def _url_problem(url: str, *, navigates: bool = False) -> str | None:
    """Why a URL is not allowed in a shared report, or None when it is.

    Embedded resources may only be ``data:`` URLs (figures); links may only
    point inside the page (``#anchor``).
    """
    cleaned = _STRIP_URL.sub("", _html.unescape(url)).lower()
    if _SCRIPT_SCHEME.match(cleaned):
        return "a script URL"
    if cleaned.startswith("#") or cleaned == "":
        return None
    if cleaned.startswith("data:") and not navigates:
        return None
    return "a URL outside the report (it would fetch or lead to another host)"


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[HtmlProblem] = []
        self._in_style = False

    def _add(self, what: str) -> None:
        line, _ = self.getpos()
        excerpt = (self.get_starttag_text() or "")[:120]
        self.problems.append(HtmlProblem(line, what, excerpt.encode("unicode_escape").decode()))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._check(tag, attrs)
        self._in_style = tag == "style"

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._check(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            for problem in _css_problems(data):
                self._add(f"<style> {problem}")

    def _check(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _FORBIDDEN_ELEMENTS:
            self._add(f"<{tag}> element (runs code or embeds another document)")
        values = {name: value or "" for name, value in attrs}
        if tag == "meta" and values.get("http-equiv", "").strip().lower() in {
            "refresh",
            "set-cookie",
        }:
            self._add("<meta http-equiv> redirects or sets cookies")
        if tag == "link":
            self._add("<link> element (loads a resource)")
        for name, value in values.items():
            if name.startswith("on"):
                self._add(f"<{tag}> attribute {name}= runs code")
            elif name in _URL_ATTRIBUTES:
                urls = (
                    [u.strip().split(" ")[0] for u in value.split(",")]
                    if "srcset" in name
                    else [value]
                )
                for url in urls:
                    problem = _url_problem(url, navigates=name in _NAVIGATING)
                    if problem:
                        self._add(f"<{tag}> {name}= is {problem}")
            elif name == "style":
                for problem in _css_problems(value):
                    self._add(f"<{tag}> style= {problem}")
            elif _SCRIPT_SCHEME.search(_STRIP_URL.sub("", _html.unescape(value))):
                self._add(f"<{tag}> attribute {name}= holds a script URL")


def _css_problems(css: str) -> list[str]:
    problems = []
    if _CSS_IMPORT.search(css):
        problems.append("imports a style sheet")
    if _CSS_EXPRESSION.search(css):
        problems.append("runs code (expression/binding)")
    for match in _CSS_URL.finditer(css):
        problem = _url_problem(match.group(2))
        if problem:
            problems.append(f"url() is {problem}")
    return problems


def check_html(text: str) -> list[HtmlProblem]:
    """List every reason ``text`` (an HTML document) is unsafe to share; empty when safe.

    Examples
    --------
    >>> check_html('<p>fine <img src="data:image/png;base64,AAAA"></p>')
    []
    >>> sorted(p.what for p in check_html('<img src="http://host/x.png" onerror="go()">'))
    ... # doctest: +NORMALIZE_WHITESPACE
    ['<img> attribute onerror= runs code',
     '<img> src= is a URL outside the report (it would fetch or lead to another host)']
    """
    checker = _Checker()
    checker.feed(text)
    checker.close()
    return checker.problems


def require_safe_html(text: str, source: str) -> None:
    """Raise :class:`UnsafeHtmlError` naming ``source`` unless :func:`check_html` finds nothing."""
    problems = check_html(text)
    if problems:
        raise UnsafeHtmlError(source, problems)
