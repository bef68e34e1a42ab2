"""Tests of journeylab.clv.models against published CDNOW results, lifetimes and hand-made cases."""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import load_online_retail, shared_file
from journeylab.clv import (
    BetaGeo,
    GammaGamma,
    clv_by_channel,
    customer_lifetime_value,
    plot_calibration_purchases_vs_holdout_purchases,
    rfm_summary,
)
from journeylab.core.errors import (
    DataError,
    ModelWarning,
    NotComputableError,
    ParameterError,
    SchemaError,
)

REFERENCE = json.loads((Path(__file__).parents[1] / "results" / "clv_reference.json").read_text())


# --------------------------------------------------------------------------- data helpers
def lifetimes_dataset(name: str) -> Path:
    """A CSV shipped inside an installed lifetimes package (found without importing it)."""
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("lifetimes is not installed: it ships the CDNOW data (pip install lifetimes)")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / name
    if not path.exists():
        pytest.skip(f"{path} not found in the installed lifetimes")
    return path


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return pd.read_csv(lifetimes_dataset("cdnow_customers_summary.csv"), index_col=0)


@pytest.fixture(scope="module")
def cdnow_spend() -> pd.DataFrame:
    return pd.read_csv(
        lifetimes_dataset("cdnow_customers_summary_with_transactions.csv"), index_col=0
    )


@pytest.fixture(scope="module")
def cdnow_model(cdnow) -> BetaGeo:
    return BetaGeo().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"], freq="W")


@pytest.fixture(scope="module")
def online_retail() -> pd.DataFrame:
    """UCI Online Retail with the preprocessing recorded in clv_reference.json."""
    raw = load_online_retail(shared_file("online_retail", "online_retail_by_day_concat.csv.gz"))
    keep = (
        raw["user_id"].notna()
        & ~raw["InvoiceNo"].str.startswith("C")
        & (raw["Quantity"] > 0)
        & (raw["UnitPrice"] > 0)
    )
    return raw.loc[keep, ["user_id", "timestamp", "value"]]


@pytest.fixture(scope="module")
def online_retail_fit(online_retail):
    summary = rfm_summary(online_retail, freq="D")
    return summary, BetaGeo().fit(summary), GammaGamma().fit(summary)


def tx(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user_id", "timestamp", "value"]).assign(
        timestamp=lambda d: pd.to_datetime(d["timestamp"], format="ISO8601")
    )


# --------------------------------------------------------------------------- published CDNOW results
def test_bgnbd_close_to_Fader_Hardie_Lee_2005_cdnow(cdnow, cdnow_model):
    published = REFERENCE["cdnow_published"]["bgnbd"]
    assert len(cdnow) == 2357
    for name, value in published["params"].items():
        assert abs(cdnow_model.params_[name] - value) <= 0.0005, name
    assert cdnow_model.log_likelihood_ == pytest.approx(published["log_likelihood"], abs=0.05)


def test_gamma_gamma_close_to_Fader_Hardie_2013_cdnow(cdnow_spend):
    published = REFERENCE["cdnow_published"]["gamma_gamma"]["params"]
    model = GammaGamma().fit(cdnow_spend["x"], cdnow_spend["zbar"])
    assert model.n_customers_ == 946
    for name, value in published.items():
        assert abs(model.params_[name] - value) <= 0.01, name


def test_bgnbd_cdnow_same_as_lifetimes(cdnow, cdnow_model):
    ref = REFERENCE["cdnow_lifetimes"]["bgnbd"]
    pd.testing.assert_series_equal(cdnow_model.params_, pd.Series(ref["params"]), rtol=1e-5)
    pd.testing.assert_series_equal(
        cdnow_model.standard_errors_,
        pd.Series(ref["standard_errors"]),
        rtol=1e-4,
        check_names=False,
    )
    for cid, row in REFERENCE["cdnow_lifetimes"]["customers"].items():
        x, t_x, T = cdnow.loc[int(cid), ["frequency", "recency", "T"]]
        assert cdnow_model.conditional_probability_alive(x, t_x, T) == pytest.approx(
            row["p_alive"], rel=1e-5
        )
        assert cdnow_model.conditional_expected_number_of_purchases_up_to_time(
            39, x, t_x, T
        ) == pytest.approx(row["expected_purchases_39"], rel=1e-5)
    for t, value in REFERENCE["cdnow_lifetimes"]["expected_purchases_new_customer"].items():
        assert cdnow_model.expected_number_of_purchases_up_to_time(float(t)) == pytest.approx(
            value, rel=1e-5
        )


