"""The analysis notebooks as readers get them: run by the report runner on a small sample.

Each notebook runs once (module-scoped) through :func:`journeylab.reports.run_report`
on the bundled sample with few users and few bootstrap replicates; the tests read the
published ``metrics.json`` and ``report.html``.
"""

from __future__ import annotations

import json
import math
import re

import pytest

from conftest import shared_file
from journeylab import cli, reports

MONTH = "2026-10"
SMALL = {"n_users": 2000, "seed": 7}
STAGES = {"awareness", "consideration", "purchase", "retention", "advocacy"}


def _run(tmp_path_factory, name: str, **params):
    out = tmp_path_factory.mktemp(name)
    run = reports.run_report(name, month=MONTH, params={**SMALL, **params}, out_dir=out)
    metrics = json.loads((run.folder / "metrics.json").read_text())
    return run, metrics, run.html.read_text()


def _figures(html: str) -> int:
    return len(re.findall(r"<img[^>]+src=\"data:image/png;base64,", html))


def _for_readers(html: str) -> None:
    assert "import journeylab" not in html  # no code
    assert "<script" not in html  # static, works offline
    assert not re.search(r"\bu\d{7,}\b", html)  # no raw user ids
    assert "/tmp/" not in html and "/work/" not in html
    assert "Traceback" not in html


@pytest.fixture(scope="module")
def journey_map(tmp_path_factory):
    return _run(tmp_path_factory, "journey_map")


@pytest.fixture(scope="module")
def attribution(tmp_path_factory):
    return _run(tmp_path_factory, "attribution", n_boot=30)


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    return _run(tmp_path_factory, "experiment_readout")


@pytest.fixture(scope="module")
def retention(tmp_path_factory):
    return _run(tmp_path_factory, "retention_clv_voice")


def test_journey_map_metrics(journey_map):
    _, m, _ = journey_map
    assert m["month"] == MONTH
    assert m["visitors"] > 0 and 0 < m["bookings"] <= m["journeys"]
    assert 0 < m["journey_conversion_rate"] < 1
    assert m["revenue"] > 0
    assert " > " in m["top_path"] or m["top_path"].isidentifier()
    assert 2 <= m["personas"] <= 8
    assert m["significant_device_differences"] >= 0
    assert 1 <= len(m["top_pain_points"]) <= 3
    values = [p["value_at_stake"] for p in m["top_pain_points"]]
    assert values == sorted(values, reverse=True) and values[0] > 0


def test_journey_map_html(journey_map):
    _, _, html = journey_map
    for heading in (
        "Journey map: stages and their KPIs",
        "Booking funnel",
        "Where did they go instead?",
        "Paths and flows",
        "Transition matrix",
        "Journey flow (Sankey)",
        "Personas",
        "Mobile vs desktop journeys",
        "Pain points ranked by value at stake",
    ):
        assert heading in html, heading
    # KPI heatmap, funnel, where-instead, top paths, transitions, Sankey, personas, diff, pains
    assert _figures(html) >= 9
    _for_readers(html)


def test_attribution_metrics(attribution):
    _, m, _ = attribution
    assert m["month"] == MONTH and m["n_boot"] == 30
    assert 0 < m["bookings"] <= m["journeys"]
    assert set(m["top_channel"]) == {
        "first_touch",
        "last_touch",
        "linear",
        "position",
        "markov",
        "shapley",
    }
    # Markov credit shares out exactly the bookings of the month's journeys
    assert math.isclose(sum(m["markov_credit"].values()), m["bookings"], rel_tol=1e-6)
    for channel, (low, high) in m["markov_credit_interval"].items():
        assert low <= high and low >= 0, channel
    assert m["spend"] > 0
    assert all(v >= 0 for v in m["roas_markov"].values())
    assert set(m["roas_markov"]) <= set(m["markov_credit"])
    assert {r["model"] for r in m["reallocation"]} <= set(m["top_channel"])


