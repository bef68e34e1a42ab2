"""CUPED with a pooled θ (AB-10) and the refusal of post-exposure covariates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from journeylab.core.errors import DataError, NotComputableError
from journeylab.experiments import analyze, ancova_lift, check_pre_exposure, cuped_lift, cuped_theta

REF = json.loads(
    (Path(__file__).parents[1] / "results" / "experiments_reference.json").read_text()
)["AB-10"]


def _frame() -> pd.DataFrame:
    c, t = REF["control"], REF["treatment"]
    return pd.DataFrame(
        {
            "variant": ["control"] * 8 + ["treatment"] * 8,
            "x": c["x"] + t["x"],
            "y": c["y"] + t["y"],
        }
    )


def test_cuped_pooled_theta_and_difference():
    c, t = REF["control"], REF["treatment"]
    out = cuped_lift(c["y"], c["x"], t["y"], t["x"])
    assert out["theta"] == pytest.approx(REF["theta"], rel=1e-9)
    assert out["raw_diff"] == pytest.approx(REF["raw_diff"])
    assert out["cuped_diff"] == pytest.approx(REF["cuped_diff"], rel=1e-9)
    assert 0.9 < out["variance_reduction"] < 1.0
    assert cuped_theta(c["y"] + t["y"], c["x"] + t["x"]) == pytest.approx(REF["theta"], rel=1e-9)


def test_ancova_is_a_different_named_estimator():
    frame = _frame()
    est = ancova_lift(frame["y"], frame["x"], frame["variant"].eq("treatment"))
    assert est == pytest.approx(REF["ancova_diff"], rel=1e-9)
    assert abs(est - REF["cuped_diff"]) > 0.01


def test_analyze_with_covariate_reports_cuped_and_variance_reduction():
    res = analyze(_frame(), control="control", metrics=["y"], covariates="x")
    row = res.to_frame(detailed=True).iloc[0]
    assert row["abs_lift"] == pytest.approx(REF["cuped_diff"], rel=1e-9)
    assert row["raw_abs_lift"] == pytest.approx(1.5)
    assert row["cuped_theta"] == pytest.approx(REF["theta"], rel=1e-9)
    assert row["variance_reduction"] > 0.9
    assert row["control_mean"] == pytest.approx(5.5) and row["treatment_mean"] == pytest.approx(7.0)
    assert row["method"].startswith("CUPED (pooled θ, covariate x)")
    assert (
        "The lift is CUPED-adjusted for x (θ = 0.997; raw difference +1.50), which cut the "
        "variance by"
    ) in res.summary()
    assert [c.name for c in res.checks] == [
        "unique units",
        "sample ratio mismatch",
        "pre-period imbalance",
    ]


def test_covariate_measured_after_exposure_is_refused():
    frame = _frame().assign(
        assigned_at=pd.Timestamp("2026-05-10", tz="UTC"),
        x_at=[pd.Timestamp("2026-05-01", tz="UTC")] * 15 + [pd.Timestamp("2026-05-11", tz="UTC")],
    )
    with pytest.raises(DataError, match="covariate 'x' was measured at or after exposure") as err:
        analyze(frame, metrics=["y"], covariates="x", covariate_measured_at="x_at")
    assert err.value.rows == [15]
    with pytest.raises(DataError, match="for 16 of 16 users"):
        check_pre_exposure(frame, "x", pd.Timestamp("2026-05-20"))
    check_pre_exposure(frame, "x", "2026-05-09")  # a pre-period end before assignment is fine
    res = analyze(frame.iloc[:15], metrics=["y"], covariates="x", covariate_measured_at="x_at")
    assert res.to_frame().loc[0, "status"] == "ok"


def test_constant_covariate_cannot_reduce_variance():
    with pytest.raises(NotComputableError, match="zero variance"):
        cuped_theta([1.0, 2.0, 3.0], [5.0, 5.0, 5.0])
    res = analyze(_frame().assign(x=1.0), metrics=["y"], covariates="x")
    assert res.to_frame().loc[0, "abs_lift"] == pytest.approx(1.5)
    assert any("CUPED skipped for y" in n for n in res.notes)


def test_cuped_is_unbiased_and_tighter_on_simulated_data():
    rng = np.random.default_rng(11)
    n = 4_000
    pre = rng.gamma(2.0, 10.0, n)
    arm = np.repeat(["control", "b"], n // 2)
    y = 0.8 * pre + rng.normal(0, 5, n) + np.where(arm == "b", 1.0, 0.0)
    frame = pd.DataFrame({"variant": arm, "revenue": y, "pre_revenue": pre})
    plain = analyze(frame, metrics=["revenue"]).to_frame().iloc[0]
    cuped = (
        analyze(frame, metrics=["revenue"], covariates="pre_revenue")
        .to_frame(detailed=True)
        .iloc[0]
    )
    assert cuped["abs_ci_low"] < 1.0 < cuped["abs_ci_high"]
    width_plain = plain["abs_ci_high"] - plain["abs_ci_low"]
    width_cuped = cuped["abs_ci_high"] - cuped["abs_ci_low"]
    assert width_cuped < 0.5 * width_plain
    assert cuped["variance_reduction"] == pytest.approx(
        1 - (width_cuped / width_plain) ** 2, abs=0.01
    )
