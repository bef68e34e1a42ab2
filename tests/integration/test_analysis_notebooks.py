"""The analysis notebooks as readers get them: run by the report runner on a small sample.

Each notebook runs once (module-scoped) through :func:`journeylab.reports.runner.run_report`
on the bundled sample with few users and few bootstrap replicates; the tests read the
published ``metrics.json`` and ``report.html``.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest

from conftest import shared_file
from journeylab.core.errors import ParameterError
from journeylab.reports import cli
from journeylab.reports import runner as reports

MONTH = "2026-10"
SMALL = {"n_users": 2000, "seed": 7}
STAGES = {"awareness", "consideration", "purchase", "retention", "advocacy"}
UPLIFT_KEY = "uplift-notebook-key-6f2b9c"


def shop_config(tmp_path_factory) -> str:
    """The online-shop sample's project file, with a small generated sample (3,000 users)."""
    from journeylab.datasets import sample as datasets

    text = (Path(datasets.__file__).parent / "ecommerce.yaml").read_text(encoding="utf-8")
    assert "n_users: 20000" in text
    path = tmp_path_factory.mktemp("shop_project") / "journeylab.yaml"
    path.write_text(text.replace("n_users: 20000", "n_users: 3000"), encoding="utf-8")
    return str(path)


def _run_shop(tmp_path_factory, name: str, **params):
    """Run a notebook on the online-shop sample from its project file only."""
    out = tmp_path_factory.mktemp(f"{name}_shop")
    run = reports.run_report(
        name, month=MONTH, params=params, config=shop_config(tmp_path_factory), out_dir=out
    )
    metrics = json.loads((run.folder / "metrics.json").read_text())
    return run, metrics, run.html.read_text()


def _run(tmp_path_factory, name: str, **params):
    out = tmp_path_factory.mktemp(name)
    run = reports.run_report(name, month=MONTH, params={**SMALL, **params}, out_dir=out)
    metrics = json.loads((run.folder / "metrics.json").read_text())
    return run, metrics, run.html.read_text()


def _figures(html: str) -> int:
    return len(re.findall(r"<img[^>]+src=\"data:image/png;base64,", html))


def _visible(html: str) -> str:
    """The text a reader sees: no styles, scripts, tags or images."""
    html = re.sub(r"(?s)<style.*?</style>|<script.*?</script>|<img[^>]*>", " ", html)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


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
def journey_map_shop(tmp_path_factory):
    return _run_shop(tmp_path_factory, "journey_map")


@pytest.fixture(scope="module")
def attribution(tmp_path_factory):
    return _run(tmp_path_factory, "attribution", n_boot=30)


@pytest.fixture(scope="module")
def attribution_open_counted(tmp_path_factory):
    return _run(tmp_path_factory, "attribution", n_boot=30, include_censored=True)


@pytest.fixture(scope="module")
def attribution_shop(tmp_path_factory):
    return _run_shop(tmp_path_factory, "attribution", n_boot=30, include_censored=True)


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    return _run(tmp_path_factory, "experiment_readout")


@pytest.fixture(scope="module")
def experiment_shop(tmp_path_factory):
    return _run_shop(tmp_path_factory, "experiment_readout")


@pytest.fixture(scope="module")
def retention(tmp_path_factory):
    return _run(tmp_path_factory, "retention_clv_voice")


@pytest.fixture(scope="module")
def retention_shop(tmp_path_factory):
    return _run_shop(tmp_path_factory, "retention_clv_voice")


@pytest.fixture(scope="module")
def uplift(tmp_path_factory):
    return _run(tmp_path_factory, "uplift_and_audiences", n_boot=50, pseudonym_key=UPLIFT_KEY)


@pytest.fixture(scope="module")
def uplift_shop(tmp_path_factory):
    return _run_shop(tmp_path_factory, "uplift_and_audiences", n_boot=30, pseudonym_key=UPLIFT_KEY)


