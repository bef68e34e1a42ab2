"""The published report opened in a real browser (headless Chromium), as a reader would.

Needs Debian's ``chromium`` (installed by ``.ci/run``) and the ``playwright``
Python package, which drives that browser (no browser download). Skips with a
reason when either is missing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from journeylab.reports import runner as reports

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


SECTIONS = (
    "Executive summary",
    "Journey map",
    "Stage KPIs",
    "Findings",
    "Journey and funnel",
    "Channels",
    "Experiments",
    "Retention and value",
    "Voice of the customer",
    "Data quality",
)


@pytest.fixture(scope="module")
def report_html(tmp_path_factory):
    out = tmp_path_factory.mktemp("browser-reports")
    run = reports.run_report(
        "monthly_report", month="2026-10", params={"n_users": 2000, "seed": 5}, out_dir=out
    )
    return run.html


@pytest.fixture(scope="module")
def ecommerce_run(tmp_path_factory):
    """The online-shop sample, configured only by its project file (other events, stages and columns)."""
    from importlib import resources

    folder = tmp_path_factory.mktemp("shop")
    text = resources.files("journeylab.datasets").joinpath("ecommerce.yaml").read_text("utf-8")
    config = folder / "journeylab.yaml"
    config.write_text(text.replace("n_users: 20000", "n_users: 6000"), encoding="utf-8")
    return reports.run_report(
        "monthly_report", month="2026-10", config=config, out_dir=folder / "reports"
    )


def _open(html: Path, shot: str, width: int = 1280):
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package drives Chromium"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": width, "height": 1600})
        problems: list[str] = []
        requests: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on(
            "request",
            lambda r: requests.append(r.url) if not r.url.startswith(("file:", "data:")) else None,
        )
        page.goto(html.as_uri(), wait_until="load")
        images = page.evaluate(
            "Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
        )
        headings = page.evaluate(
            "Array.from(document.querySelectorAll('h1,h2')).map(h => h.textContent)"
        )
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        page.screenshot(path=str(ARTIFACTS / shot), full_page=True)
        browser.close()
    return problems, requests, images, headings, overflow


def test_second_vertical_report_shows_every_section_from_its_project_file(ecommerce_run):
    """The online-shop report, from its project file alone: every section shown, in a browser, on a phone too."""
    if CHROMIUM is None:
        pytest.skip(
            "headless Chromium not found: install Debian's 'chromium' package (.ci/run does)"
        )
    metrics = ecommerce_run.metrics
    assert metrics["project"] == "Lumen & Loom (sample)"
    assert all(v == "shown" for k, v in metrics["sections"].items() if k != "findings_over_time"), (
        metrics["sections"]
    )
    assert {k["stage"] for k in metrics["kpis"]} >= {"awareness", "consideration", "purchase"}
    problems, requests, images, headings, _ = _open(
        ecommerce_run.html, "monthly_report_ecommerce.png"
    )
    assert problems == [] and requests == []
    assert all(complete and w > 0 for complete, w, _h in images)
    text = " ".join(headings)
    for section in SECTIONS:
        assert section in text, section
    html = ecommerce_run.html.read_text()
    assert "€" in html  # the project's currency, not the sample's dollars
    for word in ("booking", "site_visit", "Booking completed"):
        assert word not in html, word
    # readable at phone width: nothing wider than the screen but the figures, which scale down
    _, _, _, _, overflow = _open(
        ecommerce_run.html, "monthly_report_ecommerce_phone.png", width=390
    )
    assert overflow <= 5


def test_report_renders_offline_without_errors(report_html):
    if CHROMIUM is None:
        pytest.skip(
            "headless Chromium not found: install Debian's 'chromium' package (.ci/run does)"
        )
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package drives Chromium"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1600})
        problems: list[str] = []
        requests: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on(
            "request",
            lambda r: requests.append(r.url) if not r.url.startswith(("file:", "data:")) else None,
        )
        page.goto(report_html.as_uri(), wait_until="load")
        images = page.evaluate(
            "Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
        )
        headings = page.evaluate(
            "Array.from(document.querySelectorAll('h1,h2')).map(h => h.textContent)"
        )
        page.screenshot(path=str(ARTIFACTS / "monthly_report_top.png"))
        browser.close()
    assert problems == []
    assert requests == [], "the report must not fetch anything from the network"
    figures = [img for img in images if img[1] > 50]
    assert len(figures) >= 3
    assert all(complete and w > 0 and h > 0 for complete, w, h in images), images
    assert any("Executive summary" in h for h in headings), headings
    assert (ARTIFACTS / "monthly_report_top.png").stat().st_size > 10_000
