"""Uplift models and their evaluation.

Definitions followed (see :mod:`journeylab.customers.uplift`):

- Qini curve: N. J. Radcliffe (2007), "Using control groups to target on predicted
  lift: building and assessing uplift models", Direct Marketing Analytics Journal,
  pp. 14-21: g(t) = Y_T(t) - Y_C(t) N_T(t) / N_C(t) after targeting t people in order
  of predicted uplift; the Qini coefficient is the area between that curve and the
  random-targeting diagonal.
- Uplift curve: P. Gutierrez & J.-Y. Gérardy (2017), "Causal inference and uplift
  modelling: a review of the literature", PMLR 67:1-13, section 4:
  f(t) = (Y_T(t)/N_T(t) - Y_C(t)/N_C(t)) (N_T(t) + N_C(t)).
- Class transformation: M. Jaskowski & S. Jaroszewicz (2012), "Uplift modeling for
  clinical trial data", ICML workshop: z = 1 for treated responders and control
  non-responders, uplift = 2 P(z=1|x) - 1 when half are treated.

The Hillstrom tests recompute every metric from the predictions with the plain code
below (row loops and pandas, written from the definitions, sharing nothing with the
module) and compare with the module and with tests/results/uplift_reference.json.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import shared_file
from journeylab.core.errors import DataError, NotComputableError, ParameterError, SchemaError
from journeylab.customers.uplift import fit_uplift
from journeylab.customers.uplift_curves import (
    qini_coefficient,
    qini_curve,
    top_share_uplift,
    uplift_by_decile,
    uplift_curve,
)

REFERENCE = json.loads(
    (Path(__file__).parents[1] / "results" / "uplift_reference.json").read_text()
)
HILLSTROM = REFERENCE["hillstrom"]


# --------------------------------------------------------------------------- independent formulas
def plain_qini_points(y, t, score):
    """(people targeted, g) after each tie group, by a loop over the ranked rows."""
    frame = pd.DataFrame({"y": y, "t": t, "s": score}).sort_values(
        "s", ascending=False, kind="stable"
    )
    points = [(0, 0.0)]
    yt = yc = nt = nc = 0
    rows = list(frame.itertuples(index=False))
    for i, row in enumerate(rows):
        nt += row.t
        nc += 1 - row.t
        yt += row.y * row.t
        yc += row.y * (1 - row.t)
        last_of_group = i == len(rows) - 1 or rows[i + 1].s != row.s
        if last_of_group:
            g = yt - (yc * nt / nc if nc > 0 else 0.0)
            points.append((nt + nc, g))
    return points


def plain_uplift_points(y, t, score):
    frame = pd.DataFrame({"y": y, "t": t, "s": score}).sort_values(
        "s", ascending=False, kind="stable"
    )
    points = [(0, 0.0)]
    yt = yc = nt = nc = 0
    rows = list(frame.itertuples(index=False))
    for i, row in enumerate(rows):
        nt += row.t
        nc += 1 - row.t
        yt += row.y * row.t
        yc += row.y * (1 - row.t)
        if i == len(rows) - 1 or rows[i + 1].s != row.s:
            rate_t = yt / nt if nt else 0.0
            rate_c = yc / nc if nc else 0.0
            points.append((nt + nc, (rate_t - rate_c) * (nt + nc)))
    return points


def plain_qini_coefficient(y, t, score):
    points = plain_qini_points(y, t, score)
    n, g_end = points[-1]
    area = 0.0
    for (x0, g0), (x1, g1) in zip(points[:-1], points[1:], strict=True):
        area += (x1 - x0) * (g0 + g1) / 2
    return (area - n * g_end / 2) / n**2


def plain_deciles(y, t, score, bins=10):
    frame = pd.DataFrame({"y": y, "t": t, "s": score}).sort_values(
        "s", ascending=False, kind="stable"
    )
    frame["decile"] = [k * bins // len(frame) + 1 for k in range(len(frame))]
    out = []
    for d, part in frame.groupby("decile"):
        treated, control = part[part["t"] == 1], part[part["t"] == 0]
        out.append(
            {
                "decile": d,
                "n_treated": len(treated),
                "n_control": len(control),
                "rate_treated": treated["y"].mean(),
                "rate_control": control["y"].mean(),
                "uplift": treated["y"].mean() - control["y"].mean(),
                "predicted_uplift": part["s"].mean(),
            }
        )
    return pd.DataFrame(out)


def plain_top(y, t, score, share):
    frame = pd.DataFrame({"y": y, "t": t, "s": score}).sort_values(
        "s", ascending=False, kind="stable"
    )
    top = frame.iloc[: math.ceil(share * len(frame))]
    return top.loc[top["t"] == 1, "y"].mean() - top.loc[top["t"] == 0, "y"].mean()


# --------------------------------------------------------------------------- Hillstrom
FEATURES = ["recency", "history", "mens", "womens", "zip_code", "newbie", "channel"]


@pytest.fixture(scope="module")
def hillstrom():
    from journeylab.io.loaders import load_assignments

    path = shared_file(*HILLSTROM["file"])
    return load_assignments(path, columns={"segment": "variant"}, user_id_from_row=True).frame


@pytest.fixture(scope="module")
def hillstrom_fits(hillstrom):
    settings_ = HILLSTROM["settings"]
    fits = {}
    for case, spec in HILLSTROM["cases"].items():
        fits[case] = fit_uplift(
            hillstrom,
            outcome=spec["outcome"],
            features=FEATURES,
            control="No E-Mail",
            treatment=spec["treatment"],
            test_size=settings_["test_size"],
            top_share=settings_["top_share"],
            n_boot=settings_["n_boot"],
            seed=settings_["seed"],
        )
    return fits


@pytest.mark.shared_data
@pytest.mark.parametrize("case", list(HILLSTROM["cases"]))
def test_hillstrom_metrics_equal_an_independent_computation(hillstrom_fits, case):
    res = hillstrom_fits[case]
    p = res.predictions
    y, t = p["y"].to_numpy(), p["treated"].to_numpy()
    for model in res.models:
        score = p[f"uplift_{model}"].to_numpy()
        row = res.qini.set_index("model").loc[model]
        assert row["qini"] == pytest.approx(
            plain_qini_coefficient(y, t, score), rel=1e-10, abs=1e-15
        )
        module_curve = qini_curve(y, t, score)
        expected = plain_qini_points(y, t, score)
        assert module_curve["targeted"].tolist() == [x for x, _ in expected]
        np.testing.assert_allclose(
            module_curve["incremental"], [g for _, g in expected], rtol=1e-10, atol=1e-9
        )
        np.testing.assert_allclose(
            uplift_curve(y, t, score)["incremental"],
            [f for _, f in plain_uplift_points(y, t, score)],
            rtol=1e-10,
            atol=1e-9,
        )
        mine = res.deciles[res.deciles["model"] == model].reset_index(drop=True)
        plain = plain_deciles(y, t, score)
        for col in plain.columns:
            np.testing.assert_allclose(
                mine[col].to_numpy(float), plain[col].to_numpy(float), rtol=1e-12, err_msg=col
            )
        assert row["top_uplift"] == pytest.approx(plain_top(y, t, score, 0.3), rel=1e-12)
        assert row["all_uplift"] == pytest.approx(y[t == 1].mean() - y[t == 0].mean(), rel=1e-12)


@pytest.mark.shared_data
@pytest.mark.parametrize("case", list(HILLSTROM["cases"]))
def test_hillstrom_metrics_match_the_reference_numbers(hillstrom_fits, case):
    res = hillstrom_fits[case]
    expected = HILLSTROM["cases"][case]
    assert res.counts["test_treated"] == expected["test_treated"]
    assert res.counts["test_control"] == expected["test_control"]
    for model, ref in expected["models"].items():
        row = res.qini.set_index("model").loc[model]
        for key, value in ref.items():
            assert row[key] == pytest.approx(value, rel=1e-6), (model, key)


@pytest.mark.shared_data
def test_hillstrom_two_model_coefficients_equal_statsmodels_formula_logits(hillstrom_fits):
    import statsmodels.formula.api as smf

    res = hillstrom_fits["any_email_visit"]
    train = res.data[~res.data["_test"]]
    formula = (
        "visit ~ recency + history + mens + womens + C(zip_code, Treatment('Surburban')) + newbie"
        " + C(channel, Treatment('Web'))"
    )
    reference = res.design.reference
    assert reference == {"zip_code": "Surburban", "channel": "Web"}  # the most frequent levels
    for arm, label in (("treated", 1.0), ("control", 0.0)):
        fit = smf.logit(formula, data=train[train["_t"] == label]).fit(disp=0)
        mine = dict(zip(res.design.columns, res.models["two_model"].params_[arm], strict=True))
        assert mine["const"] == pytest.approx(fit.params["Intercept"], rel=1e-7)
        assert mine["history"] == pytest.approx(fit.params["history"], rel=1e-6)
        assert mine["channel[Phone]"] == pytest.approx(
            fit.params["C(channel, Treatment('Web'))[T.Phone]"], rel=1e-6
        )
        assert mine["zip_code[Urban]"] == pytest.approx(
            fit.params["C(zip_code, Treatment('Surburban'))[T.Urban]"], rel=1e-6
        )


@pytest.mark.shared_data
def test_hillstrom_class_transformation_maximises_the_weighted_likelihood(hillstrom_fits):
    """Two thirds are e-mailed here, so the weights matter; scipy's optimiser finds the same optimum."""
    from scipy.optimize import minimize
    from scipy.special import expit

    res = hillstrom_fits["any_email_visit"]
    train = res.data[~res.data["_test"]]
    x = res.design.matrix(train)
    t, y = train["_t"].to_numpy(), train["_y"].to_numpy()
    e = t.mean()
    assert e == pytest.approx(2 / 3, abs=0.01)
    z = np.where(t == 1, y, 1 - y)
    w = np.where(t == 1, 1 / (2 * e), 1 / (2 * (1 - e)))
    scale = x.std(axis=0)
    scale[0] = 1.0

    def negloglik(b):
        eta = (x / scale) @ b
        return -np.sum(w * (z * eta - np.logaddexp(0, eta))) / len(z)

    opt = minimize(negloglik, np.zeros(x.shape[1]), method="BFGS", options={"gtol": 1e-10})
    beta = opt.x / scale
    model = res.models["class_transformation"]
    np.testing.assert_allclose(model.params_, beta, rtol=1e-4, atol=1e-7)
    # uplift = 2 P(z=1|x) - 1 on the test rows
    test = res.data[res.data["_test"]]
    np.testing.assert_allclose(
        res.predictions["uplift_class_transformation"],
        2 * expit(res.design.matrix(test) @ model.params_) - 1,
    )