def test_gamma_gamma_cdnow_same_as_lifetimes(cdnow_spend):
    ref = REFERENCE["cdnow_lifetimes"]["gamma_gamma"]
    model = GammaGamma().fit(cdnow_spend["x"], cdnow_spend["zbar"])
    pd.testing.assert_series_equal(model.params_, pd.Series(ref["params"]), rtol=1e-5)
    pd.testing.assert_series_equal(
        model.standard_errors_, pd.Series(ref["standard_errors"]), rtol=1e-4, check_names=False
    )
    for cid, value in REFERENCE["cdnow_lifetimes"]["expected_average_profit"].items():
        x, m = cdnow_spend.loc[int(cid), ["x", "zbar"]]
        assert model.conditional_expected_average_profit(x, m) == pytest.approx(value, rel=1e-5)


# --------------------------------------------------------------------------- Online Retail vs lifetimes
def test_rfm_summary_online_retail_same_as_lifetimes(online_retail_fit):
    summary, _, _ = online_retail_fit
    ref = REFERENCE["online_retail_lifetimes"]["summary"]
    assert len(summary) == ref["customers"] == 4338
    assert summary["frequency"].sum() == ref["frequency_sum"]
    assert summary["recency"].sum() == ref["recency_sum"]
    assert summary["T"].sum() == ref["T_sum"]
    assert int((summary["frequency"] > 0).sum()) == ref["repeat_customers"]
    repeat_mean = summary.loc[summary["frequency"] > 0, "monetary_value"].mean()
    assert repeat_mean == pytest.approx(ref["monetary_value_mean_repeat"], rel=1e-12)
    for cid, row in REFERENCE["online_retail_lifetimes"]["customers"].items():
        got = summary.loc[cid]
        for col in ("frequency", "recency", "T", "monetary_value"):
            assert got[col] == pytest.approx(row[col], rel=1e-12), (cid, col)


def test_bgnbd_online_retail_same_as_lifetimes(online_retail_fit):
    summary, model, spend_model = online_retail_fit
    ref = REFERENCE["online_retail_lifetimes"]
    # lifetimes' own maximum (a = 0.0034, SE 0.010) is indistinguishable from no dropout
    assert model.status == "boundary" and {"a → 0", "b → ∞"} <= set(model.diagnostics_.boundary)
    pd.testing.assert_series_equal(model.params_, pd.Series(ref["bgnbd"]["params"]), rtol=1e-3)
    pd.testing.assert_series_equal(
        model.standard_errors_,
        pd.Series(ref["bgnbd"]["standard_errors"]),
        rtol=1e-3,
        check_names=False,
    )
    pd.testing.assert_series_equal(
        spend_model.params_, pd.Series(ref["gamma_gamma"]["params"]), rtol=1e-3
    )
    # same maximum: lifetimes reports the mean negative log-likelihood on its rescaled time
    assert -model.fit_.log_likelihood / len(summary) == pytest.approx(
        ref["bgnbd"]["neg_mean_log_likelihood"], rel=1e-9
    )
    ids = list(ref["customers"])
    p_alive = model.conditional_probability_alive(summary.loc[ids])
    expected = model.conditional_expected_number_of_purchases_up_to_time(90, summary.loc[ids])
    clv = customer_lifetime_value(
        model, spend_model, summary.loc[ids], months=12, discount_rate=0.01
    )
    for cid in ids:
        assert p_alive[cid] == pytest.approx(ref["customers"][cid]["p_alive"], rel=1e-3)
        assert expected[cid] == pytest.approx(
            ref["customers"][cid]["expected_purchases_90"], rel=1e-3
        )
        assert clv[cid] == pytest.approx(ref["clv_12m_monthly_discount_0.01"][cid], rel=1e-3)


# --------------------------------------------------------------------------- trust
def test_cdnow_fits_are_ok_and_say_so(cdnow_model, cdnow_spend):
    assert cdnow_model.status == "ok" and cdnow_model.warnings == []
    assert cdnow_model.summary().splitlines()[0] == (
        "Status: ok (converged to an interior maximum; every parameter identified)."
    )
    assert (
        "They drop out after a purchase with probability 24.6% (a/(a+b))." in cdnow_model.summary()
    )
    assert cdnow_model.withheld("total_value") is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an ok fit warns about nothing
        spend = GammaGamma().fit(cdnow_spend["x"], cdnow_spend["zbar"])
    assert spend.status == "ok" and spend.summary().startswith("Status: ok")


