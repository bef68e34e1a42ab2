from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from conftest import shared_file
from journeylab.attribution import MarkovChain, next_best_touchpoint
from journeylab.core.errors import (
    DataError,
    ModelWarning,
    NotComputableError,
    ParameterError,
    UnknownNameError,
)
from journeylab.core.model_checks import NotComputableResult, computable_or_reason
from journeylab.core.project import Project
from journeylab.customers.logit import auc_delong
from journeylab.customers.propensity import fit_propensity
from journeylab.customers.snapshots import churn_features, propensity_features


def _ts(*values: str) -> pd.Series:
    return pd.to_datetime(list(values), utc=True)


# -- features -------------------------------------------------------------------------
def _hand_events() -> pd.DataFrame:
    rows = [
        # user a: ad, site visit, page view, phone call, slow call-back (90 min), then books on 05-05
        ("a", "2026-05-01 00:00", "ad_impression", "social", None, None, "mobile"),
        ("a", "2026-05-02 00:00", "site_visit", "paid_search", "a-s1", None, "mobile"),
        ("a", "2026-05-02 00:05", "service_page_view", None, "a-s1", None, "mobile"),
        ("a", "2026-05-03 00:00", "phone_call", "phone", None, None, "mobile"),
        ("a", "2026-05-03 01:30", "callback", "phone", None, 90.0, "mobile"),
        ("a", "2026-05-05 10:00", "booking_completed", None, "a-s2", None, "desktop"),
        # user b: visit with a quote request, later a second visit and an abandoned booking form
        ("b", "2026-05-01 00:00", "site_visit", "email", "b-s1", None, "desktop"),
        ("b", "2026-05-01 00:10", "quote_request", None, "b-s1", None, "desktop"),
        ("b", "2026-05-04 10:00", "site_visit", "email", "b-s2", None, "desktop"),
        ("b", "2026-05-04 10:05", "booking_started", None, "b-s2", None, "desktop"),
        # user c: first seen after the snapshot
        ("c", "2026-05-06 10:00", "site_visit", "direct", "c-s1", None, "tablet"),
    ]
    frame = pd.DataFrame(
        rows,
        columns=[
            "user_id",
            "timestamp",
            "event",
            "channel",
            "session_id",
            "response_minutes",
            "device",
        ],
    )
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame


BOOKED = "booking_completed"


def test_propensity_features_on_a_hand_made_log():
    f = propensity_features(
        _hand_events(),
        as_of="2026-05-04",
        horizon_days=2,
        conversion_event=BOOKED,
        segments=["device"],
        columns=["response_minutes"],
    ).set_index("user_id")
    assert f.index.tolist() == ["a", "b"]  # c has no event before the snapshot
    a, b = f.loc["a"], f.loc["b"]
    # touch events are the events that carry a channel: ad, visit, call and call-back
    assert f.attrs["vocabulary"]["touch_events"] == [
        "ad_impression",
        "callback",
        "phone_call",
        "site_visit",
    ]
    assert (
        a["touches_social"],
        a["touches_paid_search"],
        a["touches_phone"],
        a["touches_email"],
    ) == (1, 1, 2, 0)
    # the other events a user did before converting become counts; b's booking form
    # was started after the snapshot, so no column counts it yet
    assert f.attrs["vocabulary"]["count_events"] == ["quote_request", "service_page_view"]
    assert (a["sessions"], a["n_service_page_view"], a["n_quote_request"]) == (1, 1, 0)
    assert (a["has_response_minutes"], a["response_minutes_max"]) == (1, 90.0)
    assert a["days_since_first_touch"] == pytest.approx(3.0)
    assert a["days_since_last_touch"] == pytest.approx(1 - 1.5 / 24)
    assert a["device"] == "mobile" and a["converted"] == 1  # booked on 05-05, inside [05-04, 05-06)
    assert (b["touches_email"], b["sessions"], b["n_quote_request"], b["has_response_minutes"]) == (
        1,
        1,
        1,
        0,
    )
    assert b["days_since_first_touch"] == pytest.approx(3.0) and b["converted"] == 0
    assert not any(c.startswith("n_") and "booking" in c for c in f.columns)  # no conversion count
    assert f.attrs["horizon_days"] == 2.0
    shorter = propensity_features(
        _hand_events(), as_of="2026-05-04", horizon_days=1, conversion_event=BOOKED
    ).set_index("user_id")
    assert shorter.loc["a", "converted"] == 0  # 05-05 10:00 is after the one-day window
    assert "device" not in shorter.columns  # columns only when the caller names them


