"""Trust checks: SRM against the design (AB-6), imbalance, Simpson's guard, novelty."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from journeylab.core.errors import DataError, ParameterError, SchemaError
from journeylab.experiments import (
    FRAME_COLUMNS,
    STRAT_COLUMNS,
    analyze,
    imbalance_check,
    srm_check,
    stratified_lift,
    trend_check,
    unit_check,
)

REF = json.loads(
    (Path(__file__).parents[1] / "results" / "experiments_reference.json").read_text()
)["AB-6"]


def test_srm_same_as_R_chisq_test_and_not_flagged_above_threshold():
    check = srm_check(dict(zip(["control", "treatment"], REF["observed"], strict=True)))
    assert check.p_value == pytest.approx(REF["p_value"], rel=1e-6)
    assert check.statistic == pytest.approx(500**2 / 50_500 * 2)
    assert check.status == "ok"  # 0.00165 is above the 0.001 threshold
    flagged = srm_check({"control": 50_000, "treatment": 51_000}, threshold=0.01)
    assert flagged.flagged and "Sample ratio mismatch" in flagged.message


def test_srm_uses_the_designed_split():
    counts = {"control": 95_000, "treatment": 5_000}
    assert srm_check(counts, {"control": 95, "treatment": 5}).status == "ok"
    equal = srm_check(counts)
    assert equal.flagged
    assert "treatment 5,000 (5.0%; designed 50.0%)" in equal.message
    skewed = srm_check(
        {"control": 95_000, "treatment": 4_500}, {"control": 0.95, "treatment": 0.05}
    )
    assert skewed.flagged
    assert skewed.p_value == pytest.approx(
        stats.chisquare([95_000, 4_500], [99_500 * 0.95, 99_500 * 0.05]).pvalue
    )
    with pytest.raises(ParameterError, match="unknown \\['treatmnt'\\], missing \\['treatment'\\]"):
        srm_check(counts, {"control": 0.5, "treatmnt": 0.5})


def test_analyze_keeps_a_designed_arm_that_lost_every_user():
    frame = pd.DataFrame({"variant": ["control", "b"] * 50, "booked": [0, 1, 1, 0] * 25})
    res = analyze(frame, metrics=["booked"], design_split={"control": 1, "b": 1, "c": 1})
    srm = {c.name: c for c in res.checks}["sample ratio mismatch"]
    assert srm.flagged and "c 0 (0.0%; designed 33.3%)" in srm.message
    out = res.to_frame().set_index("variant")
    assert out.loc["c", "status"].startswith(
        "not computable: too few users (control 50, treatment 0"
    )
    assert out.loc["b", "status"] == "ok"
    with pytest.raises(ParameterError, match="\\['b'\\] are not in design_split.*did you mean 'b'"):
        analyze(frame, metrics=["booked"], design_split={"control": 1, "B": 1})


def test_imbalance_check_flags_a_shifted_covariate():
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        {
            "variant": np.repeat(["control", "b"], 2_000),
            "pre": np.r_[rng.normal(10, 2, 2_000), rng.normal(10.5, 2, 2_000)],
            "ok": rng.normal(0, 1, 4_000),
        }
    )
    check = imbalance_check(frame, "variant", "control", ["pre", "ok"])
    assert check.flagged
    assert "pre differs between b" in check.message and "ok differs" not in check.message
    table = check.details["table"]
    assert table.loc[table.covariate == "pre", "smd"].item() == pytest.approx(0.25, abs=0.07)
    assert imbalance_check(frame, "variant", "control", ["ok"]).status == "ok"


def _simpson_frame(reverse: bool) -> pd.DataFrame:
    """Two periods; the split moves from 90/10 to 10/90 while the baseline triples."""
    rows = []
    spec = {
        ("p1", "control"): (900, 0.12 if reverse else 0.10),
        ("p1", "b"): (100, 0.10 if reverse else 0.12),
        ("p2", "control"): (100, 0.32 if reverse else 0.30),
        ("p2", "b"): (900, 0.30 if reverse else 0.32),
    }
    for (period, arm), (n, rate) in spec.items():
        k = round(n * rate)
        rows.append(
            pd.DataFrame({"period": period, "variant": arm, "booked": [1] * k + [0] * (n - k)})
        )
    return pd.concat(rows, ignore_index=True)


def test_simpson_guard_reports_stratified_lift_and_reversal():
    frame = _simpson_frame(reverse=True)
    res = analyze(frame, metrics=["booked"], period="period")
    row = res.to_frame(detailed=True).iloc[0]
    assert row["abs_lift"] == pytest.approx(0.28 - 0.14)  # pooled: treatment looks +14 pp
    assert row["strat_abs_lift"] == pytest.approx(-0.02)  # within periods: -2 pp
    names = {c.name: c for c in res.checks}
    assert names["split change across periods"].flagged
    simpson = names["Simpson's paradox guard"]
    assert simpson.flagged and "direction of the lift reverses" in simpson.message
    assert "pooled +14.0 pp, within periods -2.0 pp" in simpson.message
    assert res.summary().index("Simpson's paradox") < res.summary().index("Results")
    # Mantel-Haenszel odds ratio by hand: sum(a d / n) / sum(b c / n) over the two periods
    assert row["cmh_odds_ratio"] == pytest.approx(
        (10 * 792 / 1000 + 270 * 68 / 1000) / (90 * 108 / 1000 + 630 * 32 / 1000)
    )
    assert row["cmh_odds_ratio"] < 1 and 0 < row["cmh_p_value"] < 1


def test_simpson_guard_flags_changed_split_without_reversal():
    res = analyze(_simpson_frame(reverse=False), metrics=["booked"], period="period")
    simpson = {c.name: c for c in res.checks}["Simpson's paradox guard"]
    assert simpson.flagged and "The stratified estimates lead the results" in simpson.message
    assert res.to_frame(detailed=True).loc[0, "strat_abs_lift"] == pytest.approx(0.02)


def test_stratified_lift_weights_by_hand():
    y = pd.Series([0, 1, 1, 1, 0, 0, 0, 1, 1, 0], dtype=float)
    t = pd.Series([False, False, True, True, False, False, True, True, True, True])
    period = pd.Series([1, 1, 1, 1, 2, 2, 2, 2, 2, 2])
    out = stratified_lift(y, t, period)
    # period 1: lift 1 - 0.5, w = 2*2/4 = 1; period 2: lift 0.5 - 0, w = 2*4/6
    w1, w2 = 1.0, 8 / 6
    assert out["abs_lift"] == pytest.approx((w1 * 0.5 + w2 * 0.5) / (w1 + w2))
    assert out["periods"] == 2


def _daily(lift_by_day, n=300, seed=3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = pd.date_range("2026-05-01", periods=len(lift_by_day), freq="D", tz="UTC")
    parts = []
    for day, lift in zip(days, lift_by_day, strict=True):
        parts.append(pd.DataFrame({"day": day, "variant": "control", "y": rng.normal(10, 2, n)}))
        parts.append(pd.DataFrame({"day": day, "variant": "b", "y": rng.normal(10 + lift, 2, n)}))
    return pd.concat(parts, ignore_index=True)


def test_novelty_effect_is_flagged_when_the_lift_fades():
    frame = _daily(np.linspace(1.0, 0.0, 14))
    res = analyze(frame, metrics=["y"], period="day")
    trend = {c.name: c for c in res.checks}["novelty / primacy trend"]
    assert trend.flagged and "novelty effect (the lift fades)" in trend.message
    slope = trend_check(frame["y"], frame["variant"].eq("b"), frame["day"]).details["slope"]
    assert slope == pytest.approx(-1 / 13, abs=0.03)


def test_primacy_and_stable_lift():
    growing = _daily(np.linspace(0.0, 1.0, 14), seed=4)
    check = trend_check(growing["y"], growing["variant"].eq("b"), growing["day"])
    assert check.flagged and "primacy effect" in check.message
    stable = _daily(np.full(14, 0.5), seed=5)
    assert trend_check(stable["y"], stable["variant"].eq("b"), stable["day"]).status == "ok"
    short = _daily([0.5, 0.5])
    assert trend_check(short["y"], short["variant"].eq("b"), short["day"]).status == "skipped"


# ------------------------------------------------------------------ unique units
UNITS = json.loads(
    (Path(__file__).parents[1] / "results" / "experiments_reference.json").read_text()
)["UDACITY-RAW-UNITS"]


def test_udacity_raw_rows_are_not_counted_as_users_through_analyze():
    from conftest import shared_file

    raw = pd.read_csv(shared_file(*UNITS["file"]))
    metric = [{"name": "converted", "kind": "binary"}]
    res = analyze(raw, variant="group", control="control", metrics=metric)
    units = {c.name: c for c in res.checks}["unique units"]
    assert units.flagged and res.checks[0] is units  # shown first: SRM counts these rows
    d = units.details
    assert (d["rows"], d["units"]) == (UNITS["rows"], UNITS["distinct_user_ids"])
    assert (d["repeated_units"], d["repeated_rows"]) == (
        UNITS["repeated_user_ids"],
        UNITS["rows_of_repeated_ids"],
    )
    assert d["cross_variant_units"] == UNITS["ids_in_both_groups"]
    assert (
        "294,478 rows hold 290,584 distinct user_id: 3,894 user_id appear more than once "
        "(7,788 rows" in units.message
    )
    assert "1,895 of them in more than one variant" in units.message
    text = res.summary()
    assert text.index("Units are not unique") < text.index("sample ratio mismatch")
    assert "→ Resolve the flagged checks" in text
    checks = res.checks_frame().set_index("check")
    assert checks.loc["unique units", "status"] == "flagged"
    # the rows are still what the flagged readout counts
    row = res.to_frame().iloc[0]
    assert row["n_control"] + row["n_treatment"] == UNITS["rows"]

    dropped = analyze(raw, variant="group", control="control", metrics=metric, duplicates="drop")
    units = dropped.checks[0]
    assert units.status == "ok" and units.details["dropped_rows"] == UNITS["rows_of_repeated_ids"]
    assert units.details["dropped_units"] == UNITS["repeated_user_ids"]
    assert "the analysis counts 286,690 users, one row each" in units.message
    row = dropped.to_frame().iloc[0]
    want = UNITS["after_dropping_every_row_of_a_repeated_id"]
    assert (row["n_control"], row["n_treatment"]) == (
        want["control"]["users"],
        want["treatment"]["users"],
    )
    assert row["control_mean"] == pytest.approx(
        want["control"]["conversions"] / want["control"]["users"], rel=1e-12
    )
    assert row["treatment_mean"] == pytest.approx(
        want["treatment"]["conversions"] / want["treatment"]["users"], rel=1e-12
    )


def test_unit_check_by_hand_and_its_errors():
    frame = pd.DataFrame(
        {
            "uid": ["a", "b", "b", "c", "c", "d"],
            "variant": ["control", "control", "b", "b", "b", "control"],
            "booked": [0, 1, 0, 1, 1, 0],
        }
    )
    check, kept = unit_check(frame, "variant", "uid")
    assert check.flagged and kept is frame
    assert {k: check.details[k] for k in ("rows", "units", "repeated_units", "repeated_rows")} == {
        "rows": 6,
        "units": 4,
        "repeated_units": 2,
        "repeated_rows": 4,
    }
    assert check.details["cross_variant_units"] == 1  # b; c repeats within one arm
    assert check.details["first_rows"] == [1, 2, 3, 4]
    check, kept = unit_check(frame, "variant", "uid", duplicates="drop")
    assert kept["uid"].tolist() == ["a", "d"] and check.status == "ok"
    # analyze takes the unit column by name; a wrong name is an error with a hint
    res = analyze(frame, metrics=["booked"], unit="uid")
    assert res.to_frame().loc[0, ["n_control", "n_treatment"]].tolist() == [3, 3]
    with pytest.raises(ParameterError, match="after leaving out 4 rows of repeated units"):
        analyze(frame, metrics=["booked"], unit="uid", duplicates="drop")
    with pytest.raises(SchemaError, match="uidd"):
        analyze(frame, metrics=["booked"], unit="uidd")
    with pytest.raises(ParameterError, match="duplicates"):
        analyze(frame, metrics=["booked"], unit="uid", duplicates="keep")
    with pytest.raises(DataError, match="1 rows have no uid") as err:
        analyze(frame.assign(uid=["a", None, "b", "c", "c", "d"]), metrics=["booked"], unit="uid")
    assert err.value.rows == [1] and err.value.column == "uid"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 12), st.sampled_from(["control", "b"]), st.integers(0, 1)),
        min_size=1,
        max_size=40,
    )
)
def test_unit_counts_match_pandas_and_drop_leaves_unique_units(rows):
    frame = pd.DataFrame(rows, columns=["user_id", "variant", "booked"])
    check, _ = unit_check(frame, "variant", "user_id")
    counts = frame["user_id"].value_counts()
    repeated = counts[counts > 1]
    arms = frame.groupby("user_id")["variant"].nunique()
    assert check.details["repeated_units"] == len(repeated)
    assert check.details["repeated_rows"] == int(repeated.sum())
    assert check.details["cross_variant_units"] == int((arms > 1).sum())
    assert check.flagged == (len(repeated) > 0)
    dropped, kept = unit_check(frame, "variant", "user_id", duplicates="drop")
    assert kept["user_id"].is_unique
    assert len(kept) + dropped.details["dropped_rows"] == len(frame)
    assert set(kept["user_id"]) == set(counts[counts == 1].index)


# ------------------------------------------------------------------ stratified estimates
MH = json.loads((Path(__file__).parents[1] / "results" / "experiments_reference.json").read_text())[
    "AB-13"
]


def _strata_frame(strata: list[dict]) -> pd.DataFrame:
    parts = []
    for s in strata:
        for arm, label in (("treatment", "b"), ("control", "control")):
            x, n = s[arm]
            parts.append(
                pd.DataFrame(
                    {"period": s["period"], "variant": label, "booked": [1] * x + [0] * (n - x)}
                )
            )
    return pd.concat(parts, ignore_index=True)


def test_mantel_haenszel_risk_difference_same_as_sato_by_hand_and_leads_the_readout():
    frame = _strata_frame(MH["strata"])
    res = analyze(frame, metrics=["booked"], period="period")
    out = res.to_frame()
    assert list(out.columns[:16]) == FRAME_COLUMNS  # the design contract first, unchanged
    assert list(out.columns[16:]) == STRAT_COLUMNS
    row = out.iloc[0]
    assert row["abs_lift"] == pytest.approx(MH["pooled_abs_lift"])
    assert row["strat_abs_lift"] == pytest.approx(MH["mh_risk_difference"], rel=1e-12)
    assert [row["strat_ci_low"], row["strat_ci_high"]] == pytest.approx(MH["ci_95"], abs=1e-10)
    assert row["strat_p_value"] == pytest.approx(MH["p_two_sided"], rel=1e-9)
    assert row["strat_p_value_adjusted"] == pytest.approx(MH["p_two_sided"], rel=1e-9)
    assert row["headline_estimate"] == "stratified"
    direct = stratified_lift(
        frame["booked"], frame["variant"].eq("b"), frame["period"], kind="binary"
    )
    assert direct["std_error"] ** 2 == pytest.approx(MH["sato_variance"], rel=1e-12)
    assert direct["method"].startswith("Mantel-Haenszel risk difference")
    # the readout leads with the stratified estimate; the pooled one follows, labelled
    results = res.summary().split("Results")[1].splitlines()[1]
    assert results.startswith(
        "  Within periods, variant b did not detectably change booked (Mantel-Haenszel risk "
        "difference: -2.0 pp, 95 % CI -7.7 to +3.7 pp; p = 0.494"
    )
    assert (
        "Pooled over periods, which the changing split confounds: 28.0% vs 14.0% in control"
        in results
    )
    shown = res.display_frame().iloc[0]
    assert shown["lift within periods"] == "-2.0 pp (leads)"
    assert shown["CI within periods"] == "[-7.7, +3.7] pp"
    # one-sided: the same z, one tail
    larger = analyze(frame, metrics=["booked"], period="period", alternative="larger")
    assert larger.to_frame().loc[0, "strat_p_value"] == pytest.approx(
        stats.norm.sf(MH["mh_risk_difference"] / MH["sato_variance"] ** 0.5), rel=1e-9
    )
    assert larger.to_frame().loc[0, "strat_ci_high"] == np.inf
    ax = res.plot()
    assert ax.get_xlabel().startswith("absolute lift")  # a stratified lead switches the scale
    ax.figure.savefig("/tmp/exp_simpson_mh.png", bbox_inches="tight")


def test_traffic_weighted_means_equal_ols_with_centred_stratum_dummies_and_hc2():
    import statsmodels.formula.api as smf

    rng = np.random.default_rng(11)
    parts = []
    for stratum, (n_c, n_t, base, lift) in {
        "mobile": (300, 80, 10.0, 1.0),
        "desktop": (100, 260, 20.0, 2.0),
        "tablet": (60, 70, 5.0, -1.0),
    }.items():
        parts.append(pd.DataFrame({"device": stratum, "t": 0, "y": rng.normal(base, 3, n_c)}))
        parts.append(
            pd.DataFrame({"device": stratum, "t": 1, "y": rng.normal(base + lift, 4, n_t)})
        )
    frame = pd.concat(parts, ignore_index=True)
    dummies = pd.get_dummies(frame["device"], dtype=float).iloc[:, 1:]
    centred = dummies - dummies.mean()
    design = frame.assign(**{f"d{i}": centred.iloc[:, i] for i in range(centred.shape[1])})
    fit = smf.ols("y ~ t * (d0 + d1)", data=design).fit(cov_type="HC2")
    out = stratified_lift(frame["y"], frame["t"].eq(1), frame["device"], kind="continuous")
    assert out["abs_lift"] == pytest.approx(fit.params["t"], rel=1e-10)
    assert out["std_error"] == pytest.approx(fit.bse["t"], rel=1e-10)
    assert out["method"].startswith("traffic-weighted difference of means")
    # through analyze, stratified by a segment instead of a period
    res = analyze(
        frame.assign(variant=np.where(frame["t"] == 1, "b", "control")),
        metrics=[{"name": "y", "kind": "continuous"}],
        strata="device",
    )
    names = {c.name: c for c in res.checks}
    assert names["split change across strata"].flagged
    assert "novelty / primacy trend" not in names  # a trend needs periods
    row = res.to_frame().iloc[0]
    assert row["strat_abs_lift"] == pytest.approx(fit.params["t"], rel=1e-10)
    assert row["headline_estimate"] == "stratified"
    assert (
        res.summary()
        .split("Results")[1]
        .splitlines()[1]
        .startswith("  Within strata, variant b raised y (traffic-weighted difference of means: +")
    )
    with pytest.raises(SchemaError, match="1 users have no device") as err:
        analyze(
            frame.assign(
                variant=np.where(frame["t"] == 1, "b", "control"),
                device=frame["device"].where(frame.index != 3),
            ),
            metrics=["y"],
            strata="device",
        )
    assert err.value.rows == [3]


def test_a_narrow_stratified_interval_never_prints_as_one_number():
    # Within each period the treatment adds 5.000 ± tiny noise: the interval is
    # [4.9996, 5.0004], which three significant digits would print as [+5.00, +5.00].
    rng = np.random.default_rng(2)
    parts = []
    for period, n_c, n_t, base in (("p1", 900, 100, 10.0), ("p2", 100, 900, 30.0)):
        parts.append(
            pd.DataFrame(
                {"period": period, "variant": "control", "y": base + rng.normal(0, 0.002, n_c)}
            )
        )
        parts.append(
            pd.DataFrame(
                {"period": period, "variant": "b", "y": base + 5 + rng.normal(0, 0.002, n_t)}
            )
        )
    res = analyze(pd.concat(parts, ignore_index=True), metrics=["y"], period="period")
    row = res.to_frame().iloc[0]
    assert row["strat_ci_high"] - row["strat_ci_low"] < 0.001
    lead = res.summary().split("Results")[1].splitlines()[1]
    ci = lead.split("95 % CI ")[1].split(";")[0]
    low, high = ci.split(" to ")
    assert low != high and low.startswith("+4.99") and high.startswith("+5.00")
    simpson = {c.name: c for c in res.checks}["Simpson's paradox guard"].message
    interval = simpson.split("within periods ")[1].split(" ")[1:3]
    assert interval[0].rstrip(",") != interval[1].rstrip("]"), simpson