@pytest.fixture(scope="module")
def retail_to_november() -> pd.DataFrame:
    """Every Online Retail row with a customer id before 2011-12-01: the report's view of 2011-11."""
    raw = load_online_retail(shared_file("online_retail", "online_retail_by_day_concat.csv.gz"))
    rows = raw.loc[raw["user_id"].notna(), ["user_id", "timestamp", "value"]]
    return rows[rows["timestamp"] < "2011-12-01"]


@pytest.mark.shared_data
def test_bgnbd_boundary_on_online_retail_is_flagged_and_totals_withheld(retail_to_november):
    """The reviewer's case: a -> 0 with b -> infinity, every standard error missing."""
    summary = rfm_summary(retail_to_november, observation_period_end="2011-12-01")
    assert len(summary) == 4297
    with pytest.warns(ModelWarning, match=r"BetaGeo: status 'boundary'. a → 0, b → ∞"):
        model = BetaGeo().fit(summary)
    assert model.status == "boundary"
    assert model.diagnostics_.boundary == ("a → 0, b → ∞",)
    assert model.diagnostics_.unidentified == ("a", "b")
    assert model.params_["a"] < 1e-3 and model.params_["b"] > 1e3  # wherever the flat ridge left it
    text = model.summary()
    assert text.splitlines()[0] == (
        "Status: boundary. NOT TO BE TRUSTED AS IS: a → 0, b → ∞: the fit is as good with a and b "
        "together pushed to the edge of the domain (the data show no dropout after purchases)."
    )
    assert "probability 0.0%" not in text
    assert (
        "Dropout probability after a purchase: not shown: the dropout parameter is at its boundary "
        "(a → 0, b → ∞)" in text
    )
    for quantity in ("dropout_probability", "p_alive", "expected_purchases", "total_value"):
        assert model.withheld(quantity).startswith(
            "not shown: the dropout parameter is at its boundary"
        )
    assert model.withheld("purchase_rate") is None  # r and alpha are well determined
    assert "a new customer buys about 0.0117 times per day while alive" in text
    spend = GammaGamma().fit(summary)
    assert spend.status == "ok" and spend.withheld("total_value") is None
    ax = model.plot()
    assert any("NOT TO BE TRUSTED AS IS" in t.get_text() for t in ax.texts)
    plt.close(ax.figure)


def test_calibration_holdout_online_retail_and_plot(online_retail):
    cal = rfm_summary(online_retail, calibration_period_end="2011-08-31")
    assert list(cal.columns) == [
        "frequency_cal",
        "recency_cal",
        "T_cal",
        "monetary_value_cal",
        "frequency_holdout",
        "monetary_value_holdout",
        "duration_holdout",
    ]
    assert (cal["duration_holdout"] == 100).all()  # 2011-09-01 ... 2011-12-09
    raw = online_retail.assign(day=online_retail["timestamp"].dt.floor("D"))
    holdout_days = raw[raw["day"] > "2011-08-31"].groupby("user_id")["day"].nunique()
    pd.testing.assert_series_equal(
        cal["frequency_holdout"][cal["frequency_holdout"] > 0].sort_index(),
        holdout_days.reindex(cal.index).dropna().astype(float).sort_index(),
        check_names=False,
    )
    model = BetaGeo().fit(cal)
    ax = plot_calibration_purchases_vs_holdout_purchases(model, cal, n=7)
    means = ax.means_
    assert means["customers"].sum() == len(cal)
    assert list(means.index) == list(range(8))
    # the model ranks the groups like the data do
    assert means["model"].is_monotonic_increasing and means["actual"].is_monotonic_increasing
    plt.close(ax.figure)


@pytest.mark.skipif(
    importlib.util.find_spec("lifetimes") is None,
    reason="lifetimes is not installed in this environment",
)
def test_live_comparison_with_lifetimes(cdnow):
    try:
        from lifetimes import BetaGeoFitter
        from lifetimes.utils import summary_data_from_transaction_data
    except Exception as exc:  # lifetimes may not import with this pandas/numpy
        pytest.skip(f"lifetimes does not import here: {exc}")
    theirs = BetaGeoFitter().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    ours = BetaGeo().fit(cdnow)
    pd.testing.assert_series_equal(ours.params_, theirs.params_, rtol=1e-4)
    transactions = pd.read_csv(lifetimes_dataset("example_transactions.csv"), parse_dates=["date"])
    expected = summary_data_from_transaction_data(transactions, "id", "date", freq="D")
    got = rfm_summary(
        transactions, customer_id_col="id", datetime_col="date", monetary_value_col=None
    )
    pd.testing.assert_frame_equal(got, expected, check_names=False, check_like=True)