def test_propensity_features_need_a_conversion_and_check_the_names():
    with pytest.raises(ParameterError, match="Name the conversion"):
        propensity_features(_hand_events(), as_of="2026-05-04", horizon_days=2)
    with pytest.raises(UnknownNameError, match="booking_complete"):
        propensity_features(
            _hand_events(), as_of="2026-05-04", horizon_days=2, conversion_event="booking_complete"
        )
    with pytest.raises(UnknownNameError, match="devise"):
        propensity_features(
            _hand_events(), as_of="2026-05-04", horizon_days=2, conversion_event=BOOKED,
            segments=["devise"],
        )  # fmt: skip
    project = Project.from_dict(
        {
            "data": {"events": {"path": "events.csv"}},
            "journey": {"conversion": BOOKED},
            "stages": {"all": {"events": ["*"]}},
            "segments": [
                "device",
                "channel",
                {"name": "speed", "column": "response_minutes", "bins": [60],
                 "labels": ["fast", "slow"]},
            ],
        }
    )  # fmt: skip
    from_project = propensity_features(
        _hand_events(), as_of="2026-05-04", horizon_days=2, project=project
    )
    assert from_project.attrs["vocabulary"]["segments"] == ["device"]  # channel is in the touches
    assert from_project.attrs["vocabulary"]["columns"] == ["response_minutes"]
    assert from_project["converted"].tolist() == [1, 0]


def test_propensity_features_support_rule_and_cap():
    events = _hand_events()
    capped = propensity_features(
        events, as_of="2026-05-04", horizon_days=2, conversion_event=BOOKED, max_counts=1
    )
    vocab = capped.attrs["vocabulary"]
    # every channel and event reaches one of two users: ties are broken by name
    assert vocab["channels"] == ["email"] and vocab["count_events"] == ["quote_request"]
    assert capped.set_index("user_id")["touches_other"].to_dict() == {"a": 4, "b": 0}
    strict = propensity_features(
        events, as_of="2026-05-04", horizon_days=2, conversion_event=BOOKED, min_share=0.6
    )
    assert strict.attrs["vocabulary"]["channels"] == []  # no channel reaches 60 % of users
    assert [c for c in strict.columns if c.startswith(("touches_", "n_"))] == ["touches_other"]
    # the same vocabulary gives the same columns on another date
    later = propensity_features(
        events, as_of="2026-05-05 12:00", horizon_days=0.5, conversion_event=BOOKED,
        **capped.attrs["vocabulary"],
    )  # fmt: skip
    assert list(later.columns) == list(capped.columns)


def test_propensity_features_leave_out_converted_users_and_check_the_horizon():
    events = _hand_events()
    later = propensity_features(
        events,
        as_of=["2026-05-04", "2026-05-05 12:00"],
        horizon_days=0.5,
        conversion_event=BOOKED,
    )
    at_second = later[later["as_of"] == pd.Timestamp("2026-05-05 12:00", tz="UTC")]
    assert at_second["user_id"].tolist() == ["b"]  # a converted before the second snapshot
    assert at_second["sessions"].item() == 2 and at_second["n_booking_started"].item() == 1
    with pytest.raises(ParameterError, match="runs past the end of the event log"):
        propensity_features(events, as_of="2026-05-05", horizon_days=30, conversion_event=BOOKED)
    users = pd.DataFrame(
        {"user_id": ["a", "b"], "device": ["tablet", "tablet"], "region": ["west", "east"]}
    )
    with_users = propensity_features(
        events,
        as_of="2026-05-04",
        horizon_days=2,
        users=users,
        conversion_event=BOOKED,
        segments=["device", "region"],
    )
    assert with_users["device"].tolist() == ["tablet", "tablet"]
    assert with_users["region"].tolist() == ["west", "east"]
    active = propensity_features(
        events, as_of="2026-05-04", horizon_days=2, active_days=2, conversion_event=BOOKED
    )
    assert active["user_id"].tolist() == ["a"]  # b's last touch was three days before


