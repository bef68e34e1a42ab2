"""analyze(): the readout table, text, plot, and real data (Hillstrom, Udacity, sample)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportions_ztest

from conftest import shared_file
from journeylab.core.errors import DataError, ParameterError, SchemaError
from journeylab.experiments import FRAME_COLUMNS, Metric, analyze, sequential_test, user_metrics

HILLSTROM = "Kevin_Hillstrom_MineThatData_E-MailAnalytics_DataMiningChallenge_2008.03.20.csv"


def _binary(counts: dict[str, tuple[int, int]], name: str = "booked") -> pd.DataFrame:
    parts = [
        pd.DataFrame({"variant": arm, name: [1] * x + [0] * (n - x)})
        for arm, (x, n) in counts.items()
    ]
    return pd.concat(parts, ignore_index=True)


def test_frame_columns_are_exactly_the_design_columns():
    res = analyze(
        _binary({"control": (3_120, 10_000), "short_form": (3_300, 10_000)}), metrics=["booked"]
    )
    assert list(res.to_frame().columns) == FRAME_COLUMNS
    assert FRAME_COLUMNS[4:] == [
        "control_mean",
        "treatment_mean",
        "abs_lift",
        "abs_ci_low",
        "abs_ci_high",
        "rel_lift",
        "rel_ci_low",
        "rel_ci_high",
        "p_value",
        "p_value_adjusted",
        "method",
        "status",
    ]
    detailed = res.to_frame(detailed=True)
    for col in ("rel_p_value", "statistic", "prob_beats_control", "expected_loss", "bayes_prior"):
        assert col in detailed.columns


def test_summary_sentence_reads_plainly():
    res = analyze(
        _binary({"control": (3_120, 10_000), "short_form": (3_300, 10_000)}), metrics=["booked"]
    )
    row = res.to_frame().iloc[0]
    assert row["abs_lift"] == pytest.approx(0.018)
    text = res.summary()
    assert text.startswith(
        "Trust checks:\n  – Unique units not run: no unit id column (user_id): each of the "
        "20,000 rows is counted as one user."
    )
    assert "\n  ✓ No sample ratio mismatch" in text
    assert (
        "Variant short_form raised booked from 31.2% to 33.0% (+1.8 pp, 95 % CI +0.5 to +3.1 pp; "
        f"p = {row['p_value']:.3g}, Holm-adjusted {row['p_value_adjusted']:.3g})."
    ) in text
    assert "Relative lift +5.8%" in text
    assert "(Beta(1, 1) on each rate)" in text
    html = res._repr_html_()
    assert html.index("Trust checks") < html.index("Variant short_form raised")
    assert html.index("Variant short_form raised") < html.index("<table")


def test_not_significant_is_said_plainly():
    res = analyze(_binary({"control": (100, 1_000), "b": (104, 1_000)}), metrics=["booked"])
    assert "Variant b did not detectably change booked: 10.4% vs 10.0% in control" in res.summary()


def test_not_computable_is_a_status_never_a_number():
    frame = pd.concat(
        [
            pd.DataFrame({"variant": "control", "flat": [1.0] * 3, "booked": [0] * 3}),
            pd.DataFrame({"variant": "b", "flat": [2.0] * 3, "booked": [0] * 3}),
            pd.DataFrame({"variant": "c", "flat": [5.0], "booked": [1]}),
        ],
        ignore_index=True,
    )
    res = analyze(frame, metrics=["flat", {"name": "booked", "kind": "binary"}], correction="holm")
    out = res.to_frame().set_index(["metric", "variant"])
    assert out.loc[("flat", "b"), "status"].startswith("not computable: zero variance in both arms")
    assert out.loc[("booked", "b"), "status"].startswith(
        "not computable: no conversions in either arm"
    )
    assert out.loc[("flat", "c"), "status"].startswith(
        "not computable: too few users (control 3, treatment 1"
    )
    numbers = ["abs_lift", "abs_ci_low", "abs_ci_high", "rel_lift", "p_value", "p_value_adjusted"]
    assert out[numbers].isna().all().all()
    assert out.loc[("flat", "b"), "control_mean"] == 1.0  # descriptive means stay
    text = res.summary()
    assert (
        "Variant b on flat: not computable: zero variance" in text
        and "No estimate is reported." in text
    )
    assert "Results (Holm p-values across 0 comparisons" in text
    ax = res.plot()
    assert len(ax.lines) == 1  # only the zero line: nothing plotted for missing estimates


def test_zero_conversion_control_reports_difference_not_ratio():
    res = analyze(_binary({"control": (0, 1_000), "b": (12, 1_000)}), metrics=["booked"])
    row = res.to_frame().iloc[0]
    assert row["status"].startswith("relative lift not computable: the control mean is 0")
    assert row["abs_lift"] == pytest.approx(0.012) and row["p_value"] < 0.001
    assert math.isnan(row["rel_lift"])
    assert "(relative lift not computable" in res.summary()


def test_abn_every_variant_against_control_holm_across_family():
    rng = np.random.default_rng(1)
    n = 3_000
    arm = np.repeat(["control", "a", "b"], n)
    frame = pd.DataFrame(
        {
            "variant": arm,
            "booked": (
                rng.random(3 * n) < np.select([arm == "a", arm == "b"], [0.13, 0.10], 0.10)
            ).astype(int),
            "revenue": rng.gamma(2, 10, 3 * n) * np.where(arm == "b", 1.1, 1.0),
        }
    )
    res = analyze(frame, metrics=["booked", Metric("revenue", winsorize=0.99)])
    out = res.to_frame()
    assert list(zip(out.metric, out.variant, strict=True)) == [
        ("booked", "a"),
        ("booked", "b"),
        ("revenue", "a"),
        ("revenue", "b"),
    ]
    assert out["p_value_adjusted"].to_numpy() == pytest.approx(
        multipletests(out["p_value"], method="holm")[1]
    )
    bh = analyze(frame, metrics=["booked", "revenue"], correction="fdr_bh").to_frame()
    assert bh["p_value_adjusted"].to_numpy() == pytest.approx(
        multipletests(bh["p_value"], method="fdr_bh")[1]
    )
    none = analyze(frame, metrics=["booked"], correction=None).to_frame()
    assert (none["p_value_adjusted"] == none["p_value"]).all()
    assert "revenue capped at" in out.loc[2, "method"] and "99th percentile" in out.loc[2, "method"]
    assert any(n.startswith("revenue capped at") for n in res.notes)
    assert res.omnibus.loc[0, "df"] == 2
    assert "All 3 arms on booked: chi-square" in res.summary()


def test_ratio_metric_in_analyze():
    frame = pd.DataFrame(
        {
            "variant": ["control", "b"] * 200,
            "revenue": np.tile([10.0, 30.0, 0.0, 12.0], 100),
            "sessions": np.tile([1, 2, 1, 1], 100),
        }
    )
    res = analyze(
        frame,
        metrics=[
            {"name": "rps", "kind": "ratio", "numerator": "revenue", "denominator": "sessions"}
        ],
    )
    row = res.to_frame().iloc[0]
    assert row["control_mean"] == pytest.approx(10 / 2)  # (10 + 0) / (1 + 1)
    assert row["treatment_mean"] == pytest.approx(42 / 3)
    assert row["method"].startswith("ratio of sums with delta-method variance")


def test_errors_name_the_problem():
    frame = _binary({"control": (5, 10), "b": (6, 10)})
    with pytest.raises(
        ParameterError,
        match="control == 'Control' is not a value of column 'variant'.*did you mean 'control'",
    ):
        analyze(frame, control="Control", metrics=["booked"])
    with pytest.raises(SchemaError, match="'boked' \\(did you mean 'booked'\\?\\)"):
        analyze(frame, metrics=["boked"])
    with pytest.raises(DataError, match="binary metric 'booked' has values other than 0/1"):
        analyze(
            frame.assign(booked=frame["booked"] * 2), metrics=[{"name": "booked", "kind": "binary"}]
        )
    with pytest.raises(ParameterError, match="unknown metric field\\(s\\) \\['knd'\\]"):
        analyze(frame, metrics=[{"name": "booked", "knd": "binary"}])
    with pytest.raises(ParameterError, match="metrics=\\[...\\] is required"):
        analyze(frame)


def test_forest_plot(tmp_path):
    frame = _binary(
        {"control": (3_120, 10_000), "short_form": (3_300, 10_000), "long_form": (3_000, 10_000)}
    )
    ax = analyze(frame, metrics=["booked"]).plot()
    ax.figure.savefig("/tmp/exp_forest_test.png", bbox_inches="tight")
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "booked · short_form",
        "booked · long_form",
    ]
    assert "relative lift vs control" in ax.get_xlabel()


# ---------------------------------------------------------------- user_metrics
def test_user_metrics_counts_only_events_after_assignment():
    assignments = pd.DataFrame(
        {
            "user_id": ["u1", "u2", "u3"],
            "variant": ["control", "b", "b"],
            "assigned_at": pd.to_datetime(["2026-05-02", "2026-05-02", "2026-05-02"], utc=True),
            "pre_revenue": [1.0, 2.0, 3.0],
        }
    )
    events = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u2", "u2", "u2", "u3", "u9"],
            "timestamp": pd.to_datetime(
                [
                    "2026-05-01",
                    "2026-05-03",
                    "2026-05-02",
                    "2026-05-03",
                    "2026-06-30",
                    "2026-05-05",
                    "2026-05-05",
                ],
                utc=True,
            ),
            "event": [
                "booking_completed",
                "site_visit",
                "site_visit",
                "booking_completed",
                "booking_completed",
                "site_visit",
                "booking_completed",
            ],
            "value": [50.0, np.nan, np.nan, 20.0, 30.0, np.nan, 99.0],
        }
    )
    spec = {
        "booked": "booking_completed",
        "revenue": {"event": "booking_completed", "agg": "sum"},
        "rps": {
            "kind": "ratio",
            "numerator": {"event": "booking_completed", "agg": "sum"},
            "denominator": {"event": "site_visit", "agg": "count"},
        },
    }
    table = user_metrics(assignments, events, spec)
    assert table["booked"].tolist() == [0, 1, 0]  # u1's booking was before assignment
    assert table["revenue"].tolist() == [0.0, 50.0, 0.0]
    assert table["rps_denominator"].tolist() == [1.0, 1.0, 1.0]
    assert table["pre_revenue"].tolist() == [1.0, 2.0, 3.0]
    assert [m.kind for m in table.attrs["metrics"]] == ["binary", "continuous", "ratio"]
    windowed = user_metrics(assignments, events, spec, window="14D")
    assert windowed["revenue"].tolist() == [0.0, 20.0, 0.0]
    res = analyze(table, min_users=1)  # the metrics come with the table
    assert res.to_frame()["metric"].tolist() == ["booked", "revenue", "rps"]


def test_user_metrics_refuses_duplicate_assignments():
    assignments = pd.DataFrame({"user_id": ["u1", "u1"], "variant": ["control", "b"]})
    events = pd.DataFrame(
        {"user_id": ["u1"], "timestamp": pd.to_datetime(["2026-05-01"], utc=True), "event": ["x"]}
    )
    with pytest.raises(DataError, match="1 users appear more than once") as err:
        user_metrics(assignments, events, {"x": "x"})
    assert err.value.rows == [0, 1]


# ------------------------------------------------------------------ real data
def test_hillstrom_three_arms_against_no_email():
    path = shared_file("hillstrom", HILLSTROM)
    data = pd.read_csv(path, usecols=["segment", "visit", "conversion", "spend"])
    res = analyze(
        data,
        variant="segment",
        control="No E-Mail",
        metrics=[
            {"name": "visit", "kind": "binary"},
            {"name": "conversion", "kind": "binary"},
            "spend",
        ],
    )
    assert {c.name: c.status for c in res.checks} == {
        "unique units": "skipped",  # the file has no customer id: one row per customer
        "sample ratio mismatch": "ok",
    }
    out = res.to_frame().set_index(["metric", "variant"])
    # arm sizes and rates published in SOURCE.md
    assert out.loc[("visit", "Mens E-Mail"), ["n_control", "n_treatment"]].tolist() == [
        21_306,
        21_307,
    ]
    assert out.loc[("visit", "Womens E-Mail"), "n_treatment"] == 21_387
    assert out.loc[("visit", "Mens E-Mail"), "treatment_mean"] == pytest.approx(3_894 / 21_307)
    assert out.loc[("visit", "Womens E-Mail"), "treatment_mean"] == pytest.approx(
        0.151400, abs=1e-6
    )
    assert out.loc[("visit", "Mens E-Mail"), "control_mean"] == pytest.approx(0.106167, abs=1e-6)
    assert out.loc[("conversion", "Mens E-Mail"), "treatment_mean"] == pytest.approx(
        0.012531, abs=1e-6
    )
    assert out.loc[("conversion", "Womens E-Mail"), "treatment_mean"] == pytest.approx(
        0.008837, abs=1e-6
    )
    assert out.loc[("conversion", "Mens E-Mail"), "control_mean"] == pytest.approx(122 / 21_306)
    assert out.loc[("spend", "Mens E-Mail"), "treatment_mean"] == pytest.approx(1.422617, abs=1e-6)
    assert out.loc[("spend", "Womens E-Mail"), "treatment_mean"] == pytest.approx(
        1.077202, abs=1e-6
    )
    assert out.loc[("spend", "Mens E-Mail"), "control_mean"] == pytest.approx(0.652789, abs=1e-6)
    # pooled z = R prop.test(correct = FALSE) on the published counts
    z, p = proportions_ztest([3_894, 2_262], [21_307, 21_306])
    assert out.loc[("visit", "Mens E-Mail"), "p_value"] == pytest.approx(p, rel=1e-6)
    assert out["p_value_adjusted"].to_numpy() == pytest.approx(
        multipletests(out["p_value"], method="holm")[1]
    )
    assert (out["p_value_adjusted"] < 0.01).all()  # both e-mails lift all three metrics
    assert out.loc[("spend", "Womens E-Mail"), "p_value_adjusted"] == pytest.approx(
        0.00113, abs=1e-5
    )
    assert "Variant Mens E-Mail raised visit from 10.6% to 18.3% (+7.7 pp" in res.summary()


def _udacity_clean(path) -> pd.DataFrame:
    """The published notebook's cleaning, replicated with pandas (an independent check)."""
    raw = pd.read_csv(path, usecols=["user_id", "group", "landing_page", "converted"])
    aligned = (raw["group"] == "treatment") == (raw["landing_page"] == "new_page")
    clean = raw[aligned]
    return clean[~clean["user_id"].duplicated()]


