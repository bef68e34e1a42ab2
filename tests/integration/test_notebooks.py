"""The notebooks as users meet them: well-formed, paired, and run end to end by Papermill."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jupytext
import nbformat
import pytest

from journeylab.reports import runner as reports
from journeylab.reports.monthly import validate_metrics

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
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
    params = {"n_users": 6000, "seed": 11}
    september = reports.run_report("monthly_report", month="2026-09", params=params, out_dir=out)
    october = reports.run_report("monthly_report", month="2026-10", params=params, out_dir=out)
    return september, october


def test_monthly_report_runs_end_to_end(monthly):
    folder = monthly[1].folder
    assert folder.name == "monthly_report" and folder.parent.name == "2026-10"
    for name in (
        "executed.ipynb",
        "report.html",
        "report_with_code.html",
        "metrics.json",
        "run.json",
    ):
        assert (folder / name).exists(), name
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["month"] == "2026-10"
    assert validate_metrics(metrics) == []
    head = metrics["headline"]
    assert head["users"] > 0 and head["conversions"] > 0
    assert 0 < head["conversion_rate"] < 1
    assert {k["stage"] for k in metrics["kpis"]} == {
        "awareness",
        "consideration",
        "purchase",
        "retention",
        "advocacy",
    }
    # every section of the whole journey is shown on the sample
    assert set(metrics["sections"]) >= {
        "journey_map",
        "stage_kpis",
        "findings",
        "funnel",
        "channels",
        "experiments",
        "retention",
        "voice",
    }
    assert all(v == "shown" for k, v in metrics["sections"].items() if k != "findings_over_time")
    run = json.loads((folder / "run.json").read_text())
    assert run["seed"] == 11
    assert run["row_counts"]["events"] > 1000
    assert run["data"]["source"].startswith("bundled sample")


def test_monthly_report_html_is_for_readers(monthly):
    html = monthly[1].html.read_text()
    for heading in (
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
    ):
        assert html.count(f">{heading}<") >= 1, heading
    assert html.count(">Data quality<") == 2  # the contents and its one heading
    assert "Top findings by value at stake" in html
    assert (
        html.count("data:image/png;base64") >= 8
    )  # canvas, trend, findings, funnel, channels, ...
    assert "import journeylab" not in html  # no code
    assert "<script" not in html  # static, works offline
    # no raw user ids and no file-system paths
    assert not re.search(r"\bu\d{7}\b", html)
    assert "/tmp/" not in html and "/work/" not in html


def test_month_over_month_comes_from_the_data(monthly):
    september, october = monthly
    sept = json.loads((september.folder / "metrics.json").read_text())["headline"]
    octo = october.metrics["headline"]
    # the previous month's figures are computed from the data, not read from an earlier report
    assert octo["users_previous"] == sept["users"]
    assert octo["conversions_previous"] == sept["conversions"]
    html = october.html.read_text()
    assert "Sep 2026" in html and "Oct 2026" in html
    change = octo["users"] / sept["users"] - 1
    assert f"{change:+.1%}" in html
    # counts reconcile: the conversions of the summary are those the funnel section splits
    text = re.sub(r"<[^>]+>", "", html)
    assert f"Of the month's {octo['conversions']:,} conversions" in text


def test_consecutive_reports_keep_a_ledger_and_show_the_fix_beside_its_finding(monthly):
    """Two months in one reports folder: findings.jsonl follows each finding by a stable id, and the
    experiment the project file links to the mobile booking gap is shown before/during/after."""
    from journeylab.actions.ledger_file import read_ledger

    september, october = monthly
    root = october.folder.parents[1]
    ledger = read_ledger(root)
    assert set(ledger["month"]) == {"2026-09", "2026-10"}
    for month, run in (("2026-09", september), ("2026-10", october)):
        ids = set(ledger.loc[ledger["month"] == month, "id"].dropna())
        assert ids == {f["id"] for f in run.metrics["findings"]}
    mobile = "segment_gap:booking_started→booking_completed:device=mobile"
    assert mobile in set(ledger.loc[ledger["month"] == "2026-10", "id"]), (
        "the planted mobile gap is found"
    )
    text = re.sub(r"<[^>]+>", " ", october.html.read_text())
    assert (
        "Findings over time" in text
        and "not shown" not in text.split("Findings over time")[1][:300]
    )
    timeline = text.split("Short mobile form")[1]
    assert "during" in timeline[:3000] and "2026-10" in timeline[:3000]


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
        timestamp=pd.to_datetime(
            ["2026-10-03 10:00:00", "2026-10-03 10:05:00", "2026-10-03 10:09:00"], utc=True
        ),
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
    assert run.metrics["headline"]["conversions"] > 0
    outputs = sorted(run.folder.iterdir())
    assert {p.name for p in outputs} >= {
        "executed.ipynb",
        "report.html",
        "metrics.json",
        "run.json",
    }
    for path in outputs:
        text = path.read_text(errors="replace")
        for sentinel_text in (secret, pii_id, pii_email):
            assert sentinel_text not in text, f"{sentinel_text} found in {path.name}"
        if path.name != "run.json":  # run.json names the data folder, by name only
            assert str(tmp_path) not in text, path.name
    assert (
        json.loads((run.folder / "run.json").read_text())["parameters"]["pseudonym_key"]
        == "<redacted>"
    )
