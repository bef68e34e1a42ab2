"""Cohort retention: the share of each acquisition cohort still buying, period by period."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from journeylab.core.errors import DataError, check_in
from journeylab.core.results import Result, fmt_pct
from journeylab.core.timeparse import to_utc_timestamp
from journeylab.customers.purchases import (
    Period,
    _customer_frame,
    _normalise_period,
    _segment_of,
    describe_left_out,
    period_codes,
    period_label,
    purchase_rows,
)

__all__ = [
    "CohortResult",
    "cohort_retention",
]


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
    >>> import pandas as pd
    >>> tx = pd.DataFrame({
    ...     "user_id": ["a", "a", "b", "b", "c", "d", "d", "e"],
    ...     "timestamp": pd.to_datetime(["2024-01-05", "2024-02-10", "2024-01-20", "2024-03-02",
    ...                                  "2024-02-14", "2024-02-20", "2024-03-25", "2024-03-30"]),
    ...     "value": [30.0, 25.0, 12.0, 40.0, 8.0, 22.0, 15.0, 9.0],
    ...     "channel": ["search", "search", "email", "email", "search", "email", "email", "search"],
    ... })
    >>> res = cohort_retention(tx)
    >>> res.retention.round(2)  # doctest: +NORMALIZE_WHITESPACE
    months_since_first_purchase    0    1    2
    cohort
    2024-01                      1.0  0.5  0.5
    2024-02                      1.0  0.5  NaN
    2024-03                      1.0  NaN  NaN
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
