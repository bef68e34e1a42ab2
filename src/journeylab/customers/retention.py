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

Churn and lifecycle states live here; cohort retention (:mod:`.cohorts`), the
repeat-purchase rate (:mod:`.rates`) and the purchase rows and periods they all
stand on (:mod:`.purchases`) have their own modules and are re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from journeylab.core.errors import DataError, ParameterError
from journeylab.core.results import Result, fmt_ci, fmt_num, fmt_pct
from journeylab.core.timeparse import parse_duration
from journeylab.customers.cohorts import CohortResult, cohort_retention
from journeylab.customers.purchases import (
    _normalise_period,
    describe_left_out,
    period_codes,
    period_label,
    purchase_rows,
)
from journeylab.customers.rates import (
    RepeatRateResult,
    _customer_histories,
    _duration_words,
    _plot_rates,
    _rate_display,
    _rate_table,
    repeat_purchase_rate,
)

__all__ = [
    "ChurnResult",
    "LifecycleResult",
    "churn",
    "lifecycle_states",
    "CohortResult",
    "cohort_retention",
    "RepeatRateResult",
    "repeat_purchase_rate",
]


LIFECYCLE_STATES = ("new", "active", "reactivated", "at_risk", "lapsed")


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
    >>> import pandas as pd
    >>> tx = pd.DataFrame({
    ...     "user_id": ["a", "a", "b", "b", "c", "d", "d", "e"],
    ...     "timestamp": pd.to_datetime(["2024-01-05", "2024-02-10", "2024-01-20", "2024-03-02",
    ...                                  "2024-02-14", "2024-02-20", "2024-03-25", "2024-03-30"]),
    ...     "value": [30.0, 25.0, 12.0, 40.0, 8.0, 22.0, 15.0, 9.0],
    ...     "channel": ["search", "search", "email", "email", "search", "email", "email", "search"],
    ... })
    >>> res = churn(tx, "30D", as_of="2024-04-01")
    >>> res.to_frame()[["customers", "churned_customers"]].values.tolist()
    [[5, 2]]
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
    >>> import pandas as pd
    >>> tx = pd.DataFrame({
    ...     "user_id": ["a", "a", "b", "b", "c", "d", "d", "e"],
    ...     "timestamp": pd.to_datetime(["2024-01-05", "2024-02-10", "2024-01-20", "2024-03-02",
    ...                                  "2024-02-14", "2024-02-20", "2024-03-25", "2024-03-30"]),
    ...     "value": [30.0, 25.0, 12.0, 40.0, 8.0, 22.0, 15.0, 9.0],
    ...     "channel": ["search", "search", "email", "email", "search", "email", "email", "search"],
    ... })
    >>> res = lifecycle_states(tx, "M", at_risk=1, lapsed=3)
    >>> res.to_frame()[["new", "active", "customers"]].values.tolist()
    [[2, 0, 2], [2, 1, 4], [1, 2, 5]]
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
