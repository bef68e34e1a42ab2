"""Tests of journeylab.customers.retention: Online Retail reconciliation, hand-made cases and invariants."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import load_online_retail, shared_file
from journeylab.core.errors import NotComputableError, ParameterError, SchemaError
from journeylab.customers.cohorts import cohort_retention
from journeylab.customers.rates import repeat_purchase_rate
from journeylab.customers.retention import churn, lifecycle_states


@pytest.fixture(scope="module")
def retail() -> pd.DataFrame:
    return load_online_retail(shared_file("online_retail", "online_retail_by_day_concat.csv.gz"))


def tx(rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["user_id", "timestamp", "value"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], format="ISO8601")
    return frame


# --------------------------------------------------------------------------- Online Retail
def test_online_retail_cohorts_reconcile_with_pandas(retail):
    assert len(retail) == 541_909
    res = cohort_retention(retail)
    # direct computation: purchases are rows with a customer id and a positive value
    purchases = retail[retail["user_id"].notna() & (retail["value"] > 0)]
    month = purchases["timestamp"].dt.year * 12 + purchases["timestamp"].dt.month - 1
    first = month.groupby(purchases["user_id"]).min()
    sizes = first.value_counts().sort_index()
    assert res.sizes.tolist() == sizes.tolist()
    assert list(res.sizes.index) == [f"{m // 12}-{m % 12 + 1:02d}" for m in sizes.index]
    assert int(res.sizes.sum()) == purchases["user_id"].nunique() == 4338
    active = pd.DataFrame({"user": purchases["user_id"], "month": month}).drop_duplicates()
    active["first"] = active["user"].map(first)
    month1 = active[active["month"] == active["first"] + 1].groupby("first").size()
    expected = (month1 / sizes).dropna()
    got = res.retention[1].dropna()
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-12)
    assert res.retention.loc["2010-12", 1] == pytest.approx(324 / 885)
    # customers without an id are counted, never silently dropped
    assert res.left_out["rows_without_id"] == 135_080  # SOURCE.md: rows with missing CustomerID
    assert res.left_out["refund_rows"] == int(
        (retail["user_id"].notna() & (retail["value"] <= 0)).sum()
    )
    assert "135,080 of 541,909 transaction rows (24.9%) have no customer id" in res.summary()
    tidy = res.to_frame()
    assert tidy["active_customers"].sum() == len(active)
    ax = res.plot()
    texts = [t.get_text() for t in ax.texts]
    assert texts[0] == "100%" and "37%" in texts  # 2010-12 month 1: 324 / 885
    assert ax.get_yticklabels()[0].get_text() == "2010-12  (n=885)"
    plt.close(ax.figure)


def test_online_retail_segments_add_up(retail):
    overall = cohort_retention(retail)
    by_country = cohort_retention(retail, segment="Country")
    assert by_country.sizes.groupby(level="cohort").sum().tolist() == overall.sizes.tolist()
    counts = by_country.counts.groupby(level="cohort").sum(min_count=1)
    pd.testing.assert_frame_equal(counts, overall.counts, check_names=False)
    curve = by_country.curve()
    assert curve.loc[0].eq(1.0).all()
    ax = by_country.plot(segment="United Kingdom")
    assert "United Kingdom" in ax.get_title()
    plt.close(ax.figure)


def test_online_retail_lifecycle_and_churn(retail):
    lc = lifecycle_states(retail, "M", at_risk=1, lapsed=3)
    states = lc.counts[["new", "active", "reactivated", "at_risk", "lapsed"]]
    assert (states.sum(axis=1) == lc.counts["customers"]).all()
    assert lc.counts["new"].sum() == 4338
    assert lc.counts.loc["2010-12", "new"] == 885
    # active customers who purchased in 2011-01 after a 2010-12 first purchase = month-1 retention count
    assert lc.counts.loc["2011-01", "active_purchasing"] == 324
    ch = churn(retail, "90D")
    last = (
        retail[retail["user_id"].notna() & (retail["value"] > 0)]
        .groupby("user_id")["timestamp"]
        .max()
    )
    assert ch.table.loc["all", "churned_customers"] == int(
        (last.max() - last > pd.Timedelta("90D")).sum()
    )


# --------------------------------------------------------------------------- hand-made cases
HAND = tx(
    [
        ("a", "2024-01-05", 10.0),
        ("a", "2024-02-10", 10.0),
        ("a", "2024-02-11", -10.0),  # refund: not activity
        ("b", "2024-01-20", 5.0),
        ("b", "2024-01-20", 5.0),  # same day
        ("c", "2024-02-01", 7.0),  # a cohort with no returns
        ("d", "2024-01-31 23:00", 3.0),
        ("d", "2024-03-01", 3.0),
        ("e", "2024-03-15", 4.0),
        (None, "2024-02-15", 50.0),  # no id: counted
    ]
)


def test_cohort_matrix_hand_made():
    res = cohort_retention(HAND)
    assert res.sizes.to_dict() == {"2024-01": 3, "2024-02": 1, "2024-03": 1}
    counts = res.counts
    assert counts.loc["2024-01"].tolist() == [3, 1, 1]
    assert (
        counts.loc["2024-02", 0] == 1 and counts.loc["2024-02", 1] == 0
    )  # observed, nobody returned
    assert np.isnan(counts.loc["2024-02", 2]) and np.isnan(
        counts.loc["2024-03", 1]
    )  # not reached yet
    assert res.retention.loc["2024-01", 1] == pytest.approx(1 / 3)
    assert res.left_out == {"rows": 10, "rows_without_id": 1, "refund_rows": 1, "rows_used": 8}
    # start/end restrict the cohorts and the data
    early = cohort_retention(HAND, end="2024-02-29")
    assert early.counts.loc["2024-01"].tolist() == [3, 1]
    late = cohort_retention(HAND, start="2024-02-01")
    assert late.sizes.to_dict() == {"2024-02": 1, "2024-03": 1}


def test_cohort_by_month_in_weeks_counts_only_customers_who_reached_the_week():
    res = cohort_retention(HAND, cohort="first_purchase_month", period="week")
    # January cohort: a (Jan 5 -> Feb 10 = week 5), b (Jan 20), d (Jan 31 -> Mar 1 = week 4)
    assert res.sizes.loc["2024-01"] == 3
    assert res.counts.loc["2024-01", 4] == 1 and res.counts.loc["2024-01", 5] == 1
    # eligible shrinks as later customers of the cohort run out of observed weeks
    assert res.eligible.loc["2024-01", 0] == 3
    assert res.eligible.loc["2024-01"].dropna().is_monotonic_decreasing


def test_segment_from_a_mapping_and_unknown():
    res = cohort_retention(
        HAND, segment=pd.Series({"a": "email", "b": "email", "c": "search"}, name="channel")
    )
    assert res.segment == "channel"
    assert res.sizes.loc["email"].to_dict() == {"2024-01": 2}
    assert res.sizes.loc["(unknown)"].to_dict() == {"2024-01": 1, "2024-03": 1}


def test_repeat_rate_hand_made():
    res = repeat_purchase_rate(HAND)
    row = res.table.loc["all"]
    # a and d purchased on a later day; b's two same-day orders are one purchase day
    assert (row["customers"], row["repeat_customers"]) == (5, 2)
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(2, 5, method="wilson")
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high))
    within = repeat_purchase_rate(HAND, within="31D")
    # e, acquired on the last day, could not have repeated yet and is not counted
    assert within.too_recent == 1
    assert within.table.loc["all", "repeat_customers"] == 1  # d after 29 days 1 h; a after 36 days
    assert "not counted yet" in within.summary()


def test_repeat_rate_within_a_window_longer_than_the_history_says_nobody_can_be_counted():
    """Every customer acquired less than ``within`` before ``as_of``: a reason, not an empty table."""
    with pytest.raises(
        NotComputableError,
        match="all 5 customers made their first purchase less than 90 days before 2024-03-31",
    ):
        repeat_purchase_rate(HAND, within="90D", as_of="2024-03-31")
    with pytest.raises(NotComputableError, match="nobody can be counted"):
        repeat_purchase_rate(HAND, within="90D", as_of="2024-03-31", segment=HAND["user_id"])


def test_churn_hand_made():
    res = churn(HAND, "30D", as_of="2024-03-15")
    churned = res.customers["churned"]
    assert churned.to_dict() == {"a": True, "b": True, "c": True, "d": False, "e": False}
    assert res.customers.loc["d", "inactive_days"] == 14.0
    exactly = churn(HAND, "14D", as_of="2024-03-15")
    assert not exactly.customers.loc["d", "churned"]  # exactly 14 days: not more than the rule
    with pytest.raises(ParameterError, match="inactivity == .0D.: not a positive duration"):
        churn(HAND, "0D")


def test_repeat_rate_and_churn_display_for_readers():
    seg = pd.Series({"a": "email", "b": "email", "c": "social", "d": "social", "e": "email"})
    shown = repeat_purchase_rate(HAND, within="31D", segment=seg).display_frame()
    assert shown.columns.tolist() == [
        "segment",
        "customers",
        "purchased again within 31 days",
        "repeat rate",
        "95% interval",
    ]
    # all customers: 1 of 4 (e is too recent); Wilson 1/4 = [4.6%, 69.9%] (statsmodels proportion_confint)
    assert shown.iloc[-1].tolist() == ["all customers", "4", "1", "25.0%", "[4.6%, 69.9%]"]
    churned = churn(HAND, "30D", as_of="2024-03-15", segment=seg)
    shown = churned.display_frame()
    assert shown.columns.tolist() == [
        "segment",
        "customers",
        "no purchase for over 30 days",
        "churn rate",
        "95% interval",
    ]
    # a, b, c churned of 5; Wilson 3/5 = [23.1%, 88.2%]
    assert shown.iloc[-1].tolist() == ["all customers", "5", "3", "60.0%", "[23.1%, 88.2%]"]
    assert "churned_rate" not in churned._repr_html_()
    assert churned.to_frame().columns.tolist() == [
        "segment",
        "customers",
        "churned_customers",
        "churned_rate",
        "ci_low",
        "ci_high",
    ]


def test_lifecycle_hand_made():
    res = lifecycle_states(HAND, "M", at_risk=1, lapsed=2)
    counts = res.counts
    assert counts.loc[
        "2024-01", ["new", "active", "reactivated", "at_risk", "lapsed"]
    ].tolist() == [3, 0, 0, 0, 0]
    # Feb: a purchases (active), c new, b and d silent one month (at risk)
    assert counts.loc[
        "2024-02", ["new", "active", "reactivated", "at_risk", "lapsed"]
    ].tolist() == [1, 1, 0, 2, 0]
    # Mar: e new, d purchases after one quiet month (active), a and c at risk, b lapsed
    assert counts.loc[
        "2024-03", ["new", "active", "reactivated", "at_risk", "lapsed"]
    ].tolist() == [1, 1, 0, 2, 1]
    assert "reactivated = purchase after 2+ months without one" in res.summary()
    ax = res.plot()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "new",
        "active",
        "reactivated",
        "at risk",
        "lapsed",
    ]
    plt.close(ax.figure)
    with pytest.raises(ParameterError, match="lapsed == 1, must be > at_risk"):
        lifecycle_states(HAND, at_risk=1, lapsed=1)


def test_errors_name_the_column():
    with pytest.raises(SchemaError, match=r"'user_id' \(did you mean 'userid'\?\)"):
        cohort_retention(HAND.rename(columns={"user_id": "userid"}))
    with pytest.raises(ParameterError, match="period == 'fortnight'"):
        cohort_retention(HAND, period="fortnight")


# --------------------------------------------------------------------------- invariants
def naive_states(frame: pd.DataFrame, at_risk: int, lapsed: int) -> pd.DataFrame:
    """Lifecycle states by a per-customer, per-month loop (the rules written out plainly)."""
    months = frame["timestamp"].dt.to_period("M")
    periods = pd.period_range(months.min(), months.max(), freq="M")
    bought = months.groupby(frame["user_id"]).apply(set)
    rows = []
    for period in periods:
        row = dict.fromkeys(["new", "active", "reactivated", "at_risk", "lapsed"], 0)
        for got in bought:
            if min(got) > period:
                continue
            past = sorted(p for p in got if p < period)
            if period in got:
                if not past:
                    row["new"] += 1
                elif (period - past[-1]).n - 1 >= lapsed:
                    row["reactivated"] += 1
                else:
                    row["active"] += 1
                continue
            gap = (period - past[-1]).n
            state = "active" if gap < at_risk else ("at_risk" if gap < lapsed else "lapsed")
            row[state] += 1
        rows.append(row)
    return pd.DataFrame(rows, index=[str(p) for p in periods])


events = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d", "e"]),
        st.integers(0, 400),
        st.sampled_from([5.0, 20.0, -3.0]),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=25, deadline=None)
@given(events, st.integers(1, 3), st.integers(1, 3))
def test_lifecycle_states_partition_customers_and_follow_the_rules(rows, at_risk, extra):
    frame = pd.DataFrame(rows, columns=["user_id", "day", "value"])
    frame["timestamp"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(frame["day"], unit="D")
    if not (frame["value"] > 0).any():
        return
    lapsed = at_risk + extra
    res = lifecycle_states(frame, "M", at_risk=at_risk, lapsed=lapsed)
    states = res.counts[["new", "active", "reactivated", "at_risk", "lapsed"]]
    assert (states.sum(axis=1) == res.counts["customers"]).all()
    expected = naive_states(frame[frame["value"] > 0], at_risk, lapsed)
    pd.testing.assert_frame_equal(states, expected, check_names=False, check_dtype=False)


@settings(max_examples=15, deadline=None)
@given(events, st.sampled_from(["month", "week", "day"]))
def test_retention_rates_in_unit_interval_and_period_zero_is_one(rows, period):
    frame = pd.DataFrame(rows, columns=["user_id", "day", "value"])
    frame["timestamp"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(frame["day"], unit="D")
    if not (frame["value"] > 0).any():
        return
    res = cohort_retention(frame, period=period, cohort="first_purchase_month")
    rates = res.retention.to_numpy()
    assert np.nanmin(rates) >= 0 and np.nanmax(rates) <= 1
    assert (res.retention[0] == 1).all()
    assert res.sizes.sum() == frame.loc[frame["value"] > 0, "user_id"].nunique()


# --------------------------------------------------------------------------- the sample
def test_sample_cohorts_by_acquisition_channel(request):
    pytest.importorskip("journeylab.datasets.sample")
    sample = request.getfixturevalue("sample")
    channel = sample.users.set_index("user_id")["acquisition_channel"]
    res = cohort_retention(sample.transactions, segment=channel)
    assert int(res.sizes.sum()) == sample.transactions["user_id"].nunique()
    assert set(res.sizes.index.get_level_values("segment")) <= set(channel.unique())
    assert res.left_out["rows_without_id"] == 0


def test_loaded_table_carries_the_rows_dropped_for_missing_ids(retail):
    from journeylab.io.loaders import load_transactions

    path = shared_file("online_retail", "online_retail_by_day_concat.csv.gz")
    loaded = load_transactions(
        query=f"SELECT *, Quantity * UnitPrice AS value FROM read_csv('{path}', "
        "types={'InvoiceNo': 'VARCHAR', 'StockCode': 'VARCHAR'})",
        columns={"CustomerID": "user_id", "InvoiceDate": "timestamp", "InvoiceNo": "order_id"},
    )
    res = cohort_retention(loaded)
    assert res.left_out["rows_without_id"] == 135_080
    assert res.sizes.tolist() == cohort_retention(retail).sizes.tolist()
    assert "135,080 of 541,909 transaction rows (24.9%) have no customer id" in res.summary()
