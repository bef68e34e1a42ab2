"""Cohort retention, repeat-purchase rate, churn and customer lifecycle states.

All functions take a transactions table (``user_id``, ``timestamp``, ``value``;
optional ``order_id``, ``channel``) and count with vectorised pandas/numpy on
integer period codes, so a few million rows take seconds.

Rules shared by every function here (and by :func:`journeylab.clv.models.rfm_summary`):

- **Customers without an id** cannot be followed over time: their rows are
  counted (``rows_without_id``) and reported in every summary, never dropped
  silently.
- **Refunds**: a row whose ``value`` is zero or negative (a refund, a
  cancellation, a free replacement) is not a purchase. Such rows are counted
  (``refund_rows``) and left out of the purchase history. Rows with a missing
  value are purchases of unknown amount. Without a ``value`` column every row
  is a purchase.
- **Time** is UTC; periods are calendar periods (months, ISO weeks starting on
  Monday, days). Timezone-aware timestamps are converted to UTC first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from journeylab.core.errors import DataError, ParameterError, check_in, require_columns
from journeylab.core.results import Result, fmt_ci, fmt_num, fmt_pct
from journeylab.core.timeparse import naive_utc, parse_duration, to_utc_timestamp

__all__ = [
    "CohortResult",
    "RepeatRateResult",
    "ChurnResult",
    "LifecycleResult",
    "cohort_retention",
    "repeat_purchase_rate",
    "churn",
    "lifecycle_states",
]

Period = Literal["month", "week", "day", "quarter"]
_PERIOD_ALIASES = {"M": "month", "MS": "month", "W": "week", "D": "day", "Q": "quarter"}
LIFECYCLE_STATES = ("new", "active", "reactivated", "at_risk", "lapsed")


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


# --------------------------------------------------------------------------- cohorts
@dataclass(repr=False)
class CohortResult(Result):
    """Cohort × period-since-acquisition retention: counts, cohort sizes and rates.

    Attributes
    ----------
    counts : DataFrame
        Active customers; rows are cohorts (``segment`` first when segmented),
        columns are periods since the cohort's first purchase (0, 1, 2 ...).
        Periods a cohort has not reached by the end of the data are NaN.
    sizes : Series
        Customers per cohort (= period-0 count).
    eligible : DataFrame
        Customers of the cohort observed long enough to reach each period
        (= ``sizes`` whenever ``period`` is the cohort's own unit).
    retention : DataFrame
        ``counts / eligible``: the share of the cohort that purchased in that period.
    """

    counts: pd.DataFrame
    sizes: pd.Series
    eligible: pd.DataFrame
    period: str
    cohort: str
    segment: str | None
    left_out: dict[str, int] = field(default_factory=dict)
    title: str = "Cohort retention"

    @property
    def retention(self) -> pd.DataFrame:
        """Return ``counts / eligible``, the share of each cohort purchasing per period."""
        return self.counts / self.eligible

    def curve(self) -> pd.DataFrame:
        """Average retention per period since acquisition, weighted by cohort size.

        Only cohorts that have reached a period count towards it. One column per
        segment (``all`` without segments).
        """
        counts, reached = self.counts, self.eligible
        if self.segment is None:
            return (counts.sum() / reached.sum()).to_frame("all")
        num = counts.groupby(level=0).sum()
        den = reached.groupby(level=0).sum()
        return (num / den.replace(0, np.nan)).T

    def to_frame(self) -> pd.DataFrame:
        """Return the numbers as a tidy DataFrame."""
        tidy = self.counts.stack(future_stack=True).rename("active_customers").reset_index()
        period_col = tidy.columns[-2]
        tidy = tidy.rename(columns={period_col: "period"}).dropna(subset=["active_customers"])
        index_cols = [c for c in tidy.columns if c not in ("period", "active_customers")]
        sizes = self.sizes.rename("cohort_size").reset_index()
        tidy = tidy.merge(sizes, on=index_cols, how="left")
        elig = self.eligible.stack().rename("eligible_customers").reset_index()
        elig = elig.rename(columns={elig.columns[-2]: "period"})
        tidy = tidy.merge(elig, on=[*index_cols, "period"], how="left")
        tidy["active_customers"] = tidy["active_customers"].astype(np.int64)
        tidy["eligible_customers"] = tidy["eligible_customers"].astype(np.int64)
        tidy["retention"] = tidy["active_customers"] / tidy["eligible_customers"]
        return tidy[
            [
                *index_cols,
                "period",
                "cohort_size",
                "eligible_customers",
                "active_customers",
                "retention",
            ]
        ]

    def display_frame(self) -> pd.DataFrame:
        """Return the table formatted for readers."""
        shown = self.retention.map(lambda v: "" if pd.isna(v) else fmt_pct(v))
        shown.insert(0, "customers", self.sizes.map(lambda v: f"{v:,}"))
        return shown

    def summary(self) -> str:
        """Return a short plain-language description of the result."""
        curve = self.curve()
        unit = self.period
        lines = [
            f"{int(self.sizes.sum()):,} customers in {len(self.sizes):,} cohorts "
            f"({self.cohort.replace('_', ' ')}), retention per {unit} since first purchase."
        ]
        for name in curve.columns:
            col = curve[name]
            bits = [
                f"{unit} {k}: {fmt_pct(col.get(k))}"
                for k in (1, 3, 6, 12)
                if k in col.index and pd.notna(col.get(k))
            ]
            label = "All cohorts" if name == "all" else f"{self.segment} = {name}"
            if bits:
                lines.append(f"{label} (size-weighted): " + ", ".join(bits) + ".")
        lines.append(
            "The latest periods of recent cohorts are not yet observed and are left blank; "
            "the last calendar period may be partial."
        )
        lines.append(describe_left_out(self.left_out))
        return "\n".join(lines)

    def plot(self, ax=None, segment: str | None = None, max_periods: int | None = None):
        """Heatmap of retention (cohorts as rows, annotated percentages).

        With segments, draws one segment (``segment=``) or, by default, all
        segments pooled.
        """
        import seaborn as sns

        from journeylab.core.viz import SEQUENTIAL, new_axes

        if self.segment is None:
            counts, eligible, sizes = self.counts, self.eligible, self.sizes
        elif segment is None:
            counts = self.counts.groupby(level=1).sum(min_count=1)
            eligible = self.eligible.groupby(level=1).sum(min_count=1)
            sizes = self.sizes.groupby(level=1).sum()
        else:
            counts, eligible, sizes = (
                self.counts.loc[segment],
                self.eligible.loc[segment],
                self.sizes.loc[segment],
            )
        rates = counts / eligible
        if max_periods is not None:
            rates = rates.loc[:, rates.columns <= max_periods]
        n_rows, n_cols = rates.shape
        width = min(max(6.0, 0.75 * n_cols + 2.5), 20.0)
        ax = new_axes(ax, figsize=(width, min(max(3.0, 0.42 * n_rows + 1.5), 14.0)))
        # period 0 is 100 % by construction: leave it out of the colour scale
        vmax = float(np.nanmax(rates.iloc[:, 1:].to_numpy())) if n_cols > 1 else 1.0
        labels = rates.map(lambda v: "" if pd.isna(v) else f"{100 * v:.0f}%")
        shown = rates.set_axis(
            [f"{c}  (n={s:,})" for c, s in zip(rates.index, sizes.loc[rates.index], strict=True)]
        )
        sns.heatmap(
            shown,
            ax=ax,
            cmap=SEQUENTIAL,
            vmin=0,
            vmax=vmax if np.isfinite(vmax) and vmax > 0 else 1.0,
            # beyond ~24 x 40 cells the numbers no longer fit: the colours carry it
            annot=labels if n_cols <= 24 and n_rows <= 40 else False,
            fmt="",
            annot_kws={"fontsize": 8},
            linewidths=0.5,
            linecolor="white",
            cbar_kws={"label": "retained", "format": "{x:.0%}"},
        )
        ax.tick_params(axis="y", rotation=0)
        ax.set_xlabel(f"{self.period}s since first purchase")
        ax.set_ylabel("cohort (first purchase)")
        where = (
            ""
            if self.segment is None
            else (f" — {self.segment}: {segment}" if segment else " — all segments")
        )
        ax.set_title(f"Share of each cohort purchasing again{where}")
        ax.grid(False)
        return ax


def cohort_retention(
    transactions: pd.DataFrame,
    *,
    cohort: Literal[
        "first_purchase_month",
        "first_purchase_week",
        "first_purchase_quarter",
        "first_purchase_day",
    ] = "first_purchase_month",
    segment: str | pd.Series | None = None,
    period: Period = "month",
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    customer_id_col: str = "user_id",
    datetime_col: str = "timestamp",
    value_col: str | None = "value",
) -> CohortResult:
    """Cohort × period-since-first-purchase retention matrix.

    A customer belongs to the cohort of their first purchase (over the whole
    history given); they count as retained in period ``k`` when they made a
    purchase in the ``k``-th calendar period after the one of their first
    purchase (so period 0 is 100 %).

    Parameters
    ----------
    transactions : DataFrame
        ``user_id``, ``timestamp`` and (optionally) ``value``.
    cohort : str
        Granularity of the acquisition cohort.
    segment : str or Series, optional
        A transactions column (e.g. ``"channel"``; its value on the customer's
        first purchase is used) or a Series mapping ``user_id`` to a segment
        (e.g. ``users.set_index("user_id")["acquisition_channel"]``).
    period : {"month", "week", "day", "quarter"}
        Unit of "periods since first purchase".
    start, end : date-like, optional
        Keep cohorts whose first purchase falls in ``[start, end]``; purchases
        after ``end`` are ignored (the data are treated as ending there).
    customer_id_col, datetime_col, value_col : str
        Column names (canonical by default).

    Returns
    -------
    CohortResult

    Examples
    --------
    >>> res = cohort_retention(tx, segment="channel")  # doctest: +SKIP
    >>> res.retention.iloc[:, :4]; res.plot()           # doctest: +SKIP
    """
    cohort_unit = cohort.removeprefix("first_purchase_") if isinstance(cohort, str) else cohort
    check_in(
        "cohort",
        cohort,
        [
            "first_purchase_month",
            "first_purchase_week",
            "first_purchase_quarter",
            "first_purchase_day",
        ],
    )
    period = _normalise_period(period)
    extra = (segment,) if isinstance(segment, str) else ()
    frame, left_out = purchase_rows(
        transactions,
        customer_id_col=customer_id_col,
        datetime_col=datetime_col,
        value_col=value_col,
        extra=extra,
    )
    if frame.empty:
        raise DataError(
            "No purchases with a customer id to build cohorts from.",
            hint="check the id and value columns (refunds with value <= 0 are not purchases).",
        )
    if end is not None:
        end_ts = to_utc_timestamp(end, "end").tz_localize(None)
        frame = frame[frame["time"] <= end_ts]
    frame = _customer_frame(frame, period)
    first_idx = frame.groupby("customer", sort=True).head(1)
    first_row = pd.Series(first_idx.index.to_numpy(), index=first_idx["customer"].to_numpy())
    first_time = pd.Series(first_idx["time"].to_numpy(), index=first_row.index)
    keep_customers = pd.Series(True, index=first_row.index)
    if start is not None:
        keep_customers &= first_time >= to_utc_timestamp(start, "start").tz_localize(None)
    cohort_code = pd.Series(period_codes(first_time, cohort_unit), index=first_row.index)
    first_code = pd.Series(
        frame.loc[first_row.to_numpy(), "code"].to_numpy(), index=first_row.index
    )
    seg = _segment_of(frame, transactions, segment, first_row)
    last_code = int(frame["code"].max())
    # one row per (customer, active period)
    active = frame[["customer", "code"]].drop_duplicates()
    active = active[active["customer"].map(keep_customers).to_numpy()]
    k = active["code"].to_numpy() - first_code.reindex(active["customer"]).to_numpy()
    keys = {"cohort": cohort_code.reindex(active["customer"]).to_numpy(), "period": k}
    index_names = ["cohort"]
    if seg is not None:
        keys = {"segment": seg.reindex(active["customer"]).to_numpy(), **keys}
        index_names = ["segment", "cohort"]
    # right-censoring: a customer reaches period k only if first period + k <= last period;
    # ``eligible`` counts them, so cohorts coarser than ``period`` stay unbiased
    cust = pd.DataFrame(
        {"cohort": cohort_code[keep_customers], "horizon": last_code - first_code[keep_customers]}
    )
    if seg is not None:
        cust.insert(0, "segment", seg[keep_customers])
    n_periods = int(cust["horizon"].max()) + 1
    counts = (
        pd.DataFrame(keys).groupby([*index_names, "period"], sort=True).size().unstack("period")
    )
    counts = counts.reindex(columns=range(n_periods))
    by_horizon = (
        cust.groupby([*index_names, "horizon"], sort=True).size().unstack("horizon", fill_value=0)
    )
    by_horizon = by_horizon.reindex(index=counts.index, columns=range(n_periods), fill_value=0)
    eligible = by_horizon.iloc[:, ::-1].cumsum(axis=1).iloc[:, ::-1]
    eligible.columns = counts.columns
    counts = counts.fillna(0).where(eligible.to_numpy() > 0)
    eligible = eligible.where(eligible.to_numpy() > 0)
    sizes = eligible[0].astype(np.int64).rename("cohort_size")
    labels = period_label(counts.index.get_level_values("cohort").to_numpy(), cohort_unit)
    if seg is None:
        new_index = pd.Index(labels, name="cohort")
    else:
        new_index = pd.MultiIndex.from_arrays(
            [counts.index.get_level_values("segment"), labels], names=["segment", "cohort"]
        )
    counts.index = eligible.index = sizes.index = new_index
    counts.columns.name = eligible.columns.name = f"{period}s_since_first_purchase"
    return CohortResult(
        counts=counts,
        sizes=sizes,
        eligible=eligible,
        period=period,
        cohort=cohort,
        segment=segment
        if isinstance(segment, str)
        else (None if segment is None else (segment.name or "segment")),
        left_out=left_out,
    )


# --------------------------------------------------------------------------- repeat rate and churn
def _wilson(
    successes: np.ndarray, totals: np.ndarray, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(successes, np.maximum(totals, 1), alpha=alpha, method="wilson")
    return np.where(totals > 0, low, np.nan), np.where(totals > 0, high, np.nan)


def _rate_table(flags: pd.Series, seg: pd.Series | None, alpha: float, name: str) -> pd.DataFrame:
    """Count customers and ``flags`` with the rate and Wilson interval, per segment plus ``all``."""
    frame = pd.DataFrame({"flag": flags.to_numpy(dtype=bool)})
    frame["segment"] = "all" if seg is None else seg.reindex(flags.index).to_numpy()
    table = frame.groupby("segment", sort=True)["flag"].agg(customers="size", hits="sum")
    if seg is not None:
        table.loc["all"] = [len(frame), int(frame["flag"].sum())]
    table = table.rename(columns={"hits": f"{name}_customers"})
    n, k = table["customers"].to_numpy(), table[f"{name}_customers"].to_numpy()
    table[f"{name}_rate"] = np.where(n > 0, k / np.maximum(n, 1), np.nan)
    table["ci_low"], table["ci_high"] = _wilson(k, n, alpha)
    return table


def _duration_words(text: str | None) -> str:
    """Write a pandas duration in words: ``"90D"`` -> ``"90 days"``, ``"36h"`` -> ``"36 hours"``."""
    if text is None:
        return ""
    delta = pd.Timedelta(text)
    days = delta / pd.Timedelta(days=1)
    if days.is_integer():
        return f"{int(days):,} day" + ("" if days == 1 else "s")
    hours = delta / pd.Timedelta(hours=1)
    if hours.is_integer():
        return f"{int(hours):,} hour" + ("" if hours == 1 else "s")
    return f"{fmt_num(days)} days"


def _rate_display(
    table: pd.DataFrame, *, count: str, rate: str, names: tuple[str, str, str], confidence: float
) -> pd.DataFrame:
    """Readers' table of a per-segment rate: segment, customers, count, rate, interval."""
    shown = table.reset_index()
    segment = shown["segment"].astype(str).replace({"all": "all customers"})
    return pd.DataFrame(
        {
            names[0]: segment.to_numpy(),
            "customers": shown["customers"].map(fmt_num).to_numpy(),
            names[1]: shown[count].map(fmt_num).to_numpy(),
            names[2]: shown[rate].map(fmt_pct).to_numpy(),
            f"{confidence:.0%} interval": [
                fmt_ci(lo, hi, fmt_pct)
                for lo, hi in zip(shown["ci_low"], shown["ci_high"], strict=True)
            ],
        }
    )


def _plot_rates(table: pd.DataFrame, rate: str, title: str, ax=None):
    from journeylab.core.viz import PALETTE, new_axes, percent_axis

    ax = new_axes(ax, figsize=(7, max(2.5, 0.45 * len(table) + 1)))
    y = np.arange(len(table))
    values = table[rate].to_numpy()
    err = np.vstack([values - table["ci_low"].to_numpy(), table["ci_high"].to_numpy() - values])
    colours = ["0.6" if label == "all" else PALETTE[0] for label in table.index]
    ax.barh(y, values, xerr=err, color=colours, ecolor="0.3", capsize=3)
    labels = [f"{s}  (n={n:,})" for s, n in zip(table.index, table["customers"], strict=True)]
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    for yi, v in zip(y, values, strict=True):
        ax.annotate(fmt_pct(v), (v, yi), xytext=(4, 6), textcoords="offset points", fontsize=8)
    percent_axis(ax, "x")
    ax.set_title(title)
    return ax


@dataclass(repr=False)
class RepeatRateResult(Result):
    """Share of customers who purchased again, per segment, with Wilson intervals."""

    table: pd.DataFrame
    within: str | None
    as_of: pd.Timestamp
    too_recent: int
    left_out: dict[str, int]
    confidence: float = 0.95
    title: str = "Repeat-purchase rate"

    def to_frame(self) -> pd.DataFrame:
        """Return the numbers as a tidy DataFrame."""
        return self.table.reset_index()

    def display_frame(self) -> pd.DataFrame:
        """Per segment: customers, those who purchased again, the rate and its interval."""
        window = f" within {_duration_words(self.within)}" if self.within else ""
        return _rate_display(
            self.table,
            count="repeat_customers",
            rate="repeat_rate",
            names=("segment", f"purchased again{window}", "repeat rate"),
            confidence=self.confidence,
        )

    def summary(self) -> str:
        """Return a short plain-language description of the result."""
        row = self.table.loc["all"]
        window = (
            f" within {_duration_words(self.within)} of their first purchase" if self.within else ""
        )
        lines = [
            f"{fmt_pct(row['repeat_rate'])} {fmt_ci(row['ci_low'], row['ci_high'], fmt_pct)} of "
            f"{int(row['customers']):,} customers purchased again on a later day{window} "
            f"(as of {self.as_of:%Y-%m-%d}; {self.confidence:.0%} Wilson interval)."
        ]
        if self.too_recent:
            lines.append(
                f"{self.too_recent:,} customers acquired less than {_duration_words(self.within)} before that date "
                "are not counted yet."
            )
        if len(self.table) > 1:
            seg = self.table.drop(index="all").sort_values("repeat_rate", ascending=False)
            lines.append(
                "By segment: "
                + ", ".join(f"{s} {fmt_pct(v)}" for s, v in seg["repeat_rate"].items())
                + "."
            )
        lines.append(describe_left_out(self.left_out))
        return "\n".join(lines)

    def plot(self, ax=None):
        """Horizontal bars of the repeat rate per segment with their intervals."""
        return _plot_rates(self.table, "repeat_rate", "Customers who purchased again", ax)


def _customer_histories(
    transactions, *, segment, as_of, customer_id_col, datetime_col, value_col
) -> tuple[pd.DataFrame, pd.Series | None, pd.Timestamp, dict[str, int]]:
    extra = (segment,) if isinstance(segment, str) else ()
    frame, left_out = purchase_rows(
        transactions,
        customer_id_col=customer_id_col,
        datetime_col=datetime_col,
        value_col=value_col,
        extra=extra,
    )
    if frame.empty:
        raise DataError("No purchases with a customer id.", hint="check the id and value columns.")
    as_of = (
        frame["time"].max() if as_of is None else to_utc_timestamp(as_of, "as_of").tz_localize(None)
    )
    frame = _customer_frame(frame[frame["time"] <= as_of], "day")
    first = frame.groupby("customer", sort=True).head(1)
    first_row = pd.Series(first.index.to_numpy(), index=first["customer"].to_numpy())
    seg = _segment_of(frame, transactions, segment, first_row)
    return frame, seg, as_of, left_out


def repeat_purchase_rate(
    transactions: pd.DataFrame,
    *,
    segment: str | pd.Series | None = None,
    within: str | None = None,
    as_of: str | pd.Timestamp | None = None,
    alpha: float = 0.05,
    customer_id_col: str = "user_id",
    datetime_col: str = "timestamp",
    value_col: str | None = "value",
) -> RepeatRateResult:
    """Share of customers with a purchase on a later day than their first.

    Several orders on the day of the first purchase do not make a repeat
    customer (the same convention as ``rfm_summary(freq="D")``).

    Parameters
    ----------
    transactions : DataFrame
        ``user_id``, ``timestamp``, optional ``value``.
    segment : str or Series, optional
        Column (value at first purchase) or ``user_id -> segment`` mapping.
    within : str, optional
        Count only repeats within this time of the first purchase (``"90D"``);
        customers acquired less than ``within`` before ``as_of`` are left out
        (they could not have been seen repeating yet) and counted.
    as_of : date-like, optional
        End of the observation (default: the last purchase).
    alpha : float
        1 - confidence of the Wilson intervals.

    Examples
    --------
    >>> repeat_purchase_rate(tx, segment="channel", within="90D").summary()  # doctest: +SKIP
    """
    frame, seg, as_of, left_out = _customer_histories(
        transactions,
        segment=segment,
        as_of=as_of,
        customer_id_col=customer_id_col,
        datetime_col=datetime_col,
        value_col=value_col,
    )
    days = frame.groupby("customer", sort=True)["code"]
    first_day = days.transform("min")
    later = frame["code"] > first_day
    too_recent = 0
    if within is not None:
        window = parse_duration(within, "within")
        first_time = frame.groupby("customer", sort=True)["time"].transform("min")
        later &= frame["time"] <= first_time + window
        start = frame.groupby("customer", sort=True)["time"].min()
        observable = start + window <= as_of
        too_recent = int((~observable).sum())
    flags = later.groupby(frame["customer"], sort=True).any()
    if within is not None:
        flags = flags[observable.reindex(flags.index).to_numpy()]
    table = _rate_table(flags, seg, alpha, "repeat")
    return RepeatRateResult(
        table=table,
        within=within,
        as_of=as_of,
        too_recent=too_recent,
        left_out=left_out,
        confidence=1 - alpha,
    )


@dataclass(repr=False)
class ChurnResult(Result):
    """Customers churned by an inactivity rule, per segment, with Wilson intervals.

    Attributes
    ----------
    customers : DataFrame
        One row per customer: ``first_purchase``, ``last_purchase``,
        ``inactive_days`` (``as_of`` - last purchase), ``churned``, ``segment``.
    table : DataFrame
        Churn rate per segment (``all`` included).
    """

    customers: pd.DataFrame
    table: pd.DataFrame
    inactivity: str
    as_of: pd.Timestamp
    left_out: dict[str, int]
    confidence: float = 0.95
    title: str = "Churn"

    def to_frame(self) -> pd.DataFrame:
        """Return the numbers as a tidy DataFrame."""
        return self.table.reset_index()

    def display_frame(self) -> pd.DataFrame:
        """Per segment: customers, those inactive longer than the rule, the rate and its interval."""
        return _rate_display(
            self.table,
            count="churned_customers",
            rate="churned_rate",
            names=(
                "segment",
                f"no purchase for over {_duration_words(self.inactivity)}",
                "churn rate",
            ),
            confidence=self.confidence,
        )

    def summary(self) -> str:
        """Return a short plain-language description of the result."""
        row = self.table.loc["all"]
        lines = [
            f"{fmt_pct(row['churned_rate'])} {fmt_ci(row['ci_low'], row['ci_high'], fmt_pct)} of "
            f"{int(row['customers']):,} customers had not purchased for more than {_duration_words(self.inactivity)} "
            f"on {self.as_of:%Y-%m-%d} (churned by the inactivity rule; {self.confidence:.0%} Wilson interval).",
            f"Median time since last purchase: {fmt_num(self.customers['inactive_days'].median())} days.",
        ]
        if len(self.table) > 1:
            seg = self.table.drop(index="all").sort_values("churned_rate")
            lines.append(
                "By segment: "
                + ", ".join(f"{s} {fmt_pct(v)}" for s, v in seg["churned_rate"].items())
                + "."
            )
        lines.append(
            "An inactivity rule is a convention, not an observed event: customers of infrequent "
            "categories look churned sooner. journeylab.clv.models.BetaGeo gives a probability alive instead."
        )
        lines.append(describe_left_out(self.left_out))
        return "\n".join(lines)

    def plot(self, ax=None):
        """Horizontal bars of the churn rate per segment with their intervals."""
        return _plot_rates(
            self.table, "churned_rate", f"Customers inactive for more than {self.inactivity}", ax
        )


def churn(
    transactions: pd.DataFrame,
    inactivity: str = "90D",
    *,
    as_of: str | pd.Timestamp | None = None,
    segment: str | pd.Series | None = None,
    alpha: float = 0.05,
    customer_id_col: str = "user_id",
    datetime_col: str = "timestamp",
    value_col: str | None = "value",
) -> ChurnResult:
    """Flag customers as churned when their last purchase is more than ``inactivity`` before ``as_of``.

    Customers whose first purchase is after ``as_of`` are not yet customers;
    purchases after ``as_of`` are ignored.

    Examples
    --------
    >>> churn(tx, "90D", as_of="2011-12-01").summary()  # doctest: +SKIP
    """
    window = parse_duration(inactivity, "inactivity")
    frame, seg, as_of, left_out = _customer_histories(
        transactions,
        segment=segment,
        as_of=as_of,
        customer_id_col=customer_id_col,
        datetime_col=datetime_col,
        value_col=value_col,
    )
    times = frame.groupby("customer", sort=True)["time"].agg(
        first_purchase="min", last_purchase="max"
    )
    inactive = as_of - times["last_purchase"]
    times["inactive_days"] = inactive / pd.Timedelta(days=1)
    times["churned"] = inactive > window
    if seg is not None:
        times["segment"] = seg.reindex(times.index).to_numpy()
    times.index.name = customer_id_col
    table = _rate_table(times["churned"], seg, alpha, "churned")
    return ChurnResult(
        customers=times,
        table=table,
        inactivity=inactivity,
        as_of=as_of,
        left_out=left_out,
        confidence=1 - alpha,
    )


# --------------------------------------------------------------------------- lifecycle states
@dataclass(repr=False)
class LifecycleResult(Result):
    """Customers per lifecycle state and period; the states partition known customers."""

    counts: pd.DataFrame
    at_risk: int
    lapsed: int
    period: str
    left_out: dict[str, int]
    title: str = "Customer lifecycle"

    def to_frame(self) -> pd.DataFrame:
        """Return the numbers as a tidy DataFrame."""
        return self.counts.reset_index()

    def summary(self) -> str:
        """Return a short plain-language description of the result."""
        last = self.counts.iloc[-1]
        unit = self.period
        purchasing = last["new"] + last["active_purchasing"] + last["reactivated"]
        lines = [
            f"Rules per {unit}: new = first purchase this {unit}; reactivated = purchase after "
            f"{self.lapsed}+ {unit}s without one; active = any other customer who purchased this {unit}"
            + (f" or within the last {self.at_risk - 1} {unit}(s)" if self.at_risk > 1 else "")
            + f"; at risk = {self.at_risk} to {self.lapsed - 1} {unit}s without a purchase; "
            f"lapsed = {self.lapsed}+ {unit}s without one.",
            f"In {self.counts.index[-1]} (possibly partial): {int(last['customers']):,} known customers, "
            f"{int(purchasing):,} purchased ({int(last['new']):,} new, {int(last['reactivated']):,} reactivated), "
            f"{int(last['at_risk']):,} at risk, {int(last['lapsed']):,} lapsed.",
            describe_left_out(self.left_out),
        ]
        return "\n".join(lines)

    def plot(self, ax=None):
        """Stacked bars of customers per state and period (purchasing states at the bottom)."""
        from journeylab.core.viz import PALETTE, new_axes

        ax = new_axes(ax, figsize=(max(7.0, 0.45 * len(self.counts) + 3), 4.5))
        x = np.arange(len(self.counts))
        bottom = np.zeros(len(self.counts))
        colours = {
            "new": PALETTE[2],
            "active": PALETTE[0],
            "reactivated": PALETTE[4],
            "at_risk": PALETTE[1],
            "lapsed": "0.75",
        }
        for state in LIFECYCLE_STATES:
            values = self.counts[state].to_numpy(dtype=float)
            ax.bar(
                x,
                values,
                bottom=bottom,
                color=colours[state],
                label=state.replace("_", " "),
                width=0.8,
            )
            bottom += values
        every = max(1, len(x) // 24)  # at most ~24 readable labels
        ax.set_xticks(x[::every], self.counts.index[::every], rotation=45, ha="right")
        ax.set_ylabel("customers")
        ax.set_title(f"Customers by lifecycle state per {self.period}")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
        ax.yaxis.set_major_formatter(lambda v, _: f"{v:,.0f}")
        return ax


def lifecycle_states(
    transactions: pd.DataFrame,
    freq: Literal["M", "W", "Q", "D"] = "M",
    *,
    at_risk: int = 1,
    lapsed: int = 3,
    customer_id_col: str = "user_id",
    datetime_col: str = "timestamp",
    value_col: str | None = "value",
) -> LifecycleResult:
    """Count new, active, reactivated, at-risk and lapsed customers per period.

    Every customer whose first purchase is in or before a period is in exactly
    one state in that period, by the periods since their last purchase ``g``
    (0 when they purchased in the period):

    - **new**: first purchase in the period;
    - **reactivated**: purchased in the period after ``lapsed`` or more periods without one;
    - **active**: purchased in the period (not new, not reactivated), or ``0 < g < at_risk``;
    - **at risk**: ``at_risk <= g < lapsed``;
    - **lapsed**: ``g >= lapsed``.

    ``active`` counts purchasing and quiet customers together; the column
    ``active_purchasing`` gives those of them who purchased.

    Parameters
    ----------
    freq : {"M", "W", "Q", "D"}
        Period: calendar month, ISO week, quarter or day.
    at_risk, lapsed : int
        Periods without a purchase after which a customer is at risk / lapsed
        (``1 <= at_risk < lapsed``).

    Examples
    --------
    >>> lifecycle_states(tx, "M", at_risk=1, lapsed=3).plot()  # doctest: +SKIP
    """
    period = _normalise_period(freq)
    if not (isinstance(at_risk, int | np.integer) and isinstance(lapsed, int | np.integer)):
        raise ParameterError(
            f"at_risk and lapsed must be whole numbers of periods, got {at_risk!r}, {lapsed!r}."
        )
    if at_risk < 1:
        raise ParameterError(f"at_risk == {at_risk}, must be >= 1.")
    if lapsed <= at_risk:
        raise ParameterError(f"lapsed == {lapsed}, must be > at_risk ({at_risk}).")
    frame, left_out = purchase_rows(
        transactions,
        customer_id_col=customer_id_col,
        datetime_col=datetime_col,
        value_col=value_col,
    )
    if frame.empty:
        raise DataError("No purchases with a customer id.", hint="check the id and value columns.")
    codes = pd.DataFrame(
        {"customer": frame["customer"].to_numpy(), "code": period_codes(frame["time"], period)}
    )
    codes = codes.drop_duplicates().sort_values(["customer", "code"], kind="stable")
    c0 = int(codes["code"].min())
    end = int(codes["code"].max()) - c0
    n = end + 1
    p = codes["code"].to_numpy() - c0
    same = codes["customer"].to_numpy()[1:] == codes["customer"].to_numpy()[:-1]
    prev = np.concatenate([[-1], np.where(same, p[:-1], -1)])
    nxt = np.concatenate([np.where(same, p[1:], n), [n]])
    is_new = prev < 0
    is_reactivated = ~is_new & (p - prev - 1 >= lapsed)
    counts = {
        "new": np.bincount(p[is_new], minlength=n),
        "reactivated": np.bincount(p[is_reactivated], minlength=n),
        "active_purchasing": np.bincount(p[~is_new & ~is_reactivated], minlength=n),
    }

    def spans(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        ok = lo <= hi
        diff = np.bincount(lo[ok], minlength=n + 1) - np.bincount(hi[ok] + 1, minlength=n + 1)
        return np.cumsum(diff)[:n]

    last_silent = nxt - 1
    counts["active_quiet"] = spans(p + 1, np.minimum(p + at_risk - 1, last_silent))
    counts["at_risk"] = spans(p + at_risk, np.minimum(p + lapsed - 1, last_silent))
    counts["lapsed"] = spans(p + lapsed, last_silent)
    table = pd.DataFrame(
        counts, index=pd.Index(period_label(np.arange(c0, c0 + n), period), name=period)
    )
    table["active"] = table["active_purchasing"] + table["active_quiet"]
    table["customers"] = np.cumsum(counts["new"])
    table = table[[*LIFECYCLE_STATES, "active_purchasing", "customers"]].astype(np.int64)
    return LifecycleResult(
        counts=table, at_risk=at_risk, lapsed=lapsed, period=period, left_out=left_out
    )
