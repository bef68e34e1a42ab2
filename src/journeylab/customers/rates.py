"""Repeat-purchase rate, and the rate tables, intervals and figures it shares with churn."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from journeylab.core.errors import DataError, NotComputableError
from journeylab.core.results import Result, fmt_ci, fmt_num, fmt_pct
from journeylab.core.timeparse import parse_duration, to_utc_timestamp
from journeylab.customers.purchases import (
    _customer_frame,
    _segment_of,
    describe_left_out,
    purchase_rows,
)

__all__ = [
    "RepeatRateResult",
    "repeat_purchase_rate",
]


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
        (they could not have been seen repeating yet) and counted. When that leaves
        nobody, :class:`~journeylab.core.errors.NotComputableError` says so.
    as_of : date-like, optional
        End of the observation (default: the last purchase).
    alpha : float
        1 - confidence of the Wilson intervals.

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
    >>> res = repeat_purchase_rate(tx, segment="channel")
    >>> res.to_frame()[["segment", "customers", "repeat_customers"]].values.tolist()
    [['email', 2, 2], ['search', 3, 1], ['all', 5, 3]]
    >>> print(res.summary().splitlines()[1])
    By segment: email 100.0%, search 33.3%.
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
        if not observable.any():
            raise NotComputableError(
                f"all {too_recent:,} customers made their first purchase less than "
                f"{_duration_words(within)} before {as_of:%Y-%m-%d}: nobody can be counted as "
                "a repeat customer or not yet.\nPass a shorter within=, a later as_of= or a "
                "longer purchase history."
            )
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