@pytest.fixture(scope="module")
def uplift_hillstrom(tmp_path_factory):
    from conftest import shared_file

    reference = json.loads(
        (Path(__file__).parents[1] / "results" / "uplift_reference.json").read_text()
    )["hillstrom"]
    path = shared_file(*reference["file"])
    out = tmp_path_factory.mktemp("uplift_hillstrom")
    run = reports.run_report(
        "uplift_and_audiences",
        month=MONTH,
        data=str(path),
        params={
            "variant": "segment",
            "control": "No E-Mail",
            "outcome": "visit",
            "features": "recency,history,mens,womens,zip_code,newbie,channel",
            "seed": reference["settings"]["seed"],
            "n_boot": reference["settings"]["n_boot"],
            "pseudonym_key": UPLIFT_KEY,
            "write_audience": True,
        },
        out_dir=out,
    )
    return (
        run,
        json.loads((run.folder / "metrics.json").read_text()),
        run.html.read_text(),
        reference,
    )


def test_journey_map_metrics(journey_map):
    _, m, _ = journey_map
    assert m["month"] == MONTH
    assert m["visitors"] > 0 and 0 < m["conversions"] <= m["journeys"]
    assert 0 < m["journey_conversion_rate"] < 1
    assert m["revenue"] > 0
    assert " > " in m["top_path"] or m["top_path"].isidentifier()
    assert 2 <= m["personas"] <= 8
    assert m["segment_compared"] == [
        "device",
        "mobile",
        "desktop",
    ]  # the first project segment, its two largest groups
    assert m["significant_segment_differences"] >= 0
    assert 1 <= len(m["top_pain_points"]) <= 3
    values = [p["value_at_stake"] for p in m["top_pain_points"]]
    assert values == sorted(values, reverse=True) and values[0] > 0


def test_journey_map_html(journey_map):
    _, _, html = journey_map
    for heading in (
        "Journey map: stages and their KPIs",
        "Conversion funnel",
        "Where did they go instead?",
        "Paths and flows",
        "Transition matrix",
        "Journey flow (Sankey)",
        "Personas",
        "Journeys of two groups compared",
        "Pain points ranked by value at stake",
    ):
        assert heading in html, heading
    # KPI heatmap, funnel, where-instead, top paths, transitions, Sankey, personas, diff, pains
    assert _figures(html) >= 9
    _for_readers(html)


def test_journey_map_on_the_online_shop_project(journey_map_shop):
    _, m, html = journey_map_shop
    assert m["month"] == MONTH and m["visitors"] > 0 and 0 < m["conversions"] <= m["journeys"]
    assert m["revenue"] > 0 and 2 <= m["personas"] <= 8
    assert m["segment_compared"][0] == "platform"  # the online shop's first segment
    assert 1 <= len(m["top_pain_points"]) <= 3 and m["top_pain_points"][0]["value_at_stake"] > 0
    for heading in (
        "Journey map: stages and their KPIs",
        "Conversion funnel",
        "Where did they go instead?",
        "Personas",
        "Journeys of two groups compared",
        "Pain points ranked by value at stake",
    ):
        assert heading in html, heading
    assert (
        "Loom (sample)" in html and "€" in html and "(Session started)" in html
    )  # name, currency, labels
    assert "book" not in _visible(html).lower()
    assert _figures(html) >= 8
    _for_readers(html)


def test_attribution_metrics(attribution_open_counted):
    _, m, _ = attribution_open_counted
    assert m["month"] == MONTH and m["n_boot"] == 30
    assert 0 < m["conversions"] <= m["journeys"]
    assert m["open_journeys"] > 0 and m["open_journeys_left_out"] == 0  # counted as not booked
    assert set(m["top_channel"]) == {
        "first_touch",
        "last_touch",
        "linear",
        "position",
        "markov",
        "shapley",
    }
    assert set(m["model_status"].values()) == {"ok"}
    # Markov credit shares out exactly the conversions of the month's journeys
    assert math.isclose(sum(m["markov_credit"].values()), m["conversions"], rel_tol=1e-6)
    for channel, (low, high) in m["markov_credit_interval"].items():
        assert low <= high and low >= 0, channel
    assert m["spend"] > 0
    assert all(v >= 0 for v in m["roas_markov"].values())
    assert set(m["roas_markov"]) <= set(m["markov_credit"])
    assert {r["model"] for r in m["reallocation"]} <= set(m["top_channel"])


