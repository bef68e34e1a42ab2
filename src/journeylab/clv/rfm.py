"""The RFM summary: one row per customer of frequency, recency, T and monetary value.

The input of every purchase model (:mod:`journeylab.clv.models`,
:mod:`journeylab.clv.alternatives`), with lifetimes' conventions:

- ``frequency``: number of *repeat* purchase periods (periods of ``freq`` with
  at least one purchase, minus the first one);
- ``recency``: time between the first and the last purchase period;
- ``T``: time between the first purchase period and the end of observation;
- ``monetary_value``: mean value of the repeat purchase periods (0 when none).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from journeylab.clv.fitting import PERIODS_PER_MONTH, Freq
from journeylab.core.errors import DataError, ParameterError, check_in
from journeylab.core.timeparse import naive_utc, to_utc_timestamp
from journeylab.customers.purchases import as_frame, period_codes, purchase_rows

__all__ = ["rfm_summary"]


def _period_summary(purchases: pd.DataFrame, end_code: int) -> pd.DataFrame:
    """Frequency / recency / T / monetary_value from (customer, code, value) purchase rows."""
    per = purchases.groupby(["customer", "code"], sort=True)["value"].sum(min_count=1).reset_index()
    grouped = per.groupby("customer", sort=True)
    stats = grouped["code"].agg(first="min", last="max", periods="size")
    first_value = grouped["value"].first()  # sorted by code: the first purchase period
    value_sum = grouped["value"].sum()
    valued = grouped["value"].count()
    first_valued = first_value.notna().astype(int)
    out = pd.DataFrame(index=stats.index)
    out["frequency"] = (stats["periods"] - 1).astype(float)
    out["recency"] = (stats["last"] - stats["first"]).astype(float)
    out["T"] = (end_code - stats["first"]).astype(float)
    repeat_valued = valued - first_valued
    repeat_sum = value_sum - first_value.fillna(0)
    out["monetary_value"] = np.where(
        repeat_valued > 0, repeat_sum / repeat_valued.clip(lower=1), 0.0
    )
    return out


def rfm_summary(
    transactions: pd.DataFrame,
    *,
    customer_id_col: str = "user_id",
    datetime_col: str = "timestamp",
    monetary_value_col: str | None = "value",
    observation_period_end: str | pd.Timestamp | None = None,
    freq: Freq = "D",
    calibration_period_end: str | pd.Timestamp | None = None,
    refunds: Literal["drop", "keep"] = "drop",
) -> pd.DataFrame:
    """One row per customer: frequency, recency, T and monetary value (lifetimes conventions).

    Purchases are collapsed to periods of ``freq`` first: several purchases on
    the same day count once with ``freq="D"`` (their values are summed).

    Parameters
    ----------
    transactions : DataFrame
        Purchase rows.
    customer_id_col, datetime_col, monetary_value_col : str
        Column roles (canonical names by default). ``monetary_value_col=None``
        leaves out ``monetary_value``.
    observation_period_end : date-like, optional
        End of observation (default: the last transaction); later rows are ignored.
    freq : {"D", "W", "h"}
        Time unit of the summary: day, ISO week (Monday start) or hour.
    calibration_period_end : date-like, optional
        Split into a calibration period (``frequency_cal``, ``recency_cal``,
        ``T_cal``, ``monetary_value_cal``, summarised exactly as above) and a
        holdout period up to ``observation_period_end`` (``frequency_holdout``:
        purchase periods in the holdout, ``monetary_value_holdout``: their mean
        value (lifetimes averages the raw rows instead), ``duration_holdout``).
        Only customers acquired in the
        calibration period are kept. A period belongs to the calibration when
        it starts on or before ``calibration_period_end``.
    refunds : {"drop", "keep"}
        ``"drop"`` (default): rows with value <= 0 are refunds, not purchases,
        and are left out. ``"keep"``: every row is a purchase and values are
        netted per period (what lifetimes does with such rows).

    Returns
    -------
    DataFrame
        Indexed by customer id. ``.attrs`` holds ``freq`` and the counts of rows
        left out (``rows_without_id``, ``refund_rows``, ``rows_after_end``).

    Examples
    --------
    >>> tx = pd.DataFrame({"user_id": ["a", "a", "a", "b", "c", "c"],
    ...     "timestamp": pd.to_datetime(["2026-01-01", "2026-01-01", "2026-02-10", "2026-01-20",
    ...                                  "2026-01-05", "2026-03-01"], utc=True),
    ...     "value": [20.0, 10.0, 40.0, 15.0, 25.0, 35.0]})
    >>> rfm_summary(tx, observation_period_end="2026-03-31")  # doctest: +NORMALIZE_WHITESPACE
             frequency  recency     T  monetary_value
    user_id
    a              1.0     40.0  89.0            40.0
    b              0.0      0.0  70.0             0.0
    c              1.0     55.0  85.0            35.0
    """
    check_in("freq", freq, list(PERIODS_PER_MONTH))
    purchases, left_out = purchase_rows(
        transactions,
        customer_id_col=customer_id_col,
        datetime_col=datetime_col,
        value_col=monetary_value_col,
        refunds=refunds,
    )
    all_times = naive_utc(as_frame(transactions)[0][datetime_col], datetime_col)
    if observation_period_end is None:
        end_time = all_times.max()
    else:
        end_time = to_utc_timestamp(observation_period_end, "observation_period_end").tz_localize(
            None
        )
    end_code = int(period_codes(pd.Series([end_time]), freq)[0])
    purchases["code"] = period_codes(purchases["time"], freq)
    after = purchases["code"].to_numpy() > end_code
    left_out["rows_after_end"] = int(after.sum())
    purchases = purchases[~after]
    if purchases.empty:
        raise DataError(
            "No purchases with a customer id before the end of observation.",
            column=customer_id_col,
            hint="check the id and value columns and observation_period_end.",
        )
    if calibration_period_end is None:
        out = _period_summary(purchases, end_code)
        if monetary_value_col is None:
            out = out.drop(columns="monetary_value")
    else:
        cal_time = to_utc_timestamp(calibration_period_end, "calibration_period_end").tz_localize(
            None
        )
        cal_code = int(period_codes(pd.Series([cal_time]), freq)[0])
        if cal_code >= end_code:
            raise ParameterError(
                f"calibration_period_end == {calibration_period_end!r} leaves no holdout period before "
                f"the end of observation ({end_time:%Y-%m-%d %H:%M}).",
            )
        calibration = purchases[purchases["code"] <= cal_code]
        if calibration.empty:
            raise DataError(
                f"No purchases on or before calibration_period_end == {calibration_period_end!r}."
            )
        out = _period_summary(calibration, cal_code)
        out.columns = [f"{c}_cal" for c in out.columns]
        holdout = purchases[purchases["code"] > cal_code]
        per = (
            holdout.groupby(["customer", "code"], sort=True)["value"]
            .sum(min_count=1)
            .groupby(level=0)
        )
        out["frequency_holdout"] = per.size().reindex(out.index).fillna(0).astype(float)
        out["monetary_value_holdout"] = per.mean().reindex(out.index).fillna(0.0)
        out["duration_holdout"] = float(end_code - cal_code)
        if monetary_value_col is None:
            out = out.drop(columns=["monetary_value_cal", "monetary_value_holdout"])
    out.index.name = customer_id_col
    out.attrs = {"freq": freq, **left_out}
    return out
