"""Events on Spark: the session, the typed frame and the journeys of :mod:`journeylab.journeys.spark`.

The same rules as the DuckDB path (:mod:`journeylab.journeys.tables`), clause
for clause, as Spark DataFrame operations; only small tables leave the cluster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from journeylab.core.errors import (
    ParameterError,
    SchemaError,
    did_you_mean,
    require_names,
)
from journeylab.core.stages import StageMap
from journeylab.io.loaders import event_rank
from journeylab.journeys.rules import (
    JOURNEY_DEFAULTS,
    NO_CHANNEL,
    NO_STAGE,
    JourneyRules,
    check_journey_options,
)


def _spark():
    try:
        from pyspark.sql import Window
        from pyspark.sql import functions as F
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "journeylab.journeys.spark needs PySpark: pip install pyspark (and Java 17 or later)."
        ) from exc
    return F, Window


def is_spark_frame(obj: Any) -> bool:
    """Return True when ``obj`` is a PySpark DataFrame (classic or Spark Connect).

    Examples
    --------
    >>> is_spark_frame(pd.DataFrame())
    False
    """
    module = type(obj).__module__ or ""
    return module.startswith("pyspark.sql") and type(obj).__name__ == "DataFrame"


def _frame(events: Any, spark: Any, columns: Mapping[str, str] | None):
    """Return the events as a Spark DataFrame with canonical column names, checked."""
    if isinstance(events, str):
        if spark is None:
            from pyspark.sql import SparkSession

            spark = SparkSession.getActiveSession()
            if spark is None:
                raise ParameterError(
                    f"events == {events!r} names a Spark table, but no Spark session is active; "
                    "pass spark=SparkSession.builder.getOrCreate()."
                )
        frame, source = spark.table(events), events
    elif is_spark_frame(events):
        frame, source = events, "Spark DataFrame"
    else:
        raise ParameterError(
            f"events must be a Spark DataFrame or a Spark table name, not {type(events).__name__}; "
            "for pandas frames, DuckDB relations and Parquet files use journeylab.journeys.build."
        )
    for old, new in (columns or {}).items():
        frame = frame.withColumnRenamed(old, new)
    missing = [c for c in ("user_id", "timestamp", "event") if c not in frame.columns]
    if missing:
        hint = "; ".join(f"{c!r}{did_you_mean(c, frame.columns)}" for c in missing)
        raise SchemaError(
            f"The events table lacks the required column(s) {hint}.",
            source=source,
            column=missing[0],
            missing_columns=missing,
            hint="map source names with columns={'source_name': 'user_id', ...}.",
        )
    return frame, source


def _canonical(frame, stage_map: StageMap, keep: Sequence[str] = ()):
    """Typed canonical columns plus the tie-breaker's ``event_rank`` and the ``stage_index``.

    Returns ``(frame, last timestamp in microseconds, distinct event names)``.
    """
    F, _ = _spark()
    # one pass: the distinct event names (for the tie-breaker) and the last timestamp
    per_event = (
        frame.groupBy(F.col("event").cast("string").alias("event"))
        .agg(F.max(F.unix_micros(F.col("timestamp").cast("timestamp"))).alias("last"))
        .collect()
    )
    names = [r[0] for r in per_event if r[0] is not None]
    last = [r[1] for r in per_event if r[1] is not None]
    series = pd.Series(names, dtype="object")
    ranks = (
        event_rank(series, stage_map).to_numpy(dtype="int64")
        if names
        else np.array([], dtype="int64")
    )
    stages = stage_map.event_to_stage(series)
    other = len(stage_map.event_names())
    rank_map = (
        F.create_map(
            *[x for n, r in zip(names, ranks, strict=True) for x in (F.lit(n), F.lit(int(r)))]
        )
        if names
        else None
    )
    stage_pairs = [(n, stage_map.index(stages[n])) for n in names if stages.get(n)]
    stage_map_col = (
        F.create_map(*[x for n, i in stage_pairs for x in (F.lit(n), F.lit(int(i)))])
        if stage_pairs
        else None
    )
    event = F.col("event").cast("string")
    cols = [
        F.col("user_id").cast("string").alias("user_id"),
        F.unix_micros(F.col("timestamp").cast("timestamp")).alias("ts"),
        event.alias("event"),
        (
            F.col("channel").cast("string")
            if "channel" in frame.columns
            else F.lit(None).cast("string")
        ).alias("channel"),
        (
            F.col("value").cast("double")
            if "value" in frame.columns
            else F.lit(None).cast("double")
        ).alias("value"),
        (
            F.col("session_id").cast("string")
            if "session_id" in frame.columns
            else F.lit(None).cast("string")
        ).alias("session_id"),
        (F.coalesce(rank_map[event], F.lit(other)) if rank_map is not None else F.lit(other))
        .cast("long")
        .alias("event_rank"),
        (stage_map_col[event] if stage_map_col is not None else F.lit(None))
        .cast("int")
        .alias("stage_index"),
        *[
            F.col(c)
            for c in keep
            if c not in ("user_id", "timestamp", "event", "channel", "value", "session_id")
        ],
    ]
    return frame.select(*cols), (max(last) if last else None), names


def _order(F):
    """Return the stable tie-breaker as Spark sort expressions (missing values last)."""
    return [F.col(c).asc_nulls_last() for c in ("ts", "event_rank", "event", "channel", "value")]


def _micros(ts: pd.Timestamp) -> int:
    return int(ts.value // 1000)


def _journeys(
    events: Any,
    *,
    func: str,
    spark: Any,
    columns: Any,
    level: str,
    stage_map: Any,
    options: dict[str, Any],
):
    """One row per journey with its kept steps (after the cap), and what was left out.

    Returns ``(journeys, kept, left_out, settings)``; ``kept`` holds the
    journeys ending on or after ``start``; ``journeys`` (all of them) is a Spark
    DataFrame with ``user_id``, ``jidx``, ``converted``, ``value``,
    ``conversion_us``, ``censored`` and ``steps`` (array of ``(seq, ts,
    elem)`` structs in journey order).
    """
    F, Window = _spark()
    check_journey_options(
        func,
        options,
        ["level", "collapse_repeats", "include_censored", "stage_map", "spark", "columns"],
    )
    if options.get("conversion") is None:
        raise ParameterError(
            "Journeys need conversion=: the event (or list of events) that counts as a "
            "conversion, e.g. conversion='purchase'; or pass project=."
        )
    rules = JourneyRules.read(**{**JOURNEY_DEFAULTS, **options})
    conversions, touch_events, cap = list(rules.conversions), rules.touch_events, rules.max_touches
    sm = StageMap.coerce(stage_map)
    frame, source = _frame(events, spark, columns)
    src, micros, present = _canonical(frame, sm)
    require_names(conversions, present, what="conversion event", source=source)
    if touch_events is not None and not (isinstance(touch_events, str) and touch_events == "all"):
        require_names(
            [touch_events] if isinstance(touch_events, str) else list(touch_events), present,
            what="touch event", source=source,
        )  # fmt: skip
    first, end = rules.start, rules.period_end
    if end is None and micros is not None:
        end = pd.Timestamp(int(micros), unit="us", tz="UTC")
    end_us = _micros(end) if end is not None else 2**62
    look_us = int(rules.lookback.value // 1000)
    is_conv = F.col("event").isin(conversions)
    conv_stage = sm.earliest_index(conversions)
    if touch_events is None:
        touch = F.col("channel").isNotNull() & ~is_conv
        if conv_stage is not None:
            touch = touch & (F.col("stage_index").isNull() | (F.col("stage_index") < conv_stage))
    elif isinstance(touch_events, str) and touch_events == "all":
        touch = ~is_conv
    else:
        listed = [touch_events] if isinstance(touch_events, str) else list(touch_events)
        touch = F.col("event").isin(listed) & ~is_conv
    # A missing event name is neither a conversion nor a touch (as in SQL's three-valued logic).
    base = src.where(
        F.coalesce(is_conv | touch, F.lit(False)) | F.col("user_id").isNull() | F.col("ts").isNull()
    )
    base = base.withColumn("is_conv", F.coalesce(is_conv, F.lit(False)))
    counts = base.agg(
        F.sum((F.col("user_id").isNull() | F.col("ts").isNull()).cast("long")).alias(
            "incomplete_rows"
        ),
        F.sum((F.col("user_id").isNotNull() & (F.col("ts") > F.lit(end_us))).cast("long")).alias(
            "after_period_end"
        ),
    )
    if level == "channel":
        elem = F.coalesce(F.col("channel"), F.lit(NO_CHANNEL))
    elif level == "event":
        elem = F.col("event")
    else:
        names = [r[0] for r in base.select("event").distinct().collect() if r[0] is not None]
        mapping = sm.event_to_stage(names)
        pairs = [
            x
            for e, s in mapping.items()
            for x in (F.lit(e), F.lit(s if s is not None else NO_STAGE))
        ]
        elem = (
            F.coalesce(F.create_map(*pairs)[F.col("event")], F.lit(NO_STAGE))
            if pairs
            else F.lit(NO_STAGE)
        )
    user = Window.partitionBy("user_id").orderBy(*_order(F))
    rows = (
        base.where(
            F.col("user_id").isNotNull() & F.col("ts").isNotNull() & (F.col("ts") <= F.lit(end_us))
        )
        .withColumn("elem", elem)
        .withColumn("seq", F.row_number().over(user))
        .withColumn(
            "jidx",
            F.coalesce(
                F.sum(F.col("is_conv").cast("int")).over(
                    user.rowsBetween(Window.unboundedPreceding, -1)
                ),
                F.lit(0),
            ),
        )
        .withColumn(
            "closing",
            F.min(F.when(F.col("is_conv"), F.col("ts"))).over(
                user.rowsBetween(0, Window.unboundedFollowing)
            ),
        )
        .withColumn(
            "user_last",
            F.max(F.when(~F.col("is_conv"), F.col("ts"))).over(
                Window.partitionBy("user_id").rowsBetween(
                    Window.unboundedPreceding, Window.unboundedFollowing
                )
            ),
        )
    )
    rows = rows.withColumn(
        "outside",
        ~F.col("is_conv")
        & (F.col("ts") < F.coalesce(F.col("closing"), F.col("user_last")) - F.lit(look_us)),
    )
    kept = ~F.col("is_conv") & ~F.col("outside")
    journeys = rows.groupBy("user_id", "jidx").agg(
        F.max(F.col("is_conv").cast("int")).cast("boolean").alias("converted"),
        F.max(F.when(F.col("is_conv"), F.col("ts"))).alias("conversion_us"),
        F.coalesce(
            F.sum(F.when(F.col("is_conv"), F.coalesce(F.col("value"), F.lit(0.0)))), F.lit(0.0)
        ).alias("value"),
        F.max(F.when(~F.col("is_conv"), F.col("ts"))).alias("last_touch"),
        F.sum(F.col("outside").cast("long")).alias("outside_lookback"),
        F.sum(kept.cast("long")).alias("n_kept"),
        F.sum((kept & F.col("channel").isNull()).cast("long")).alias("no_channel"),
        F.sort_array(F.collect_list(F.when(kept, F.struct("seq", "ts", "elem")))).alias(
            "all_steps"
        ),
    )
    n_touches = F.least(F.col("n_kept"), F.lit(int(cap))) if cap is not None else F.col("n_kept")
    journeys = (
        journeys.withColumn("n_touches", n_touches)
        .withColumn("steps", F.expr("slice(all_steps, n_kept - n_touches + 1, n_touches)"))
        .withColumn(
            "censored",
            F.coalesce(
                ~F.col("converted") & (F.col("last_touch") >= F.lit(end_us - look_us)), F.lit(False)
            ),
        )
        .drop("all_steps")
    )
    # A journey belongs to the period its end (conversion or last touch) falls in.
    ended = F.coalesce(F.col("conversion_us"), F.col("last_touch"))
    before = (ended < F.lit(_micros(first))) if first is not None else F.lit(False)
    journeys = journeys.withColumn("before_start", F.coalesce(before, F.lit(False)))
    # kept for the counts below and the caller's table (one pass over the events)
    journeys = journeys.persist()
    kept_journeys = journeys.where(~F.col("before_start"))
    # every count of what was left out, in one job
    totals = (
        counts.crossJoin(
            kept_journeys.agg(
                F.sum("outside_lookback").alias("outside_lookback"),
                F.sum(F.col("n_kept") - F.col("n_touches")).alias("truncated_touches"),
                F.sum((F.col("n_kept") > F.col("n_touches")).cast("long")).alias(
                    "truncated_journeys"
                ),
                F.sum((F.col("converted") & (F.col("n_touches") == 0)).cast("long")).alias(
                    "direct_conversions"
                ),
                F.sum(F.col("censored").cast("long")).alias("censored_journeys"),
                F.sum("no_channel").alias("no_channel_touches"),
            )
        )
        .crossJoin(
            journeys.agg(F.sum(F.col("before_start").cast("long")).alias("ended_before_start"))
        )
        .collect()[0]
    )
    left_out = {key: int(v or 0) for key, v in totals.asDict().items()}
    settings = rules.settings(end)
    return journeys, kept_journeys, left_out, settings


def _from_project(
    project: Any, stage_map: Any, options: dict[str, Any]
) -> tuple[Any, dict[str, Any]]:
    """Fill the stage map, conversion and lookback the caller left out from the project file."""
    if project is None:
        return stage_map, options
    options = dict(options)
    options.setdefault("conversion", list(project.conversion))
    options.setdefault("lookback", project.lookback)
    return (stage_map if stage_map is not None else project.stage_map), options


def _frame_tx(transactions: Any, spark: Any, columns: Mapping[str, str] | None):
    if isinstance(transactions, str) or is_spark_frame(transactions):
        frame = transactions
        if isinstance(frame, str):
            from pyspark.sql import SparkSession

            spark = spark or SparkSession.getActiveSession()
            if spark is None:
                raise ParameterError(
                    f"transactions == {frame!r} names a Spark table, but no Spark session is active."
                )
            frame = spark.table(frame)
        for old, new in (columns or {}).items():
            frame = frame.withColumnRenamed(old, new)
        missing = [c for c in ("user_id", "timestamp") if c not in frame.columns]
        if missing:
            raise SchemaError(
                f"The transactions lack the required column(s) {missing}{did_you_mean(missing[0], frame.columns)}.",
                source="Spark",
                column=missing[0],
                missing_columns=missing,
            )
        return frame, "Spark"
    raise ParameterError(
        f"transactions must be a Spark DataFrame or a Spark table name, not {type(transactions).__name__}."
    )