@pytest.mark.shared_data
def test_hillstrom_arm_counts_equal_the_published_figures(hillstrom_fits):
    arms = json.loads(
        (Path(__file__).parents[1] / "results" / "real_data_loading.json").read_text()
    )["hillstrom"]["arms"]
    by_channel = hillstrom_fits["any_email_visit"].segment_uplift("channel", rows="all")
    assert by_channel["n_treated"].sum() == arms["Mens E-Mail"]["n"] + arms["Womens E-Mail"]["n"]
    assert (
        by_channel["responders_treated"].sum()
        == arms["Mens E-Mail"]["visits"] + arms["Womens E-Mail"]["visits"]
    )
    assert by_channel["n_control"].sum() == arms["No E-Mail"]["n"]
    assert by_channel["responders_control"].sum() == arms["No E-Mail"]["visits"]


@pytest.mark.shared_data
def test_hillstrom_summary_plots_and_recommendation(hillstrom_fits):
    import matplotlib.pyplot as plt

    res = hillstrom_fits["any_email_visit"]
    text = res.summary()
    assert "Qini coefficient" in text and "per 1,000 people sent" in text
    assert "better than random targeting (the Qini interval lies above 0)" in text
    assert "<table" in res._repr_html_()
    for draw in (res.plot, res.plot_uplift_curve, res.plot_deciles):
        fig, ax = plt.subplots()
        assert draw(ax=ax) is ax
        plt.close(fig)
    # the conversion ranking is not distinguishable from random: the advice says so
    assert "not detectably better than random" in hillstrom_fits[
        "any_email_conversion"
    ].recommendation("class_transformation")