# --------------------------------------------------------------------------- hand-made cases
def test_rfm_one_purchase_same_day_and_refunds():
    data = tx(
        [
            ("a", "2024-01-01 09:00", 10.0),
            ("b", "2024-01-01 09:00", 5.0),
            ("b", "2024-01-01 17:00", 7.0),  # same day: one purchase period of 12
            ("b", "2024-01-05 08:00", 20.0),
            ("b", "2024-01-05 09:00", 4.0),
            ("b", "2024-01-08 10:00", -20.0),  # refund: not a purchase
            ("c", "2024-01-02 10:00", 8.0),
            ("c", "2024-01-06 10:00", 30.0),
            ("c", "2024-01-10 10:00", 10.0),
            (None, "2024-01-03 10:00", 99.0),  # no id: counted
        ]
    )
    summary = rfm_summary(data, observation_period_end="2024-01-10")
    assert summary.loc["a"].tolist() == [0.0, 0.0, 9.0, 0.0]  # one purchase
    assert summary.loc["b"].tolist() == [1.0, 4.0, 9.0, 24.0]
    assert summary.loc["c"].tolist() == [2.0, 8.0, 8.0, 20.0]
    assert summary.attrs["rows_without_id"] == 1
    assert summary.attrs["refund_rows"] == 1
    kept = rfm_summary(data, observation_period_end="2024-01-10", refunds="keep")
    # lifetimes' convention: the refund day becomes a purchase period of value -20
    assert kept.loc["b"].tolist() == [2.0, 7.0, 9.0, 2.0]
    weekly = rfm_summary(data, observation_period_end="2024-01-10", freq="W")
    assert weekly.loc["b"].tolist() == [0.0, 0.0, 1.0, 0.0]  # 2024-01-01 is a Monday: one week
    assert weekly.loc["c"].tolist() == [1.0, 1.0, 1.0, 10.0]
    hours = rfm_summary(data, observation_period_end="2024-01-10 10:00", freq="h")
    assert hours.loc["b", ["frequency", "recency", "T"]].tolist() == [3.0, 96.0, 217.0]
    # without a value column a refund cannot be told apart: every row is a purchase
    no_value = rfm_summary(
        data, observation_period_end="2024-01-10 10:00", freq="h", monetary_value_col=None
    )
    assert list(no_value.columns) == ["frequency", "recency", "T"]
    assert no_value.loc["b", "frequency"] == 4.0


def test_rfm_calibration_split_hand_made():
    data = tx(
        [
            ("a", "2024-01-01", 10.0),
            ("a", "2024-01-03", 20.0),
            ("a", "2024-01-12", 5.0),
            ("a", "2024-01-12", 7.0),
            ("a", "2024-01-15", 9.0),
            ("b", "2024-01-02", 10.0),
            ("c", "2024-01-11", 10.0),  # acquired in the holdout: left out
        ]
    )
    cal = rfm_summary(
        data, calibration_period_end="2024-01-10", observation_period_end="2024-01-20"
    )
    assert list(cal.index) == ["a", "b"]
    assert cal.loc[
        "a", ["frequency_cal", "recency_cal", "T_cal", "monetary_value_cal"]
    ].tolist() == [1, 2, 9, 20]
    assert cal.loc[
        "a", ["frequency_holdout", "monetary_value_holdout", "duration_holdout"]
    ].tolist() == [2, 10.5, 10]
    assert cal.loc["b", ["frequency_holdout", "duration_holdout"]].tolist() == [0, 10]
    with pytest.raises(ParameterError, match="leaves no holdout period"):
        rfm_summary(data, calibration_period_end="2024-01-20", observation_period_end="2024-01-20")


def test_timezone_aware_timestamps_are_taken_in_utc():
    data = tx([("a", "2024-01-01 23:30", 1.0), ("a", "2024-01-02 00:30", 1.0)])
    data["timestamp"] = data["timestamp"].dt.tz_localize("UTC").dt.tz_convert("Asia/Seoul")
    summary = rfm_summary(data)
    assert summary.loc["a", ["frequency", "recency"]].tolist() == [1.0, 1.0]


