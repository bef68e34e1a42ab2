"""Loaders that lose nothing: CSV, Parquet, DuckDB and DataFrames → canonical tables.

Every loader takes a ``source`` (a ``.csv``/``.csv.gz`` file, a ``.parquet``
file, a ``.duckdb`` database with ``table=`` or ``query=``, ``query=`` alone
over DuckDB's file readers, or a pandas DataFrame) and a mapping
``columns={source_name: canonical_name}``, and returns a :class:`LoadedTable`:
``.frame`` holds the canonical columns (see :mod:`journeylab.schema`) followed
by every other source column, kept as a property; ``.quality`` is the
:class:`~journeylab.quality.QualityReport` that counts, with the reason and
the first source rows, every row dropped, de-duplicated or repaired.

How values are read
-------------------
- CSV files are read with every column as text, then the canonical columns
  are cast explicitly. A cell that cannot be cast raises
  :class:`~journeylab.schema.DataError` naming the file, the column, the first
  offending file lines and what to do; bad lines are never skipped.
- Ids (``user_id``, ``session_id``, ``order_id``) are text: ``00123`` and
  ``123`` stay different, ``9007199254740993`` keeps every digit. Blank ids
  are counted and dropped (``missing user_id``).
- Timestamps are stored as ``datetime64[ns, UTC]``. Text with a UTC offset
  (``+01:00``, ``Z``) is converted exactly; naive times are local times in
  ``tz`` (UTC when ``tz`` is None, which the report notes). Local times that
  do not exist (spring DST gap) follow ``nonexistent`` and local times that
  occur twice (autumn) follow ``ambiguous``; repaired rows are counted.
- Extra columns keep their source type; text columns become numbers or
  booleans only when every value is written exactly so (``dtypes=`` makes it
  explicit).

Large files: ``start``/``end`` are pushed down to DuckDB, and
:func:`events_relation` returns a DuckDB relation with canonical columns for
out-of-core aggregation.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
import pandas as pd

from journeylab._casting import Ambiguous, Nonexistent, cast_text, cast_timestamps
from journeylab._pipeline import Pipeline, require, to_utc
from journeylab._pipeline import dedupe_window as dedupe_window_of
from journeylab._sources import ROW, canonical_event_relation, read_rows
from journeylab.quality import QualityReport, QualityStep
from journeylab.schema import (
    ASSIGNMENT_COLUMNS,
    EVENT_COLUMNS,
    FEEDBACK_COLUMNS,
    SPEND_COLUMNS,
    TRANSACTION_COLUMNS,
    ParameterError,
    SchemaError,
    check_in,
    did_you_mean,
    require_columns,
)
from journeylab.stages import StageMap

__all__ = [
    "LoadedTable",
    "QualityReport",
    "QualityStep",
    "load_events",
    "load_assignments",
    "load_feedback",
    "load_spend",
    "load_transactions",
    "sort_events",
    "events_relation",
    "SCORE_SCALES",
]

Source = str | Path | pd.DataFrame | None
Columns = Mapping[str, str] | None
TimeLike = str | pd.Timestamp | None

#: Valid score ranges (inclusive, whole numbers) per survey type.
SCORE_SCALES: dict[str, tuple[int, int]] = {"nps": (0, 10), "csat": (1, 5)}


@dataclass(eq=False)
class LoadedTable:
    """A canonical table and the quality report of how it was loaded.

    Attributes
    ----------
    frame : pandas.DataFrame
        Canonical columns first, then the source's other columns (properties).
    quality : QualityReport
        Rows read, kept and dropped, with one entry per step.
    source : str
        The file, table, query or object the rows came from.
    """

    frame: pd.DataFrame
    quality: QualityReport
    source: str

    def __len__(self) -> int:
        return len(self.frame)

    def summary(self) -> str:
        """Shape of the table and the quality report as text."""
        return f"{len(self.frame):,} rows × {self.frame.shape[1]} columns\n{self.quality.summary()}"

    def __repr__(self) -> str:
        return f"<LoadedTable {self.quality.table}>\n{self.summary()}"

    def _repr_html_(self) -> str:
        head = self.frame.head(10).to_html(index=False, border=0, classes="jl-table", na_rep="–")
        shape = f"{len(self.frame):,} rows × {self.frame.shape[1]} columns (first 10 shown)"
        return (
            f'<div class="jl-loaded"><h4>{html.escape(self.quality.table)} from '
            f"{html.escape(self.source)}</h4><p>{shape}</p>{head}"
            f"{self.quality._repr_html_()}</div>"
        )


# -- events -----------------------------------------------------------------------


def load_events(
    source: Source = None,
    columns: Columns = None,
    *,
    table: str | None = None,
    query: str | None = None,
    tz: str | None = None,
    nonexistent: Nonexistent = "shift_forward",
    ambiguous: Ambiguous = "earliest",
    timestamp_format: str | None = None,
    start: TimeLike = None,
    end: TimeLike = None,
    dedupe: bool = True,
    dedupe_window: str | pd.Timedelta | None = "1s",
    stage_map: Any = None,
    dtypes: Mapping[str, str] | None = None,
    csv_options: Mapping[str, Any] | None = None,
    pseudonymize: bool = False,
) -> LoadedTable:
    """Load an event log into canonical columns, counting every row it drops or repairs.

    Parameters
    ----------
    source : path, DataFrame or None
        ``.csv``/``.csv.gz``, ``.parquet``, a ``.duckdb`` database (with
        ``table=`` or ``query=``), a DataFrame, or None with ``query=``
        (e.g. ``"SELECT * FROM read_parquet('events/*.parquet')"``).
    columns : dict, optional
        ``{source_name: canonical_name}``; canonical names are ``user_id``,
        ``timestamp``, ``event`` (required), ``channel``, ``value``,
        ``session_id``. Unmapped columns are kept as properties.
    table, query : str, optional
        DuckDB table name or SQL query.
    tz : str, optional
        IANA time zone of naive timestamps (``"America/New_York"``); None
        reads them as UTC (noted in the report). Ignored for times that carry
        an offset.
    nonexistent : {"shift_forward", "shift_backward", "raise"}
        Local times skipped by the spring DST change (02:30 on 2024-03-10 in
        New York): move to the first valid instant after (03:00 local) or
        before, or raise. Moved rows are counted.
    ambiguous : {"earliest", "latest", "raise"}
        Local times that occur twice (01:30 on 2024-11-03 in New York): the
        first occurrence (summer time), the second, or raise. Counted.
    timestamp_format : str, optional
        strftime format for non-ISO text, e.g. ``"%d/%m/%Y %H:%M"``.
    start, end : str or Timestamp, optional
        Keep events with ``start <= timestamp < end`` (UTC when naive); the
        filter is pushed down to DuckDB so large files are not read whole.
    dedupe : bool
        Remove exact duplicates (identical in every column) and near
        duplicates: same ``user_id``, ``event``, ``channel`` and ``value``,
        following the previous such event by at most ``dedupe_window`` (a
        burst of repeated clicks collapses to its first). Both are counted.
    dedupe_window : str or Timedelta or None
        Near-duplicate window (default one second); None keeps near duplicates.
    stage_map : StageMap, dict, path or None
        Orders events with identical timestamps (see :func:`sort_events`);
        None uses the default stage map.
    dtypes : dict, optional
        Explicit types for extra columns: ``{"region": "str", "score": "float"}``.
    csv_options : dict, optional
        DuckDB ``read_csv`` options such as ``{"delim": ";"}``. Options that
        would guess types or skip bad lines are refused.
    pseudonymize : bool
        Replace ``user_id`` by keyed HMAC pseudonyms (see
        :func:`journeylab.privacy.pseudonymize`).

    Returns
    -------
    LoadedTable
        ``frame`` sorted by :func:`sort_events`; ``quality`` the report.

    Examples
    --------
    >>> loaded = load_events("data/examples/dirty_events.csv", tz="America/New_York")  # doctest: +SKIP
    >>> print(loaded.quality.summary())  # doctest: +SKIP
    """
    start_utc, end_utc = to_utc(start, "start"), to_utc(end, "end")
    if start_utc is not None and end_utc is not None and start_utc >= end_utc:
        raise ParameterError(f"start == {start!r} must be before end == {end!r}.")
    window = dedupe_window_of(dedupe_window)
    raw = read_rows(source, columns, what="events", table=table, query=query, csv_options=csv_options,
                    time_column="timestamp", start=start_utc, end=end_utc)
    pipe = Pipeline(raw, "events")
    require(pipe, EVENT_COLUMNS["required"], "events")
    pipe.cast_time("timestamp", tz=tz, nonexistent=nonexistent, ambiguous=ambiguous,
                   timestamp_format=timestamp_format, start=start_utc, end=end_utc)
    pipe.cast_ids("user_id", drop=True)
    pipe.drop_missing("timestamp")
    pipe.clean_text("event", drop=True)
    pipe.canonical_channels("channel")
    pipe.cast_numbers("value")
    pipe.cast_ids("session_id", drop=False)
    canonical = [*EVENT_COLUMNS["required"], *EVENT_COLUMNS["optional"]]
    pipe.properties(canonical, dtypes)
    if dedupe:
        pipe.deduplicate_exact()
        if window is not None:
            _drop_near_duplicates(pipe, window)
    pipe.pseudonymize(pseudonymize)
    pipe.frame = sort_events(pipe.frame, stage_map)
    return LoadedTable(pipe.finish(canonical), pipe.report, pipe.label)


#: Columns that must agree for two events to be near duplicates.
NEAR_DUPLICATE_KEY = ("user_id", "event", "channel", "value")


def _drop_near_duplicates(pipe: Pipeline, window: pd.Timedelta) -> None:
    frame = pipe.frame
    key = [c for c in NEAR_DUPLICATE_KEY if c in frame]
    order = frame.sort_values([*key, "timestamp", ROW], kind="stable", na_position="last").index
    ordered = frame.loc[order]
    group = ordered.groupby(key, dropna=False, sort=False).ngroup().to_numpy()
    same_key = np.r_[False, group[1:] == group[:-1]]
    gap = ordered["timestamp"].diff().to_numpy()
    close = same_key & (gap <= np.timedelta64(window.value, "ns"))
    mask = np.zeros(len(frame), dtype=bool)
    mask[order.to_numpy()[close]] = True
    seconds = window.total_seconds()
    pipe.drop(mask, "near duplicate", "timestamp",
              f"same user_id, event, channel and value within {seconds:g} s of the previous one",
              "deduplicated")


def sort_events(frame: pd.DataFrame, stage_map: Any = None) -> pd.DataFrame:
    """Sort events into one deterministic order, whatever the input row order.

    The order is ``user_id``, ``timestamp``, then — for events at the same
    instant — the event's position in the stage map (the stages in journey
    order, and within a stage the order its events are listed, so
    ``booking_started`` comes before ``booking_completed``; events no stage
    lists come after all listed ones), then the event name, ``channel`` and
    ``value`` (missing last). Rows still tied are ordered by their remaining
    columns, so shuffling the input never changes the output.

    Parameters
    ----------
    frame : pandas.DataFrame
        Canonical events (``user_id``, ``timestamp``, ``event``; ``channel``
        and ``value`` used when present).
    stage_map : StageMap, dict, path or None
        None uses :func:`journeylab.stages.default_stage_map`.

    Returns
    -------
    pandas.DataFrame
        A sorted copy with a fresh RangeIndex.

    Examples
    --------
    >>> events = pd.DataFrame({"user_id": ["u1", "u1"], "event": ["booking_completed", "booking_started"],
    ...                        "timestamp": pd.to_datetime(["2026-05-01 10:00"] * 2, utc=True)})
    >>> sort_events(events)["event"].tolist()
    ['booking_started', 'booking_completed']
    """
    require_columns(frame, ("user_id", "timestamp", "event"), what="events")
    rank = event_rank(frame["event"], stage_map)
    keyed = frame.assign(__rank=rank.to_numpy())
    keys = ["user_id", "timestamp", "__rank", "event"] + [c for c in ("channel", "value") if c in frame]
    if keyed.duplicated(subset=keys).any():
        rest = sorted(c for c in frame.columns if c not in keys and c != ROW)
        for column in rest:
            keyed[f"__tie_{column}"] = frame[column].astype("str")
        keys += [f"__tie_{c}" for c in rest]
    ordered = keyed.sort_values(keys, kind="stable", na_position="last")
    ordered = ordered[list(frame.columns)]
    return ordered.reset_index(drop=True)


def event_rank(events: pd.Series, stage_map: Any = None) -> pd.Series:
    """Position of each event in the stage map (unlisted events rank last).

    Examples
    --------
    >>> event_rank(pd.Series(["booking_completed", "booking_started"])).tolist()
    [7, 6]
    """
    sm = StageMap.coerce(stage_map)
    listed = sm.event_names()
    import fnmatch

    def rank(name: str) -> int:
        for i, pattern in enumerate(listed):
            if fnmatch.fnmatchcase(name, pattern):
                return i
        return len(listed)

    codes, uniques = pd.factorize(events, use_na_sentinel=True)
    ranks = np.array([rank(str(u)) for u in uniques] + [len(listed) + 1], dtype=np.int64)
    return pd.Series(ranks[np.where(codes >= 0, codes, len(uniques))], index=events.index)


# -- out-of-core --------------------------------------------------------------------


def events_relation(
    source: Source,
    columns: Columns = None,
    start: TimeLike = None,
    end: TimeLike = None,
    con: duckdb.DuckDBPyConnection | None = None,
    *,
    table: str | None = None,
    query: str | None = None,
    csv_options: Mapping[str, Any] | None = None,
) -> duckdb.DuckDBPyRelation:
    """A DuckDB relation over an event source with canonical names and types.

    For aggregations too large for pandas (path tables, funnel counts): the
    relation is lazy, and ``start``/``end`` filters are pushed down to the
    file scan. Columns: ``user_id`` VARCHAR, ``timestamp`` TIMESTAMPTZ (UTC),
    ``event`` VARCHAR, and when present ``channel`` VARCHAR (trimmed),
    ``value`` DOUBLE, ``session_id`` VARCHAR; other columns as they are.
    Casts are strict (a bad value raises when the relation is executed).

    Unlike :func:`load_events` this does no quality work: naive timestamps
    are taken as UTC, channel names are only trimmed, no de-duplication, and
    rows without ``user_id``, ``timestamp`` or ``event`` are left out (use
    ``load_events`` to count them).

    Examples
    --------
    >>> rel = events_relation("events.parquet", start="2026-10-01", end="2026-11-01")  # doctest: +SKIP
    >>> rel.aggregate("event, count(*) AS n", "event").df()  # doctest: +SKIP
    """
    return canonical_event_relation(
        source, columns, to_utc(start, "start"), to_utc(end, "end"), con,
        table=table, query=query, csv_options=csv_options,
    )


# -- assignments ------------------------------------------------------------------


def load_assignments(
    source: Source = None,
    columns: Columns = None,
    *,
    table: str | None = None,
    query: str | None = None,
    consistency: Mapping[str, Mapping[str, str]] | None = None,
    user_id_from_row: bool = False,
    tz: str | None = None,
    nonexistent: Nonexistent = "shift_forward",
    ambiguous: Ambiguous = "earliest",
    timestamp_format: str | None = None,
    dtypes: Mapping[str, str] | None = None,
    csv_options: Mapping[str, Any] | None = None,
    pseudonymize: bool = False,
) -> LoadedTable:
    """Load an experiment's assignment table: one row per user and variant.

    Cleaning runs in this order, each step counted in the report:

    1. rows without ``user_id`` or ``variant`` are dropped;
    2. ``consistency`` checks: rows whose column disagrees with the value the
       variant implies are dropped (e.g. a control user shown the new page);
    3. exact duplicate rows are dropped (the first is kept);
    4. users assigned to more than one variant are dropped entirely (their
       outcome cannot be attributed to one arm);
    5. repeated assignments of a user to the same variant keep the first
       (earliest ``assigned_at``, then source order).

    Parameters
    ----------
    source, columns, table, query :
        As in :func:`load_events`; canonical names are ``user_id``,
        ``variant`` and optional ``assigned_at``. Other columns (outcomes,
        pre-period covariates) are kept as properties.
    consistency : dict, optional
        ``{column: {variant: expected_value}}``, e.g. for the Udacity test
        ``{"landing_page": {"control": "old_page", "treatment": "new_page"}}``.
    user_id_from_row : bool
        For sources without ids (one row per customer, such as the Hillstrom
        e-mail test): ``user_id`` becomes the 1-based data row number as text.
    tz, nonexistent, ambiguous, timestamp_format :
        How ``assigned_at`` is read (see :func:`load_events`).
    dtypes, csv_options, pseudonymize :
        As in :func:`load_events`.

    Examples
    --------
    >>> ab = load_assignments("ab_data.csv", columns={"group": "variant", "timestamp": "assigned_at"},
    ...                       consistency={"landing_page": {"control": "old_page",
    ...                                                     "treatment": "new_page"}})  # doctest: +SKIP
    >>> ab.frame.groupby("variant")["converted"].agg(["sum", "count"])  # doctest: +SKIP
    """
    raw = read_rows(source, columns, what="assignments", table=table, query=query, csv_options=csv_options)
    pipe = Pipeline(raw, "assignments")
    if user_id_from_row:
        if "user_id" in pipe.frame:
            raise ParameterError("user_id_from_row=True, but the source already has a user_id column.")
        pipe.frame.insert(1, "user_id", [str(i) for i in range(1, len(pipe.frame) + 1)])
        pipe.report.note("user_id is the 1-based data row number (the source has no id column).")
    require(pipe, ASSIGNMENT_COLUMNS["required"], "assignments")
    if "assigned_at" in pipe.frame:
        pipe.cast_time("assigned_at", tz=tz, nonexistent=nonexistent, ambiguous=ambiguous,
                       timestamp_format=timestamp_format)
    pipe.cast_ids("user_id", drop=True)
    pipe.clean_text("variant", drop=True)
    for column, expected in (consistency or {}).items():
        _check_consistency(pipe, column, expected)
    canonical = [*ASSIGNMENT_COLUMNS["required"], *ASSIGNMENT_COLUMNS["optional"]]
    pipe.properties(canonical, dtypes)
    pipe.deduplicate_exact()
    pairs = pipe.frame[["user_id", "variant"]].drop_duplicates()
    several = pairs.loc[pairs["user_id"].duplicated(keep=False), "user_id"].unique()
    pipe.drop(pipe.frame["user_id"].isin(several).to_numpy(), "user in several variants", "variant",
              "the user was assigned to more than one variant; all of the user's rows are dropped")
    # Repeated assignments to the same variant: keep the earliest, then the first in the source.
    order = ["assigned_at", ROW] if "assigned_at" in pipe.frame else [ROW]
    ordered = pipe.frame.sort_values(order, kind="stable", na_position="last")
    repeated = np.zeros(len(pipe.frame), dtype=bool)
    repeated[ordered.index[ordered["user_id"].duplicated(keep="first")].to_numpy()] = True
    pipe.drop(repeated, "repeated assignment", "user_id",
              "the user appears again in the same variant; the first assignment is kept", "deduplicated")
    pipe.pseudonymize(pseudonymize)
    counts = pipe.frame["variant"].value_counts().sort_index()
    pipe.report.note("users per variant: " + " · ".join(f"{k} {v:,}" for k, v in counts.items()) + ".")
    return LoadedTable(pipe.finish(canonical), pipe.report, pipe.label)


def _check_consistency(pipe: Pipeline, column: str, expected: Mapping[str, str]) -> None:
    if column not in pipe.frame:
        present = [c for c in pipe.frame.columns if c != ROW]
        raise SchemaError(
            f"consistency= names column {column!r}, which is not in the source{did_you_mean(column, present)}.",
            source=pipe.label, column=column,
            hint="use the source column name (after columns= mapping).",
        )
    variants = set(pipe.frame["variant"].dropna().unique())
    unknown = sorted(variants - set(expected))
    if unknown:
        raise ParameterError(
            f"consistency[{column!r}] says nothing about variant(s) {unknown}; give the expected "
            f"{column} for every variant: {sorted(variants)}."
        )
    actual, _ = cast_text(pipe.frame[column])
    wanted = pipe.frame["variant"].map(dict(expected))
    mismatch = (actual != wanted).to_numpy(dtype=bool, na_value=True)
    pipe.drop(mismatch, f"variant/{column} mismatch", column,
              f"{column} disagrees with the variant (expected "
              + ", ".join(f"{k} → {v}" for k, v in expected.items()) + ")")


# -- feedback ---------------------------------------------------------------------


def load_feedback(
    source: Source = None,
    columns: Columns = None,
    *,
    table: str | None = None,
    query: str | None = None,
    scale: Literal["auto", "nps", "csat"] = "auto",
    invalid: Literal["raise", "drop"] = "raise",
    tz: str | None = None,
    nonexistent: Nonexistent = "shift_forward",
    ambiguous: Ambiguous = "earliest",
    timestamp_format: str | None = None,
    dtypes: Mapping[str, str] | None = None,
    csv_options: Mapping[str, Any] | None = None,
    pseudonymize: bool = False,
) -> LoadedTable:
    """Load survey answers (NPS 0–10, CSAT 1–5) with validated scores.

    Parameters
    ----------
    source, columns, table, query :
        As in :func:`load_events`; canonical names are ``timestamp``,
        ``score`` and ``user_id`` or ``touchpoint`` (at least one), plus
        optional ``text``, ``stage`` and ``survey``.
    scale : {"auto", "nps", "csat"}
        ``"auto"`` reads the scale of each row from the ``survey`` column
        (``nps`` or ``csat``); otherwise every score is checked against the
        named scale. Scores must be whole numbers within the scale.
    invalid : {"raise", "drop"}
        Out-of-range scores raise :class:`DataError` naming the rows, or are
        dropped and counted.

    Examples
    --------
    >>> fb = load_feedback("survey.csv", scale="nps")  # doctest: +SKIP
    """
    check_in("scale", scale, ["auto", "nps", "csat"])
    check_in("invalid", invalid, ["raise", "drop"])
    raw = read_rows(source, columns, what="feedback", table=table, query=query, csv_options=csv_options)
    pipe = Pipeline(raw, "feedback")
    require(pipe, FEEDBACK_COLUMNS["required"], "feedback")
    if "user_id" not in pipe.frame and "touchpoint" not in pipe.frame:
        require(pipe, ("user_id",), "feedback")
    pipe.cast_time("timestamp", tz=tz, nonexistent=nonexistent, ambiguous=ambiguous,
                   timestamp_format=timestamp_format)
    pipe.clean_text("touchpoint")
    pipe.clean_text("stage")
    if "user_id" in pipe.frame:
        pipe.cast_ids("user_id", drop=False)
        unknown = pipe.frame["user_id"].isna().to_numpy()
        if "touchpoint" in pipe.frame:
            unknown = unknown & pipe.frame["touchpoint"].isna().to_numpy()
        pipe.drop(unknown, "missing user_id", "user_id", "no user id (and no touchpoint); the answer cannot be placed")
    else:
        pipe.drop_missing("touchpoint")
    pipe.drop_missing("timestamp")
    pipe.cast_numbers("score")
    pipe.drop_missing("score")
    _validate_scores(pipe, scale, invalid)
    canonical = [*FEEDBACK_COLUMNS["required"], *FEEDBACK_COLUMNS["optional"], "survey"]
    pipe.properties(canonical, dtypes)
    pipe.pseudonymize(pseudonymize)
    return LoadedTable(pipe.finish(canonical), pipe.report, pipe.label)


def _validate_scores(pipe: Pipeline, scale: str, invalid: str) -> None:
    frame = pipe.frame
    if scale == "auto":
        if "survey" not in frame:
            raise ParameterError(
                "scale='auto' needs a 'survey' column (nps or csat per row); there is none, so "
                "say which scale the scores use: scale='nps' (0–10) or scale='csat' (1–5)."
            )
        survey, _ = cast_text(frame["survey"])
        survey = survey.str.lower()
        bad_survey = ~survey.isin(list(SCORE_SCALES)).to_numpy(dtype=bool)
        if bad_survey.any():
            raise pipe.where().error(
                "Unknown survey types", "survey", bad_survey,
                "use 'nps' or 'csat' in the survey column, or pass scale= to check every score "
                "against one scale.", values=frame["survey"],
            )
        frame["survey"] = survey
    else:
        survey = pd.Series(scale, index=frame.index)
    low = survey.map(lambda s: SCORE_SCALES[s][0]).to_numpy(dtype=float)
    high = survey.map(lambda s: SCORE_SCALES[s][1]).to_numpy(dtype=float)
    score = frame["score"].to_numpy(dtype=float)
    bad = (score < low) | (score > high) | (score != np.round(score))
    if not bad.any():
        return
    if invalid == "raise":
        raise pipe.where().error(
            "Scores outside their scale (NPS: whole numbers 0–10, CSAT: 1–5)", "score", bad,
            "fix the scores or the survey column, or pass invalid='drop' to drop and count them.",
            values=frame["score"],
        )
    pipe.drop(bad, "score out of range", "score", "not a whole number within the survey's scale "
              "(NPS 0–10, CSAT 1–5)")


# -- spend ------------------------------------------------------------------------


def load_spend(
    source: Source = None,
    columns: Columns = None,
    *,
    table: str | None = None,
    query: str | None = None,
    timestamp_format: str | None = None,
    dtypes: Mapping[str, str] | None = None,
    csv_options: Mapping[str, Any] | None = None,
) -> LoadedTable:
    """Load marketing spend: one row per channel and day (``channel``, ``date``, ``cost``).

    ``date`` becomes a day (``datetime64[ns]``, no time zone; a time of day
    is dropped and counted). Channel names are canonicalised like event
    channels. A negative cost raises :class:`DataError`; rows without a cost,
    date or channel are dropped and counted.

    Examples
    --------
    >>> spend = load_spend("spend.csv", columns={"day": "date", "amount": "cost"})  # doctest: +SKIP
    """
    raw = read_rows(source, columns, what="spend", table=table, query=query, csv_options=csv_options)
    pipe = Pipeline(raw, "spend")
    require(pipe, SPEND_COLUMNS["required"], "spend")
    stamps, _, _ = cast_timestamps(pipe.frame["date"], "date", pipe.where(), tz=None,
                                   nonexistent="raise", ambiguous="raise", timestamp_format=timestamp_format)
    wall = stamps.dt.tz_localize(None)
    days = wall.dt.normalize()
    pipe.record((wall != days).to_numpy(dtype=bool, na_value=False), "time of day dropped", "repaired",
                "date", "spend is per day; the time part was removed")
    pipe.frame["date"] = days.astype("datetime64[ns]")
    pipe.cast_numbers("cost")
    negative = (pipe.frame["cost"] < 0).to_numpy(dtype=bool, na_value=False)
    if negative.any():
        raise pipe.where().error(
            "Negative costs", "cost", negative,
            "spend must be >= 0; book refunds or credits separately.", values=pipe.frame["cost"],
        )
    pipe.canonical_channels("channel", drop=True)
    pipe.drop_missing("date")
    pipe.drop_missing("cost")
    pipe.clean_text("campaign")
    canonical = [*SPEND_COLUMNS["required"], *SPEND_COLUMNS["optional"]]
    pipe.properties(canonical, dtypes)
    return LoadedTable(pipe.finish(canonical), pipe.report, pipe.label)


# -- transactions --------------------------------------------------------------------


def load_transactions(
    source: Source = None,
    columns: Columns = None,
    *,
    table: str | None = None,
    query: str | None = None,
    tz: str | None = None,
    nonexistent: Nonexistent = "shift_forward",
    ambiguous: Ambiguous = "earliest",
    timestamp_format: str | None = None,
    start: TimeLike = None,
    end: TimeLike = None,
    drop_duplicates: bool = False,
    dtypes: Mapping[str, str] | None = None,
    csv_options: Mapping[str, Any] | None = None,
    pseudonymize: bool = False,
) -> LoadedTable:
    """Load purchases (``user_id``, ``timestamp``, ``value``; ``order_id``, ``channel``).

    Rows without a user id, timestamp or value are dropped and counted
    ("missing user_id: 135,080 rows dropped" on UCI Online Retail). Negative
    values are kept as refunds and counted. Exact duplicate rows are counted
    and kept unless ``drop_duplicates=True`` (repeated order lines can be
    real). The frame is sorted by ``user_id``, ``timestamp``, source order.

    To derive a column, use a query source, e.g. for UCI Online Retail::

        load_transactions(
            query="SELECT *, Quantity * UnitPrice AS value "
                  "FROM read_csv('online_retail.csv.gz')",
            columns={"CustomerID": "user_id", "InvoiceDate": "timestamp",
                     "InvoiceNo": "order_id"},
            tz="Europe/London")

    (A query reads with DuckDB's type detection; ids written as ``17850.0``
    become ``"17850"`` and are counted as repaired.)

    Examples
    --------
    >>> tx = load_transactions("orders.parquet", columns={"customer": "user_id"})  # doctest: +SKIP
    """
    start_utc, end_utc = to_utc(start, "start"), to_utc(end, "end")
    raw = read_rows(source, columns, what="transactions", table=table, query=query, csv_options=csv_options,
                    time_column="timestamp", start=start_utc, end=end_utc)
    pipe = Pipeline(raw, "transactions")
    require(pipe, TRANSACTION_COLUMNS["required"], "transactions")
    pipe.cast_time("timestamp", tz=tz, nonexistent=nonexistent, ambiguous=ambiguous,
                   timestamp_format=timestamp_format, start=start_utc, end=end_utc)
    pipe.cast_ids("user_id", drop=True)
    pipe.drop_missing("timestamp")
    pipe.cast_numbers("value")
    pipe.drop_missing("value")
    pipe.record((pipe.frame["value"] < 0).to_numpy(dtype=bool, na_value=False), "refund", "flagged",
                "value", "negative value: kept as a refund")
    pipe.cast_ids("order_id", drop=False)
    pipe.canonical_channels("channel")
    canonical = [*TRANSACTION_COLUMNS["required"], *TRANSACTION_COLUMNS["optional"]]
    pipe.properties(canonical, dtypes)
    pipe.deduplicate_exact(drop=drop_duplicates)
    pipe.pseudonymize(pseudonymize)
    return LoadedTable(pipe.finish(canonical, sort_by=["user_id", "timestamp"]), pipe.report, pipe.label)
