"""A plain segment-gap search, written for the tests of the planted effects.

For a funnel step, every user who entered it is one row (``converted`` True
or False) with the segment values at the step's entry. Each value of each
dimension is compared with the rest of the step's entrants by a two-sided
two-proportion z-test (``statsmodels.stats.proportion.proportions_ztest``);
the p-values of every cell searched are adjusted together with
Benjamini-Hochberg (``statsmodels.stats.multitest.multipletests``,
``method="fdr_bh"``). It is independent of the generator and of the library's
analyses, so a planted effect it finds is visible in the data itself.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportions_ztest


def step_cells(
    step: str, entrants: pd.DataFrame, dimensions: list[str], min_users: int = 30
) -> pd.DataFrame:
    """One row per (dimension, value): users, conversion rate, the rest's rate, z and p."""
    rows = []
    total_n, total_k = len(entrants), int(entrants["converted"].sum())
    for dim in dimensions:
        grouped = entrants.groupby(dim, observed=True)["converted"].agg(["size", "sum"])
        for value, (n, k) in grouped.iterrows():
            rest_n, rest_k = total_n - n, total_k - k
            if n < min_users or rest_n < min_users:
                continue
            z, p = proportions_ztest([k, rest_k], [n, rest_n])
            rows.append(
                {"step": step, "dimension": dim, "value": value, "users": int(n), "rate": k / n,
                 "rest_rate": rest_k / rest_n, "z": float(z), "p": float(p)}
            )  # fmt: skip
    return pd.DataFrame(rows)


def search(cells: list[pd.DataFrame], alpha: float = 0.05) -> pd.DataFrame:
    """Adjust all cells' p-values together (BH) and flag the significant gaps."""
    table = pd.concat(cells, ignore_index=True)
    reject, p_adj, _, _ = multipletests(table["p"].fillna(1.0), alpha=alpha, method="fdr_bh")
    table["p_adjusted"] = p_adj
    table["flagged"] = reject
    table["lower"] = reject & (table["rate"] < table["rest_rate"])
    return table


def lower(table: pd.DataFrame, step: str, dimension: str) -> set:
    """Values of a dimension flagged as converting less than the rest at a step."""
    mine = table[(table["step"] == step) & (table["dimension"] == dimension) & table["lower"]]
    return set(mine["value"])


def local_clock(stamps: pd.Series, tz: str) -> pd.DataFrame:
    """Local hour of day and day name of UTC timestamps."""
    local = stamps.dt.tz_convert(tz)
    return pd.DataFrame(
        {"hour_of_day": local.dt.hour.to_numpy(), "day_of_week": np.asarray(local.dt.day_name())},
        index=stamps.index,
    )