def test_weighted_fit_equals_fit_on_all_customers():
    rng = np.random.default_rng(3)
    x = rng.poisson(1.5, 300).astype(float)
    T = rng.uniform(20, 40, 300).round()
    t_x = np.where(x > 0, np.floor(T * rng.uniform(0, 1, 300)), 0.0)
    rows = pd.DataFrame({"frequency": x, "recency": t_x, "T": T})
    grouped = rows.value_counts().rename("n").reset_index()
    full = BetaGeo().fit(rows)
    weighted = BetaGeo().fit(
        grouped["frequency"], grouped["recency"], grouped["T"], weights=grouped["n"]
    )
    pd.testing.assert_series_equal(full.params_, weighted.params_, rtol=1e-7)
    pd.testing.assert_series_equal(full.standard_errors_, weighted.standard_errors_, rtol=1e-4)


def test_errors_are_clear():
    no_repeat = pd.DataFrame(
        {"frequency": [0.0, 0.0, 0.0], "recency": [0.0, 0.0, 0.0], "T": [5.0, 6.0, 7.0]}
    )
    with pytest.raises(NotComputableError, match="No repeat purchases among 3 customers"):
        BetaGeo().fit(no_repeat)
    bad = pd.DataFrame({"frequency": [1.0, 2.0], "recency": [9.0, 1.0], "T": [5.0, 6.0]})
    with pytest.raises(DataError, match="recency larger than T") as info:
        BetaGeo().fit(bad)
    assert info.value.rows == [0]
    with pytest.raises(DataError, match="non-integer frequency"):
        BetaGeo().fit(pd.DataFrame({"frequency": [1.5], "recency": [1.0], "T": [5.0]}))
    with pytest.raises(
        SchemaError, match=r"lacks required column\(s\): 'frequency' \(did you mean 'frequncy'\?\)"
    ):
        BetaGeo().fit(pd.DataFrame({"frequncy": [1.0], "recency": [1.0], "T": [5.0]}))
    with pytest.raises(SchemaError, match=r"'user_id' \(did you mean 'userid'\?\)"):
        rfm_summary(
            pd.DataFrame(
                {"userid": ["a"], "timestamp": [pd.Timestamp("2024-01-01")], "value": [1.0]}
            )
        )
    with pytest.raises(NotComputableError, match="not fitted yet"):
        _ = BetaGeo().params_
    with pytest.raises(DataError, match="mean spend <= 0"):
        GammaGamma().fit([1, 2, 3], [10.0, -5.0, 3.0])
    with pytest.raises(ParameterError, match="discount_rate == -0.1, must be >= 0"):
        customer_lifetime_value(BetaGeo(), None, no_repeat, discount_rate=-0.1)


def test_summary_text_and_html(cdnow_model):
    text = cdnow_model.summary()
    assert "2,357 customers (946 with repeat purchases); time unit: week" in text
    assert "r          0.243  (SE 0.0126" in text
    html = cdnow_model._repr_html_()
    assert "BG/NBD" in html and "95% CI" in html
    assert "not fitted" in BetaGeo()._repr_html_()