def test_churn_features_by_hand():
    tx = pd.DataFrame(
        {
            "user_id": ["a", "a", "a", "b", "c"],
            "timestamp": _ts("2026-01-01", "2026-01-21", "2026-02-10", "2026-01-05", "2026-03-30"),
            "value": [10.0, 30.0, 20.0, 5.0, 7.0],
        }
    )
    f = churn_features(tx, as_of="2026-02-01", horizon_days=30).set_index("user_id")
    assert f.index.tolist() == ["a", "b"]
    assert f.loc["a", ["purchases", "churned"]].tolist() == [2, 0]
    assert f.loc["a", "recency_days"] == pytest.approx(11.0)
    assert f.loc["a", "tenure_days"] == pytest.approx(31.0)
    assert f.loc["a", "mean_value"] == pytest.approx(20.0) and f.loc[
        "a", "total_value"
    ] == pytest.approx(40.0)
    assert f.loc["b", "churned"] == 1


# -- AUC ------------------------------------------------------------------------------
def test_auc_equals_mann_whitney_and_delong_variance_by_brute_force():
    y = np.array([0, 0, 1, 1, 0, 1, 0, 1, 1, 0])
    score = np.array([0.1, 0.4, 0.35, 0.8, 0.5, 0.5, 0.2, 0.9, 0.3, 0.6])
    pos, neg = score[y == 1], score[y == 0]
    u = stats.mannwhitneyu(pos, neg, alternative="two-sided").statistic
    auc, se, lo, hi = auc_delong(y, score)
    assert auc == pytest.approx(u / (len(pos) * len(neg)), abs=1e-15)
    assert auc == pytest.approx(0.7)  # 17.5 of 25 pairs, the 0.5-0.5 tie counting one half
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    var = v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg)
    assert se == pytest.approx(np.sqrt(var), rel=1e-12)
    assert (lo, hi) == pytest.approx(
        (auc - 1.959963984540054 * se, min(1.0, auc + 1.959963984540054 * se))
    )
    with pytest.raises(NotComputableError, match="0 positives"):
        auc_delong([0, 0], [0.1, 0.2])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), st.integers(-5, 5)), min_size=2, max_size=40).filter(
        lambda rows: 0 < sum(y for y, _ in rows) < len(rows)
    )
)
def test_auc_is_rank_based(rows):
    y = np.array([r[0] for r in rows])
    score = np.array([r[1] for r in rows], dtype=float)
    auc, se, lo, hi = auc_delong(y, score)
    assert auc_delong(y, np.exp(score))[0] == pytest.approx(auc)  # any increasing transform
    assert auc_delong(y, -score)[0] == pytest.approx(1 - auc)
    assert 0 <= lo <= auc <= hi <= 1 and se >= 0