def test_attribution_html(attribution):
    _, _, html = attribution
    for heading in (
        "Journeys and paths this month",
        "Model comparison",
        "Sequence credit",
        "Cost per booking and return on spend",
        "Budget reallocation",
        "Caveats",
    ):
        assert heading in html, heading
    assert _figures(html) >= 3  # credit by model, sequence credit, ROAS
    _for_readers(html)


def test_experiment_metrics(experiment):
    _, m, _ = experiment
    assert m["experiment"] == "short_form vs control"
    assert m["srm_ok"] is True  # the sample's split is intact (50/50 as designed)
    arms = m["users_per_variant"]
    assert set(arms) == {"control", "short_form"} and sum(arms.values()) == m["users"]
    assert abs(arms["control"] - arms["short_form"]) / m["users"] < 0.05
    booked = m["booked"]
    assert 0 < booked["control"] < 1 and 0 < booked["treatment"] < 1
    assert math.isclose(booked["abs_lift"], booked["treatment"] - booked["control"], abs_tol=1e-9)
    assert booked["ci"][0] < booked["abs_lift"] < booked["ci"][1]
    assert 0 < booked["p_value_holm"] <= 1 and 0 < booked["prob_beats_control"] < 1
    revenue = m["revenue_per_user"]
    assert revenue["control"] > 0 and revenue["ci"][0] < revenue["abs_lift"] < revenue["ci"][1]
    assert set(m["cuped_variance_reduction"]) == {"booked", "revenue"}
    assert m["users_needed_per_variant"] > 100


def test_experiment_html(experiment):
    _, _, html = experiment
    for heading in (
        "Trust checks",
        "Readout",
        "Forest plot",
        "CUPED",
        "Sequential monitoring",
        "Bayesian readout",
        "Power and sample size",
        "Verdict",
    ):
        assert heading in html, heading
    assert "sample ratio mismatch" in html
    assert html.index("Trust checks") < html.index("Forest plot")  # checks come first
    assert _figures(html) >= 3  # forest plot, sequential monitoring, power curve
    _for_readers(html)


def test_retention_clv_voice_metrics(retention):
    _, m, _ = retention
    assert m["customers"] > 0 and m["purchases"] >= m["customers"]
    assert 0 < m["repeat_rate"] < 1 and 0 < m["churn_rate"] < 1
    assert m["clv_mean"] > 0 and m["clv_median"] > 0
    assert set(m["bgnbd"]) == {"r", "alpha", "a", "b"} and all(v > 0 for v in m["bgnbd"].values())
    assert set(m["gamma_gamma"]) == {"p", "q", "v"}
    assert all(v >= 0 for v in m["clv_by_channel"].values())
    assert all(v > 0 for v in m["clv_to_cac"].values())
    assert set(m["nps_by_stage"]) <= STAGES
    assert all(-100 <= v <= 100 for v in m["nps_by_stage"].values())
    assert all(0 <= v <= 1 for v in m["csat_by_stage"].values())
    # the sample plants its satisfaction dip at the purchase stage
    assert m["worst_stage"] == "purchase"
    assert min(m["nps_by_stage"], key=m["nps_by_stage"].get) == "purchase"
    assert 0.5 < m["propensity_auc"] <= 1


def test_retention_clv_voice_html(retention):
    _, _, html = retention
    for heading in (
        "Cohorts",
        "Repeat purchases and churn",
        "Lifecycle states",
        "Customer lifetime value",
        "Value by acquisition channel, and CLV:CAC",
        "Voice of the customer",
        "Sentiment and themes, in English and Korean",
        "Emotion curve beside the funnel",
        "Who is likely to book next month?",
    ):
        assert heading in html, heading
    assert "Korean" in html
    # cohorts, lifecycle, BG/NBD, CLV histogram, CLV by channel, NPS, CSAT, sentiment,
    # themes by language and by stage, emotion curve, propensity calibration
    assert _figures(html) >= 12
    _for_readers(html)