def test_attribution_html(attribution_open_counted):
    _, _, html = attribution_open_counted
    for heading in (
        "Journeys and paths this month",
        "Model comparison",
        "Sequence credit",
        "Cost per conversion and return on spend",
        "Budget reallocation",
        "Caveats",
    ):
        assert heading in html, heading
    assert "they count as not (yet) converted (include_censored=True)" in html
    assert _figures(html) >= 3  # credit by model, sequence credit, ROAS
    _for_readers(html)


def test_attribution_by_default_leaves_open_journeys_out_and_refuses_markov(attribution):
    # 2,000 users: leaving the month's open journeys out leaves too few that did not book
    _, m, html = attribution
    assert m["open_journeys"] == m["open_journeys_left_out"] > 0
    for model in ("markov", "shapley"):
        assert m["model_status"][model].startswith("not identifiable: ")
    assert "markov_credit" not in m and "roas_markov" not in m
    assert set(m["top_channel"]) == {"first_touch", "last_touch", "linear", "position"}
    assert m["spend"] > 0
    assert "were still open at the period end" in html and "are left out (censored)" in html
    assert "Markov and Shapley are not identifiable: " in html
    assert _figures(html) >= 2  # credit by the rule-based models, ROAS
    _for_readers(html)


def test_attribution_on_the_online_shop_project(attribution_shop):
    _, m, html = attribution_shop
    assert m["month"] == MONTH and m["lookback_days"] == 30  # the project's lookback
    assert 0 < m["conversions"] <= m["journeys"] and m["open_journeys_left_out"] == 0
    assert set(m["model_status"].values()) == {"ok"}
    assert math.isclose(sum(m["markov_credit"].values()), m["conversions"], rel_tol=1e-6)
    assert m["spend"] > 0 and m["roas_markov"]
    assert set(m["top_channel"].values()) <= {
        "paid_search",
        "paid_social",
        "affiliate",
        "email",
        "organic",
        "direct",
        "push",
    }
    assert (
        "ended in a conversion (Purchase) worth €" in html and "Paid search" in html
    )  # currency, labels
    assert "Cost per conversion and return on spend" in html
    assert "book" not in _visible(html).lower()
    assert _figures(html) >= 3
    _for_readers(html)


@pytest.mark.parametrize("fixture", ["attribution", "attribution_open_counted"])
def test_attribution_notebook_and_api_build_the_same_path_table_and_credit(fixture, request):
    from journeylab.attribution import attribute
    from journeylab.journeys.build import path_table
    from journeylab.reports.workspace import open_workspace

    _, m, _ = request.getfixturevalue(fixture)
    include = fixture == "attribution_open_counted"
    ws = open_workspace(None, **SMALL)
    events = ws.events.frame
    options = {
        "month": MONTH,
        "lookback": "30D",
        "stage_map": ws.stage_map,
        "conversion": "booking_completed",
    }
    paths = (
        path_table(events, **options, include_censored=include)
        if include
        else path_table(events, **options)
    )
    c = paths.attrs["censoring"]
    assert (c["open_journeys"], c["left_out"]) == (m["open_journeys"], m["open_journeys_left_out"])
    assert int(paths["conversions"].sum()) == m["conversions"]
    assert int(paths[["conversions", "non_conversions"]].to_numpy().sum()) == m["journeys"]
    assert len(paths) == m["distinct_paths"]
    models = ["first_touch", "last_touch", "linear", "position", "markov", "shapley"]
    api = attribute(paths, models)
    assert api.status == m["model_status"]
    frame = api.to_frame()
    assert {k: str(frame[k].idxmax()) for k in api.identified_models} == m["top_channel"]
    if include:
        assert frame["markov"].to_dict() == pytest.approx(m["markov_credit"], rel=1e-9)