# --------------------------------------------------------------------------- a planted heterogeneous effect
LIFT = {"a": 0.12, "b": 0.0, "c": -0.05}
BASE = {"a": 0.10, "b": 0.20, "c": 0.30}


def planted(n: int, treated_share: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    segment = rng.choice(list(LIFT), size=n, p=[0.3, 0.4, 0.3])
    treated = rng.random(n) < treated_share
    noise = rng.normal(size=n)  # unrelated to the outcome
    p = np.array([BASE[s] for s in segment]) + treated * np.array([LIFT[s] for s in segment])
    return pd.DataFrame(
        {
            "user_id": [f"p{i}" for i in range(n)],
            "variant": np.where(treated, "mail", "holdout"),
            "segment": segment,
            "noise": noise,
            "bought": (rng.random(n) < p).astype(int),
        }
    )


@pytest.mark.parametrize("treated_share", [0.5, 2 / 3])
def test_a_planted_heterogeneous_effect_is_recovered_within_the_intervals(treated_share):
    data = planted(30_000, treated_share, seed=11)
    # Six intervals are checked at once (3 segments x 2 models): at 99 % each, all six hold
    # together with probability >= 94 % (Bonferroni), so a pass is not luck of one draw.
    res = fit_uplift(
        data,
        outcome="bought",
        features=["segment", "noise"],
        control="holdout",
        n_boot=100,
        seed=3,
        alpha=0.01,
    )
    by_segment = res.segment_uplift("segment", rows="all").set_index("segment")
    for segment, lift in LIFT.items():
        for model in ("two_model", "class_transformation"):
            low, high = by_segment.loc[segment, [f"{model}_ci_low", f"{model}_ci_high"]]
            assert low <= lift <= high, (segment, model, low, high)
            assert (
                high - low < 0.08
            )  # about 2 x 2.58 binomial standard errors from 21,000 training rows
    # the people the campaign moves most come first: the top decile is segment a
    top = res.predictions.nlargest(len(res.predictions) // 10, "uplift_two_model")["user_id"]
    assert set(data.set_index("user_id").loc[top, "segment"]) == {"a"}
    assert (res.qini["qini_ci_low"] > 0).all()


def test_two_model_fits_the_observed_uplift_of_each_level_on_training_rows():
    """With a categorical feature, each arm's logit reproduces that arm's rate per level (score equations)."""
    data = planted(6_000, 0.5, seed=5)
    res = fit_uplift(
        data, outcome="bought", features=["segment"], control="holdout", n_boot=20, seed=0
    )
    train = res.data[~res.data["_test"]]
    x = res.design.matrix(train)
    for level in LIFT:
        m = (train["segment"] == level).to_numpy()
        y, t = train["_y"].to_numpy()[m], train["_t"].to_numpy()[m]
        observed = y[t == 1].mean() - y[t == 0].mean()
        assert res.models["two_model"].mean_uplift(x[m])[0] == pytest.approx(observed, abs=1e-8)
        # (the class transformation matches only in expectation: its weights use the overall treated
        # share, and a level's own share differs by chance)


def test_scoring_new_people_and_deciles():
    data = planted(8_000, 0.5, seed=2)
    res = fit_uplift(
        data, outcome="bought", features=["segment", "noise"], control="holdout", n_boot=20, seed=0
    )
    people = data.drop(columns=["variant", "bought"]).head(500)
    deciles = res.decile_of(people, "two_model")
    assert deciles.between(1, 10).all()
    score = res.predict(people, "two_model")
    # higher predicted uplift never gets a later decile
    order = np.argsort(-score.to_numpy(), kind="stable")
    assert np.all(np.diff(deciles.to_numpy()[order]) >= 0)
    with pytest.raises(SchemaError, match="noise"):
        res.predict(people.drop(columns="noise"))


# --------------------------------------------------------------------------- the sample's planted effect
def _sample_truth() -> dict:
    from journeylab.datasets.sample import make_sample

    return make_sample(seed=7, n_users=300).truth


truth = _sample_truth()


@pytest.mark.skipif("uplift" not in truth, reason="the sample plants no heterogeneous effect yet")
def test_the_samples_planted_uplift_is_recovered_by_both_models(sample):
    from journeylab.experiments import user_metrics

    planted_truth = sample.truth["uplift"]
    experiment = sample.truth["experiment"]
    assignments = sample.assignments
    if "experiment" in assignments.columns:
        assignments = assignments[assignments["experiment"] == planted_truth["experiment"]]
    else:
        assert planted_truth["experiment"] == experiment["name"]
    control = planted_truth.get("control", experiment["control"])
    treatment = planted_truth.get("treatment", experiment["treatment"])
    window = planted_truth.get("window_days")
    users = user_metrics(
        assignments,
        sample.events,
        {"booked": "booking_completed"},
        window=f"{window}D" if window else None,
    )
    dimension = planted_truth["dimension"]
    if dimension not in users.columns:
        users = users.merge(sample.users[["user_id", dimension]], on="user_id", how="left")
    # 99 % intervals: two models x every segment are checked together (Bonferroni).
    res = fit_uplift(
        users,
        outcome="booked",
        features=[dimension],
        control=control,
        treatment=treatment,
        n_boot=100,
        seed=1,
        alpha=0.01,
    )
    by_segment = res.segment_uplift(dimension, rows="all").set_index(dimension)
    assert set(by_segment.index) == {str(s) for s in planted_truth["lift"]}
    for segment, lift in planted_truth["lift"].items():
        row = by_segment.loc[str(segment)]
        for model in ("two_model", "class_transformation"):
            assert row[f"{model}_ci_low"] <= lift <= row[f"{model}_ci_high"], (segment, model)
        # the control rate agrees with the planted baseline (99.9 % binomial interval)
        base = planted_truth["baseline"][segment]
        se = math.sqrt(base * (1 - base) / row["n_control"])
        assert abs(row["rate_control"] - base) < 3.3 * se, segment


# --------------------------------------------------------------------------- invariants
arrays = st.integers(min_value=4, max_value=60).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 1), min_size=n, max_size=n),
        st.lists(st.integers(0, 1), min_size=n, max_size=n),
        st.lists(st.integers(-5, 5), min_size=n, max_size=n),
    )
)