# --------------------------------------------------------------------------- properties
def simulate_bgnbd(n: int, r: float, alpha: float, a: float, b: float, seed: int) -> pd.DataFrame:
    """Customer histories drawn from the BG/NBD process (vectorised over customers, looped over purchases)."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(r, 1 / alpha, n)
    dropout = rng.beta(a, b, n)
    T = rng.uniform(20, 60, n)
    x, t_x, now = np.zeros(n), np.zeros(n), np.zeros(n)
    active = np.ones(n, dtype=bool)
    while active.any():
        now = now + np.where(active, rng.exponential(1 / rate), 0.0)
        active &= now <= T
        x += active
        t_x = np.where(active, now, t_x)
        active &= rng.uniform(size=n) >= dropout
    return pd.DataFrame({"frequency": x, "recency": t_x, "T": T})


SIMULATION_TRUTH = {"r": 0.5, "alpha": 8.0, "a": 0.7, "b": 2.5}
SIMULATED = simulate_bgnbd(3000, **SIMULATION_TRUTH, seed=11)
# a fitted model for property tests, independent of the optional CDNOW data
REFERENCE_FIT = BetaGeo().fit(SIMULATED, freq="W")


def test_equal_dropout_for_everyone_is_a_boundary_that_still_gives_the_dropout_probability():
    # p ~ Beta(3e6, 7e6) is 0.3 for everyone: a and b run to infinity together, their
    # ratio stays identified, and nothing is withheld
    data = simulate_bgnbd(4000, r=0.5, alpha=8.0, a=3e6, b=7e6, seed=2)
    with pytest.warns(ModelWarning, match="a, b → ∞: the fit is as good with a and b together"):
        model = BetaGeo().fit(data, freq="W")
    assert model.status == "boundary" and model.diagnostics_.boundary == ("a, b → ∞",)
    assert model.diagnostics_.unidentified == () and model.diagnostics_.withheld == {}
    a, b = model.params_[["a", "b"]]
    assert a > 1e6 and a / (a + b) == pytest.approx(0.3, abs=0.02)
    assert "every customer has the same dropout probability" in model.summary().splitlines()[0]


@settings(max_examples=30, deadline=None)
@given(st.floats(2.0, 8.0), st.floats(2.0, 8.0), st.integers(0, 1))
def test_dropout_terms_are_the_same_by_sums_and_by_log_gamma(log_a, log_b, extra):
    from journeylab.clv import likelihoods as lik

    a, b = np.exp([log_a, log_b])
    counts = np.arange(0.0, 80.0)
    by_gamma = lik._beta_ratio(a, b, counts, extra)  # a, b < 3,000: the lnΓ route
    original = lik._LARGE_SHAPE
    try:
        lik._LARGE_SHAPE = 0.0  # force the sums
        by_sums = lik._beta_ratio(a, b, counts, extra)
    finally:
        lik._LARGE_SHAPE = original
    for gamma_route, sum_route in zip(by_gamma, by_sums, strict=True):
        assert sum_route == pytest.approx(gamma_route, rel=1e-9, abs=1e-9)


def expected_purchases_by_mixture(t, T, r, alpha, a, b) -> float:
    """E[(1/p)(1 - exp(-λ p t))] over λ ~ Gamma(r, α+T), p ~ Beta(a, b): the BG/NBD expectation of
    a customer without repeat purchases, integrated directly (p = u^(1/a) removes p^(a-1))."""
    from scipy.integrate import quad
    from scipy.special import betaln

    scale = alpha + T

    def integrand(u):
        p = u ** (1 / a)
        if p == 0:
            return r * t / scale
        return -np.expm1(-r * np.log1p(p * t / scale)) / p * np.exp((b - 1) * np.log1p(-p))

    value, _ = quad(integrand, 0, 1, limit=500, epsabs=0, epsrel=1e-12)
    return value / (a * np.exp(betaln(a, b)))


@settings(max_examples=25, deadline=None)
@given(
    st.floats(0.2, 3), st.floats(5, 100), st.floats(0.005, 3), st.floats(0.05, 5), st.floats(1, 300)
)
def test_bgnbd_expectation_without_repeat_purchases_equals_the_mixture_integral(r, alpha, a, b, T):
    # a + b < 1 (near the no-dropout boundary) makes 2F1's third argument negative and the
    # function negative: the expectation must still be right there
    from journeylab.clv.models import _conditional_expected

    got = _conditional_expected(
        np.array(92.0), np.array(0.0), np.array(0.0), np.array(T), r=r, alpha=alpha, a=a, b=b
    )
    assert float(got) == pytest.approx(
        expected_purchases_by_mixture(92.0, T, r, alpha, a, b), rel=1e-7
    )


def test_bgnbd_recovers_simulated_parameters():
    table = REFERENCE_FIT.to_frame()
    for name, value in SIMULATION_TRUTH.items():
        assert abs(table.loc[name, "coef"] - value) < 3 * table.loc[name, "se(coef)"], name
        assert (
            table.loc[name, "lower 95% bound"]
            < table.loc[name, "coef"]
            < table.loc[name, "upper 95% bound"]
        )


histories = st.lists(
    st.tuples(st.integers(0, 30), st.floats(0, 1), st.floats(0.5, 60)), min_size=1, max_size=30
)


@settings(max_examples=25, deadline=None)
@given(histories)
def test_p_alive_in_unit_interval_and_one_without_repeat(rows):
    model = BetaGeo()
    model.fit_ = REFERENCE_FIT.fit_
    model._scale = REFERENCE_FIT._scale
    x = np.array([r[0] for r in rows], dtype=float)
    T = np.array([r[2] for r in rows])
    t_x = np.where(x > 0, np.array([r[1] for r in rows]) * T, 0.0)
    p = model.conditional_probability_alive(x, t_x, T)
    assert np.all((p >= 0) & (p <= 1))
    assert np.all(p[x == 0] == 1.0)
    e1 = model.conditional_expected_number_of_purchases_up_to_time(10.0, x, t_x, T)
    e2 = model.conditional_expected_number_of_purchases_up_to_time(20.0, x, t_x, T)
    assert np.all(e1 >= 0) and np.all(e2 >= e1 - 1e-12)


@settings(max_examples=20, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from("abcd"), st.integers(0, 60 * 24 * 20), st.floats(-50, 500)),
        min_size=1,
        max_size=40,
    )
)
def test_rfm_invariants(rows):
    data = pd.DataFrame(rows, columns=["user_id", "minute", "value"])
    data["timestamp"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(data["minute"], unit="min")
    if not (data["value"] > 0).any():
        with pytest.raises(DataError, match="No purchases"):
            rfm_summary(data)
        return
    summary = rfm_summary(data, observation_period_end="2024-01-25")
    purchases = data[data["value"] > 0]
    days = purchases.groupby("user_id")["timestamp"].apply(lambda s: s.dt.floor("D").nunique())
    assert (summary["frequency"] == days.reindex(summary.index) - 1).all()
    assert (summary["recency"] <= summary["T"]).all()
    assert (summary.loc[summary["frequency"] == 0, ["recency", "monetary_value"]] == 0).all().all()
    assert summary.attrs["refund_rows"] == int((data["value"] <= 0).sum())


# --------------------------------------------------------------------------- the sample
@pytest.fixture(scope="module")
def sample_data(request):
    pytest.importorskip("journeylab.datasets.sample")
    return request.getfixturevalue("sample")


def test_bgnbd_and_gamma_gamma_recover_the_sample_truth(sample_data):
    """Each estimate lies within 3 standard errors of the generating value, and jointly the
    log-scale Wald statistic is below the chi-square 99.9 % quantile (the sample is seeded, so
    this is a fixed check, not a flaky one)."""
    from scipy.stats import chi2

    truth = sample_data.truth["clv"]
    assert truth["time_unit"] == "days"
    summary = rfm_summary(sample_data.transactions, freq="D")
    model = BetaGeo().fit(summary)
    spend_model = GammaGamma().fit(summary)
    assert model.status == spend_model.status == "ok"
    for fitted, names in ((model, "r alpha a b"), (spend_model, "p q v")):
        names = names.split()
        table = fitted.to_frame()
        for name in names:
            assert abs(table.loc[name, "coef"] - truth[name]) < 3 * table.loc[name, "se(coef)"], (
                name
            )
        diff = np.log(fitted.params_[names].to_numpy()) - np.log([truth[n] for n in names])
        wald = diff @ np.linalg.solve(fitted.fit_.log_cov, diff)
        assert wald < chi2.ppf(0.999, len(names))


def test_clv_by_channel_on_sample(sample_data):
    s = sample_data
    res = clv_by_channel(s.transactions, s.users, spend=s.spend, horizon=12)
    table = res.table
    channels = table.drop(index="all")
    assert (
        channels["customers"].sum()
        == table.loc["all", "customers"]
        == s.transactions["user_id"].nunique()
    )
    # CAC recomputed directly: spend over customers whose first purchase is in the spend window
    first = s.transactions.groupby("user_id")["timestamp"].min()
    channel_of = s.users.set_index("user_id")["acquisition_channel"]
    paid = channels[channels["spend"] > 0]
    for channel, row in paid.iterrows():
        n_new = int((channel_of.reindex(first.index) == channel).sum())
        spent = s.spend.loc[s.spend["channel"] == channel, "cost"].sum()
        assert row["new_customers"] == n_new
        assert row["cac"] == pytest.approx(spent / n_new)
        assert row["clv_to_cac"] == pytest.approx(row["value_per_new_customer"] / row["cac"])
    assert (table["clv_ci_low"] < table["predicted_clv"]).all() and (
        table["predicted_clv"] < table["clv_ci_high"]
    ).all()
    # intervals include the spread of customers within each channel (the standard error of the mean)
    spread = res.customers.groupby("channel")["predicted_clv"].agg(
        lambda v: v.std(ddof=1) / np.sqrt(len(v))
    )
    assert (channels["clv_se"] >= spread.reindex(channels.index) * (1 - 1e-12)).all()
    # the all-customer mean is the customer-weighted mean of channel means
    weighted = (channels["predicted_clv"] * channels["customers"]).sum() / channels[
        "customers"
    ].sum()
    assert weighted == pytest.approx(table.loc["all", "predicted_clv"])
    text = res.summary()
    assert "Caveats:" in text and "revenue, not margin" in text and "CLV:CAC" in text
    ax = res.plot()
    assert len(ax.get_yticklabels()) == len(channels)
    plt.close(ax.figure)
    with pytest.raises(SchemaError, match="spend table lacks required column"):
        clv_by_channel(s.transactions, "channel", spend=s.spend.drop(columns="cost"))


def test_clv_by_channel_hand_made_spend():
    rng = np.random.default_rng(5)
    rows = []
    for i in range(60):
        channel = "email" if i % 2 else "search"
        start = pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(rng.integers(0, 30)))
        for k in range(int(rng.integers(1, 5))):
            day = start + pd.Timedelta(days=7 * k + (int(rng.integers(0, 3)) if k else 0))
            rows.append((f"u{i}", day, 50.0 + 10 * k + i % 7, channel))
    data = pd.DataFrame(rows, columns=["user_id", "timestamp", "value", "channel"])
    spend = pd.DataFrame(
        {
            "channel": ["email", "search", "tv"],
            "date": pd.to_datetime(["2024-01-01"] * 3),
            "cost": [300.0, 600.0, 100.0],
        }
    )
    spend = pd.concat([spend, spend.assign(date=pd.Timestamp("2024-01-31"))])
    with pytest.warns(ModelWarning, match="BetaGeo: status 'boundary'. b → ∞"):
        res = clv_by_channel(data, "channel", spend=spend, horizon=6)
    assert res.table.loc["email", "new_customers"] == 30
    assert res.table.loc["email", "cac"] == pytest.approx(600.0 / 30)
    assert res.table.loc["search", "cac"] == pytest.approx(1200.0 / 30)
    text = res.summary()
    assert "Spend but no new customers in the window for tv" in text
    # 60 customers over a month show no dropout: the predicted values are withheld, with the reason
    assert res.withheld.startswith("not shown: the dropout parameter is at its boundary (b → ∞)")
    assert "Predicted value over the next 6 months, per channel and in CLV:CAC: not shown" in text
    assert "- BG/NBD fit (status boundary): b → ∞" in text
    assert set(res.display_frame()["CLV next 6 mo"]) == {"not shown"}
    assert "value to date $" in text  # USD unless told otherwise
    with pytest.warns(ModelWarning):
        in_won = clv_by_channel(data, "channel", spend=spend, horizon=6, currency="KRW")
    assert "value to date ₩" in in_won.summary() and "$" not in in_won.summary()
    assert in_won.display_frame()["CAC"].str.startswith("₩").all()


def test_gamma_gamma_summary_writes_the_mean_spend_in_its_currency():
    summary = pd.DataFrame(
        {"frequency": [1, 2, 3, 5, 1, 4, 2], "monetary_value": [20.0, 35, 18, 50, 80, 25, 40]}
    )
    assert "per purchase p·v/(q-1): $" in GammaGamma().fit(summary).summary()
    in_pounds = GammaGamma(currency="GBP").fit(summary).summary()
    assert "per purchase p·v/(q-1): £" in in_pounds and "$" not in in_pounds


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 20), st.floats(1, 1000)), min_size=1, max_size=20),
    st.floats(0, 0.05),
)
def test_spend_shrinks_to_the_population_mean_and_clv_grows_with_the_horizon(rows, discount):
    spend_model = GammaGamma().fit(
        pd.DataFrame(
            {"frequency": [1, 2, 3, 5, 1, 4, 2], "monetary_value": [20.0, 35, 18, 50, 80, 25, 40]}
        )
    )
    x = np.array([r[0] for r in rows], dtype=float)
    m = np.where(x > 0, np.array([r[1] for r in rows]), 0.0)
    expected = spend_model.conditional_expected_average_profit(x, m)
    mean = spend_model.mean_spend()
    low, high = (
        np.minimum(mean, np.where(x > 0, m, mean)),
        np.maximum(mean, np.where(x > 0, m, mean)),
    )
    assert np.all(expected >= low * (1 - 1e-12)) and np.all(expected <= high * (1 + 1e-12))
    assert np.allclose(expected[x == 0], mean)
    T = np.full(len(x), 40.0)
    summary = pd.DataFrame(
        {"frequency": x, "recency": np.where(x > 0, 30.0, 0.0), "T": T, "monetary_value": m}
    )
    short = customer_lifetime_value(
        REFERENCE_FIT, spend_model, summary, months=3, discount_rate=discount
    )
    long = customer_lifetime_value(
        REFERENCE_FIT, spend_model, summary, months=12, discount_rate=discount
    )
    undiscounted = customer_lifetime_value(
        REFERENCE_FIT, spend_model, summary, months=12, discount_rate=0.0
    )
    assert (
        np.all(short >= 0) and np.all(long >= short) and np.all(undiscounted >= long * (1 - 1e-12))
    )
