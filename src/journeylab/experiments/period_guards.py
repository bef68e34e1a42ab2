"""The period checks of :func:`journeylab.experiments.analyze`: strata, the Simpson's guard and the combined trend.

They run the checks of :mod:`journeylab.experiments.period_checks` on every
metric when a period column is given.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from journeylab.core.errors import SchemaError, require_columns
from journeylab.core.results import fmt_num, fmt_p
from journeylab.experiments.checks import Check
from journeylab.experiments.readout import _ci, _precision, _signed


def _strata(
    data: pd.DataFrame, period: str | None, strata: str | Sequence[str] | None
) -> tuple[pd.Series | None, pd.Series | None, str]:
    """Return the periods (floored to days), the stratum of each user and what to call the strata."""
    periods = None
    parts: list[pd.Series] = []
    if period is not None:
        require_columns(data, [period], what="experiment")
        periods = data[period]
        if pd.api.types.is_datetime64_any_dtype(periods):
            periods = periods.dt.floor("D")
        parts.append(periods)
    columns = [strata] if isinstance(strata, str) else list(strata or [])
    require_columns(data, columns, what="experiment")
    for col in columns:
        missing = data[col].isna()
        if missing.any():
            rows = np.flatnonzero(missing.to_numpy())
            raise SchemaError(
                f"{rows.size:,} users have no {col}, so they belong to no stratum.",
                column=col,
                rows=rows.tolist(),
                hint=f"fill {col} (e.g. 'unknown') or drop those users before stratifying.",
            )
        parts.append(data[col])
    if not parts:
        return None, None, "periods"
    if len(parts) == 1:
        key = parts[0]
    else:
        key = pd.Series(
            [" · ".join(map(str, values)) for values in zip(*parts, strict=True)], index=data.index
        ).where(parts[0].notna().to_numpy())
    return periods, key, "periods" if not columns else "strata"


def _simpson_check(table: pd.DataFrame, split: Check, where: str) -> Check:
    name = "Simpson's paradox guard"
    one = "period" if where == "periods" else "stratum"
    rows = table.dropna(subset=["abs_lift", "strat_abs_lift"])
    if rows.empty:
        return Check(name, "skipped", "No stratified estimate could be computed.")
    parts, reversed_ = [], []
    for _, r in rows.iterrows():
        k = r["kind"]
        unit = " pp" if k == "binary" else ""
        d = _precision(r["strat_ci_low"], r["strat_ci_high"], k)
        parts.append(
            f"{r['variant']} on {r['metric']}: pooled {_signed(r['abs_lift'], k, d)}{unit}, within "
            f"{where} {_signed(r['strat_abs_lift'], k, d)}{unit} "
            f"{_ci(r['strat_ci_low'], r['strat_ci_high'], k, d)}"
            + (
                f" (CMH odds ratio {fmt_num(r['cmh_odds_ratio'])}, {fmt_p(r['cmh_p_value'], with_p=True)})"
                if not pd.isna(r.get("cmh_p_value", np.nan))
                else ""
            )
        )
        if np.sign(r["abs_lift"]) != np.sign(r["strat_abs_lift"]):
            reversed_.append(f"{r['variant']} on {r['metric']}")
    listing = "; ".join(parts)
    if reversed_:
        return Check(
            name,
            "flagged",
            f"Simpson's paradox: the direction of the lift reverses within {where} for "
            f"{', '.join(reversed_)} ({listing}). The {one}-stratified estimate leads the results.",
        )
    if split.flagged:
        return Check(
            name,
            "flagged",
            f"The split changed across {where}, so pooled lifts are confounded by {one}; "
            f"{one}-stratified lifts: {listing}. The stratified estimates lead the results.",
        )
    return Check(name, "ok", f"Pooled and {one}-stratified lifts agree in direction ({listing}).")


def _combine_trends(trends: list[Check]) -> Check:
    name = "novelty / primacy trend"
    if not trends:
        return Check(name, "skipped", "No comparison had enough periods for a trend test.")
    flagged = [t for t in trends if t.flagged]
    if flagged:
        return Check(name, "flagged", " ".join(t.message for t in flagged))
    usable = [t for t in trends if t.status == "ok"]
    if not usable:
        return Check(name, "skipped", "Fewer than three periods with data in both arms.")
    worst = min(usable, key=lambda t: t.p_value)
    return Check(
        name,
        "ok",
        f"No trend in the lift over periods ({len(usable)} comparison"
        f"{'s' if len(usable) != 1 else ''}; smallest p = {fmt_p(worst.p_value)}).",
        p_value=worst.p_value,
    )
