"""The notebooks as users meet them: well-formed, paired, and run end to end by Papermill."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jupytext
import nbformat
import pytest

from journeylab.reports import runner as reports

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))


def test_there_are_notebooks():
    assert "monthly_report" in NAMES


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_clean_and_paired(name):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    # typed, commented literals only
    for line in tagged[0].source.splitlines():
        assert re.match(r"^\w+: (str|int|float|bool) = .+  # .+$", line), line
    assert not any(c.get("outputs") for c in code), "outputs are stripped before commit"
    assert not any(c.get("execution_count") for c in code)
    for c in code:
        for line in c.source.splitlines():
            assert not line.lstrip().startswith(("!", "%%bash", "%sx")), line
    twin = NOTEBOOKS / f"{name}.py"
    assert twin.exists(), "every notebook has a py:percent twin"
    paired = jupytext.read(twin)
    assert [c.source for c in paired.cells] == [c.source for c in nb.cells], (
        f"{name}.ipynb and {name}.py differ: run `jupytext --sync notebooks/{name}.ipynb`"
    )


@pytest.fixture(scope="module")
def monthly(tmp_path_factory):
    """September then October of a small sample, so October has a previous month."""
    out = tmp_path_factory.mktemp("reports")
    params = {"n_users": 3000, "seed": 11}
    september = reports.run_report("monthly_report", month="2026-09", params=params, out_dir=out)
    october = reports.run_report("monthly_report", month="2026-10", params=params, out_dir=out)
    return september, october


def test_monthly_report_runs_end_to_end(monthly):
    folder = monthly[1].folder
    assert folder.name == "monthly_report" and folder.parent.name == "2026-10"
    for name in ("executed.ipynb", "report.html", "report_with_code.html", "metrics.json", "run.json"):
        assert (folder / name).exists(), name
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["month"] == "2026-10"
    assert metrics["visitors"] > 0 and metrics["bookings"] > 0
    assert 0 < metrics["booking_rate"] < 1
    assert len(metrics["top_pain_points"]) >= 1
    run = json.loads((folder / "run.json").read_text())
    assert run["seed"] == 11
    assert run["row_counts"]["events"] > 1000
    assert run["data"]["source"].startswith("bundled sample")


def test_monthly_report_html_is_for_readers(monthly):
    html = monthly[1].html.read_text()
    assert "Executive summary" in html
    assert "Top pain points" in html
    assert html.count("data:image/png;base64") >= 3  # journey map, funnel, pain points
    assert "import journeylab" not in html  # no code
    assert "<script" not in html  # static, works offline
    # no raw user ids and no file-system paths
    assert not re.search(r"\bu\d{7}\b", html)
    assert "/tmp/" not in html and "/work/" not in html


def test_month_over_month_reads_previous_metrics(monthly):
    september, october = monthly
    sept = json.loads((september.folder / "metrics.json").read_text())
    html = october.html.read_text()
    assert "vs 2026-09" in html
    assert "no previous report" in september.html.read_text()
    change = (october.metrics["visitors"] - sept["visitors"]) / sept["visitors"]
    assert f"{change:+.1%} vs 2026-09" in html


def test_sentinel_secret_and_pii_never_reach_any_output(tmp_path):
    """SEC-2: a secret-looking parameter and a sentinel PII row, then every output scanned."""
    import pandas as pd

    from journeylab.datasets.sample import make_sample, write_sample

    secret = "SENTINEL-KEY-91c4e7"
    pii_id, pii_email = "pii-sentinel-4242", "sentinel.person@example.com"
    sample = make_sample(seed=13, n_users=1500)
    events = sample.events.assign(email="")
    first = events.iloc[[0]].copy()
    sentinel = pd.concat([first] * 3).assign(
        user_id=pii_id,
        email=pii_email,
        event=["site_visit", "booking_started", "booking_completed"],
        timestamp=pd.to_datetime(["2026-10-03 10:00:00", "2026-10-03 10:05:00", "2026-10-03 10:09:00"], utc=True),
        value=[None, None, 420.0],
    )
    sample.events = pd.concat([events, sentinel], ignore_index=True)
    write_sample(sample, tmp_path / "data")
    run = reports.run_report(
        "monthly_report",
        month="2026-10",
        data=str(tmp_path / "data"),
        params={"pseudonymize": True, "pseudonym_key": secret},
        out_dir=tmp_path / "reports",
    )
    assert run.metrics["bookings"] > 0
    outputs = sorted(run.folder.iterdir())
    assert {p.name for p in outputs} >= {"executed.ipynb", "report.html", "metrics.json", "run.json"}
    for path in outputs:
        text = path.read_text(errors="replace")
        for sentinel_text in (secret, pii_id, pii_email):
            assert sentinel_text not in text, f"{sentinel_text} found in {path.name}"
        if path.name != "run.json":  # run.json names the data folder, by name only
            assert str(tmp_path) not in text, path.name
    assert json.loads((run.folder / "run.json").read_text())["parameters"]["pseudonym_key"] == "<redacted>"
