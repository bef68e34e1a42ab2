"""Cost per acquisition, return on ad spend and marginal returns per model.

With a spend table (``channel``, ``date``, ``cost``) each model's credit
becomes money: CPA = cost / credited conversions, ROAS = credited value /
cost. The budget view ranks channels by their return on the *next* unit of
spend. Assumption, stated in every summary: **constant returns at the
margin** — the next unit of spend earns what the average unit earned under
that model (marginal return = credit / cost). That overstates the marginal
return of channels near saturation; a diminishing-returns curve needs daily
conversions credited per channel, which a path table does not carry.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from journeylab.attribution.paths import normalise_channel
from journeylab.schema import DataError, SchemaError, require_columns

__all__ = ["spend_per_channel", "economics_table", "reallocation", "ASSUMPTION"]

ASSUMPTION = (
    "Marginal returns assume constant returns at the margin: an extra unit of spend "
    "earns what the average unit earned under each model. Channels near saturation "
    "will earn less; attribution credit is not causal lift, so test a reallocation "
    "(geo or holdout experiment) before committing budget."
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
    credit: pd.DataFrame, value_credit: pd.DataFrame, cost: pd.Series
) -> pd.DataFrame:
    """CPA, ROAS and marginal returns per (model, channel) for channels with spend.

    Parameters
    ----------
    credit, value_credit : pandas.DataFrame
        Channels × models credited conversions and value.
    cost : pandas.Series
        Cost per channel (from :func:`spend_per_channel`).

    Returns
    -------
    pandas.DataFrame
        ``model``, ``channel``, ``cost``, ``conversions``, ``value``, ``cpa``,
        ``roas``, ``conversions_per_1000`` (marginal conversions per 1,000 of
        extra spend), ``value_per_unit`` (marginal value per unit of extra spend).
    """
    records = []
    for model in credit.columns:
        for channel, c in cost.items():
            conv = float(credit[model].get(channel, 0.0))
            val = float(value_credit[model].get(channel, 0.0))
            records.append(
                {
                    "model": model,
                    "channel": channel,
                    "cost": float(c),
                    "conversions": conv,
                    "value": val,
                    "cpa": c / conv if conv > 0 else np.nan,
                    "roas": val / c if c > 0 else np.nan,
                    "conversions_per_1000": 1000 * conv / c if c > 0 else np.nan,
                    "value_per_unit": val / c if c > 0 else np.nan,
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
