"""Purchase rows and calendar periods: the shared ground of the retention analyses.

A transactions table (``user_id``, ``timestamp``, ``value``; optional ``order_id``,
``channel``) becomes purchase rows here: rows without a customer id and refunds
(``value`` zero or negative) are counted and left out, never dropped silently, and
timestamps become integer codes of calendar periods (UTC months, ISO weeks, days).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from journeylab.core.errors import DataError, ParameterError, check_in, require_columns
from journeylab.core.timeparse import naive_utc

__all__ = [
    "Period",
    "period_codes",
    "period_start",
    "period_label",
    "as_frame",
    "purchase_rows",
    "describe_left_out",
]


Period = Literal["month", "week", "day", "quarter"]
_PERIOD_ALIASES = {"M": "month", "MS": "month", "W": "week", "D": "day", "Q": "quarter"}


# --------------------------------------------------------------------------- helpers
def period_codes(timestamps: pd.Series, period: str) -> np.ndarray:
    """Integer calendar-period numbers (months, weeks, days, hours since 1970) of naive UTC times."""
    values = timestamps.to_numpy("datetime64[ns]")
    if period in ("month", "M"):
        return values.astype("datetime64[M]").astype(np.int64)
    if period in ("quarter", "Q"):
        return values.astype("datetime64[M]").astype(np.int64) // 3
    days = values.astype("datetime64[D]").astype(np.int64)
    if period in ("day", "D"):
        return days
    if period in ("week", "W"):
        return (days + 3) // 7  # weeks start on Monday: 1970-01-01 was a Thursday
    if period in ("hour", "h"):
        return values.astype("datetime64[h]").astype(np.int64)
    raise ParameterError(
        f"period == {period!r}, must be one of ['month', 'week', 'day', 'quarter']."
    )


def period_start(codes: np.ndarray, period: str) -> pd.DatetimeIndex:
    """Return the first instant of each period code (inverse of :func:`period_codes`)."""
    codes = np.asarray(codes, dtype=np.int64)
    if period in ("month", "M"):
        return pd.DatetimeIndex(codes.astype("datetime64[M]").astype("datetime64[ns]"))
    if period in ("quarter", "Q"):
        return pd.DatetimeIndex((codes * 3).astype("datetime64[M]").astype("datetime64[ns]"))
    if period in ("week", "W"):
        return pd.DatetimeIndex((codes * 7 - 3).astype("datetime64[D]").astype("datetime64[ns]"))
    if period in ("hour", "h"):
        return pd.DatetimeIndex(codes.astype("datetime64[h]").astype("datetime64[ns]"))
    return pd.DatetimeIndex(codes.astype("datetime64[D]").astype("datetime64[ns]"))


def period_label(codes: np.ndarray, period: str) -> list[str]:
    """Readable labels: ``2011-01`` (month), ``2011-Q1``, ``2011-01-03`` (week start, day)."""
    starts = period_start(codes, period)
    if period in ("month", "M"):
        return list(starts.strftime("%Y-%m"))
    if period in ("quarter", "Q"):
        return [f"{s.year}-Q{(s.month - 1) // 3 + 1}" for s in starts]
    return list(starts.strftime("%Y-%m-%d"))


def _normalise_period(period: str) -> str:
    period = _PERIOD_ALIASES.get(period, period)
    check_in("period", period, ["month", "week", "day", "quarter"])
    return period


def as_frame(transactions) -> tuple[pd.DataFrame, dict[str, int]]:
    """Return the DataFrame of a transactions argument and the rows its loader dropped.

    Accepts a DataFrame or a loaded table (``journeylab.load_transactions``:
    anything with ``.frame`` and a ``.quality`` report); rows the loader
    dropped for a missing id are carried into ``rows_without_id`` so they are
    still reported.
    """
    frame = getattr(transactions, "frame", None)
    if isinstance(frame, pd.DataFrame):
        dropped_no_id = dropped_other = 0
        for step in getattr(getattr(transactions, "quality", None), "steps", []):
            if getattr(step, "action", None) != "dropped":
                continue
            if getattr(step, "column", None) == "user_id":
                dropped_no_id += int(step.count)
            else:
                dropped_other += int(step.count)
        return frame, {"rows_without_id": dropped_no_id, "rows_dropped_at_load": dropped_other}
    if not isinstance(transactions, pd.DataFrame):
        raise ParameterError(
            f"transactions must be a pandas DataFrame or a loaded table, got {type(transactions).__name__}."
        )
    return transactions, {}


def purchase_rows(
    transactions: pd.DataFrame,
    *,
    customer_id_col: str = "user_id",
    datetime_col: str = "timestamp",
    value_col: str | None = "value",
    extra: tuple[str, ...] = (),
    refunds: Literal["drop", "keep"] = "drop",
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Purchase rows (id, naive-UTC time, value) plus the counts of rows left out and why.

    Returns a frame with columns ``customer``, ``time``, ``value`` (NaN when the
    table has no value column) and the ``extra`` columns, and a dict with
    ``rows``, ``rows_without_id``, ``refund_rows`` and ``rows_used``.
    """
    transactions, at_load = as_frame(transactions)
    check_in("refunds", refunds, ["drop", "keep"])
    require_columns(transactions, [customer_id_col, datetime_col, *extra], what="transactions")
    has_value = value_col is not None and value_col in transactions.columns
    if value_col is not None and value_col != "value" and not has_value:
        require_columns(transactions, [value_col], what="transactions")
    ids = transactions[customer_id_col]
    no_id = ids.isna().to_numpy().copy()
    if ids.dtype == object or pd.api.types.is_string_dtype(ids):
        no_id |= ids.astype("string").str.strip().fillna("").eq("").to_numpy(dtype=bool)
    times = naive_utc(transactions[datetime_col], datetime_col)
    bad_time = times.isna().to_numpy() & ~no_id
    if bad_time.any():
        raise DataError(
            f"{int(bad_time.sum())} transaction(s) have no {datetime_col!r}.",
            column=datetime_col,
            rows=list(np.flatnonzero(bad_time)[:5]),
            hint="drop or repair these rows before the analysis (load_transactions reports them).",
        )
    if has_value:
        value = pd.to_numeric(transactions[value_col], errors="coerce").to_numpy(dtype=float)
        refund = (value <= 0) & ~no_id
    else:
        value = np.full(len(transactions), np.nan)
        refund = np.zeros(len(transactions), dtype=bool)
    keep = ~no_id & (~refund if refunds == "drop" else True)
    frame = pd.DataFrame(
        {
            "customer": ids.to_numpy()[keep],
            "time": times.to_numpy()[keep],
            "value": value[keep],
        }
    )
    for col in extra:
        frame[col] = transactions[col].to_numpy()[keep]
    counts = {
        "rows": len(transactions) + sum(at_load.values()),
        "rows_without_id": int(no_id.sum()) + at_load.get("rows_without_id", 0),
        "refund_rows": int(refund.sum()),
        "rows_used": int(keep.sum()),
    }
    if at_load.get("rows_dropped_at_load"):
        counts["rows_dropped_at_load"] = at_load["rows_dropped_at_load"]
    return frame, counts