# -- fitting --------------------------------------------------------------------------
def _logistic_data(n: int = 600, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.poisson(2.0, size=n)
    device = rng.choice(["mobile", "desktop", "tablet"], size=n, p=[0.5, 0.3, 0.2])
    eta = -1.0 + 0.8 * x1 - 0.3 * x2 + 0.6 * (device == "desktop")
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    return pd.DataFrame(
        {
            "user_id": [f"u{i}" for i in range(n)],
            "x1": x1,
            "x2": x2,
            "device": device,
            "converted": y,
        }
    )


def test_logistic_coefficients_equal_statsmodels_logit():
    data = _logistic_data()
    res = fit_propensity(data, holdout="none")
    x = sm.add_constant(
        pd.DataFrame(
            {
                "x1": data["x1"],
                "x2": data["x2"].astype(float),
                "device[desktop]": (data["device"] == "desktop").astype(float),
                "device[tablet]": (data["device"] == "tablet").astype(float),
            }
        )
    )
    direct = sm.Logit(data["converted"].astype(float), x).fit(disp=0)
    assert res.method == "logit (maximum likelihood)"
    assert res.status == "ok" and res.warnings == []
    assert (
        res.summary().splitlines()[0]
        == "Status: ok (maximum likelihood converged; every coefficient identified)."
    )
    assert res.params.to_numpy() == pytest.approx(direct.params.to_numpy(), rel=1e-7, abs=1e-9)
    assert np.sqrt(np.diag(res.cov)) == pytest.approx(direct.bse.to_numpy(), rel=1e-6)
    drivers = res.drivers.set_index("predictor")
    assert drivers.loc["x1", "odds_ratio"] == pytest.approx(np.exp(direct.params["x1"]))
    lo, hi = np.exp(direct.conf_int().loc["x1"])
    assert (drivers.loc["x1", "or_ci_low"], drivers.loc["x1", "or_ci_high"]) == pytest.approx(
        (lo, hi), rel=1e-6
    )
    # strongest first: yes vs no for binary drivers, one standard deviation for the others
    strength = np.abs(drivers["coef"] * np.where(drivers["binary"], 1.0, drivers["sd"]))
    assert list(strength) == sorted(strength, reverse=True)
    assert drivers.loc["x1", "sd"] == pytest.approx(data["x1"].std(ddof=0))
    assert drivers.loc["x1", "odds_ratio_per_sd"] == pytest.approx(
        np.exp(direct.params["x1"] * data["x1"].std(ddof=0))
    )
    assert "device: reference level 'mobile'." in res.summary()
    assert res.predict(data.head(3)).to_numpy() == pytest.approx(
        direct.predict(x.head(3)).to_numpy(), rel=1e-7
    )


def test_perfect_separation_falls_back_to_a_ridge_fit_cleanly():
    x = np.arange(40, dtype=float)
    data = pd.DataFrame(
        {"x": x, "noise": np.tile([0.0, 1.0], 20), "converted": (x >= 20).astype(int)}
    )
    with pytest.warns(
        ModelWarning, match="propensity of 'converted': status 'boundary'. the outcome is"
    ):
        res = fit_propensity(data, holdout="none")
    assert res.status == "boundary"
    assert (
        res.summary()
        .splitlines()[0]
        .startswith(
            "Status: boundary. The outcome is (quasi-)separated by the predictors: the likelihood has no maximum; "
            "the coefficients shown come from a ridge refit"
        )
    )
    assert res.method.startswith("ridge logit")
    assert (
        "Refitted with a weak ridge penalty because the outcome is (quasi-)separated"
        in res.summary()
    )
    assert np.all(np.isfinite(res.params)) and res.params["x"] > 0
    assert res.auc == 1.0
    assert res.drivers.set_index("predictor").loc["x", "odds_ratio"] > 1


def test_collinear_predictors_are_not_identified():
    data = _logistic_data()
    data["x3"] = 2 * data["x1"] + 1  # not identical (not dropped), but carries nothing new
    with pytest.warns(ModelWarning, match="status 'not_identified'"):
        res = fit_propensity(data, holdout="none", predictors=["x1", "x2", "x3"])
    assert res.status == "not_identified" and res.method.startswith("ridge logit")
    assert "the information matrix is singular" in res.warnings[0]
    assert "collinear" in res.summary().splitlines()[0]


def test_data_that_cannot_support_a_model_give_a_reason_not_a_crash():
    data = _logistic_data(400)
    rare = data.assign(converted=0)
    rare.loc[rare.index[:6], "converted"] = 1
    with pytest.raises(
        NotComputableError, match=r"Only 6 of 400 training rows have converted = 1; .* at least 10"
    ):
        fit_propensity(rare, holdout="none")
    res = computable_or_reason(fit_propensity, rare, holdout="none", title="Propensity model")
    assert isinstance(res, NotComputableResult) and res.status == "not_computable"
    assert res.summary().startswith(
        "Not computable: Only 6 of 400 training rows have converted = 1"
    )
    single = computable_or_reason(fit_propensity, data.assign(converted=1), holdout="none")
    assert single.reason == "Every training row has converted = 1; nothing to learn."
    # one outcome only among the test rows: discrimination cannot be measured
    snap = data.assign(as_of=pd.to_datetime(np.repeat(["2026-06-01", "2026-08-01"], 200), utc=True))
    snap.attrs["horizon_days"] = 30
    snap.loc[snap.index[200:], "converted"] = 0
    with pytest.raises(NotComputableError, match="Every test row has converted = 0"):
        fit_propensity(snap, predictors=["x1", "x2"])
    # a data error is still an error
    with pytest.raises(DataError, match="must be 0 or 1"):
        computable_or_reason(
            fit_propensity, data.assign(converted=data["converted"] * 3), holdout="none"
        )


def test_purchase_only_events_leave_nobody_at_risk():
    events = pd.DataFrame(
        {
            "user_id": ["a", "a", "b", "c"],
            "timestamp": _ts("2026-01-05", "2026-02-10", "2026-01-20", "2026-03-03"),
            "event": "booking_completed",
        }
    )
    with pytest.raises(
        NotComputableError,
        match=r"No user is at risk at the snapshot dates \(2026-02-01 to 2026-03-01\).*"
        r"\(2 users seen, 2 already converted\)",
    ):
        propensity_features(
            events,
            as_of=["2026-02-01", "2026-03-01"],
            horizon_days=10,
            observed_until="2026-03-31",
            conversion_event="booking_completed",
        )


def test_time_holdout_trains_only_on_closed_label_windows():
    data = _logistic_data(900)
    data["as_of"] = pd.to_datetime(
        np.repeat(["2026-06-01", "2026-07-01", "2026-08-01"], 300), utc=True
    )
    data.attrs["horizon_days"] = 30
    res = fit_propensity(data, predictors=["x1", "x2", "device"])
    # default split = last snapshot (08-01): train 06-01 and 07-01 (windows end by 07-31), test 08-01
    assert (res.n_train, res.n_test) == (600, 300)
    assert set(res.predictions["as_of"].dt.strftime("%m-%d")) == {"08-01"}
    mid = fit_propensity(data, predictors=["x1", "x2", "device"], split_date="2026-07-15")
    assert (mid.n_train, mid.n_test) == (
        300,
        300,
    )  # 07-01 + 30 days runs past the split; 08-01 is tested
    cal = res.calibration
    assert cal["n"].sum() == 300 and len(cal) == 10
    assert np.average(cal["observed"], weights=cal["n"]) == pytest.approx(
        res.predictions["y"].mean()
    )
    with pytest.raises(ParameterError, match="two or more as_of dates"):
        fit_propensity(data[data["as_of"] == data["as_of"].iloc[0]])
    with pytest.raises(DataError, match="must be 0 or 1"):
        fit_propensity(data.assign(converted=data["converted"] * 2), holdout="none")


def test_propensity_plots(tmp_path):
    res = fit_propensity(_logistic_data(), holdout="random", seed=2)
    ax = res.plot()
    assert ax.get_title().startswith("Calibration of 'converted'")
    ax.figure.savefig(tmp_path / "calibration.png")
    ax = res.plot_drivers()
    assert [t.get_text() for t in ax.get_yticklabels()][-1] == "x1 (per SD)"
    plt.close("all")
    assert "jl-table" in res._repr_html_()


def test_calibration_bin_without_events_keeps_its_interval_around_the_rate_and_plots():
    # 1,950 rows in 10 deciles of 195: statsmodels' Wilson lower bound for 0 of 195
    # is 1.7e-18, a rounding error above the observed rate 0.
    rng = np.random.default_rng(5)
    x1 = rng.normal(size=1950)
    y = (rng.random(1950) < 1 / (1 + np.exp(-(-3 + 2 * x1)))).astype(int)
    data = pd.DataFrame({"user_id": [f"u{i}" for i in range(1950)], "x1": x1, "converted": y})
    res = fit_propensity(data, holdout="none")
    cal = res.calibration
    assert (cal["n"] == 195).all()
    assert cal.loc[0, "events"] == 0 and cal.loc[0, "observed_ci_low"] == 0.0
    assert (cal["observed_ci_low"] <= cal["observed"]).all()
    assert (cal["observed"] <= cal["observed_ci_high"]).all()
    ax = res.plot()
    ax.figure.canvas.draw()
    plt.close("all")


# -- next best touchpoint -------------------------------------------------------------
HAND_PATHS = pd.DataFrame(
    {
        "path": [("A", "B"), ("A",), ("B",), ("C",), ("A", "C"), ("A", "A", "B")],
        "conversions": [1, 0, 2, 0, 0, 0],
        "non_conversions": [1, 2, 0, 1, 1, 0],
    }
)
# By hand (repeats collapse, so A > A > B is A > B with no journeys and adds nothing):
# start -> A 5/8, B 2/8, C 1/8;  A -> B 2/5, C 1/5, null 2/5;  B -> conv 3/4, null 1/4;  C -> null.
# P(B) = 3/4, P(C) = 0, P(A) = 2/5 * 3/4 = 3/10, P(start) = 5/8 * 3/10 + 2/8 * 3/4 = 3/8 (= 3 of 8 journeys).


def test_next_best_touchpoint_on_a_hand_made_chain():
    res = next_best_touchpoint(HAND_PATHS, state="A")
    t = res.to_frame().set_index("next_touch")
    assert res.best == "B"
    assert res.current_probability == pytest.approx(0.3)
    assert t.loc["B", "conversion_probability"] == pytest.approx(0.75)
    assert t.loc["B", "uplift"] == pytest.approx(0.45)
    assert t.loc["C", "uplift"] == pytest.approx(-0.3)
    assert t.loc["B", "transition_share"] == pytest.approx(0.4)
    assert t.loc["C", "transition_share"] == pytest.approx(0.2)
    start = next_best_touchpoint(HAND_PATHS).to_frame().set_index("next_touch")
    assert next_best_touchpoint(HAND_PATHS).current_probability == pytest.approx(3 / 8)
    assert start["conversion_probability"].to_dict() == pytest.approx(
        {"B": 0.75, "A": 0.3, "C": 0.0}
    )
    assert (
        next_best_touchpoint(HAND_PATHS, state=("C", "A")).state == "A"
    )  # the journey's last touch
    with pytest.raises(ParameterError, match=r"state == 'b' is not a state.*did you mean 'B'"):
        next_best_touchpoint(HAND_PATHS, state="b")
    assert "Best next touch: B" in res.summary()


def test_string_paths_and_transitions_agree_with_the_hand_values():
    as_strings = HAND_PATHS.assign(path=HAND_PATHS["path"].map(" > ".join))
    res = next_best_touchpoint(as_strings, state="A")
    assert res.to_frame()["uplift"].tolist() == pytest.approx([0.45, -0.3])
    assert res.to_frame()["transition_share"].tolist() == pytest.approx([0.4, 0.2])
    assert next_best_touchpoint(as_strings).current_probability == pytest.approx(3 / 8)


# -- the sample and a real dataset ----------------------------------------------------
@pytest.fixture(scope="module")
def propensity_sample(request):
    pytest.importorskip("journeylab.datasets.sample")
    return request.getfixturevalue("sample")


def test_next_best_touchpoint_from_the_sample_event_log(request):
    pytest.importorskip("journeylab.datasets.sample")
    pytest.importorskip("journeylab.journeys.build")
    from journeylab.journeys.build import path_table

    sample = request.getfixturevalue("small_sample")
    # the path table of the sample's journeys, built with its stage map and conversion
    paths = path_table(sample.events, stage_map=sample.stage_map, conversion="booking_completed")
    from_events = next_best_touchpoint(paths, state="display")
    t = from_events.to_frame()
    assert "display" not in set(t["next_touch"]) and {"paid_search", "social"} <= set(
        t["next_touch"]
    )
    assert t["transition_share"].sum() <= 1 + 1e-12
    assert (t["conversion_probability"].between(0, 1)).all()
    assert t["uplift"].tolist() == pytest.approx(
        (t["conversion_probability"] - from_events.current_probability).tolist()
    )


@pytest.mark.slow
def test_sample_conversion_propensity_beats_chance_on_the_time_holdout(propensity_sample):
    s = propensity_sample
    from journeylab.datasets.sample import sample_project

    features = propensity_features(
        s.events,
        as_of=["2026-09-01", "2026-10-01"],
        horizon_days=30,
        users=s.users,
        active_days=30,
        project=sample_project(),
    )
    vocabulary = features.attrs["vocabulary"]
    # read off the data: the events that arrive through a channel are the touches, the
    # steps taken on the way (before converting) are the counts
    assert {"site_visit", "ad_impression"} <= set(vocabulary["touch_events"])
    assert {"service_page_view", "quote_request", "booking_started"} <= set(
        vocabulary["count_events"]
    )
    assert vocabulary["columns"] == ["response_minutes"]  # the project's call-back speed band
    res = fit_propensity(features)
    assert (
        res.holdout == "time" and res.n_test == (features["as_of"] == features["as_of"].max()).sum()
    )
    assert res.auc_ci[0] > 0.7
    assert abs(res.predictions["p"].mean() - res.predictions["y"].mean()) < 0.02
    assert res.plot().get_title().startswith("Calibration of 'converted'")
    plt.close("all")


def test_sample_slow_call_back_driver_recovers_the_planted_odds_ratio(propensity_sample):
    s = propensity_sample
    events = s.events
    callbacks = (
        events[events["event"] == "callback"]
        .groupby("user_id")
        .agg(at=("timestamp", "first"), minutes=("response_minutes", "first"))
    )
    booked = events[events["event"] == "booking_completed"].groupby("user_id")["timestamp"].first()
    slow_minutes = s.truth["phone_response"]["slow_minutes"]
    table = pd.DataFrame(
        {
            "user_id": callbacks.index,
            "slow_callback": (callbacks["minutes"] > slow_minutes).astype(int).to_numpy(),
            "converted": callbacks.index.to_series()
            .map(booked)
            .gt(callbacks["at"])
            .astype(int)
            .to_numpy(),
        }
    )
    res = fit_propensity(table, holdout="random", seed=1)
    rate = s.truth["phone_response"]["booking_rate"]
    planted = (rate["slow"] / (1 - rate["slow"])) / (rate["fast"] / (1 - rate["fast"]))  # 0.273
    driver = res.drivers.set_index("predictor").loc["slow_callback"]
    assert driver["or_ci_low"] <= planted <= driver["or_ci_high"]
    assert "Slow callback (yes vs no) lowers the odds of converting" in res.summary()


@pytest.mark.slow
def test_ecommerce_conversion_propensity_from_its_own_vocabulary():
    from journeylab.datasets.sample import make_sample, sample_project

    shop = make_sample(seed=2026, n_users=20_000, vertical="ecommerce")
    features = propensity_features(
        shop.events,
        as_of=["2026-09-01", "2026-10-01"],
        horizon_days=30,
        users=shop.users,
        active_days=30,
        project=sample_project("ecommerce"),
    )
    vocabulary = features.attrs["vocabulary"]
    assert {"product_view", "add_to_cart", "checkout_start"} <= set(vocabulary["count_events"])
    assert "purchase" not in vocabulary["count_events"]  # the conversion is the label
    assert vocabulary["segments"] == ["platform", "country", "shopper_type"]
    res = fit_propensity(features)
    assert res.auc_ci[0] > 0.8
    assert abs(res.predictions["p"].mean() - res.predictions["y"].mean()) < 0.02
    assert "days_since_last_touch" in set(res.drivers["predictor"].head(5))


@pytest.mark.slow
@pytest.mark.shared_data
def test_online_retail_repeat_order_propensity_from_derived_events():
    """Orders only: each customer's first order and repeat orders are the events."""
    import duckdb

    from journeylab.io.derive import events_from_transactions

    path = shared_file("online_retail", "online_retail_by_day_concat.csv.gz")
    tx = duckdb.sql(
        f"""
        SELECT CAST(CAST(CustomerID AS BIGINT) AS VARCHAR) AS user_id, InvoiceNo AS order_id,
               InvoiceDate AS timestamp, Quantity * UnitPrice AS value
        FROM read_csv('{path}', header = true, columns = {{
            'InvoiceNo': 'VARCHAR', 'StockCode': 'VARCHAR', 'Description': 'VARCHAR', 'Quantity': 'BIGINT',
            'InvoiceDate': 'TIMESTAMP', 'UnitPrice': 'DOUBLE', 'CustomerID': 'DOUBLE', 'Country': 'VARCHAR'}})
        WHERE CustomerID IS NOT NULL
        """
    ).df()
    tx["timestamp"] = tx["timestamp"].dt.tz_localize("UTC")
    events = events_from_transactions(tx)
    features = propensity_features(
        events,
        as_of=["2011-03-01", "2011-06-01", "2011-09-01"],
        horizon_days=90,
        conversion_event="repeat_purchase",
        columns=["value"],
    )
    vocabulary = features.attrs["vocabulary"]
    assert vocabulary["touch_events"] == [] and vocabulary["channels"] == []  # no channel column
    assert vocabulary["count_events"] == ["first_purchase", "refund"]
    res = fit_propensity(features, split_date="2011-09-01")
    assert res.status == "ok" and (res.n_train, res.n_test) == (2468, 1419)
    # a weak model (orders alone say little about the next one), but better than chance
    assert 0.5 < res.auc_ci[0] and res.auc < 0.7


@pytest.mark.slow
@pytest.mark.shared_data
def test_online_retail_churn_propensity_on_a_time_holdout():
    import duckdb

    path = shared_file("online_retail", "online_retail_by_day_concat.csv.gz")
    tx = duckdb.sql(
        f"""
        SELECT CAST(CAST(CustomerID AS BIGINT) AS VARCHAR) AS user_id, min(InvoiceDate) AS timestamp,
               sum(Quantity * UnitPrice) AS value
        FROM read_csv('{path}', header = true, columns = {{
            'InvoiceNo': 'VARCHAR', 'StockCode': 'VARCHAR', 'Description': 'VARCHAR', 'Quantity': 'BIGINT',
            'InvoiceDate': 'TIMESTAMP', 'UnitPrice': 'DOUBLE', 'CustomerID': 'DOUBLE', 'Country': 'VARCHAR'}})
        WHERE CustomerID IS NOT NULL AND NOT starts_with(InvoiceNo, 'C')
        GROUP BY CustomerID, InvoiceNo
        """
    ).df()
    assert (
        tx["user_id"].nunique() == 4339
    )  # customers with a non-cancelled invoice (4,372 with any)
    features = churn_features(tx, as_of=["2011-03-01", "2011-06-01", "2011-09-01"], horizon_days=90)
    res = fit_propensity(features, target="churned", split_date="2011-09-01")
    assert (res.n_train, res.n_test) == (4400, 3317)
    assert res.auc_ci[0] > 0.7
    assert (
        res.drivers.set_index("predictor").loc["purchases", "odds_ratio"] < 1
    )  # frequent buyers stay


def test_repeats_collapse_and_a_fitted_markov_chain_gives_the_same_answer():
    repeated = HAND_PATHS.assign(
        path=HAND_PATHS["path"].map(lambda p: tuple(c for c in p for _ in range(2)))
    )
    start = (
        next_best_touchpoint(repeated).to_frame().set_index("next_touch")["conversion_probability"]
    )
    assert start.to_dict() == pytest.approx({"B": 0.75, "A": 0.3, "C": 0.0})
    chain = MarkovChain(order=1).fit(HAND_PATHS.assign(value=0.0))
    res = next_best_touchpoint(chain, state="A")
    assert res.to_frame()["conversion_probability"].tolist() == pytest.approx([0.75, 0.0])
    assert next_best_touchpoint(repeated, state="A").to_frame()["uplift"].tolist() == pytest.approx(
        [0.45, -0.3]
    )
    with pytest.raises(ParameterError, match="first-order chain"):
        next_best_touchpoint(MarkovChain(order=2).fit(HAND_PATHS.assign(value=0.0)))


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.sampled_from("ABCD"), min_size=1, max_size=4).map(tuple),
            st.integers(0, 5),
            st.integers(0, 5),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_from_the_start_the_chain_converts_at_the_observed_rate(rows):
    # Flow conservation: the path counts are a solution of the chain's visit equations,
    # so the absorption probability from (start) is exactly the share of converting journeys.
    paths = pd.DataFrame(rows, columns=["path", "conversions", "non_conversions"])
    paths = paths.groupby("path", as_index=False)[["conversions", "non_conversions"]].sum()
    total = paths["conversions"].sum() + paths["non_conversions"].sum()
    if total == 0:
        return
    res = next_best_touchpoint(paths)
    assert res.current_probability == pytest.approx(paths["conversions"].sum() / total, abs=1e-10)
    t = res.to_frame()
    assert t["conversion_probability"].between(-1e-12, 1 + 1e-12).all()
    assert t["transition_share"].sum() == pytest.approx(
        1.0
    )  # from (start) every journey takes a first touch
