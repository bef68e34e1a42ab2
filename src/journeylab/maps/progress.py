"""Stage progress shared by the maps: who reached each stage and made each step, with intervals and tests.

The grouping runs in DuckDB (first event per user and stage, first event of
the next stage after it); the rates get Wilson intervals and the period or
segment comparisons a two-proportion test.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import duckdb
import numpy as np
import pandas as pd
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
)
from statsmodels.stats.proportion import (
    test_proportions_2indep as _score_test_2indep,
)

from journeylab.core import sql as engine
from journeylab.core.results import fmt_num
from journeylab.core.stages import EventNames, StageMap

__all__ = [
    "stage_index",
    "epoch_ns",
    "run_sql",
    "stage_progress",
    "step_progress",
    "events_matching",
    "column_codes",
    "id_codes",
    "wilson",
    "two_proportion",
    "fmt_count",
    "fmt_duration",
]


def stage_index(frame: pd.DataFrame, stage_map: StageMap) -> pd.Series:
    """Position of each row's stage (0-based, -1 when unmapped)."""
    return pd.Series(stage_map.assign(frame).cat.codes.to_numpy(), index=frame.index)


_DATABASE: duckdb.DuckDBPyConnection | None = None


def epoch_ns(timestamps: pd.Series) -> np.ndarray:
    """UTC timestamps as int64 nanoseconds since the epoch (how they travel to DuckDB)."""
    naive = timestamps.dt.tz_convert("UTC").dt.tz_convert(None)
    return naive.to_numpy(dtype="datetime64[ns]").view("int64")


