"""Property: no segment or channel name can make a report run code or fetch anything.

Hypothesis draws device (segment) and channel names from arbitrary Unicode and
from HTML, Markdown and LaTeX payloads, puts them into a small sample, and
builds the monthly report's sections from them with the report's own code:
the executive summary (Markdown), the funnel and findings tables (HTML) and
their figures (PNG, drawn by matplotlib). The notebook is exported by
:func:`journeylab.reports.export_html`, the path a published report takes,
which refuses any page :func:`journeylab.core.safe_text.check_html` objects to;
the page is then opened in headless Chromium, which must make no request and
run no script, and must show each name as text.
"""

from __future__ import annotations

import base64
import io
import re

import matplotlib.pyplot as plt
import nbformat
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeylab.core.safe_text import check_html, display_text
from journeylab.datasets import sample_project, sample_stage_map
from journeylab.journeys.funnels import funnel
from journeylab.maps.findings import find
from journeylab.maps.journey_maps import journey_map
from journeylab.reports import monthly, sections
from journeylab.reports.prose import Money
from journeylab.reports.runner import export_html

MONTH = "2026-10"
TITLE = "Property report"
PAYLOADS = [
    '<img src="http://127.0.0.1:9/p.png" onerror="document.title=\'owned\'">',
    "<script>window.__pwned = 1</script>",
    '"><svg onload="window.__pwned=1">',
    "<iframe src=http://127.0.0.1:9/></iframe>",
    "<style>@import url(http://127.0.0.1:9/s.css)</style>",
    "![x](http://127.0.0.1:9/x.png)",
    "[click](javascript:window.__pwned=1)",
    "<http://127.0.0.1:9/auto>",
    "http://127.0.0.1:9/bare",
    "*em* __strong__ `code` | cell |",
    "# heading",
    r"$\undefinedmacro{x}$",
    r"$x^{$",
    "$$",
    r"\$5 and $6",
    r"\frac{1}{0}",
    "&lt;script&gt;",
    "\u202eliamE",
    "a\x00b\nc",
]
NAME = st.one_of(
    st.sampled_from(PAYLOADS),
    st.text(min_size=1, max_size=20),
    st.tuples(st.sampled_from(PAYLOADS), st.text(max_size=6)).map("".join),
)


@pytest.fixture(scope="module")
def sample():
    from journeylab.datasets.sample import make_sample

    return make_sample(seed=3, n_users=1500)


@pytest.fixture(scope="module")
def browser():
    from test_report_browser import CHROMIUM, FLAGS

    if CHROMIUM is None:
        pytest.skip("headless Chromium not found: install Debian's 'chromium' package")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package drives Chromium"
    )
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


def _png(ax) -> dict:
    buffer = io.BytesIO()
    ax.figure.savefig(buffer, format="png", dpi=60)
    plt.close(ax.figure)
    return nbformat.v4.new_output(
        "display_data",
        data={"image/png": base64.b64encode(buffer.getvalue()).decode(), "text/plain": "<Figure>"},
    )


def _html(result) -> dict:
    return nbformat.v4.new_output(
        "display_data", data={"text/html": result._repr_html_(), "text/plain": "result"}
    )


def _report(sample, devices: list[str], channels: list[str]) -> nbformat.NotebookNode:
    device_map = dict(zip(["mobile", "desktop", "tablet"], devices, strict=True))
    channel_map = dict(zip(["paid_search", "social", "display"], channels, strict=True))
    events = sample.events.assign(
        device=sample.events["device"].map(device_map),
        channel=sample.events["channel"].replace(channel_map),
    )
    users = sample.users.assign(
        device=sample.users["device"].map(device_map),
        acquisition_channel=sample.users["acquisition_channel"].replace(channel_map),
    )
    stages = sample_stage_map()
    in_month = events[events["timestamp"].dt.strftime("%Y-%m") == MONTH]
    booking = funnel(
        in_month,
        ["site_visit", "booking_started", "booking_completed"],
        window="7D",
        segment="device",
        min_users=1,
    )
    project = sample_project()
    labels = {
        **project.labels,
        **{v: v for v in [*devices, *channels]},
    }  # data values as their own labels
    found = find(
        events,
        stages,
        month=MONTH,
        conversion="booking_completed",
        funnel=["site_visit", "booking_started", "booking_completed"],
        segments=["device", "channel"],
        users=users,
        labels=labels,
        min_users=5,
        fdr=0.5,
    )
    by_device = journey_map(
        events, stages, month=MONTH, users=users, segment="device", compare=None, min_users=1
    )
    head = sections.headline(events, project, MONTH)
    kpis = monthly.stage_kpis(events, project, MONTH)
    summary = sections.executive_summary(project, MONTH, head, kpis, found, {}, Money("$"))
    pains = found
    cell = nbformat.v4.new_code_cell("# computed in the test")
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data", data={"text/markdown": summary, "text/plain": "summary"}
        ),
        _html(booking),
        _png(booking.plot()),
        _html(pains),
        _png(pains.plot()),
        _png(by_device.plot(kind="conversion")),
    ]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Report"), cell]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


def _squash(text: str) -> str:
    return re.sub(r"[ \t\n\r\f]+", " ", text).strip()


@pytest.mark.filterwarnings("ignore:Glyph")
@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    devices=st.lists(NAME, min_size=3, max_size=3, unique=True),
    channels=st.lists(NAME, min_size=3, max_size=3, unique=True),
)
def test_any_segment_or_channel_name_gives_a_safe_static_report(
    sample, browser, tmp_path, devices, channels
):
    path = tmp_path / "report.html"
    export_html(
        _report(sample, devices, channels), path, with_code=False, title=TITLE
    )  # raises if unsafe
    page_text = path.read_text()
    assert check_html(page_text) == []
    page = browser.new_page()
    requests: list[str] = []
    dialogs: list[str] = []
    errors: list[str] = []
    page.on(
        "request",
        lambda r: requests.append(r.url) if not r.url.startswith(("file:", "data:")) else None,
    )
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri(), wait_until="load")
    state = page.evaluate(
        "({title: document.title, scripts: document.scripts.length, pwned: typeof window.__pwned,"
        " handlers: [...document.querySelectorAll('*')]"
        ".filter(e => [...e.attributes].some(a => a.name.startsWith('on'))).length,"
        " frames: document.querySelectorAll('iframe,object,embed').length,"
        " remote: [...document.querySelectorAll('[src],[href]')]"
        ".map(e => e.getAttribute('src') || e.getAttribute('href'))"
        "   .filter(u => !u.startsWith('data:') && !u.startsWith('#')).length,"
        " text: document.body.innerText})"
    )
    page.close()
    assert requests == [] and dialogs == [] and errors == []
    assert state["title"] == TITLE and state["pwned"] == "undefined"
    assert (
        state["scripts"] == 0
        and state["handlers"] == 0
        and state["frames"] == 0
        and state["remote"] == 0
    )
    shown = _squash(state["text"])
    for name in devices:  # every device is a row of the funnel table, shown as its own text
        assert _squash(display_text(name)) in shown, name
