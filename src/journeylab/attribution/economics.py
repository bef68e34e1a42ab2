"""Cost per acquisition, return on ad spend and marginal returns per model.

With a spend table (``channel``, ``date``, ``cost``) each model's credit
becomes money: CPA = cost / credited conversions, ROAS = credited value /
cost. The budget view ranks channels by their return on the *next* unit of
spend, under one of two stated assumptions:

* ``returns="constant"`` (default): **constant returns at the margin** — the
  next unit of spend earns what the average unit earned under that model
  (marginal return = credit / cost). It overstates the marginal return of
  channels near saturation.
* ``returns="curve"`` (needs touch timestamps): a power response curve
  ``conversions = k * cost ** b`` per channel, whose elasticity ``b`` is the
  slope of ``log(daily converting touches + 0.5)`` on ``log(daily cost)``
  (OLS, HC1 standard errors; at least 28 days with spend and a standard
  deviation of log cost >= 0.1, otherwise that channel stays at constant
  returns, with the reason). The model sets the level and the curve the
  slope: marginal return = ``b * credit / cost``, with ``b`` clipped to [0, 1].
  Spend that follows demand (more budget on busy days) biases ``b`` upwards.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from journeylab.attribution.paths import normalise_channel
from journeylab.core.errors import DataError, SchemaError, require_columns

__all__ = [
    "spend_per_channel",
    "economics_table",
    "reallocation",
    "response_curves",
    "ASSUMPTION",
    "CURVE_ASSUMPTION",
]

ASSUMPTION = (
    "Marginal returns assume constant returns at the margin: an extra unit of spend "
    "earns what the average unit earned under each model. Channels near saturation "
    "will earn less; attribution credit is not causal lift, so test a reallocation "
    "(geo or holdout experiment) before committing budget."
)


CURVE_ASSUMPTION = (
    "Marginal returns use a power response curve per channel (conversions = k * cost^b) "
    "whose elasticity b is fitted on daily spend and daily converting touches: marginal "
    "return = b x average return, b clipped to [0, 1] (no increasing returns assumed). "
    "Spend that follows demand biases b upwards; channels "
    "without enough daily variation stay at constant returns. Attribution credit is not "
    "causal lift, so test a reallocation (geo or holdout experiment) before committing budget."
)


def spend_per_channel(spend: pd.DataFrame) -> pd.Series:
    """Validate a spend table and total its cost per (normalised) channel.

    Examples
    --------
    >>> import pandas as pd
    >>> s = pd.DataFrame({"channel": ["A", "A ", "B"], "date": ["2026-01-01"] * 3,
    ...                   "cost": [10, 5, 2]})
    >>> spend_per_channel(s).to_dict()
    {'A': 15.0, 'B': 2.0}
    """
    if not isinstance(spend, pd.DataFrame):
        raise SchemaError(f"spend must be a DataFrame, got {type(spend).__name__}.")
    require_columns(spend, ["channel", "date", "cost"], what="spend")
    if spend["channel"].isna().any():
        raise DataError(
            "The spend table has rows without a channel.",
            column="channel",
            rows=np.flatnonzero(spend["channel"].isna().to_numpy()).tolist(),
        )
    cost = pd.to_numeric(spend["cost"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(cost) | (cost < 0)
    if bad.any():
        raise DataError(
            "The spend table has missing, infinite or negative costs.",
            column="cost",
            rows=np.flatnonzero(bad).tolist(),
            hint="costs must be numbers >= 0.",
        )
    channel = spend["channel"].astype(str).map(normalise_channel)
    return (
        pd.Series(cost, index=channel.to_numpy())
        .groupby(level=0)
        .sum()
        .rename_axis("channel")
        .rename("cost")
    )


def economics_table(
    credit: pd.DataFrame,
    value_credit: pd.DataFrame,
    cost: pd.Series,
    elasticity: pd.Series | None = None,
) -> pd.DataFrame:
    """CPA, ROAS and marginal returns per (model, channel) for channels with spend.

    Parameters
    ----------
    credit, value_credit : pandas.DataFrame
        Channels × models credited conversions and value.
    cost : pandas.Series
        Cost per channel (from :func:`spend_per_channel`).
    elasticity : pandas.Series, optional
        Fitted response-curve elasticity per channel (NaN = constant returns).

    Returns
    -------
    pandas.DataFrame
        ``model``, ``channel``, ``cost``, ``conversions``, ``value``, ``cpa``,
        ``roas``, ``returns`` ("constant" or "curve"), ``elasticity``,
        ``conversions_per_1000`` (marginal conversions per 1,000 of extra
        spend), ``value_per_unit`` (marginal value per unit of extra spend).
    """
    records = []
    for model in credit.columns:
        for channel, c in cost.items():
            conv = float(credit[model].get(channel, 0.0))
            val = float(value_credit[model].get(channel, 0.0))
            b = np.nan if elasticity is None else float(elasticity.get(channel, np.nan))
            slope = 1.0 if np.isnan(b) else float(np.clip(b, 0.0, 1.0))
            records.append(
                {
                    "model": model,
                    "channel": channel,
                    "cost": float(c),
                    "conversions": conv,
                    "value": val,
                    "cpa": c / conv if conv > 0 else np.nan,
                    "roas": val / c if c > 0 else np.nan,
                    "returns": "constant" if np.isnan(b) else "curve",
                    "elasticity": b,
                    "conversions_per_1000": 1000 * slope * conv / c if c > 0 else np.nan,
                    "value_per_unit": slope * val / c if c > 0 else np.nan,
                }
            )
    return pd.DataFrame(records)


def reallocation(table: pd.DataFrame, by: str = "conversions_per_1000") -> pd.DataFrame:
    """Per model, the channel to grow and the channel to trim at the margin.

    Returns
    -------
    pandas.DataFrame
        ``model``, ``grow`` (highest marginal return), ``grow_return``, ``trim``
        (lowest), ``trim_return`` and ``ratio`` (grow / trim return).
    """
    records = []
    for model, g in table.dropna(subset=[by]).groupby("model", sort=False):
        g = g[g["cost"] > 0].sort_values([by, "channel"], ascending=[False, True])
        if len(g) < 2:
            continue
        top, bottom = g.iloc[0], g.iloc[-1]
        records.append(
            {
                "model": model,
                "grow": top["channel"],
                "grow_return": top[by],
                "trim": bottom["channel"],
                "trim_return": bottom[by],
                "ratio": top[by] / bottom[by] if bottom[by] > 0 else np.inf,
            }
        )
    return pd.DataFrame(
        records, columns=["model", "grow", "grow_return", "trim", "trim_return", "ratio"]
    )


def response_curves(
    touches: pd.DataFrame,
    spend: pd.DataFrame,
    *,
    min_days: int = 28,
    min_log_sd: float = 0.1,
) -> pd.DataFrame:
    """Fit the elasticity of daily converting touches to daily cost, per channel.

    Parameters
    ----------
    touches : pandas.DataFrame
        Touch-level frame with ``timestamp``, ``channel`` and ``converted``.
    spend : pandas.DataFrame
        ``channel``, ``date``, ``cost``.
    min_days, min_log_sd : int, float
        Least number of days with spend, and least standard deviation of
        log daily cost, for a fit.

    Returns
    -------
    pandas.DataFrame
        Indexed by channel: ``elasticity``, ``ci_low``, ``ci_high`` (95 %),
        ``days``, ``status`` ("fitted" or why not).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> days = pd.date_range("2026-01-01", periods=40, tz="UTC")
    >>> cost = np.exp(np.linspace(0, 1, 40))
    >>> spend = pd.DataFrame({"channel": "A", "date": days, "cost": cost})
    >>> n = np.round(20 * cost ** 0.5).astype(int)
    >>> touches = pd.DataFrame({"timestamp": np.repeat(days, n), "channel": "A",
    ...                         "converted": True})
    >>> round(float(response_curves(touches, spend).at["A", "elasticity"]), 1)
    0.5
    """
    import statsmodels.api as sm

    spend_per_channel(spend)  # validates
    s = spend.assign(
        channel=spend["channel"].astype(str).map(normalise_channel),
        day=pd.to_datetime(spend["date"], utc=True).dt.floor("D"),
        cost=pd.to_numeric(spend["cost"]),
    )
    daily_cost = s.groupby(["channel", "day"])["cost"].sum()
    conv = touches.loc[touches["converted"].astype(bool) & touches["channel"].notna()]
    daily_touch = (
        pd.DataFrame(
            {
                "channel": conv["channel"].astype(str).map(normalise_channel).to_numpy(),
                "day": pd.to_datetime(conv["timestamp"], utc=True).dt.floor("D").to_numpy(),
            }
        )
        .groupby(["channel", "day"])
        .size()
    )
    records = {}
    for channel, costs in daily_cost.groupby(level=0):
        costs = costs.droplevel(0)
        costs = costs[costs > 0]
        y = daily_touch.get(channel, pd.Series(dtype=float))
        if isinstance(y, pd.Series) and isinstance(y.index, pd.MultiIndex):
            y = y.droplevel(0)
        y = pd.Series(y).reindex(costs.index, fill_value=0).astype(float)
        x = np.log(costs.to_numpy())
        rec = {"elasticity": np.nan, "ci_low": np.nan, "ci_high": np.nan, "days": len(costs)}
        if len(costs) < min_days:
            rec["status"] = f"only {len(costs)} days with spend (< {min_days})"
        elif x.std() < min_log_sd:
            rec["status"] = f"too little daily variation in cost (sd of log cost {x.std():.3f})"
        else:
            fit = sm.OLS(np.log(y.to_numpy() + 0.5), sm.add_constant(x)).fit(cov_type="HC1")
            low, high = fit.conf_int()[1]
            rec.update(
                elasticity=float(fit.params[1]),
                ci_low=float(low),
                ci_high=float(high),
                status="fitted",
            )
        records[channel] = rec
    out = pd.DataFrame.from_dict(records, orient="index")
    out.index.name = "channel"
    return out
