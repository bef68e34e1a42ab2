"""Loaders of the tables besides events: assignments, feedback, spend, transactions.

Private module; the public names are imported from :mod:`journeylab.io.loaders`,
whose docstring describes how values are read. Each loader counts every row
it drops, de-duplicates, repairs or flags in the table's quality report.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from journeylab.core.errors import (
    ASSIGNMENT_COLUMNS,
    FEEDBACK_COLUMNS,
    SPEND_COLUMNS,
    TRANSACTION_COLUMNS,
    ParameterError,
    SchemaError,
    check_in,
    did_you_mean,
)
from journeylab.core.timeparse import to_utc_timestamp
from journeylab.io.casting import cast_text
from journeylab.io.casting_time import Ambiguous, Nonexistent, cast_timestamps
from journeylab.io.pipeline import Pipeline, require
from journeylab.io.quality import LoadedTable
from journeylab.io.sources import ROW, read_rows

Source = str | Path | pd.DataFrame | None
Columns = Mapping[str, str] | None
TimeLike = str | pd.Timestamp | None

#: Valid score ranges (inclusive, whole numbers) per survey type.
SCORE_SCALES: dict[str, tuple[int, int]] = {"nps": (0, 10), "csat": (1, 5)}


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
    >>> raw = pd.DataFrame({"user": ["1", "2", "3", "3", "4"],
    ...                     "group": ["control", "treatment", "control", "treatment", "control"],
    ...                     "landing_page": ["old_page", "new_page", "old_page", "new_page",
    ...                                      "new_page"],
    ...                     "converted": [0, 1, 0, 1, 1]})
    >>> ab = load_assignments(raw, columns={"user": "user_id", "group": "variant"},
    ...                       consistency={"landing_page": {"control": "old_page",
    ...                                                     "treatment": "new_page"}})
    >>> ab.frame
      user_id    variant landing_page  converted
    0       1    control     old_page          0
    1       2  treatment     new_page          1
    >>> ab.quality.rows_dropped
    3
    """
    raw = read_rows(
        source, columns, what="assignments", table=table, query=query, csv_options=csv_options
    )
    pipe = Pipeline(raw, "assignments")
    if user_id_from_row:
        if "user_id" in pipe.frame:
            raise ParameterError(
                "user_id_from_row=True, but the source already has a user_id column."
            )
        pipe.frame.insert(1, "user_id", [str(i) for i in range(1, len(pipe.frame) + 1)])
        pipe.report.note("user_id is the 1-based data row number (the source has no id column).")
    require(pipe, ASSIGNMENT_COLUMNS["required"], "assignments")
    if "assigned_at" in pipe.frame:
        pipe.cast_time(
            "assigned_at",
            tz=tz,
            nonexistent=nonexistent,
            ambiguous=ambiguous,
            timestamp_format=timestamp_format,
        )
    pipe.cast_ids("user_id", drop=True)
    pipe.clean_text("variant", drop=True)
    for column, expected in (consistency or {}).items():
        _check_consistency(pipe, column, expected)
    canonical = [*ASSIGNMENT_COLUMNS["required"], *ASSIGNMENT_COLUMNS["optional"]]
    pipe.properties(canonical, dtypes)
    pipe.deduplicate_exact()
    pairs = pipe.frame[["user_id", "variant"]].drop_duplicates()
    several = pairs.loc[pairs["user_id"].duplicated(keep=False), "user_id"].unique()
    pipe.drop(
        pipe.frame["user_id"].isin(several).to_numpy(),
        "user in several variants",
        "variant",
        "the user was assigned to more than one variant; all of the user's rows are dropped",
    )
    # Repeated assignments to the same variant: keep the earliest, then the first in the source.
    order = ["assigned_at", ROW] if "assigned_at" in pipe.frame else [ROW]
    ordered = pipe.frame.sort_values(order, kind="stable", na_position="last")
    repeated = np.zeros(len(pipe.frame), dtype=bool)
    repeated[ordered.index[ordered["user_id"].duplicated(keep="first")].to_numpy()] = True
    pipe.drop(
        repeated,
        "repeated assignment",
        "user_id",
        "the user appears again in the same variant; the first assignment is kept",
        "deduplicated",
    )
    pipe.pseudonymize(pseudonymize)
    counts = pipe.frame["variant"].value_counts().sort_index()
    pipe.report.note(
        "users per variant: " + " · ".join(f"{k} {v:,}" for k, v in counts.items()) + "."
    )
    return LoadedTable(pipe.finish(canonical), pipe.report, pipe.label)


