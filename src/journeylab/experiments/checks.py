"""Trust checks that run before any lift is believed.

- **Unique units**: the analysis counts rows as users, so each unit
  (``user_id``) must appear once and in one variant. Repeated units and units
  seen in more than one variant are counted (rows, units repeated, units in
  more than one variant) and either flagged or, on request, left out.
- **SRM** (sample ratio mismatch): a chi-square goodness-of-fit test of the
  observed users per variant against the *designed* split (not assumed
  equal: 95/5 designs exist). Flagged below p = 0.001.
- **Pre-period imbalance**: a covariate measured before exposure should not
  differ between arms; Welch test and standardised mean difference.
- **Simpson's guard**: when the traffic split changed across periods (or
  strata), the pooled comparison mixes periods with different baselines;
  the lift is also estimated within them and combined (Mantel-Haenszel risk
  difference for rates, traffic-weighted difference for means; see
  :func:`~journeylab.experiments.period_checks.stratified_lift`), beside the pooled one, and leads the readout
  when the split changed.
- **Novelty / primacy**: a weighted regression of the per-period lift on
  time; a significant trend means the average lift is not the long-run one.

The last two, which compare periods or strata, live in
:mod:`journeylab.experiments.period_checks`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from journeylab.core.errors import DataError, ParameterError, check_in
from journeylab.core.results import fmt_num, fmt_p, fmt_pct

__all__ = [
    "Check",
    "unit_check",
    "srm_check",
    "imbalance_check",
    "SRM_THRESHOLD",
]


#: SRM p-value threshold: below it the split is flagged (industry convention).
SRM_THRESHOLD = 0.001


@dataclass
class Check:
    """The outcome of one trust check.

    ``status`` is ``"ok"``, ``"flagged"`` or ``"skipped"``; ``message`` says
    in plain words what was found and what it means.
    """

    name: str
    status: str
    message: str
    statistic: float = float("nan")
    p_value: float = float("nan")
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def flagged(self) -> bool:
        """Whether the check found a problem."""
        return self.status == "flagged"

    def as_dict(self) -> dict:
        """Name, status, statistic, p-value and message as a dict."""
        return {
            "check": self.name,
            "status": self.status,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "message": self.message,
        }


def unit_check(
    data: pd.DataFrame,
    variant: str,
    unit: str | None,
    *,
    duplicates: Literal["flag", "drop"] = "flag",
) -> tuple[Check, pd.DataFrame]:
    """Check that each unit appears once, in one variant; flag or drop the others.

    Parameters
    ----------
    data : DataFrame
        The user-level table.
    variant : str
        The variant column.
    unit : str or None
        The unit (randomisation) id column; None skips the check, saying that
        every row is counted as one user.
    duplicates : {"flag", "drop"}
        ``"flag"`` keeps every row and flags the check; ``"drop"`` leaves out
        every row of a unit that appears more than once (its outcome and its
        arm are ambiguous), and counts them.

    Returns
    -------
    (Check, DataFrame)
        The check (``details``: ``rows``, ``units``, ``repeated_units``,
        ``repeated_rows``, ``cross_variant_units``, ``dropped_rows``,
        ``dropped_units``, ``examples`` and ``first_rows``) and the table the
        analysis goes on with.

    Examples
    --------
    >>> frame = pd.DataFrame({"user_id": [1, 2, 2, 3], "variant": ["a", "a", "b", "b"]})
    >>> check, kept = unit_check(frame, "variant", "user_id", duplicates="drop")
    >>> check.details["cross_variant_units"], len(kept)
    (1, 2)
    """
    check_in("duplicates", duplicates, ["flag", "drop"])
    name = "unique units"
    n_rows = len(data)
    if unit is None:
        return (
            Check(
                name,
                "skipped",
                f"No unit id column (user_id): each of the {n_rows:,} rows is counted as one "
                "user. Pass unit= to check that every unit appears once, in one variant.",
                details={"rows": n_rows},
            ),
            data,
        )
    ids = data[unit]
    if ids.isna().any():
        rows = np.flatnonzero(ids.isna().to_numpy())
        raise DataError(
            f"{rows.size:,} rows have no {unit}, so they cannot be counted as units.",
            column=unit,
            rows=rows.tolist(),
            hint="drop the rows without an id, or fill them from the assignment log.",
        )
    per_unit = ids.value_counts(sort=False)
    repeated = per_unit[per_unit > 1]
    in_repeated = ids.isin(repeated.index).to_numpy()
    arms = data.loc[in_repeated].groupby(unit, sort=False)[variant].nunique()
    cross = int((arms > 1).sum())
    first_rows = np.flatnonzero(in_repeated)[:10].tolist()
    examples = [str(u) for u in ids.iloc[np.flatnonzero(in_repeated)].drop_duplicates().head(5)]
    details: dict[str, Any] = {
        "unit": unit,
        "rows": n_rows,
        "units": int(per_unit.size),
        "repeated_units": int(repeated.size),
        "repeated_rows": int(in_repeated.sum()),
        "cross_variant_units": cross,
        "dropped_rows": 0,
        "dropped_units": 0,
        "examples": examples,
        "first_rows": first_rows,
        "duplicates": duplicates,
    }
    if repeated.empty:
        message = f"Each of the {n_rows:,} units ({unit}) appears once, in one variant."
        return Check(name, "ok", message, details=details), data
    found = (
        f"{n_rows:,} rows hold {per_unit.size:,} distinct {unit}: {repeated.size:,} {unit} "
        f"appear more than once ({int(in_repeated.sum()):,} rows; e.g. {', '.join(examples)}; "
        f"first rows {first_rows[:5]}), {cross:,} of them in more than one variant"
    )
    if duplicates == "drop":
        details["dropped_rows"] = int(in_repeated.sum())
        details["dropped_units"] = int(repeated.size)
        kept = data.loc[~in_repeated]
        message = (
            f"Repeated units left out: {found}. Every row of those {repeated.size:,} units is "
            f"left out (duplicates='drop'): the analysis counts {len(kept):,} users, one row each."
        )
        return Check(name, "ok", message, details=details), kept
    message = (
        f"Units are not unique: {found}. Each row is counted as a user below, so repeated units "
        "count more than once and units in more than one variant saw both arms. Pass "
        "duplicates='drop' to leave every row of a repeated unit out (counted), or de-duplicate "
        "the assignments first (journeylab.load_assignments reports them)."
    )
    return Check(name, "flagged", message, details=details), data


def _normalise_split(
    variants: list[str], design_split: Mapping[str, float] | None
) -> dict[str, float]:
    if design_split is None:
        return {v: 1 / len(variants) for v in variants}
    unknown = [v for v in design_split if v not in variants]
    missing = [v for v in variants if v not in design_split]
    if unknown or missing:
        raise ParameterError(
            f"design_split must name every variant in the data {variants}; "
            f"unknown {unknown}, missing {missing}."
        )
    shares = np.array([float(design_split[v]) for v in variants])
    if (shares <= 0).any():
        raise ParameterError(f"design_split shares must be > 0; got {dict(design_split)}.")
    shares = shares / shares.sum()
    return dict(zip(variants, shares.tolist(), strict=True))


def srm_check(
    counts: Mapping[str, int],
    design_split: Mapping[str, float] | None = None,
    *,
    threshold: float = SRM_THRESHOLD,
) -> Check:
    """Sample ratio mismatch: chi-square test of users per variant against the design.

    Parameters
    ----------
    counts : mapping variant -> users
    design_split : mapping variant -> share, optional
        The split the experiment was designed with (any positive weights,
        normalised); equal split when None.
    threshold : float
        Flag when the p-value falls below it (0.001 by default).

    Examples
    --------
    >>> check = srm_check({"control": 50_000, "treatment": 51_000})
    >>> round(check.p_value, 9), check.status
    (0.001651899, 'ok')
    """
    variants = [str(v) for v in counts]
    observed = np.array([int(counts[v]) for v in counts], dtype=float)
    split = _normalise_split(variants, design_split)
    expected = observed.sum() * np.array([split[v] for v in variants])
    stat, p = stats.chisquare(observed, expected)
    stat, p = float(stat), float(p)
    shares = observed / observed.sum()
    described = ", ".join(
        f"{v} {int(o):,} ({fmt_pct(s)}; designed {fmt_pct(split[v])})"
        for v, o, s in zip(variants, observed, shares, strict=True)
    )
    details = {
        "observed": dict(zip(variants, observed.astype(int).tolist(), strict=True)),
        "expected": dict(zip(variants, expected.tolist(), strict=True)),
        "design_split": split,
        "threshold": threshold,
    }
    if p < threshold:
        message = (
            f"Sample ratio mismatch: users per variant {described}; chi-square {fmt_p(p, with_p=True)} "
            f"(below {threshold:g}). The assignment or its logging is broken (lost or duplicated "
            "users, bots, a redirect that drops users), so the lifts below are not trustworthy "
            "until the cause is found."
        )
        return Check("sample ratio mismatch", "flagged", message, stat, p, details)
    message = (
        f"No sample ratio mismatch: users per variant {described}; chi-square {fmt_p(p, with_p=True)} "
        f"(flagged below {threshold:g})."
    )
    return Check("sample ratio mismatch", "ok", message, stat, p, details)


def imbalance_check(
    data: pd.DataFrame,
    variant: str,
    control: str,
    covariates: list[str],
    *,
    threshold: float = 0.01,
) -> Check:
    """Check for pre-period imbalance: does a pre-exposure covariate differ between arms.

    Each treatment arm is compared with the control (Welch test); the check is
    flagged when any p-value falls below ``threshold``. The standardised mean
    difference (difference / pooled SD) is reported beside it.

    Examples
    --------
    >>> frame = pd.DataFrame({"variant": ["a", "b"] * 50, "x": range(100)})
    >>> imbalance_check(frame, "variant", "a", ["x"]).status
    'ok'
    """
    rows = []
    ctrl = data.loc[data[variant] == control]
    for cov in covariates:
        x_c = pd.to_numeric(ctrl[cov], errors="coerce").dropna().to_numpy(float)
        for arm, part in data.loc[data[variant] != control].groupby(variant, sort=True):
            x_t = pd.to_numeric(part[cov], errors="coerce").dropna().to_numpy(float)
            if min(x_c.size, x_t.size) < 2 or (x_c.var() + x_t.var()) == 0:
                continue
            t, p = stats.ttest_ind(x_t, x_c, equal_var=False)
            sd = math.sqrt((x_c.var(ddof=1) + x_t.var(ddof=1)) / 2)
            smd = (x_t.mean() - x_c.mean()) / sd if sd > 0 else float("nan")
            rows.append((cov, str(arm), x_c.mean(), x_t.mean(), smd, float(p)))
    table = pd.DataFrame(
        rows, columns=["covariate", "variant", "control_mean", "treatment_mean", "smd", "p_value"]
    )
    if table.empty:
        return Check("pre-period imbalance", "skipped", "No usable covariate to check.")
    worst = table.loc[table["p_value"].idxmin()]
    flagged = table[table["p_value"] < threshold]
    if len(flagged):
        message = (
            "Pre-period imbalance: "
            + "; ".join(
                f"{r.covariate} differs between {r.variant} ({fmt_num(r.treatment_mean)}) and "
                f"control ({fmt_num(r.control_mean)}) before exposure (SMD {r.smd:+.3f}, "
                f"{fmt_p(r.p_value, with_p=True)})"
                for r in flagged.itertuples()
            )
            + ". Randomisation may be compromised, or the arms differ by chance; a "
            "covariate-adjusted (CUPED) estimate removes part of the bias."
        )
        status = "flagged"
    else:
        message = (
            f"Pre-period covariates are balanced ({', '.join(covariates)}; largest |SMD| "
            f"{table['smd'].abs().max():.3f}, smallest {fmt_p(worst.p_value, with_p=True)})."
        )
        status = "ok"
    return Check(
        "pre-period imbalance",
        status,
        message,
        p_value=float(worst.p_value),
        details={"table": table},
    )