@settings(max_examples=150, deadline=None)
@given(arrays, st.randoms(use_true_random=False))
def test_qini_ignores_row_order_and_monotone_rescoring(data, rnd):
    y, t, score = (np.array(v) for v in data)
    q = qini_coefficient(y, t, score)
    perm = list(range(len(y)))
    rnd.shuffle(perm)
    assert qini_coefficient(y[perm], t[perm], score[perm]) == pytest.approx(q, abs=1e-12)
    assert qini_coefficient(y, t, np.exp(score / 3.0) * 7 - 2) == pytest.approx(q, abs=1e-12)
    assert qini_coefficient(y, t, np.zeros(len(y))) == 0.0


@settings(max_examples=150, deadline=None)
@given(arrays)
def test_curve_end_points_and_decile_counts(data):
    y, t, score = (np.array(v) for v in data)
    n_t, n_c = t.sum(), len(t) - t.sum()
    y_t, y_c = (y * t).sum(), (y * (1 - t)).sum()
    g_end = qini_curve(y, t, score)["incremental"].iloc[-1]
    assert g_end == pytest.approx(y_t - (y_c * n_t / n_c if n_c else 0.0), abs=1e-9)
    f_end = uplift_curve(y, t, score)["incremental"].iloc[-1]
    rate = (y_t / n_t if n_t else 0.0) - (y_c / n_c if n_c else 0.0)
    assert f_end == pytest.approx(rate * len(y), abs=1e-9)
    table = uplift_by_decile(y, t, score, bins=4)
    assert (table["n_treated"] + table["n_control"]).sum() == len(y)
    assert table["n_treated"].sum() == n_t
    sizes = table["n_treated"] + table["n_control"]
    assert sizes.max() - sizes.min() <= 1
    assert top_share_uplift(y, t, score, 1.0)["targeted"] == len(y)


