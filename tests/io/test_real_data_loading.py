"""The loaders on the real public datasets of ../shared/data: nothing lost, every drop counted.

Reference figures and their provenance: tests/results/real_data_loading.json (from
each dataset's SOURCE.md). The tests skip when ../shared/data is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from conftest import shared_file
from journeylab.io.loaders import load_assignments, load_transactions

REFERENCE = json.loads(
    (Path(__file__).parents[1] / "results" / "real_data_loading.json").read_text()
)


@pytest.fixture(scope="module")
def online_retail():
    facts = REFERENCE["online_retail"]
    path = shared_file(*facts["file"])
    # value = Quantity * UnitPrice is derived in SQL; the ids (written 17850.0) come out as "17850".
    loaded = load_transactions(
        query=f"SELECT *, Quantity * UnitPrice AS value FROM read_csv('{path}')",
        columns={"CustomerID": "user_id", "InvoiceDate": "timestamp", "InvoiceNo": "order_id"},
        tz="Europe/London",
        ambiguous="raise",
        nonexistent="raise",
    )
    return facts, loaded


def test_online_retail_counts_every_row_without_customer_id(online_retail):
    facts, loaded = online_retail
    q = loaded.quality
    assert q.rows_read == facts["rows"]
    assert q.count("missing user_id") == facts["missing_customer_id"]
    assert q.rows_kept == facts["rows_with_customer_id"] == len(loaded.frame)
    assert q.rows_read == q.rows_kept + q.rows_dropped
    assert "missing user_id: 135,080 rows dropped" in q.summary()
    assert q.count("user_id written as float") == facts["rows_with_customer_id"]


def test_online_retail_ids_invoices_and_times(online_retail):
    facts, loaded = online_retail
    frame = loaded.frame
    assert frame["user_id"].nunique() == facts["distinct_customers"]
    assert frame["order_id"].nunique() == facts["invoices_with_customer_id"]
    assert "17850" in set(frame["user_id"]) and not frame["user_id"].str.contains(r"\.").any()
    # Times are UK local; December is GMT, so UTC equals the written time at both ends.
    stamps = frame["timestamp"]
    assert str(stamps.dtype) == "datetime64[ns, UTC]"
    assert stamps.min() == pd.Timestamp(facts["first_invoice"], tz="UTC")
    assert stamps.max() == pd.Timestamp(facts["last_invoice"], tz="UTC")
    # A summer invoice is shifted by the BST offset: 2011-06-01 local hours are UTC + 1.
    june = stamps[(stamps >= "2011-06-01") & (stamps < "2011-06-02")]
    assert june.dt.tz_convert("Europe/London").dt.hour.min() - june.dt.hour.min() == 1


def test_online_retail_refunds_are_kept_and_counted(online_retail):
    _, loaded = online_retail
    refunds = int((loaded.frame["value"] < 0).sum())
    assert loaded.quality.count("refund") == refunds > 0
    assert loaded.frame["order_id"][loaded.frame["value"] < 0].str.startswith("C").mean() > 0.99


def test_udacity_ab_cleaning_reproduces_the_published_counts():
    facts = REFERENCE["udacity_ab"]
    loaded = load_assignments(
        shared_file(*facts["file"]),
        columns={"group": "variant", "timestamp": "assigned_at"},
        consistency={"landing_page": {"control": "old_page", "treatment": "new_page"}},
    )
    q = loaded.quality
    assert q.rows_read == facts["rows"]
    assert q.count("variant/landing_page mismatch") == facts["mismatched_rows"]
    assert q.count("repeated assignment") == 1
    assert q.count("user in several variants") == 0
    assert q.rows_kept == facts["distinct_users"] == loaded.frame["user_id"].nunique()
    assert next(s for s in q.steps if s.step == "repeated assignment").rows == (
        2895,
    )  # second line of 773192
    frame = loaded.frame
    assert str(frame["user_id"].dtype) == "str" and frame["converted"].dtype == "int64"
    by_arm = frame.groupby("variant")["converted"].agg(["sum", "count", "mean"])
    for arm in ("control", "treatment"):
        assert by_arm.loc[arm, "sum"] == facts[arm]["conversions"]
        assert by_arm.loc[arm, "count"] == facts[arm]["users"]
        assert by_arm.loc[arm, "mean"] == pytest.approx(facts[arm]["rate"], rel=1e-12)
    assert frame["converted"].mean() == pytest.approx(
        facts["overall_rate_after_cleaning"], rel=1e-12
    )
    assert frame["assigned_at"].min() == pd.Timestamp(facts["first_timestamp"], tz="UTC")
    assert frame["assigned_at"].max() == pd.Timestamp(facts["last_timestamp"], tz="UTC")


def test_hillstrom_one_row_per_customer_with_row_ids():
    facts = REFERENCE["hillstrom"]
    # The file has no customer id: each row is one customer, so the row number is the id.
    loaded = load_assignments(
        shared_file(*facts["file"]), columns={"segment": "variant"}, user_id_from_row=True
    )
    frame = loaded.frame
    assert (
        loaded.quality.rows_read == facts["rows"] == len(frame) and loaded.quality.rows_dropped == 0
    )
    assert frame["user_id"].is_unique and frame["user_id"].iloc[[0, -1]].tolist() == ["1", "64000"]
    arms = frame.groupby("variant").agg(
        n=("user_id", "size"),
        visits=("visit", "sum"),
        conversions=("conversion", "sum"),
        spend=("spend", "sum"),
    )
    for arm, expected in facts["arms"].items():
        assert arms.loc[arm, "n"] == expected["n"]
        assert arms.loc[arm, "visits"] == expected["visits"]
        assert arms.loc[arm, "conversions"] == expected["conversions"]
        assert arms.loc[arm, "spend"] == pytest.approx(expected["spend"], abs=0.005)
    assert "Surburban" in set(frame["zip_code"])  # the source's spelling is kept
    assert frame["channel"].isin(["Phone", "Web", "Multichannel"]).all()