def test_udacity_ab_after_cleaning_same_as_published_notebook():
    from journeylab import load_assignments

    path = shared_file("udacity_ab", "ab_data.csv")
    loaded = load_assignments(
        path,
        columns={"group": "variant", "timestamp": "assigned_at"},
        consistency={"landing_page": {"control": "old_page", "treatment": "new_page"}},
    )
    assert len(loaded.frame) == 290_584
    by_hand = _udacity_clean(path).groupby("group")["converted"].agg(["sum", "count"])
    by_loader = loaded.frame.groupby("variant")["converted"].agg(["sum", "count"])
    assert by_loader.to_numpy().tolist() == by_hand.to_numpy().tolist()
    res = analyze(
        loaded.frame,
        control="control",
        metrics=[{"name": "converted", "kind": "binary"}],
        period="assigned_at",
    )
    row = res.to_frame(detailed=True).iloc[0]
    assert (row["n_control"], row["n_treatment"]) == (145_274, 145_310)
    assert row["control_mean"] == pytest.approx(17_489 / 145_274, rel=1e-12)
    assert row["treatment_mean"] == pytest.approx(17_264 / 145_310, rel=1e-12)
    assert row["abs_lift"] == pytest.approx(-0.0015782389853555567, rel=1e-9)
    # published: proportions_ztest(..., alternative="smaller") -> z 1.3109, one-sided p 0.905
    assert row["statistic"] == pytest.approx(-1.3109241984234394, rel=1e-9)
    from scipy import stats

    assert stats.norm.sf(row["statistic"]) == pytest.approx(0.90505831275902449, rel=1e-9)
    assert row["p_value"] == pytest.approx(2 * (1 - 0.90505831275902449), rel=1e-7)
    assert "Variant treatment did not detectably change converted" in res.summary()
    # 23 calendar days: the split is stable, no Simpson reversal, no novelty trend
    assert {c.name: c.status for c in res.checks} == {
        "unique units": "ok",
        "sample ratio mismatch": "ok",
        "split change across periods": "ok",
        "Simpson's paradox guard": "ok",
        "novelty / primacy trend": "ok",
    }
    assert row["strat_abs_lift"] == pytest.approx(row["abs_lift"], abs=5e-4)
    # the published one-sided test (H1: the new page converts better) straight from analyze
    one_sided = analyze(
        loaded.frame,
        control="control",
        metrics=[{"name": "converted", "kind": "binary"}],
        alternative="larger",
    )
    row = one_sided.to_frame(detailed=True).iloc[0]
    assert row["p_value"] == pytest.approx(0.90505831275902449, rel=1e-9)
    assert row["statistic"] == pytest.approx(-1.3109241984234394, rel=1e-9)
    assert row["abs_ci_high"] == math.inf and row["abs_ci_low"] < row["abs_lift"]
    assert row["alternative"] == "larger"
    text = one_sided.summary()
    assert "Variant treatment did not detectably raise converted" in text
    assert "95 % one-sided CI -0.36 to +∞ pp" in text
    assert "one-sided, H1: treatment > control" in text
    one_sided.plot().figure.savefig("/tmp/exp_udacity_one_sided.png", bbox_inches="tight")