def run_sql(sql: str, ev: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
    """Run ``sql`` over the frame registered as ``ev`` in an embedded DuckDB.

    One in-memory database per process, a fresh cursor per call. Columns
    named ``*_ts`` hold int64 nanoseconds and come back as UTC timestamps
    (NaT for NULL); other NULLs come back as NaN / None.
    """
    global _DATABASE
    if _DATABASE is None:
        _DATABASE = engine.connect()
    with _DATABASE.cursor() as cursor:
        cursor.register("ev", ev)
        raw = cursor.execute(sql, params or {}).fetchnumpy()
    out = {}
    for name, column in raw.items():
        mask = np.ma.getmaskarray(column)
        data = np.ma.getdata(column)
        if name.endswith("_ts"):
            ns = np.where(mask, np.iinfo(np.int64).min, data.astype("int64"))
            out[name] = pd.to_datetime(ns, utc=True)
        elif mask.any():
            out[name] = (
                np.where(mask, np.nan, data.astype(float))
                if data.dtype.kind in "iuf"
                else np.where(mask, None, data)
            )
        else:
            out[name] = data
    return pd.DataFrame(out)


def stage_progress(frame: pd.DataFrame, stage_map: StageMap) -> pd.DataFrame:
    """Per user and stage reached: first event time and first next-stage event at or after it.

    Returns columns ``user_id``, ``stage_idx``, ``first_ts``, ``next_ts`` (NaT
    when the user did not reach the next stage afterwards).
    """
    idx = stage_index(frame, stage_map)
    keep = (idx >= 0).to_numpy()  # unmapped rows take no part: they are never converted
    rows = frame.loc[keep, ["user_id", "timestamp"]]
    users, names = _user_codes(rows["user_id"])
    ev = pd.DataFrame(
        {
            "user_id": users,
            "ts": epoch_ns(rows["timestamp"]),
            "stage_idx": idx.to_numpy()[keep],
        },
        index=rows.index,
    )
    sql = """
        WITH firsts AS (
            SELECT user_id, stage_idx, min(ts) AS first_ts FROM ev GROUP BY user_id, stage_idx
        )
        SELECT f.user_id, f.stage_idx, f.first_ts, min(e.ts) AS next_ts
        FROM firsts f
        LEFT JOIN ev e
          ON e.user_id = f.user_id AND e.stage_idx = f.stage_idx + 1 AND e.ts >= f.first_ts
        GROUP BY f.user_id, f.stage_idx, f.first_ts
    """
    out = _named(run_sql(sql, ev), names)
    out["stage_idx"] = out["stage_idx"].astype(int)
    return out


def step_progress(
    frame: pd.DataFrame, from_mask: pd.Series, to_mask: pd.Series, *, codes: bool = False
) -> pd.DataFrame:
    """Per user with a "from" event: its first time and the first "to" event at or after it.

    Returns columns ``user_id``, ``first_ts``, ``next_ts`` (NaT when no "to"
    event follows in ``frame``). With ``codes``, also ``user_code``: each user's
    number among :func:`id_codes` of ``frame["user_id"]``, when the ids are
    numbered there (text ids with none missing); the column is absent otherwise.
    """
    is_from = np.asarray(from_mask, dtype=bool)
    is_to = np.asarray(to_mask, dtype=bool)
    keep = is_from | is_to  # only these rows take part: the others are never converted
    coded = id_codes(frame["user_id"])
    once = coded is not None and not (coded[0][keep] < 0).any()
    if once:  # numbered once, for every step
        users, names = coded[0][keep], coded[1]
    else:
        users, names = _user_codes(frame.loc[keep, "user_id"])
    ev = pd.DataFrame(
        {
            "user_id": users,
            "ts": epoch_ns(frame.loc[keep, "timestamp"]),
            "is_from": is_from[keep],
            "is_to": is_to[keep],
        }
    )
    sql = """
        WITH firsts AS (SELECT user_id, min(ts) AS first_ts FROM ev WHERE is_from GROUP BY user_id)
        SELECT f.user_id, f.first_ts, min(e.ts) AS next_ts
        FROM firsts f
        LEFT JOIN ev e ON e.user_id = f.user_id AND e.is_to AND e.ts >= f.first_ts
        GROUP BY f.user_id, f.first_ts
    """
    out = run_sql(sql, ev)
    if codes and once:
        out["user_code"] = out["user_id"].to_numpy(dtype=np.int64)
    return _named(out, names)


def _user_codes(ids: pd.Series) -> tuple[pd.Series | np.ndarray, np.ndarray | None]:
    """User ids as text (as the results give them), numbered: DuckDB then groups and joins integers.

    Returns the codes and the text of each code; ids that are missing even as text
    go to DuckDB as text, unnumbered (``None`` names).
    """
    text = ids.astype(str)
    codes, names = pd.factorize(text)
    if len(codes) and codes.min() < 0:
        return text, None
    return codes, np.asarray(names, dtype=object)


def _named(out: pd.DataFrame, names: np.ndarray | None) -> pd.DataFrame:
    """Put the users' text back in place of their codes (see :func:`_user_codes`)."""
    if names is not None:
        out["user_id"] = names[out["user_id"].to_numpy()]
    return out


#: Codes of the last few Arrow text columns seen: (column data, codes, distinct values).
#: The key holds the immutable Arrow data itself, so a cached entry never outlives it.
_CODES: list[tuple[object, np.ndarray, np.ndarray]] = []
_CODES_KEPT = 4


def column_codes(column: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """Codes (-1 for missing) and distinct values of an Arrow-backed text column, computed once.

    Later calls on the same column data reuse them (the last few columns are kept);
    a categorical gives its own codes and categories; None for other columns.
    """
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.cat.codes.to_numpy(), np.asarray(column.cat.categories, dtype=object)
    data = getattr(column.array, "_pa_array", None)
    if data is None:
        return None
    for i, (kept, codes, names) in enumerate(_CODES):
        if kept is data:
            _CODES.insert(0, _CODES.pop(i))
            return codes, names
    codes, names = pd.factorize(column, use_na_sentinel=True)
    names = np.asarray(names, dtype=object)
    _CODES.insert(0, (data, codes, names))
    del _CODES[_CODES_KEPT:]
    return codes, names


def id_codes(ids: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`column_codes` of text user ids (numbered once per column); None for other ids.

    The distinct values are the ids as they are, the text results give them.
    """
    return column_codes(ids) if isinstance(ids.dtype, pd.StringDtype) else None


def user_numbers(ids: pd.Series) -> np.ndarray:
    """Each row's user number (-1: no id): :func:`id_codes` when the column has them, else factorized."""
    coded = id_codes(ids)
    return coded[0] if coded is not None else pd.factorize(ids)[0]


def events_matching(frame: pd.DataFrame, patterns: Iterable[str]) -> pd.Series:
    """Boolean mask of the rows whose event matches one of ``patterns`` (names or shell patterns).

    On an Arrow event column the distinct names and each row's code are taken
    once per column and reused by every later call on it.

    >>> frame = pd.DataFrame({"event": pd.array(["view", "buy", None, "view_item"], dtype="string[pyarrow]")})
    >>> events_matching(frame, ["view*"]).tolist()
    [True, False, False, True]
    """
    matcher = EventNames(patterns)
    column = frame["event"]
    coded = column_codes(column)
    if coded is None:
        distinct = pd.unique(column.dropna())
        members = [e for e in distinct if matcher.matches(str(e))]
        return column.isin(members)
    codes, names = coded
    hits = np.fromiter((matcher.matches(str(e)) for e in names), dtype=bool, count=len(names))
    mask = hits[codes] & (codes >= 0) if len(names) else np.zeros(len(codes), dtype=bool)
    return pd.Series(mask, index=column.index, name=column.name)


def wilson(
    successes: np.ndarray, trials: np.ndarray, alpha: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval (statsmodels ``proportion_confint(method="wilson")``), NaN where no trials."""
    successes = np.asarray(successes, dtype=float)
    trials = np.asarray(trials, dtype=float)
    lo = np.full(trials.shape, np.nan)
    hi = np.full(trials.shape, np.nan)
    ok = trials > 0
    if ok.any():
        lo[ok], hi[ok] = proportion_confint(successes[ok], trials[ok], alpha=alpha, method="wilson")
    return lo, hi


def two_proportion(
    count_a: np.ndarray, n_a: np.ndarray, count_b: np.ndarray, n_b: np.ndarray, alpha: float = 0.05
) -> pd.DataFrame:
    """Difference ``a − b`` of two proportions: Newcombe interval and pooled z-test p-value.

    The test is statsmodels ``test_proportions_2indep(method="score",
    correction=False)``, the same as ``proportions_ztest`` (R ``prop.test(...,
    correct=FALSE)``). Rows without trials on either side get NaN.
    """
    ca, na, cb, nb = (np.asarray(x, dtype=float) for x in (count_a, n_a, count_b, n_b))
    n_rows = ca.shape[0]
    out = pd.DataFrame(
        {
            "diff": np.full(n_rows, np.nan),
            "diff_ci_low": np.nan,
            "diff_ci_high": np.nan,
            "p_value": np.nan,
        }
    )
    ok = (na > 0) & (nb > 0)
    if ok.any():
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, hi = confint_proportions_2indep(
                ca[ok], na[ok], cb[ok], nb[ok], method="newcombe", alpha=alpha
            )
            test = _score_test_2indep(
                ca[ok], na[ok], cb[ok], nb[ok], method="score", correction=False
            )
        out.loc[ok, "diff"] = ca[ok] / na[ok] - cb[ok] / nb[ok]
        out.loc[ok, "diff_ci_low"] = np.atleast_1d(lo)
        out.loc[ok, "diff_ci_high"] = np.atleast_1d(hi)
        p = np.atleast_1d(np.asarray(test.pvalue, dtype=float))
        # Identical proportions of 0 or 1 on both sides: nothing to test, no difference.
        same = np.isnan(p) & (ca[ok] / na[ok] == cb[ok] / nb[ok])
        out.loc[ok, "p_value"] = np.where(same, 1.0, p)
    return out


def fmt_count(x: float | None) -> str:
    """Format a count of users or events as a whole number with separators."""
    if x is None or not np.isfinite(x):
        return "–"
    return f"{float(x):,.0f}"


def fmt_duration(hours: float | None) -> str:
    """Format a duration in hours as minutes, hours or days."""
    if hours is None or not np.isfinite(hours):
        return "–"
    if hours < 1:
        return f"{fmt_num(hours * 60)} min"
    if hours < 48:
        return f"{fmt_num(hours)} h"
    return f"{fmt_num(hours / 24)} days"
