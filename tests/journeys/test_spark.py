"""The Spark path gives the same small tables as the DuckDB/pandas path.

Reference: journeylab's own DuckDB implementation (journeys.path_table,
flows.transitions, funnel.funnel) and retention.cohort_retention, on the
sample make_sample(seed=7, n_users=2000) and on hand-made ties; results must
be identical (pandas.testing.assert_frame_equal).
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

pyspark = pytest.importorskip("pyspark", reason="pyspark is not installed (pip install pyspark)")


def _java_ok() -> bool:
    java = shutil.which("java")
    if java is None:
        return False
    try:
        return subprocess.run([java, "-version"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


if not _java_ok():
    pytest.skip("Spark needs Java 17+ on PATH (java -version failed)", allow_module_level=True)

from journeylab.core.errors import NotComputableError, ParameterError, SchemaError, UnknownNameError  # noqa: E402
from journeylab.customers.cohorts import cohort_retention  # noqa: E402
from journeylab.customers.purchases import period_label  # noqa: E402
from journeylab.datasets.sample import make_sample, sample_stage_map  # noqa: E402
from journeylab.journeys import spark as jls  # noqa: E402
from journeylab.journeys.build import path_table  # noqa: E402
from journeylab.journeys.flows import transitions  # noqa: E402
from journeylab.journeys.funnels import funnel  # noqa: E402

COLUMNS = ["user_id", "timestamp", "event", "channel", "value", "session_id", "device"]
#: The sample's journey rules, named explicitly (the library has no default).
RULES = {"conversion": "booking_completed", "stage_map": sample_stage_map()}


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("journeylab-tests")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _to_spark(spark, frame: pd.DataFrame, tmp_path_factory):
    """Hand a pandas frame to Spark through Parquet (microsecond UTC timestamps), as a lake would."""
    path = tmp_path_factory.mktemp("spark") / "events.parquet"
    out = frame.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.StringDtype) or out[col].dtype == object:
            out[col] = out[col].astype(object)
    out["timestamp"] = out["timestamp"].astype("datetime64[us, UTC]")
    out.to_parquet(path, index=False)
    return spark.read.parquet(str(path))


@pytest.fixture(scope="module")
def sample():
    return make_sample(seed=7, n_users=2000)


@pytest.fixture(scope="module")
def events(sample):
    return sample.events[COLUMNS]


@pytest.fixture(scope="module")
def spark_events(spark, events, tmp_path_factory):
    return _to_spark(spark, events, tmp_path_factory).cache()


def _same_paths(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert_frame_equal(got, want)
    assert got.attrs["left_out"] == want.attrs["left_out"]
    assert got.attrs["settings"] == want.attrs["settings"]


def test_path_table_matches_duckdb(spark_events, events):
    want = path_table(events, **RULES)
    got = jls.path_table(spark_events, **RULES)
    _same_paths(got, want)
    assert len(want) > 50 and want["conversions"].sum() > 100  # a real table, not a trivial one
    # the public entry point hands a Spark DataFrame to the Spark path
    _same_paths(path_table(spark_events, **RULES), want)
    # and its coded table is DuckDB's coded table
    coded, want_coded = (
        path_table(spark_events, coded=True, **RULES),
        path_table(events, coded=True, **RULES),
    )
    assert (coded.channels, coded.paths) == (want_coded.channels, want_coded.paths)
    for name in ("conversions", "value", "non_conversions"):
        np.testing.assert_allclose(getattr(coded, name), getattr(want_coded, name), rtol=1e-12)
    assert coded.attrs["left_out"] == want_coded.attrs["left_out"]
    assert coded.attrs["censoring"] == want_coded.attrs["censoring"]


@pytest.mark.parametrize(
    "options",
    [
        {
            "level": "event",
            "collapse_repeats": False,
            "include_censored": True,
            "max_touches": 3,
            "lookback": "7D",
            "start": "2026-07-01",
        },
        {
            "level": "stage",
            "month": "2026-08",
            "touch_events": "all",
            "conversion": ["booking_completed", "repeat_booking"],
        },
    ],
)
def test_path_table_options_match_duckdb(spark_events, events, options):
    options = {**RULES, **options}
    _same_paths(jls.path_table(spark_events, **options), path_table(events, **options))


def test_ties_follow_the_stable_tie_breaker(spark, tmp_path_factory):
    t = pd.Timestamp("2026-05-02 10:00", tz="UTC")
    ties = pd.DataFrame(
        {
            "user_id": ["a", "a", "a", "a", "b", "b", "b"],
            "timestamp": [t, t, t, t + pd.Timedelta("1h"), t, t, t],
            "event": [
                "site_visit",
                "ad_impression",
                "site_visit",
                "booking_completed",
                "phone_call",
                "site_visit",
                "site_visit",
            ],
            "channel": ["social", "display", "email", None, "phone", None, "direct"],
            "value": [None, None, None, 80.0, None, None, None],
        }
    )
    # shuffled rows: the order comes from the tie-breaker, not from the input
    shuffled = ties.sample(frac=1, random_state=3).reset_index(drop=True)
    options = {
        "collapse_repeats": False,
        "include_censored": True,
        "period_end": "2026-06-30",
        **RULES,
    }
    got = jls.path_table(_to_spark(spark, shuffled, tmp_path_factory), **options)
    _same_paths(got, path_table(ties, **options))
    # display ranks before site_visit; the two visits then sort by channel
    assert got["path"].tolist()[0] == ("display", "email", "social")


def test_table_name_and_column_mapping(spark, spark_events, events):
    spark_events.withColumnRenamed("user_id", "visitor").createOrReplaceTempView("jl_events")
    got = jls.path_table("jl_events", spark=spark, columns={"visitor": "user_id"}, **RULES)
    _same_paths(got, path_table(events, **RULES))


@pytest.mark.parametrize(
    "options",
    [{}, {"level": "event", "collapse_repeats": True, "include_censored": True}],
)
def test_transition_counts_match_flows(spark_events, events, options):
    want = transitions(events, **RULES, **options).to_frame()
    got = jls.transition_counts(spark_events, **RULES, **options)
    assert_frame_equal(got, want)
    assert {"START", "CONVERSION"} <= set(want["from"]) | set(want["to"])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window": "7D", "order": "any", "segment": "device"},
        {"window": "14D", "grain": "session", "start": "2026-06-01", "end": "2026-09-01"},
    ],
)
def test_funnel_counts_match_funnel(spark_events, events, kwargs):
    steps = ["site_visit", "quote_request", "booking_started", "booking_completed"]
    columns = ["segment", "step", "label", "entrants", "time_q25", "time_median", "time_q75"]
    want = funnel(events, steps, **kwargs).to_frame()[columns].reset_index(drop=True)
    got = jls.funnel_counts(spark_events, steps, **kwargs)
    assert_frame_equal(got, want, check_dtype=False)
    assert want["entrants"].iloc[0] > want["entrants"].iloc[-1] > 0


def test_cohort_counts_match_retention(spark, sample, tmp_path_factory):
    tx = sample.transactions[["user_id", "timestamp", "value"]]
    got = jls.cohort_counts(_to_spark(spark, tx, tmp_path_factory), period="month")
    res = cohort_retention(tx, period="month")
    want = res.counts.stack().rename("customers").reset_index()
    want.columns = ["cohort", "period", "customers"]
    want = want[want["customers"] > 0].reset_index(drop=True)
    got_labels = got.assign(cohort=period_label(got["cohort"].to_numpy(), "month"))
    got_labels = got_labels.astype({"cohort": want["cohort"].dtype})
    assert_frame_equal(got_labels, want.astype({"period": "int64", "customers": "int64"}))
    assert got.loc[got["period"] == 0, "customers"].sum() == tx["user_id"].nunique()


def test_errors_name_the_problem(spark_events):
    with pytest.raises(SchemaError, match="'user_id'.*did you mean 'user'"):
        jls.path_table(spark_events.withColumnRenamed("user_id", "user"), **RULES)
    with pytest.raises(ParameterError, match="Spark DataFrame or a Spark table name"):
        jls.path_table(pd.DataFrame({"user_id": []}), **RULES)
    with pytest.raises(ParameterError, match="lookback == '0D': not a positive duration"):
        jls.path_table(spark_events, lookback="0D", **RULES)
    with pytest.raises(
        ParameterError, match="unexpected option 'lookbak'.*did you mean 'lookback'"
    ):
        jls.path_table(spark_events, lookbak="7D", **RULES)


def test_names_the_data_do_not_carry_are_errors(spark_events):
    with pytest.raises(ParameterError, match="Journeys need conversion="):
        jls.path_table(spark_events, stage_map=RULES["stage_map"])
    with pytest.raises(ParameterError, match="No stage map given"):
        jls.transition_counts(spark_events, conversion="booking_completed")
    with pytest.raises(
        UnknownNameError,
        match="conversion event 'booking_complete'.*did you mean 'booking_completed'",
    ):
        jls.path_table(spark_events, conversion="booking_complete", stage_map=RULES["stage_map"])
    with pytest.raises(
        UnknownNameError, match="touch event 'site_vist'.*did you mean 'site_visit'"
    ):
        jls.path_table(spark_events, touch_events=["site_vist"], **RULES)
    with pytest.raises(
        UnknownNameError, match="funnel step 'booking_stared'.*did you mean 'booking_started'"
    ):
        jls.funnel_counts(spark_events, ["site_visit", "booking_stared"])
    with pytest.raises(UnknownNameError, match="segment column 'devise'.*did you mean 'device'"):
        jls.funnel_counts(spark_events, ["site_visit", "booking_started"], segment="devise")
    with pytest.raises(
        NotComputableError, match="No user entered the funnel at its first step 'site_visit'"
    ):
        jls.funnel_counts(spark_events, ["site_visit", "booking_started"], start="2030-01-01")