def _check_consistency(pipe: Pipeline, column: str, expected: Mapping[str, str]) -> None:
    if column not in pipe.frame:
        present = [c for c in pipe.frame.columns if c != ROW]
        raise SchemaError(
            f"consistency= names column {column!r}, which is not in the source{did_you_mean(column, present)}.",
            source=pipe.label,
            column=column,
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
    pipe.drop(
        mismatch,
        f"variant/{column} mismatch",
        column,
        f"{column} disagrees with the variant (expected "
        + ", ".join(f"{k} → {v}" for k, v in expected.items())
        + ")",
    )


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
    >>> fb = load_feedback(pd.DataFrame({"user_id": ["u1", "u2"], "score": [9, 3],
    ...                                  "timestamp": ["2026-10-01", "2026-10-02"]}), scale="nps")
    >>> fb.frame
                      timestamp  score user_id
    0 2026-10-01 00:00:00+00:00    9.0      u1
    1 2026-10-02 00:00:00+00:00    3.0      u2
    """
    check_in("scale", scale, ["auto", "nps", "csat"])
    check_in("invalid", invalid, ["raise", "drop"])
    raw = read_rows(
        source, columns, what="feedback", table=table, query=query, csv_options=csv_options
    )
    pipe = Pipeline(raw, "feedback")
    require(pipe, FEEDBACK_COLUMNS["required"], "feedback")
    if "user_id" not in pipe.frame and "touchpoint" not in pipe.frame:
        require(pipe, ("user_id",), "feedback")
    pipe.cast_time(
        "timestamp",
        tz=tz,
        nonexistent=nonexistent,
        ambiguous=ambiguous,
        timestamp_format=timestamp_format,
    )
    pipe.clean_text("touchpoint")
    pipe.clean_text("stage")
    if "user_id" in pipe.frame:
        pipe.cast_ids("user_id", drop=False)
        unknown = pipe.frame["user_id"].isna().to_numpy()
        if "touchpoint" in pipe.frame:
            unknown = unknown & pipe.frame["touchpoint"].isna().to_numpy()
        pipe.drop(
            unknown,
            "missing user_id",
            "user_id",
            "no user id (and no touchpoint); the answer cannot be placed",
        )
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
                "Unknown survey types",
                "survey",
                bad_survey,
                "use 'nps' or 'csat' in the survey column, or pass scale= to check every score "
                "against one scale.",
                values=frame["survey"],
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
            "Scores outside their scale (NPS: whole numbers 0–10, CSAT: 1–5)",
            "score",
            bad,
            "fix the scores or the survey column, or pass invalid='drop' to drop and count them.",
            values=frame["score"],
        )
    pipe.drop(
        bad,
        "score out of range",
        "score",
        "not a whole number within the survey's scale (NPS 0–10, CSAT 1–5)",
    )


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
    >>> raw = pd.DataFrame({"day": ["2026-10-01", "2026-10-01"], "channel": ["Email", "email "],
    ...                     "amount": [10.0, 5.0]})
    >>> load_spend(raw, columns={"day": "date", "amount": "cost"}).frame
      channel       date  cost
    0   Email 2026-10-01  10.0
    1   Email 2026-10-01   5.0
    """
    raw = read_rows(
        source, columns, what="spend", table=table, query=query, csv_options=csv_options
    )
    pipe = Pipeline(raw, "spend")
    require(pipe, SPEND_COLUMNS["required"], "spend")
    stamps, _, _ = cast_timestamps(
        pipe.frame["date"],
        "date",
        pipe.where(),
        tz=None,
        nonexistent="raise",
        ambiguous="raise",
        timestamp_format=timestamp_format,
    )
    wall = stamps.dt.tz_localize(None)
    days = wall.dt.normalize()
    pipe.record(
        (wall != days).to_numpy(dtype=bool, na_value=False),
        "time of day dropped",
        "repaired",
        "date",
        "spend is per day; the time part was removed",
    )
    pipe.frame["date"] = days.astype("datetime64[ns]")
    pipe.cast_numbers("cost")
    negative = (pipe.frame["cost"] < 0).to_numpy(dtype=bool, na_value=False)
    if negative.any():
        raise pipe.where().error(
            "Negative costs",
            "cost",
            negative,
            "spend must be >= 0; book refunds or credits separately.",
            values=pipe.frame["cost"],
        )
    pipe.canonical_channels("channel", drop=True)
    pipe.drop_missing("date")
    pipe.drop_missing("cost")
    pipe.clean_text("campaign")
    canonical = [*SPEND_COLUMNS["required"], *SPEND_COLUMNS["optional"]]
    pipe.properties(canonical, dtypes)
    return LoadedTable(pipe.finish(canonical), pipe.report, pipe.label)


# -- transactions --------------------------------------------------------------------


def timed_pipeline(
    source: Any,
    columns: Mapping[str, str] | None,
    what: str,
    required: tuple[str, ...],
    *,
    table: str | None,
    query: str | None,
    csv_options: Mapping[str, Any] | None,
    tz: str | None,
    nonexistent: Nonexistent,
    ambiguous: Ambiguous,
    timestamp_format: str | None,
    start: Any,
    end: Any,
    categories_except: Collection[str] | None = None,
) -> Pipeline:
    """Start loading a table of timed rows per user (events, transactions).

    Reads the rows with the ``[start, end)`` window pushed down to the scan,
    checks the required columns, casts ``timestamp`` to UTC and ``user_id``
    to text, and drops (counting) rows without either. ``categories_except``:
    see :func:`~journeylab.io.sources.read_rows`.
    """
    start_utc = to_utc_timestamp(start, "start", optional=True)
    end_utc = to_utc_timestamp(end, "end", optional=True)
    if start_utc is not None and end_utc is not None and start_utc >= end_utc:
        raise ParameterError(f"start == {start!r} must be before end == {end!r}.")
    raw = read_rows(
        source,
        columns,
        what=what,
        table=table,
        query=query,
        csv_options=csv_options,
        time_column="timestamp",
        start=start_utc,
        end=end_utc,
        categories_except=categories_except,
    )
    pipe = Pipeline(raw, what)
    require(pipe, required, what)
    pipe.cast_time(
        "timestamp",
        tz=tz,
        nonexistent=nonexistent,
        ambiguous=ambiguous,
        timestamp_format=timestamp_format,
        start=start_utc,
        end=end_utc,
    )
    pipe.cast_ids("user_id", drop=True)
    pipe.drop_missing("timestamp")
    return pipe


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
    >>> raw = pd.DataFrame({"customer": ["c2", "c1", "c1"], "value": [20.0, 35.5, -5.0],
    ...                     "timestamp": ["2026-10-02", "2026-10-01", "2026-10-03"]})
    >>> tx = load_transactions(raw, columns={"customer": "user_id"})
    >>> tx.frame
      user_id                 timestamp  value
    0      c1 2026-10-01 00:00:00+00:00   35.5
    1      c1 2026-10-03 00:00:00+00:00   -5.0
    2      c2 2026-10-02 00:00:00+00:00   20.0
    """
    pipe = timed_pipeline(
        source,
        columns,
        "transactions",
        TRANSACTION_COLUMNS["required"],
        table=table,
        query=query,
        csv_options=csv_options,
        tz=tz,
        nonexistent=nonexistent,
        ambiguous=ambiguous,
        timestamp_format=timestamp_format,
        start=start,
        end=end,
    )
    pipe.cast_numbers("value")
    pipe.drop_missing("value")
    pipe.record(
        (pipe.frame["value"] < 0).to_numpy(dtype=bool, na_value=False),
        "refund",
        "flagged",
        "value",
        "negative value: kept as a refund",
    )
    pipe.cast_ids("order_id", drop=False)
    pipe.canonical_channels("channel")
    canonical = [*TRANSACTION_COLUMNS["required"], *TRANSACTION_COLUMNS["optional"]]
    pipe.properties(canonical, dtypes)
    pipe.deduplicate_exact(drop=drop_duplicates)
    pipe.pseudonymize(pseudonymize)
    return LoadedTable(
        pipe.finish(canonical, sort_by=["user_id", "timestamp"]), pipe.report, pipe.label
    )