def test_experiment_metrics(experiment):
    _, m, _ = experiment
    assert m["experiment"] == "short_form vs control"
    assert m["srm_ok"] is True  # the sample's split is intact (50/50 as designed)
    arms = m["users_per_variant"]
    assert set(arms) == {"control", "short_form"} and sum(arms.values()) == m["users"]
    assert abs(arms["control"] - arms["short_form"]) / m["users"] < 0.05
    assert (m["control"], m["treatment"], m["conversion"]) == (
        "control",
        "short_form",
        ["booking_completed"],
    )
    assert m["experiment_name"] == "short_mobile_form"  # the project file's only experiment
    booked = m["converted"]
    assert 0 < booked["control"] < 1 and 0 < booked["treatment"] < 1
    assert math.isclose(booked["abs_lift"], booked["treatment"] - booked["control"], abs_tol=1e-9)
    assert booked["ci"][0] < booked["abs_lift"] < booked["ci"][1]
    assert 0 < booked["p_value_holm"] <= 1 and 0 < booked["prob_beats_control"] < 1
    revenue = m["revenue_per_user"]
    assert revenue["control"] > 0 and revenue["ci"][0] < revenue["abs_lift"] < revenue["ci"][1]
    assert set(m["cuped_variance_reduction"]) == {"converted", "revenue"}
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


def test_experiment_readout_on_the_online_shop_project(experiment_shop):
    _, m, html = experiment_shop
    # control and treatment found in the assignments, the project's conversion counted
    assert (m["control"], m["conversion"]) == ("control", ["purchase"])
    assert m["treatment"] != "control" and set(m["users_per_variant"]) == {
        "control",
        m["treatment"],
    }
    assert m["srm_ok"] is True
    converted = m["converted"]
    assert 0 < converted["control"] < 1 and 0 < converted["treatment"] < 1
    assert converted["ci"][0] < converted["abs_lift"] < converted["ci"][1]
    assert m["revenue_per_user"]["control"] > 0
    assert set(m["cuped_variance_reduction"]) == {
        "converted",
        "revenue",
    }  # pre_orders and pre_revenue
    for heading in (
        "Trust checks",
        "Readout",
        "CUPED",
        "Sequential monitoring",
        "By segment",
        "Verdict",
    ):
        assert heading in html, heading
    assert "Conversion rate" in html and "€" in html and "Platform" in html
    assert "book" not in _visible(html).lower()
    assert _figures(html) >= 3
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
        "Sentiment and themes, by language",
        "Emotion curve beside the funnel",
        "Who is likely to convert next month?",
    ):
        assert heading in html, heading
    assert "Korean" in html
    # cohorts, lifecycle, BG/NBD, CLV histogram, CLV by channel, NPS, CSAT, sentiment,
    # themes by language and by stage, emotion curve, propensity calibration
    assert _figures(html) >= 12
    _for_readers(html)


def test_retention_clv_voice_on_the_online_shop_project(retention_shop):
    _, m, html = retention_shop
    assert m["month"] == MONTH
    assert m["customers"] > 0 and m["purchases"] >= m["customers"]
    assert 0 < m["repeat_rate"] < 1 and 0 < m["churn_rate"] < 1
    assert set(m["bgnbd"]) == {"r", "alpha", "a", "b"}
    assert m["clv_by_channel"] and all(v >= 0 for v in m["clv_by_channel"].values())
    assert m["nps_by_stage"] and set(m["nps_by_stage"]) <= STAGES
    assert m["worst_stage"] in STAGES
    assert 0.5 < m["propensity_auc"] <= 1
    assert "Lumen &amp; Loom (sample)" in html and "€" in html  # the project's name and currency
    assert "Who is likely to convert next month?" in html
    assert "booking_completed" not in html and "repeat_booking" not in html
    assert _figures(html) >= 10
    _for_readers(html)