def test_a_misspelt_parameter_is_refused_before_anything_runs():
    with pytest.raises(reports.ParameterError, match=r"no parameter 'n_bot'.*n_boot"):
        reports.validate_parameters("attribution", {"n_bot": 5})
    with pytest.raises(
        reports.ParameterError, match=r"treatment_share == 'half', must be a number"
    ):
        reports.validate_parameters("experiment_readout", {"treatment_share": "half"})


@pytest.mark.parametrize(
    "name", ["journey_map", "attribution", "experiment_readout", "retention_clv_voice"]
)
def test_parameters_are_documented(name):
    specs = reports.notebook_parameters(name)
    assert {"month", "data", "seed", "n_users"} <= set(specs)
    assert specs["month"].default.strip("'\"") == MONTH
    assert all(spec.help for spec in specs.values())


# --------------------------------------------------------------------------- Online Retail
@pytest.fixture(scope="module")
def retention_online_retail(tmp_path_factory):
    """The report on UCI Online Retail for 2011-11, run as a scheduler would: the command line.

    The data folder holds one events table: every invoice line with a customer id as a
    'booking_completed' event worth Quantity x UnitPrice (refunds negative), so the notebook
    takes its purchases from the event log.
    """
    import duckdb

    source = shared_file("online_retail", "online_retail_by_day_concat.csv.gz")
    folder = tmp_path_factory.mktemp("online_retail_data")
    duckdb.sql(
        "SELECT CAST(CAST(CustomerID AS BIGINT) AS VARCHAR) AS user_id, InvoiceDate AS timestamp, "
        "'booking_completed' AS event, Quantity * UnitPrice AS value "
        f"FROM read_csv('{source}', types={{'InvoiceNo': 'VARCHAR', 'StockCode': 'VARCHAR'}}) "
        "WHERE CustomerID IS NOT NULL"
    ).write_parquet(str(folder / "events.parquet"))
    out = tmp_path_factory.mktemp("online_retail_reports")
    code = cli.main(
        ["report", "retention_clv_voice", "--month", "2011-11", "--data", str(folder), "--out", str(out), "--quiet"]
    )
    published = out / "2011-11" / "retention_clv_voice"
    return code, json.loads((published / "metrics.json").read_text()), (published / "report.html").read_text()


@pytest.mark.slow
@pytest.mark.shared_data
def test_online_retail_report_publishes_with_its_caveats(retention_online_retail):
    code, m, html = retention_online_retail
    assert code == cli.EXIT_OK
    # the reviewer's figures: 4,297 customers, a boundary BG/NBD, 33.9% churned
    assert m["churn_rate"] == pytest.approx(0.339, abs=5e-4)
    assert m["bgnbd_status"] == "boundary" and m["bgnbd"]["a"] < 1e-3
    assert m["clv_mean"] is None and m["clv_median"] is None
    assert m["clv_withheld"].startswith("not shown: the dropout parameter is at its boundary (a → 0, b → ∞)")
    assert "expected to be worth" not in html and "probability 0.0%" not in html
    assert "Status: boundary. NOT TO BE TRUSTED AS IS: a → 0, b → ∞" in html
    assert "Caveat for the figure above: the dropout parameter is at its boundary" in html
    # the holdout check ran, compared the three models and shows its table and figure
    holdout = m["holdout"]
    assert holdout["calibration_end"] == "2011-08-31"
    assert set(holdout["models"]) == {"bgnbd", "mbgnbd", "pareto_nbd"}
    assert all(row["status"] == "boundary" for row in holdout["models"].values())
    assert all(row["actual_total"] == 4265 for row in holdout["models"].values())
    assert "Does the purchase model predict months it has not seen?" in html
    assert "Calibration/holdout check of the purchase models" in html and "MAE per group" in html
    # propensity cannot be fitted on purchase-only data: its section says why, in one line
    assert m["propensity_status"] == "not_computable"
    assert m["propensity_reason"].startswith("No user is at risk at the snapshot dates")
    assert "Not computable:</strong> No user is at risk at the snapshot dates (2011-07-01 to 2011-11-01)" in html
    # cohorts, lifecycle, BG/NBD, CLV histogram, holdout check
    assert _figures(html) >= 5
    _for_readers(html)