# -------------------------------------------------------------------- sample
@pytest.fixture(scope="module")
def experiment_table(request):
    pytest.importorskip("journeylab.datasets.sample")
    sample = request.getfixturevalue("sample")
    return sample, user_metrics(sample.assignments, sample.events, {"booked": "booking_completed"})


def test_sample_planted_lift_inside_ci_and_no_srm(experiment_table):
    sample, table = experiment_table
    truth = sample.truth["experiment"]
    res = analyze(table, control=truth["control"], design_split=truth["split"])
    row = res.to_frame().iloc[0]
    assert row["variant"] == truth["treatment"]
    assert row["abs_ci_low"] <= truth["abs_lift"] <= row["abs_ci_high"]
    assert [(c.name, c.status) for c in res.checks] == [
        ("unique units", "ok"),
        ("sample ratio mismatch", "ok"),
    ]


def test_sample_watched_weekly_with_always_valid_inference(experiment_table):
    sample, table = experiment_table
    res = sequential_test(table, "booked", freq="W")
    looks = res.to_frame()
    assert looks["n_control"].iloc[-1] + looks["n_treatment"].iloc[-1] == len(table)
    last = looks.iloc[-1]
    assert last["cs_low"] <= sample.truth["experiment"]["abs_lift"] <= last["cs_high"]
    assert last["always_valid_p"] < 0.05
    assert "always-valid p-value fell below 0.05 at look" in res.summary()
    res.plot().figure.savefig("/tmp/exp_sequential_sample.png", bbox_inches="tight")


def test_sample_broken_split_is_flagged():
    datasets = pytest.importorskip("journeylab.datasets.sample")
    broken = datasets.make_sample(seed=2026, n_users=20_000, broken_split=True)
    table = user_metrics(broken.assignments, broken.events, {"booked": "booking_completed"})
    res = analyze(table, design_split=broken.truth["experiment"]["split"])
    assert {c.name: c for c in res.checks}["sample ratio mismatch"].flagged
    assert res.summary().splitlines()[2].startswith("  ⚠ Sample ratio mismatch")
