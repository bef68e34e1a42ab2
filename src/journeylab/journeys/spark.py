"""The heavy aggregations on Apache Spark, for event logs larger than one machine.

When the events live in a Spark table (a lakehouse, a warehouse reachable from
Spark), the aggregations that touch every event run on the cluster and only
the small tables come back to pandas, where the statistics run as usual:

- :func:`path_table` — events → path table (the interchange format with
  attribution), the same columns, order and ``attrs`` as
  :func:`journeylab.journeys.build.path_table`;
- :func:`transition_counts` — the table of
  :func:`journeylab.journeys.flows.transitions` (``from``, ``to``, ``count``,
  ``probability``, ``median_time``);
- :func:`funnel_counts` — per segment and step, the units that reached the
  step and the quartiles of the time it took (the counts behind
  :func:`journeylab.journeys.funnels.funnel`);
- :func:`cohort_counts` — customers per acquisition cohort and period since
  their first purchase (the counts behind
  :func:`journeylab.customers.retention.cohort_retention`).

The rules are those of the DuckDB path, clause for clause: the stable
tie-breaker ``(timestamp, stage-map position, event, channel, value)`` with
missing values last, conversions that close journeys, the lookback measured
from the journey's end, the ``max_touches`` cap, censoring at
``period_end``, the ``(direct)`` path and the collapse of repeats. Each
function takes a Spark DataFrame or the name of a Spark table (with the
canonical columns ``user_id``, ``timestamp``, ``event`` and usually
``channel`` and ``value``; rename them with ``columns=``).

As on DuckDB, journeys need ``conversion=`` and a stage map (or ``project=``,
which gives both), and a conversion, touch event or funnel step that no row
carries is an error naming it and the closest event names present.

Examples
--------
>>> from pyspark.sql import SparkSession
>>> from journeylab.attribution import attribute
>>> from journeylab.core.stages import StageMap
>>> spark = SparkSession.builder.getOrCreate()
>>> events = spark.createDataFrame(
...     [("a", "2026-05-01 09:00:00", "visit", "email", None),
...      ("a", "2026-05-03 10:00:00", "purchase", None, 90.0),
...      ("b", "2026-05-02 11:00:00", "visit", "email", None)],
...     "user_id string, timestamp string, event string, channel string, value double")
>>> stages = StageMap.from_dict({"stages": [{"name": "consideration", "events": ["visit"]},
...                                          {"name": "purchase", "events": ["purchase"]}]})
>>> paths = path_table(events, conversion="purchase", stage_map=stages, lookback="7D",
...                    period_end="2026-06-30")
>>> paths
       path  conversions  value  non_conversions
0  (email,)            1   90.0                1
>>> attribute(paths, models=["last_touch"]).to_frame()  # doctest: +NORMALIZE_WHITESPACE
         last_touch
channel
email           1.0
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import pandas as pd

from journeylab.core.errors import (
    NotComputableError,
    SchemaError,
    check_in,
    require_names,
)
from journeylab.core.stages import StageMap
from journeylab.core.timeparse import parse_duration
from journeylab.journeys.rules import (
    DIRECT,
    MISSING_SEGMENT,
    censoring_summary,
    entry_window,
    parse_steps,
    resolve_steps,
    step_order_map,
)
from journeylab.journeys.spark_events import (
    _canonical,
    _frame,
    _frame_tx,
    _from_project,
    _journeys,
    _micros,
    _order,
    _spark,
    is_spark_frame,
)

__all__ = ["path_table", "transition_counts", "funnel_counts", "cohort_counts", "is_spark_frame"]


def _collapse(steps: str) -> str:
    """Spark SQL keeping the first step of every run of identical names."""
    return f"filter({steps}, (s, i) -> i = 0 OR s.elem != {steps}[i - 1].elem)"


def path_table(
    events: Any,
    *,
    level: Literal["channel", "event", "stage"] = "channel",
    collapse_repeats: bool = True,
    include_censored: bool = False,
    stage_map: Any = None,
    spark: Any = None,
    columns: Mapping[str, str] | None = None,
    project: Any = None,
    **journey_options: Any,
) -> pd.DataFrame:
    """Aggregate journeys into the path table on Spark (same result as the DuckDB path).

    Parameters
    ----------
    events : pyspark.sql.DataFrame or str
        The event log, or the name of a Spark table holding it.
    level, collapse_repeats, include_censored, stage_map, **journey_options
        As :func:`journeylab.journeys.build.path_table`; ``conversion`` and
        ``stage_map`` are required (unless ``project`` gives them).
    spark : SparkSession, optional
        Session that reads a table name (default: the active one).
    columns : mapping, optional
        ``{source_name: canonical_name}`` for the table's columns.
    project : Project, optional
        The project file: its ``conversion``, ``lookback`` and ``stage_map``.

    Returns
    -------
    pandas.DataFrame
        ``path``, ``conversions``, ``value``, ``non_conversions`` in the order
        of :func:`journeylab.journeys.path_table`, with the same
        ``attrs["left_out"]``, ``attrs["settings"]`` and ``attrs["censoring"]``.

    Examples
    --------
    ``events`` and ``stages`` as in the module's example:

    >>> path_table(events, conversion="purchase", stage_map=stages, lookback="7D",
    ...            period_end="2026-06-30", include_censored=True)["path"].tolist()
    [('email',)]
    """
    F, _ = _spark()
    check_in("level", level, ["channel", "event", "stage"])
    stage_map, journey_options = _from_project(project, stage_map, journey_options)
    cached, kept, left_out, settings = _journeys(
        events,
        func="path_table",
        spark=spark,
        columns=columns,
        level=level,
        stage_map=stage_map,
        options=journey_options,
    )
    journeys = kept if include_censored else kept.where(~F.col("censored"))
    steps = _collapse("steps") if collapse_repeats else "steps"
    path = F.expr(
        f"CASE WHEN size(steps) = 0 THEN array('{DIRECT}') ELSE transform({steps}, s -> s.elem) END"
    )
    grouped = (
        journeys.select(path.alias("path"), "converted", "value")
        .groupBy("path")
        .agg(
            F.sum(F.col("converted").cast("long")).alias("conversions"),
            F.sum("value").cast("double").alias("value"),
            F.sum((~F.col("converted")).cast("long")).alias("non_conversions"),
        )
        .toPandas()
    )
    cached.unpersist()
    frame = pd.DataFrame(
        {
            "path": [tuple(p) for p in grouped["path"]],
            "conversions": grouped["conversions"].astype("int64"),
            "value": grouped["value"].astype("float64"),
            "non_conversions": grouped["non_conversions"].astype("int64"),
        }
    )
    frame = _sorted(frame, ["conversions", "non_conversions"], "path")
    left = dict(left_out)
    open_journeys = int(left.get("censored_journeys", 0))
    if include_censored:
        left["censored_journeys"] = 0
    frame.attrs["left_out"] = left
    frame.attrs["settings"] = {
        **settings,
        "level": level,
        "collapse_repeats": collapse_repeats,
        "include_censored": include_censored,
    }
    frame.attrs["censoring"] = censoring_summary(
        frame["conversions"].sum(),
        frame["non_conversions"].sum(),
        open_journeys,
        include_censored=include_censored,
        period_end=settings.get("period_end"),
    )
    return frame


def _sorted(frame: pd.DataFrame, descending: list[str], path: str) -> pd.DataFrame:
    """Sort by ``descending`` counts, then by the path tuple (as DuckDB orders lists)."""
    if frame.empty:
        return frame.reset_index(drop=True)
    keys = sorted(
        range(len(frame)),
        key=lambda i: (*(-frame[c].iat[i] for c in descending), frame[path].iat[i]),
    )
    return frame.iloc[keys].reset_index(drop=True)


def transition_counts(
    events: Any,
    *,
    level: Literal["channel", "event", "stage"] = "channel",
    collapse_repeats: bool = False,
    include_censored: bool = False,
    stage_map: Any = None,
    spark: Any = None,
    columns: Mapping[str, str] | None = None,
    project: Any = None,
    **journey_options: Any,
) -> pd.DataFrame:
    """Count first-order transitions from START to the outcome on Spark.

    The table of :func:`journeylab.journeys.flows.transitions` (``from``, ``to``,
    ``count``, ``probability``, ``median_time``), sorted by ``from``, ``to``.
    As there, levels other than ``"channel"`` count every non-conversion
    event as a touch unless ``touch_events`` says otherwise; ``conversion``
    and ``stage_map`` are required (unless ``project`` gives them).

    Examples
    --------
    ``events`` and ``stages`` as in the module's example:

    >>> transition_counts(events, conversion="purchase", stage_map=stages, lookback="7D",
    ...                   period_end="2026-06-30")
        from          to  count  probability     median_time
    0  START       email      2          1.0             NaT
    1  email  CONVERSION      1          0.5 2 days 01:00:00
    2  email        NULL      1          0.5             NaT
    """
    F, Window = _spark()
    check_in("level", level, ["channel", "event", "stage"])
    stage_map, journey_options = _from_project(project, stage_map, journey_options)
    if level != "channel" and "touch_events" not in journey_options:
        journey_options = {**journey_options, "touch_events": "all"}
    cached, kept, _, _ = _journeys(
        events,
        func="transition_counts",
        spark=spark,
        columns=columns,
        level=level,
        stage_map=stage_map,
        options=journey_options,
    )
    journeys = kept if include_censored else kept.where(~F.col("censored"))
    steps = _collapse("steps") if collapse_repeats else "steps"
    outcome = (
        F.when(F.col("converted"), F.lit("CONVERSION"))
        .when(F.col("censored"), F.lit("END"))
        .otherwise(F.lit("NULL"))
    )
    j = journeys.select(
        F.expr(steps).alias("steps"),
        "converted",
        "censored",
        "conversion_us",
        outcome.alias("outcome"),
    )
    starts = j.select(
        F.lit("START").alias("from"),
        F.coalesce(F.col("steps")[0]["elem"], F.lit("CONVERSION")).alias("to"),
        F.lit(None).cast("double").alias("secs"),
    )
    exploded = j.select(
        "steps", "converted", "conversion_us", "outcome", F.posexplode("steps").alias("pos", "step")
    )
    n = F.size("steps")
    nxt = F.expr("steps[pos + 1]")
    inner = exploded.where(F.col("pos") < n - 1).select(
        F.col("step.elem").alias("from"),
        nxt["elem"].alias("to"),
        ((nxt["ts"] - F.col("step.ts")) / 1e6).alias("secs"),
    )
    last = exploded.where(F.col("pos") == n - 1).select(
        F.col("step.elem").alias("from"),
        F.col("outcome").alias("to"),
        F.when(F.col("converted"), (F.col("conversion_us") - F.col("step.ts")) / 1e6).alias("secs"),
    )
    frame = (
        starts.unionByName(inner)
        .unionByName(last)
        .groupBy("from", "to")
        .agg(F.count(F.lit(1)).alias("count"), F.percentile("secs", 0.5).alias("median_secs"))
        .toPandas()
    )
    cached.unpersist()
    frame = frame.sort_values(["from", "to"], kind="stable").reset_index(drop=True)
    frame["count"] = frame["count"].astype("int64")
    frame["probability"] = frame["count"] / frame.groupby("from")["count"].transform("sum")
    frame["median_time"] = pd.to_timedelta(frame.pop("median_secs").astype("float64"), unit="s")
    return frame[["from", "to", "count", "probability", "median_time"]]


def funnel_counts(
    events: Any,
    steps: Sequence[str | Sequence[str]] | Mapping[str, str | Sequence[str]] | None = None,
    *,
    window: str | pd.Timedelta = "30D",
    order: Literal["strict", "any"] = "strict",
    grain: Literal["user", "session"] = "user",
    segment: str | None = None,
    start: Any = None,
    end: Any = None,
    stage_map: Any = None,
    spark: Any = None,
    columns: Mapping[str, str] | None = None,
    project: Any = None,
) -> pd.DataFrame:
    """Count the units reaching each funnel step on Spark, by the rules of :func:`journeylab.journeys.funnels.funnel`.

    Entry at each step-1 event in ``[start, end)``; in strict order step
    ``k`` is the first step-``k`` event after the one that reached step
    ``k-1`` (tie-breaker order: the stage map's, else the steps'), within
    ``window`` of the entry; a unit counts once, with its furthest entry (the
    earliest on ties); segments come from the entry event. ``steps=None``
    takes the project's funnel. A step no row carries, a segment that is not a
    column and a first step nobody entered are errors, as in ``funnel``.

    Returns
    -------
    pandas.DataFrame
        One row per (segment, step): ``segment``, ``step`` (1-based),
        ``label``, ``entrants``, ``time_q25``, ``time_median``, ``time_q75``
        (Timedelta; between consecutive steps in strict order, from the entry
        otherwise), sorted by segment and step — the same values as those
        columns of ``funnel(...).to_frame()``.

    Examples
    --------
    ``events`` and ``stages`` as in the module's example:

    >>> funnel_counts(events, ["visit", "purchase"], window="7D", stage_map=stages)[
    ...     ["step", "label", "entrants", "time_median"]]
       step     label  entrants     time_median
    0     1     visit         2             NaT
    1     2  purchase         1 2 days 01:00:00
    """
    F, Window = _spark()
    check_in("order", order, ["strict", "any"])
    check_in("grain", grain, ["user", "session"])
    steps, stage_map = resolve_steps(steps, stage_map, project=project)
    parsed = parse_steps(steps)
    win_us = int(parse_duration(window, "window").value // 1000)
    t0, t1 = entry_window(start, end)
    frame, source = _frame(events, spark, columns)
    if segment is not None:
        require_names(
            [segment], frame.columns, what="segment column", absent="is not a column of the events",
            column=None, source=source, patterns=False,
        )  # fmt: skip
    if grain == "session" and "session_id" not in frame.columns:
        raise SchemaError(
            "grain='session' needs a session_id column, which the events lack.",
            source=source,
            column="session_id",
            missing_columns=["session_id"],
        )
    sm = StageMap.coerce(stage_map) if stage_map is not None else step_order_map(parsed)
    src, _, present = _canonical(frame, sm, keep=[segment] if segment else [])
    require_names(
        [e for _, names in parsed for e in names], present, what="funnel step", source=source
    )
    unit = F.col("user_id") if grain == "user" else F.col("session_id")
    seg = (
        F.coalesce(F.col(segment).cast("string"), F.lit(MISSING_SEGMENT))
        if segment
        else F.lit("all")
    )
    cond = unit.isNotNull() & F.col("user_id").isNotNull() & F.col("ts").isNotNull()
    if t0 is not None:
        cond = cond & (F.col("ts") >= F.lit(_micros(t0)))
    by_unit = Window.partitionBy("unit").orderBy(*_order(F))
    base = src.where(cond).select(
        unit.alias("unit"), "ts", "event", "channel", "value", "event_rank", seg.alias("segment")
    )
    base = base.withColumn("seq", F.row_number().over(by_unit))
    k = len(parsed)
    following = Window.partitionBy("unit").orderBy("seq").rowsBetween(1, Window.unboundedFollowing)
    # For every row: the first step-i event strictly after it (its seq and time).
    for i, (_, names) in enumerate(parsed[1:], start=2):
        hit = F.col("event").isin(names)
        base = base.withColumn(
            f"next{i}", F.min(F.when(hit, F.struct("seq", "ts"))).over(following)
        )
    base = base.cache()
    entry = base.where(F.col("event").isin(parsed[0][1]))
    if t1 is not None:
        entry = entry.where(F.col("ts") < F.lit(_micros(t1)))
    a = entry.select(
        "unit",
        "segment",
        F.col("seq").alias("seq1"),
        F.col("ts").alias("t1"),
        *[F.col(f"next{i}") for i in range(2, k + 1)],
    )
    deadline = F.col("t1") + F.lit(win_us)
    for i in range(2, k + 1):
        if order == "any" or i == 2:
            found = F.col(f"next{i}")
        else:
            # the first step-i event after the row that reached step i-1
            look = base.select(
                F.col("unit").alias("u"), F.col("seq").alias("s"), F.col(f"next{i}").alias("found")
            )
            a = a.join(
                look, (a["unit"] == look["u"]) & (a[f"seq{i - 1}"] == look["s"]), "left"
            ).drop("u", "s")
            found = F.col("found")
        ok = found.isNotNull() & (found["ts"] <= deadline)
        if order == "strict":
            ok = ok & F.col(f"seq{i - 1}").isNotNull()
        a = a.withColumn(f"seq{i}", F.when(ok, found["seq"])).withColumn(
            f"t{i}", F.when(ok, found["ts"])
        )
        if "found" in a.columns:
            a = a.drop("found")
    level = F.lit(1)
    run = F.lit(True)
    for i in range(2, k + 1):
        run = run & F.col(f"seq{i}").isNotNull()
        level = level + run.cast("int")
    a = a.withColumn("level", level)
    best = Window.partitionBy("unit").orderBy(F.col("level").desc(), F.col("seq1"))
    first = (
        Window.partitionBy("unit")
        .orderBy("seq1")
        .rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
    )
    units = (
        a.withColumn("best", F.row_number().over(best))
        .withColumn("entry_segment", F.first("segment").over(first))
        .where(F.col("best") == 1)
    )
    parts = []
    for i in range(1, k + 1):
        if i == 1:
            delta = F.lit(None).cast("double")
        else:
            ref = f"t{i - 1}" if order == "strict" else "t1"
            delta = (F.col(f"t{i}") - F.col(ref)) / 1e6
        parts.append(
            units.where(F.col("level") >= i)
            .groupBy(F.col("entry_segment").alias("segment"))
            .agg(
                F.lit(i).alias("step"),
                F.count(F.lit(1)).alias("entrants"),
                F.percentile(delta, 0.25).alias("q25"),
                F.percentile(delta, 0.5).alias("q50"),
                F.percentile(delta, 0.75).alias("q75"),
            )
        )
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    counts = out.toPandas()
    base.unpersist()
    if counts.empty:
        unit = "user" if grain == "user" else "session"
        raise NotComputableError(
            f"No {unit} entered the funnel at its first step {parsed[0][0]!r} in the period; "
            "choose a period (start/end) in which the first step occurs."
        )
    segments = sorted(counts["segment"].unique().tolist())
    grid = pd.MultiIndex.from_product([segments, range(1, k + 1)], names=["segment", "step"])
    table = counts.set_index(["segment", "step"]).reindex(grid).reset_index()
    result = pd.DataFrame(
        {
            "segment": table["segment"],
            "step": table["step"].astype("int64"),
            "label": [parsed[s - 1][0] for s in table["step"]],
            "entrants": table["entrants"].fillna(0).astype("int64"),
        }
    )
    for q, name in (("q25", "time_q25"), ("q50", "time_median"), ("q75", "time_q75")):
        result[name] = pd.to_timedelta(table[q].astype("float64"), unit="s")
    return result


def cohort_counts(
    transactions: Any,
    *,
    period: Literal["month", "week", "day", "quarter"] = "month",
    spark: Any = None,
    columns: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Count customers per first-purchase cohort and period since it, on Spark.

    A customer's cohort is the calendar period (UTC) of their first purchase;
    they count in period ``k`` when they bought in the ``k``-th period after
    it (so period 0 holds the whole cohort), as in
    :func:`journeylab.customers.retention.cohort_retention`. Periods are numbered as
    :func:`journeylab.customers.retention.period_codes` numbers them (months, weeks
    starting on Monday, days or quarters since 1970).

    Returns
    -------
    pandas.DataFrame
        ``cohort`` (period number), ``period`` (0, 1, ...), ``customers``,
        sorted by cohort and period.

    Examples
    --------
    >>> orders = spark.createDataFrame(
    ...     [("a", "2026-05-03 10:00:00"), ("a", "2026-06-10 08:00:00"), ("b", "2026-06-02 12:00:00")],
    ...     "user_id string, timestamp string")
    >>> cohort_counts(orders, period="month")
       cohort  period  customers
    0     676       0          1
    1     676       1          1
    2     677       0          1
    """
    F, Window = _spark()
    check_in("period", period, ["month", "week", "day", "quarter"])
    frame, _ = _frame_tx(transactions, spark, columns)
    ts = F.col("timestamp").cast("timestamp")
    days = F.floor(F.unix_micros(ts) / F.lit(86_400 * 10**6)).cast("long")
    day = F.expr(
        "date_from_unix_date(CAST(floor(unix_micros(CAST(`timestamp` AS TIMESTAMP)) / 86400000000) AS INT))"
    )
    months = ((F.year(day) - 1970) * 12 + F.month(day) - 1).cast("long")  # calendar of UTC days
    code = {
        "day": days,
        "week": F.floor((days + 3) / 7).cast("long"),
        "month": months,
        "quarter": F.floor(months / 3).cast("long"),
    }[period]
    rows = frame.where(F.col("user_id").isNotNull() & F.col("timestamp").isNotNull()).select(
        F.col("user_id").cast("string").alias("user_id"), code.alias("code")
    )
    first = rows.groupBy("user_id").agg(F.min("code").alias("cohort"))
    counts = (
        rows.join(first, "user_id")
        .select("user_id", "cohort", (F.col("code") - F.col("cohort")).alias("period"))
        .distinct()
        .groupBy("cohort", "period")
        .agg(F.count(F.lit(1)).alias("customers"))
        .toPandas()
    )
    counts = counts.sort_values(["cohort", "period"], kind="stable").reset_index(drop=True)
    return counts.astype({"cohort": "int64", "period": "int64", "customers": "int64"})