# --------------------------------------------------------------------------- bad input
def test_bad_input_is_refused_with_a_clear_message():
    data = planted(2_000, 0.5, seed=1)
    with pytest.raises(SchemaError, match=r"'segmnt' \(did you mean 'segment'\?\)"):
        fit_uplift(data, outcome="bought", features=["segmnt"], control="holdout")
    with pytest.raises(ParameterError, match=r"control == 'hold_out'.*did you mean 'holdout'"):
        fit_uplift(data, outcome="bought", features=["segment"], control="hold_out")
    bad = data.assign(bought=data["bought"].astype(float))
    bad.loc[[3, 8], "bought"] = [2.0, np.nan]
    with pytest.raises(DataError, match=r"(?s)'bought' must be 0 or 1.*first offending rows: 4, 9"):
        fit_uplift(bad, outcome="bought", features=["segment"], control="holdout")
    gap = data.astype({"noise": float})
    gap.loc[5, "noise"] = np.nan
    with pytest.raises(
        DataError, match=r"(?s)missing value\(s\) in feature 'noise'.*first offending rows: 6"
    ):
        fit_uplift(gap, outcome="bought", features=["noise"], control="holdout")
    with pytest.raises(NotComputableError, match="at least 20 per arm"):
        fit_uplift(
            data.iloc[:30], outcome="bought", features=["noise"], control="holdout", test_size=0.5
        )
    constant = fit_uplift(
        data.assign(k=1.0), outcome="bought", features=["k", "noise"], control="holdout", n_boot=10
    )
    assert any("coefficient fixed at 0: k" in note for note in constant.notes)


def test_a_separated_outcome_falls_back_to_a_weak_ridge_and_says_so():
    data = planted(4_000, 0.5, seed=9)
    treated_buyers = data.index[(data["variant"] == "mail") & (data["bought"] == 1)][:12]
    data["flag"] = "no"
    data.loc[treated_buyers, "flag"] = (
        "yes"  # every flagged person bought: the treated logit is separated
    )
    res = fit_uplift(
        data, outcome="bought", features=["segment", "flag"], control="holdout", n_boot=20, seed=0
    )
    assert "ridge" in res.models["two_model"].methods_["treated"]
    # the flag is "no" for every control row: that model fixes its coefficient at 0
    assert res.models["two_model"].methods_["control"].endswith("coefficient fixed at 0: flag[yes]")
    assert any("ridge logit" in note and "approximate" in note for note in res.notes)
    assert np.isfinite(res.predictions["uplift_two_model"]).all()
    assert np.isfinite(res.qini["qini"]).all()