def test_uplift_and_audiences_on_the_sample(uplift):
    run, m, html = uplift
    assert m["month"] == MONTH and m["outcome"] == "booking_completed"
    assert set(m["qini"]) == {"two_model", "class_transformation"} and m["best_model"] in m["qini"]
    for model, (low, high) in m["qini_ci"].items():
        assert low <= high, model
    counts = m["audience_counts"]
    assert (
        counts["people_in"]
        == counts["excluded_opt_out"]
        + counts["not_selected"]
        + counts["suppressed"]
        + counts["written"]
    )
    assert m["audience_columns"][0] == "person_id"
    assert {"lifecycle_state", "uplift_decile", "next_best_touchpoint"} <= set(
        m["audience_columns"]
    )
    for heading in (
        "Uplift models",
        "Qini and uplift curves",
        "Uplift by decile",
        "Who is moved: uplift by segment",
        "Recommendation",
        "Audience for the next send",
    ):
        assert heading in html, heading
    assert "per 1,000 people sent" in html
    assert _figures(html) >= 3  # curves, deciles, audience counts
    _for_readers(html)
    assert not list(
        run.folder.glob("**/*.csv")
    )  # the audience stays out of the report unless asked
    for path in run.folder.iterdir():
        assert UPLIFT_KEY not in path.read_text(errors="replace"), path.name


def test_uplift_and_audiences_on_the_online_shop_project(uplift_shop):
    run, m, html = uplift_shop
    # the project's conversion is the response, its segments found among the people's columns the features
    assert m["outcome"] == "purchase" and m["control"] == "control"
    assert {"platform", "country", "shopper_type"} <= set(m["features"])
    assert set(m["qini"]) == {"two_model", "class_transformation"} and m["best_model"] in m["qini"]
    counts = m["audience_counts"]
    assert (
        counts["people_in"]
        == counts["excluded_opt_out"]
        + counts["not_selected"]
        + counts["suppressed"]
        + counts["written"]
    )
    assert m["audience_columns"][0] == "person_id"
    assert (
        "Response: <strong>Purchase</strong>" in html and "Shopper type" in html
    )  # the project's labels
    assert "book" not in _visible(html).lower()
    assert _figures(html) >= 3
    _for_readers(html)
    for path in run.folder.iterdir():
        assert UPLIFT_KEY not in path.read_text(errors="replace"), path.name


@pytest.mark.shared_data
def test_uplift_and_audiences_on_hillstrom_reproduce_the_reference(uplift_hillstrom):
    run, m, html, reference = uplift_hillstrom
    expected = reference["cases"]["any_email_visit"][
        "models"
    ]  # every e-mail vs none, as the notebook's default
    for model, ref in expected.items():
        assert m["qini"][model] == pytest.approx(ref["qini"], rel=1e-6)
        assert m["qini_ci"][model] == pytest.approx(
            [ref["qini_ci_low"], ref["qini_ci_high"]], rel=1e-6
        )
        assert m["top_uplift_per_1000"][model] == pytest.approx(1000 * ref["top_uplift"], rel=1e-6)
    assert m["people"] == 64_000 and m["audience_counts"]["people_in"] == 64_000
    assert m["audience_columns"] == ["person_id", "uplift_score", "uplift_decile"]
    files = sorted(p.name for p in (run.folder / "audience").iterdir())
    assert len(files) == 2 and files[0].endswith(".csv") and files[1].endswith(".manifest.json")
    manifest = json.loads((run.folder / "audience" / files[1]).read_text())
    assert manifest["counts"]["written"] == m["audience_counts"]["written"]
    assert "lifecycle_state" in manifest["not_computed"]
    _for_readers(html)


def test_a_misspelt_parameter_is_refused_before_anything_runs():
    with pytest.raises(ParameterError, match=r"no parameter 'n_bot'.*n_boot"):
        reports.validate_parameters("attribution", {"n_bot": 5})
    with pytest.raises(ParameterError, match=r"treatment_share == 'half', must be a number"):
        reports.validate_parameters("experiment_readout", {"treatment_share": "half"})


