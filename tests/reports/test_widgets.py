"""The explorers: moving a control changes the numbers to what the analysis function gives.

Reference values for the calculator come from tests/results/experiments_reference.json
(R 4.2.2 ``power.prop.test`` and ``prop.test`` calls, with their provenance there).
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journeylab.attribution import attribute
from journeylab.core.errors import ParameterError, UnknownNameError
from journeylab.core.project import Project
from journeylab.experiments import bayes_proportions, compare_proportions, srm_check
from journeylab.journeys.build import path_table
from journeylab.journeys.flows import top_paths, transitions
from journeylab.journeys.funnels import funnel
from journeylab.reports import runner as reports
from journeylab.reports import widgets

REFERENCE = json.loads(
    (Path(__file__).parents[1] / "results" / "experiments_reference.json").read_text()
)
#: The sample's booking funnel and journey rules, named explicitly (the library has no default).
STEPS = ["site_visit", "booking_started", "booking_completed"]
JOURNEY = {"conversion": "booking_completed"}


@pytest.fixture(scope="module")
def events(small_sample):
    return small_sample.events


@pytest.fixture(scope="module")
def few_events(events):
    """The events of a quarter of the users: enough journeys, quicker flows."""
    users = events["user_id"].drop_duplicates().iloc[:750]
    return events[events["user_id"].isin(users)].reset_index(drop=True)


@pytest.fixture(scope="module")
def stages(small_sample):
    return small_sample.stage_map


@pytest.fixture(scope="module")
def paths(few_events, stages):
    return path_table(few_events, stage_map=stages, **JOURNEY)


def assert_same(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    # funnel's integer `step` column comes back as int32 or int64 from run to run
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def _pngs(page: str) -> list[bytes]:
    return [
        base64.b64decode(m)
        for m in re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    ]


# -- funnel -------------------------------------------------------------------------
def test_device_filter_gives_the_mobile_only_funnel(events, small_sample):
    fx = widgets.FunnelExplorer(events, STEPS, users=small_sample.users, filters=["device"])
    everyone = fx.data()
    assert fx.widget is not None  # built: the output follows the controls from now on
    fx.controls["device"].value = "mobile"
    mobile = fx.data()
    expected = funnel(events[events["device"] == "mobile"], STEPS).to_frame()
    assert_same(mobile, expected)
    # step 1 = distinct mobile users with a site visit, counted independently here
    visitors = events.loc[
        (events["device"] == "mobile") & (events["event"] == "site_visit"), "user_id"
    ].nunique()
    assert mobile["entrants"].iloc[0] == visitors
    assert (
        everyone["entrants"].iloc[0]
        == events.loc[events["event"] == "site_visit", "user_id"].nunique()
    )
    assert mobile["entrants"].iloc[0] < everyone["entrants"].iloc[0]
    page = fx.output.outputs[0]["data"]["text/html"]
    assert "device: mobile" in page
    assert f"<td>{visitors:,}</td>" in page  # the table shown is the mobile one


def test_segment_from_the_users_table_and_month(events, small_sample):
    users = small_sample.users
    fx = widgets.FunnelExplorer(events, STEPS, users=users)
    assert {"device", "acquisition_channel", "persona"} <= set(fx.controls["segment"].options)
    assert list(fx.controls) == ["segment", "period", "window", "order"]  # no filter unless named
    assert "2026-10" in fx.controls["period"].options
    got = fx.set(segment="persona", period="2026-10", window="14D", order="any").data()
    merged = events.merge(users[["user_id", "persona"]], on="user_id", how="left")
    expected = funnel(
        merged,
        STEPS,
        segment="persona",
        window="14D",
        order="any",
        start=pd.Timestamp("2026-10-01", tz="UTC"),
        end=pd.Timestamp("2026-11-01", tz="UTC"),
    ).to_frame()
    assert_same(got, expected)
    assert set(got["segment"]) == set(users["persona"])
    # the data twin without a widget gives the same numbers
    twin = widgets.funnel_data(
        events, STEPS, users=users, segment="persona", period="2026-10", window="14D", order="any"
    )
    assert_same(twin, expected)


def test_results_are_cached_per_control_tuple(events, monkeypatch):
    import journeylab.journeys.funnels as funnel_module

    calls = []
    real = funnel_module.funnel
    monkeypatch.setattr(funnel_module, "funnel", lambda *a, **k: calls.append(k) or real(*a, **k))
    fx = widgets.FunnelExplorer(events, STEPS)
    assert calls == []  # building the explorer computes nothing
    first = fx.result()
    fx.set(order="any")
    fx.result()
    fx.set(order="strict")
    assert fx.result() is first
    assert len(calls) == 2


def test_unknown_control_and_bad_month_are_explained(events):
    fx = widgets.FunnelExplorer(events, STEPS, filters=["device"])
    with pytest.raises(ParameterError, match="no control 'devise' \\(did you mean 'device'\\?\\)"):
        fx.set(devise="mobile")
    with pytest.raises(
        ParameterError, match="period == '2026-13': not a calendar month; write 'YYYY-MM'"
    ):
        widgets.funnel_data(events, STEPS, period="2026-13")


def test_misspelt_names_fail_with_the_closest(events, small_sample):
    with pytest.raises(
        UnknownNameError, match="funnel step 'booking_complete'.*did you mean 'booking_completed'"
    ):
        widgets.funnel_data(events, ["site_visit", "booking_complete"])
    with pytest.raises(
        UnknownNameError,
        match="filter column 'devise' is neither an events column nor a users column",
    ):
        widgets.funnel_data(events, STEPS, filters={"devise": "mobile"})
    with pytest.raises(
        UnknownNameError,
        match=r"value 'mobil' of 'device' occurs in no row \(did you mean 'mobile'\?\)",
    ):
        widgets.funnel_data(events, STEPS, filters={"device": "mobil"})
    with pytest.raises(UnknownNameError, match="segment 'persna'.*did you mean 'persona'"):
        widgets.funnel_data(events, STEPS, users=small_sample.users, segment="persna")
    with pytest.raises(UnknownNameError, match="column 'regoin'.*did you mean 'region'"):
        widgets.FunnelExplorer(events, STEPS, filters=["regoin"])
    with pytest.raises(ParameterError, match="Name the funnel steps"):
        widgets.FunnelExplorer(events)
    with pytest.raises(ParameterError, match="cannot be called 'period'"):
        widgets.FunnelExplorer(events.assign(period="x"), STEPS, filters=["period"])


def test_a_filter_on_a_users_column_and_the_project_file(events, small_sample):
    users = small_sample.users
    project = Project.from_dict({
        "data": {"events": {"path": "events.csv"}},
        "journey": {"conversion": "booking_completed"},
        "stages": small_sample.stage_map.to_dict(),
        "funnel": STEPS,
        "segments": ["device", "acquisition_channel"],
    })  # fmt: skip
    fx = widgets.FunnelExplorer(events, users=users, project=project)
    assert list(fx.controls) == [
        "segment",
        "device",
        "acquisition_channel",
        "period",
        "window",
        "order",
    ]
    assert list(fx.controls["segment"].options) == [widgets.NONE, "device", "acquisition_channel"]
    got = fx.set(acquisition_channel="email").data()
    emailed = users.loc[users["acquisition_channel"] == "email", "user_id"]
    expected = funnel(
        events[events["user_id"].isin(emailed)], STEPS, stage_map=small_sample.stage_map
    ).to_frame()
    assert_same(got, expected)


@settings(max_examples=8, deadline=None)
@given(
    segment=st.sampled_from([widgets.NONE, "device", "persona"]),
    device=st.sampled_from([widgets.ALL, "mobile", "tablet"]),
    period=st.sampled_from([widgets.ALL, "2026-09"]),
    order=st.sampled_from(["strict", "any"]),
)
def test_explorer_state_always_matches_the_data_twin(tiny, segment, device, period, order):
    events, users, fx = tiny
    shown = fx.set(segment=segment, device=device, period=period, order=order).data()
    twin = widgets.funnel_data(
        events,
        STEPS,
        users=users,
        segment=segment,
        filters={"device": device},
        period=period,
        order=order,
    )
    assert_same(shown, twin)
    assert (
        shown.groupby("segment")["entrants"].diff().dropna() <= 0
    ).all()  # a funnel only narrows


@pytest.fixture(scope="module")
def tiny(few_events, small_sample):
    events = few_events[
        few_events["user_id"].isin(few_events["user_id"].drop_duplicates().iloc[:200])
    ]
    return (
        events,
        small_sample.users,
        widgets.FunnelExplorer(events, STEPS, users=small_sample.users, filters=["device"]),
    )


# -- paths --------------------------------------------------------------------------
def test_path_explorer_level_number_and_repeats(few_events, stages):
    events = few_events
    px = widgets.PathExplorer(events, stage_map=stages, **JOURNEY)
    got = px.set(level="stage", n=5, collapse_repeats=False).data()
    top = top_paths(
        events, 5, level="stage", collapse_repeats=False, stage_map=stages, **JOURNEY
    ).to_frame()
    trans = transitions(
        events, level="stage", collapse_repeats=False, stage_map=stages, **JOURNEY
    ).to_frame()
    pd.testing.assert_frame_equal(got["top_paths"], top)
    pd.testing.assert_frame_equal(got["transitions"], trans)
    assert len(got["top_paths"]) == 5
    assert (
        got["transitions"]["from"] == got["transitions"]["to"]
    ).any()  # repeats kept: self-loops
    # more paths: the slider slices the cached list, with the same numbers as a fresh call
    px.set(n=12)
    pd.testing.assert_frame_equal(
        px.data()["top_paths"],
        top_paths(
            events, 12, level="stage", collapse_repeats=False, stage_map=stages, **JOURNEY
        ).to_frame(),
    )


def test_path_explorer_on_a_path_table(paths):
    px = widgets.PathExplorer(paths)
    assert px.controls["level"].disabled and px.controls["collapse_repeats"].disabled
    got = px.set(n=3).data()
    pd.testing.assert_frame_equal(got["top_paths"], top_paths(paths, 3).to_frame())
    assert got["transitions"] is None
    assert "Transitions need the event log" in px.static_html()


# -- attribution --------------------------------------------------------------------
def test_attribution_models_order_and_value(paths):
    ac = widgets.AttributionComparer(paths, n_boot=30, seed=4)
    got = ac.set(models=["last_touch", "markov"], order=2).data()
    expected = attribute(paths, ["last_touch", "markov"], order=2).to_frame()
    pd.testing.assert_frame_equal(got, expected)
    assert got["last_touch"].sum() == pytest.approx(paths["conversions"].sum())
    value = ac.set(metric="value").data()
    assert value["markov"].sum() == pytest.approx(paths["value"].sum())
    booted = ac.set(bootstrap=True).data()
    expected = attribute(
        paths, ["last_touch", "markov"], order=2, value=True, n_boot=30, seed=4
    ).to_frame()
    pd.testing.assert_frame_equal(booted, expected)
    assert {"markov_ci_low", "markov_ci_high"} <= set(booted.columns)


def test_attribution_order_is_ignored_without_markov(paths):
    ac = widgets.AttributionComparer(paths)
    assert ac.widget is not None
    ac.set(models=["linear"], order=3)
    assert ac.controls["order"].disabled
    assert ac.result() is ac.set(order=1).result()  # one cache entry: the order does not matter
    ac.set(models=[])
    assert "pick at least one attribution model" in ac.static_html()
    with pytest.raises(ParameterError, match="pick at least one"):
        ac.data()


# -- experiments --------------------------------------------------------------------
def test_calculator_reproduces_r_power_prop_test():
    ref = REFERENCE["AB-4"]
    calc = widgets.ExperimentCalculator(baseline=0.5, mde=0.25, power=0.9)
    # power.prop.test(p1 = .50, p2 = .75, power = .90)$n
    assert calc.data()["design"]["n_per_variant"].iloc[0] == pytest.approx(ref["b_n"], rel=1e-6)
    # power.prop.test(n = 50, p1 = .50, p2 = .75)$power
    calc.set(solve_for="power", n_per_variant=50)
    assert calc.data()["design"]["power"].iloc[0] == pytest.approx(ref["a_power"], rel=1e-6)
    # relative MDE: +10% on 10% is p2 = .11; power.prop.test(p1 = .10, p2 = .11, power = .80)$n
    calc.set(solve_for="n_per_variant", baseline=0.10, mde=0.10, relative=True, power=0.8)
    assert calc.data()["design"]["n_per_variant"].iloc[0] == pytest.approx(ref["c_n"], rel=1e-4)
    # MDE: solving p2 for n = 50 and 74.0% power lands on .75 again
    calc.set(solve_for="mde", baseline=0.5, relative=False, n_per_variant=50, power=ref["a_power"])
    assert calc.data()["design"]["treatment"].iloc[0] == pytest.approx(0.75, abs=1e-5)


@settings(max_examples=12, deadline=None)
@given(
    baseline=st.floats(0.02, 0.6),
    lift=st.floats(0.05, 0.5),
    power=st.floats(0.6, 0.95),
)
def test_calculator_solves_back_and_forth(baseline, lift, power):
    calc = widgets.ExperimentCalculator(baseline=baseline, mde=lift, relative=True, power=power)
    n = calc.data()["design"]["n_per_variant"].iloc[0]
    pd.testing.assert_frame_equal(
        calc.data()["design"], widgets.power_data(baseline, mde=lift, relative=True, power=power)
    )
    # the power at the solved size is the power asked for, and that size detects the same effect
    assert calc.set(solve_for="power", n_per_variant=n).data()["design"]["power"].iloc[
        0
    ] == pytest.approx(power, abs=1e-6)
    treatment = calc.set(solve_for="mde", power=power).data()["design"]["treatment"].iloc[0]
    assert treatment == pytest.approx(baseline * (1 + lift), rel=1e-4)


def test_readout_from_counts_matches_prop_test():
    ref = REFERENCE["AB-2"]
    (xc, nc), (xt, nt) = ref["input"]["control"], ref["input"]["treatment"]
    calc = widgets.ExperimentCalculator()
    calc.set(conversions_control=xc, users_control=nc, conversions_treatment=xt, users_treatment=nt)
    row = calc.data()["readout"].iloc[0]
    # prop.test(c(200, 250), c(10000, 10000), correct = FALSE)
    assert row["p_value"] == pytest.approx(ref["p_value"], rel=1e-6)
    assert (row["abs_ci_low"], row["abs_ci_high"]) == pytest.approx(
        tuple(ref["newcombe_ci"]), rel=1e-5
    )
    direct = compare_proportions(xc, nc, xt, nt)
    assert row["abs_lift"] == direct.abs_lift and row["rel_lift"] == direct.rel_lift
    assert row["prob_treatment_better"] == bayes_proportions(xc, nc, xt, nt).prob_treatment_better
    assert row["srm_p_value"] == srm_check({"control": nc, "treatment": nt}).p_value == 1.0
    pd.testing.assert_frame_equal(calc.data()["readout"], widgets.readout_data(xc, nc, xt, nt))


def test_calculator_shows_errors_instead_of_failing():
    calc = widgets.ExperimentCalculator(baseline=0.0, mde=0.01)
    page = calc.static_html()
    assert "⚠" in page and "baseline" in page
    assert "Experiment readout" in page  # the readout still renders
    with pytest.raises(ParameterError, match="baseline"):
        calc.data()


# -- static fallback ----------------------------------------------------------------
def test_static_fallback_has_the_table_and_an_embedded_png(events, monkeypatch):
    fx = widgets.FunnelExplorer(events, STEPS, filters=["device"]).set(device="desktop")
    bundle = fx._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    page = bundle["text/html"]
    assert page == fx._repr_html_()
    images = _pngs(page)
    assert len(images) == 1 and images[0].startswith(b"\x89PNG\r\n\x1a\n")
    Path("/tmp/widgets_funnel.png").write_bytes(images[0])  # kept for a look
    assert "<table" in page and "booking_completed" in page
    desktop = funnel(events[events["device"] == "desktop"], STEPS).to_frame()
    assert f"<td>{desktop['entrants'].iloc[0]:,}</td>" in page
    # under the report runner only the static view is emitted
    monkeypatch.setenv(reports.UNDER_RUNNER_ENV, "1")
    assert set(widgets.ExperimentCalculator()._repr_mimebundle_()) == {"text/plain", "text/html"}


# -- the notebook -------------------------------------------------------------------
@pytest.mark.slow
def test_explore_notebook_runs_through_the_report_runner(tmp_path):
    from journeylab.reports.workspace import open_workspace

    params = {"n_users": 400, "seed": 5, "n_boot": 0}
    run = reports.run_report("explore", month="2026-10", params=params, out_dir=tmp_path)
    metrics = run.metrics
    ws = open_workspace(n_users=400, seed=5)
    expected = widgets.funnel_data(ws.events, STEPS, period="2026-10", stage_map=ws.stage_map)
    assert metrics["funnel_entrants"] == expected["entrants"].iloc[0] > 0
    assert metrics["conversion_rate"] == pytest.approx(expected["conversion_from_first"].iloc[-1])
    assert metrics["users_per_variant"] > 0 and metrics["top_channel_markov"]
    page = run.html.read_text()
    for title in (
        "Funnel explorer",
        "Path explorer",
        "Attribution comparer",
        "Experiment calculator",
    ):
        assert title in page
    assert page.count("data:image/png;base64") >= 6  # funnel, paths ×2, attribution, power, readout
    assert "<script" not in page and "jupyter-widgets" not in page


@pytest.mark.slow
def test_explore_notebook_on_the_online_shop_project(tmp_path):
    """The explorers from the online-shop sample's project file only: its funnel, conversion and segments."""
    from journeylab.datasets import sample as datasets
    from journeylab.reports.workspace import open_report_workspace

    text = (Path(datasets.__file__).parent / "ecommerce.yaml").read_text(encoding="utf-8")
    config = tmp_path / "journeylab.yaml"
    config.write_text(text.replace("n_users: 20000", "n_users: 3000"), encoding="utf-8")
    run = reports.run_report(
        "explore",
        month="2026-10",
        params={"n_users": 0, "n_boot": 0},
        config=str(config),
        out_dir=tmp_path / "out",
    )
    metrics = run.metrics
    ws = open_report_workspace(str(config), "")
    expected = widgets.funnel_data(
        ws.events, list(ws.project.funnel), period="2026-10", stage_map=ws.project.stage_map
    )
    assert metrics["funnel_entrants"] == expected["entrants"].iloc[0] > 0
    assert metrics["conversion_rate"] == pytest.approx(expected["conversion_from_first"].iloc[-1])
    assert metrics["users_per_variant"] > 0
    page = run.html.read_text()
    for title in (
        "Funnel explorer",
        "Path explorer",
        "Attribution comparer",
        "Experiment calculator",
    ):
        assert title in page
    assert "booking" not in page.lower()
    assert page.count("data:image/png;base64") >= 5