def describe_left_out(counts: dict[str, int], refunds: str = "drop") -> str:
    """One sentence on the rows a computation could not use."""
    parts = []
    if counts.get("rows_without_id"):
        parts.append(
            f"{counts['rows_without_id']:,} of {counts['rows']:,} transaction rows "
            f"({counts['rows_without_id'] / counts['rows']:.1%}) have no customer id and "
            "cannot be followed over time"
        )
    if counts.get("rows_dropped_at_load"):
        parts.append(
            f"{counts['rows_dropped_at_load']:,} rows were dropped when loading (see the quality report)"
        )
    if counts.get("refund_rows") and refunds == "drop":
        parts.append(f"{counts['refund_rows']:,} rows with value <= 0 (refunds) are not purchases")
    return ("Left out: " + "; ".join(parts) + ".") if parts else "Every transaction row was used."


def _segment_of(
    frame: pd.DataFrame,
    transactions: pd.DataFrame,
    segment: str | pd.Series | None,
    first_row: pd.Series,
) -> pd.Series | None:
    """Segment per customer: the column's value on the first purchase, or a mapping Series."""
    if segment is None:
        return None
    if isinstance(segment, pd.Series):
        mapped = first_row.index.to_series().map(segment)
        return mapped.astype(object).where(mapped.notna(), "(unknown)")
    if isinstance(segment, str):
        seg = frame.loc[first_row.to_numpy(), segment].to_numpy()
        out = pd.Series(seg, index=first_row.index, dtype=object)
        return out.where(out.notna(), "(unknown)")
    raise ParameterError(
        "segment must be a column name of transactions or a Series mapping user_id -> segment, "
        f"got {type(segment).__name__}."
    )


def _customer_frame(frame: pd.DataFrame, period: str) -> pd.DataFrame:
    """Add integer period codes and each customer's first purchase (period and row)."""
    frame = frame.sort_values(["customer", "time"], kind="stable").reset_index(drop=True)
    frame["code"] = period_codes(frame["time"], period)
    return frame