@pytest.mark.parametrize(
    "name",
    [
        "journey_map",
        "attribution",
        "experiment_readout",
        "retention_clv_voice",
        "uplift_and_audiences",
    ],
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

    The project file is the one ``journeylab init`` writes for the order lines, as is: the
    order lines with a customer id are the transactions (worth Quantity x UnitPrice, refunds
    negative), from which the purchases are taken; each customer's orders become the events.
    """
    source = shared_file("online_retail", "online_retail_by_day_concat.csv.gz")
    config = tmp_path_factory.mktemp("online_retail_project") / "journeylab.yaml"
    assert cli.main(["init", "--data", str(source), "--out", str(config)]) == cli.EXIT_OK
    out = tmp_path_factory.mktemp("online_retail_reports")
    code = cli.main(
        [
            "report",
            "retention_clv_voice",
            "--month",
            "2011-11",
            "--config",
            str(config),
            "--out",
            str(out),
            "--quiet",
        ]
    )
    published = out / "2011-11" / "retention_clv_voice"
    return (
        code,
        json.loads((published / "metrics.json").read_text()),
        (published / "report.html").read_text(),
    )


@pytest.mark.slow
@pytest.mark.shared_data
def test_online_retail_report_publishes_with_its_caveats(retention_online_retail):
    code, m, html = retention_online_retail
    assert code == cli.EXIT_OK
    # the reviewer's figures: 4,297 customers, a boundary BG/NBD, 33.9% churned
    assert m["churn_rate"] == pytest.approx(0.339, abs=5e-4)
    assert m["bgnbd_status"] == "boundary" and m["bgnbd"]["a"] < 1e-3
    assert m["clv_mean"] is None and m["clv_median"] is None
    assert m["clv_withheld"].startswith(
        "not shown: the dropout parameter is at its boundary (a → 0, b → ∞)"
    )
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
    # propensity on order data: only people seen before their first order (a refund first) are
    # at risk, a few hundred rows; the section shows the fit with its warnings or says why not
    if m["propensity_status"] == "not_computable":
        assert "Not computable:</strong>" in html
    else:
        assert "coefficients may be unstable" in html and 0 <= m["propensity_auc"] <= 1
    # cohorts, lifecycle, BG/NBD, CLV histogram, holdout check
    assert _figures(html) >= 5
    _for_readers(html)


def test_journey_map_with_a_segment_of_one_value_in_the_month(tmp_path):
    # the first segment has three platforms in the log but one in the month: no comparison,
    # said in one line, and the report publishes (a name of the log is a category with no
    # row in the month, and is not a group)
    from journeylab.datasets import make_sample
    from journeylab.datasets import sample as datasets

    sample = make_sample(vertical="ecommerce", seed=2026, n_users=3000)
    events = sample.events
    october = events["timestamp"] >= pd.Timestamp("2026-10-01", tz="UTC")
    events.loc[october, "platform"] = "web"
    events.to_parquet(tmp_path / "events.parquet")
    sample.users.to_parquet(tmp_path / "users.parquet")
    text = (Path(datasets.__file__).parent / "ecommerce.yaml").read_text(encoding="utf-8")
    tables = f"  events: {{path: {tmp_path / 'events.parquet'}}}\n  users: {{path: {tmp_path / 'users.parquet'}}}"
    text = re.sub(r"(?m)^  sample: .*$", tables, text)
    config = tmp_path / "journeylab.yaml"
    config.write_text(text, encoding="utf-8")
    run = reports.run_report("journey_map", month=MONTH, config=str(config), out_dir=tmp_path)
    html = run.html.read_text()
    assert "No project segment with two groups in the events: no comparison." in html


def test_monthly_report_of_a_project_without_stage_kpis_says_why_in_one_line(tmp_path):
    from journeylab.datasets import sample as datasets

    text = (Path(datasets.__file__).parent / "ecommerce.yaml").read_text(encoding="utf-8")
    text = re.sub(
        r"(?m)^    kpis:\n(      - .*\n)+", "", text.replace("n_users: 20000", "n_users: 3000")
    )
    assert "kpis:" not in text
    config = tmp_path / "journeylab.yaml"
    config.write_text(text, encoding="utf-8")
    run = reports.run_report("monthly_report", month=MONTH, config=str(config), out_dir=tmp_path)
    html = run.html.read_text()
    assert html.count("the project file declares no stage KPIs") == 2  # the table and the trend
    metrics = json.loads((run.folder / "metrics.json").read_text())
    assert metrics["sections"]["stage_kpis"].startswith("the project file declares no stage KPIs")
