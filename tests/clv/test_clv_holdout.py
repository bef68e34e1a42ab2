"""Tests of journeylab.clv.holdout: the calibration/holdout check on CDNOW and on UCI Online Retail."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from conftest import load_online_retail, shared_file
from journeylab.clv import (
    BetaGeo,
    plot_calibration_purchases_vs_holdout_purchases,
    rfm_summary,
)
from journeylab.clv.holdout import MODELS, calibration_and_holdout, compare_on_holdout
from journeylab.core.errors import ModelWarning, ParameterError, SchemaError
from test_clv import lifetimes_dataset

REFERENCE = json.loads((Path(__file__).parents[1] / "results" / "clv_reference.json").read_text())


@pytest.fixture(scope="module")
def cdnow_transactions() -> pd.DataFrame:
    """The 6,919 purchases of the 2,357 CDNOW sample customers, 1997-01-01 … 1998-06-30."""
    tx = pd.read_csv(
        lifetimes_dataset("CDNOW_sample.txt"),
        sep=r"\s+",
        header=None,
        names=["master_id", "user_id", "date", "cds", "value"],
        dtype={"user_id": str},
    )
    tx["timestamp"] = pd.to_datetime(tx["date"].astype(str), format="%Y%m%d")
    return tx


@pytest.fixture(scope="module")
def cdnow_check(cdnow_transactions):
    # every row is a purchase (8 rows of $0 included), as in Fader & Hardie's summary
    return calibration_and_holdout(
        cdnow_transactions,
        calibration_period_end="1997-09-30",
        observation_period_end="1998-06-30",
        monetary_value_col=None,
    )


def holdout_days_by_hand(transactions: pd.DataFrame, calibration_end: str, end: str) -> pd.Series:
    """Purchase days per customer after the calibration period, straight from the rows."""
    day = transactions["timestamp"].dt.floor("D")
    rows = transactions[(day > calibration_end) & (day <= end)]
    return rows.assign(day=day).groupby("user_id")["day"].nunique()


# --------------------------------------------------------------------------- CDNOW
def test_cdnow_calibration_summary_is_Fader_Hardie_summary(cdnow_transactions):
    cal = rfm_summary(
        cdnow_transactions,
        calibration_period_end="1997-09-30",
        observation_period_end="1998-06-30",
        monetary_value_col=None,
    )
    published = pd.read_csv(lifetimes_dataset("cdnow_customers_summary.csv"), index_col=0)
    cal.index = cal.index.astype(int)
    joined = published.join(cal, how="outer")
    assert len(joined) == 2357 == len(cal)
    assert (joined["frequency"] == joined["frequency_cal"]).all()
    # Fader & Hardie's weeks are days / 7, rounded to 2 decimals
    assert np.abs(joined["recency"] - joined["recency_cal"] / 7).max() <= 0.005
    assert np.abs(joined["T"] - joined["T_cal"] / 7).max() <= 0.005
    assert (cal["duration_holdout"] == 273).all()  # weeks 40-78


def test_cdnow_holdout_comparison_numbers_recomputed_by_hand(cdnow_transactions, cdnow_check):
    check = cdnow_check
    assert list(check.errors.index) == list(MODELS) and (check.errors["status"] == "ok").all()
    by_hand = holdout_days_by_hand(cdnow_transactions, "1997-09-30", "1998-06-30")
    assert check.errors["actual_total"].iloc[0] == by_hand.sum() == 1882
    cal = rfm_summary(
        cdnow_transactions,
        calibration_period_end="1997-09-30",
        observation_period_end="1998-06-30",
        monetary_value_col=None,
    )
    group = (
        np.minimum(cal["frequency_cal"], 7).astype(int).map(lambda g: "7+" if g == 7 else str(g))
    )
    actual = by_hand.reindex(cal.index).fillna(0).groupby(group).mean()
    pd.testing.assert_series_equal(check.groups["actual"], actual, check_names=False)
    assert (
        check.groups["customers"].tolist()
        == group.value_counts().reindex(check.groups.index).tolist()
    )
    for name, model in check.models.items():
        predicted = pd.Series(
            model.conditional_expected_number_of_purchases_up_to_time(
                273.0, cal["frequency_cal"], cal["recency_cal"], cal["T_cal"]
            ).to_numpy(),
            index=cal.index,
        )
        means = predicted.groupby(group).mean()
        pd.testing.assert_series_equal(check.groups[name], means, check_names=False, rtol=1e-12)
        mae = float(np.mean(np.abs(means - actual)))
        assert check.errors.loc[name, "group_mae"] == pytest.approx(mae, rel=1e-12)
        assert check.errors.loc[name, "predicted_total"] == pytest.approx(
            predicted.sum(), rel=1e-12
        )
    # the BG/NBD on daily data is the published weekly fit with alpha in days (x 7)
    bg = check.models["bgnbd"].params_
    published = REFERENCE["cdnow_published"]["bgnbd"]["params"]
    assert bg["r"] == pytest.approx(published["r"], abs=0.002)
    assert bg["alpha"] / 7 == pytest.approx(published["alpha"], abs=0.02)
    assert (bg["a"], bg["b"]) == pytest.approx((published["a"], published["b"]), abs=0.01)


def test_cdnow_holdout_summary_table_and_plot(cdnow_check, tmp_path):
    check = cdnow_check
    text = check.summary()
    assert text.startswith(
        "2,357 customers acquired in the calibration period made 1,882 purchase days in the 273-day holdout"
    )
    assert f"Closest to the holdout: {check.models[check.best]._short}." in text
    shown = check.display_frame()
    assert shown["model"].iloc[0] == check.models[check.best]._short  # best first
    html = check._repr_html_()
    assert (
        "Mean holdout purchases per calibration-frequency group" in html
        and html.count("<table") == 2
    )
    ax = check.plot()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "actual",
        "BG/NBD",
        "MBG/NBD",
        "Pareto/NBD",
    ]
    ax.figure.savefig(tmp_path / "cdnow_holdout.png")
    plt.close(ax.figure)


def test_single_model_plot_and_errors(cdnow_transactions):
    cal = rfm_summary(
        cdnow_transactions,
        calibration_period_end="1997-09-30",
        observation_period_end="1998-06-30",
        monetary_value_col=None,
    )
    model = BetaGeo().fit(cal)
    ax = plot_calibration_purchases_vs_holdout_purchases(model, cal, n=7)
    assert (
        ax.means_["customers"].sum() == len(cal)
        and "BG/NBD prediction" in ax.get_legend().get_texts()[1].get_text()
    )
    plt.close(ax.figure)
    with pytest.raises(ParameterError, match=r"models == 'nbd', must be one of .*"):
        compare_on_holdout(cal, models=["nbd"])
    with pytest.raises(ParameterError, match="models is empty"):
        compare_on_holdout(cal, models=[])
    with pytest.raises(SchemaError, match=r"lacks required column\(s\): 'frequency_holdout'"):
        compare_on_holdout(cal.drop(columns="frequency_holdout"))


# --------------------------------------------------------------------------- Online Retail
@pytest.fixture(scope="module")
def retail_to_november() -> pd.DataFrame:
    """Every Online Retail row with a customer id before 2011-12-01 (the report's 2011-11 view)."""
    raw = load_online_retail(shared_file("online_retail", "online_retail_by_day_concat.csv.gz"))
    rows = raw.loc[raw["user_id"].notna(), ["user_id", "timestamp", "value"]]
    return rows[rows["timestamp"] < "2011-12-01"]


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize("freq, unit, duration", [("D", "day", 91), ("W", "week", 13)])
def test_online_retail_holdout_compares_the_models(
    retail_to_november, freq, unit, duration, tmp_path
):
    with pytest.warns(ModelWarning):
        check = calibration_and_holdout(
            retail_to_november,
            calibration_period_end="2011-08-31",
            observation_period_end="2011-11-30",
            freq=freq,
        )
    assert check.duration == duration and check.freq == freq
    # each model finds no dropout on these data and reduces to the NBD: they are tied
    assert (check.errors["status"] == "boundary").all()
    assert check.models["bgnbd"].diagnostics_.boundary == ("a → 0, b → ∞",)
    assert check.models["mbgnbd"].diagnostics_.boundary == ("a → 0, b → ∞",)
    assert check.models["pareto_nbd"].diagnostics_.boundary == ("s → 0, beta → ∞",)
    assert sorted(check.tied) == sorted(MODELS)
    assert "tied (within 0.5% of each other: the holdout cannot tell them apart)" in check.summary()
    # the actual holdout purchases, recomputed from the rows (refunds are not purchases)
    purchases = retail_to_november[retail_to_november["value"] > 0]
    cal = rfm_summary(
        retail_to_november,
        calibration_period_end="2011-08-31",
        observation_period_end="2011-11-30",
        freq=freq,
    )
    if freq == "D":
        by_hand = holdout_days_by_hand(purchases, "2011-08-31", "2011-11-30")
    else:
        week = purchases["timestamp"].dt.to_period("W-SUN")
        later = purchases[week > pd.Period("2011-08-31", "W-SUN")]
        by_hand = later.assign(week=week).groupby("user_id")["week"].nunique()
    by_hand = by_hand.reindex(cal.index).fillna(0)
    assert check.errors["actual_total"].iloc[0] == by_hand.sum()
    group = (
        np.minimum(cal["frequency_cal"], 7).astype(int).map(lambda g: "7+" if g == 7 else str(g))
    )
    pd.testing.assert_series_equal(
        check.groups["actual"], by_hand.groupby(group).mean(), check_names=False
    )
    # the pre-Christmas holdout is busier than any of the models expects
    assert (check.errors["total_error"] < 0).all()
    ax = check.plot()
    assert ax.get_xlabel() == f"repeat purchase {unit}s in the calibration period"
    ax.figure.savefig(tmp_path / f"online_retail_holdout_{freq}.png")
    plt.close(ax.figure)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelWarning)
        assert (
            check.models["bgnbd"]
            .withheld("total_value")
            .startswith("not shown: the dropout parameter is at its boundary (a → 0, b → ∞)")
        )


def test_sample_holdout_with_a_boundary_bgnbd_predicts_every_customer():
    """Three months held out of a 2,000-user sample (the report tests' size): the BG/NBD runs
    to a boundary of its parameter space; every prediction must still be a number. (The
    a + b < 1 side of the boundary, where one-time buyers' 2F1 is negative, is checked against
    the mixture integral in test_clv.py.)"""
    from journeylab.datasets.sample import make_sample

    tx = make_sample(seed=7, n_users=2000).transactions
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelWarning)
        check = calibration_and_holdout(
            tx, calibration_period_end="2026-07-31", observation_period_end="2026-10-31 23:59:59"
        )
    assert check.models["bgnbd"].status == "boundary"
    # at a, b -> infinity MBG/NBD's 2F1 can fail for some customers: that is said, never averaged away
    assert all(note.startswith("MBG/NBD: no finite prediction") for note in check.notes)
    assert np.isfinite(check.groups.drop(columns="customers").to_numpy()).all()
    assert np.isfinite(
        check.errors[["group_mae", "customer_mae", "predicted_total"]].to_numpy()
    ).all()
