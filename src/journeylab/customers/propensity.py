"""Who will convert and who will churn.

- :func:`~journeylab.customers.snapshots.propensity_features` turns an event
  log into one row per user and snapshot date (``as_of``): journey features
  observed strictly before ``as_of``, read off the data's own vocabulary
  (touches per channel, counts of the other events, sessions, days since first
  and last touch, the segment and numeric columns the caller or project names)
  and the label ``converted`` (a first conversion, named by the caller or the
  project, in the ``horizon_days`` after ``as_of``). Users who converted before
  ``as_of`` are not at risk and are left out. The grouping runs as DuckDB SQL.
- :func:`~journeylab.customers.snapshots.churn_features` does the same for
  customers from a transactions table (recency, frequency, tenure, spend) with
  the label ``churned`` (no purchase in the ``horizon_days`` after ``as_of``).
- :func:`fit_propensity` fits a statsmodels ``Logit`` and evaluates it on a
  time-based holdout: training rows are snapshots whose label window closes
  before ``split_date``, test rows are snapshots on or after it, so the model
  never sees the future it is scored on. AUC (Mann–Whitney) with a DeLong
  interval, a decile calibration table, and the drivers as odds ratios with
  intervals. When the classes are perfectly separated (or the fit does not
  converge) the model is refitted with a weak ridge penalty (a N(0, 1) prior
  on standardised coefficients) and its intervals come from the penalised
  information; the result says so. Every fit carries a ``status`` (``"ok"``;
  ``"boundary"`` when the classes are separated and the maximum-likelihood
  coefficients run to infinity; ``"not_converged"``; ``"not_identified"`` when
  the information matrix is singular) and plain-language ``warnings``, emits a
  :class:`~journeylab.core.errors.ModelWarning` when not ok, and says so on the
  first line of its summary. Data that cannot support a model at all (no user
  at risk, a single outcome class, fewer than ``MIN_EVENTS`` of either
  outcome in training) raise :class:`~journeylab.core.errors.NotComputableError`
  with the reason; wrap the call in
  :func:`journeylab.core.model_checks.computable_or_reason` to get a result that
  prints that reason instead.

Which touch to offer next is :func:`journeylab.attribution.next_best_touchpoint`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from journeylab.core.errors import (
    DataError,
    ModelWarning,
    NotComputableError,
    ParameterError,
    check_in,
    check_range,
    require_columns,
)
from journeylab.core.results import Result, fmt_ci, fmt_num, fmt_pct, fmt_pp
from journeylab.customers.logit import (
    _calibration,
    _choose_predictors,
    _design,
    _fit_logit,
    _fit_ridge,
    _sigmoid,
    _split,
    auc_delong,
)
from journeylab.customers.snapshots import churn_features, propensity_features

__all__ = [
    "propensity_features",
    "churn_features",
    "fit_propensity",
    "auc_delong",
    "PropensityResult",
]

#: Fewest training rows of each outcome a propensity model is fitted on (below that the
#: data cannot support one: Peduzzi et al. 1996 ask for about 10 events per predictor).
MIN_EVENTS = 10

Target = Literal["converted", "churned"]
Holdout = Literal["time", "random", "none"]


# ---------------------------------------------------------------------------
# Fitting
# ---------------------------------------------------------------------------
#: How the column prefixes of :func:`propensity_features` read in sentences.
_PREFIX_WORDS = (("touches_", "touches via "), ("n_", "number of "), ("has_", "has a "))


def _reader_name(predictor: object) -> str:
    """Write a predictor for sentences: ``n_quote`` 'number of quote', ``device[app]`` 'device = app'.

    Examples
    --------
    >>> _reader_name("n_add_to_cart"), _reader_name("touches_email"), _reader_name("platform[ios]")
    ('number of add to cart', 'touches via email', 'platform = ios')
    """
    name = str(predictor)
    if name.endswith("]") and "[" in name:
        column, level = name[:-1].split("[", 1)
        return f"{column.replace('_', ' ')} = {level}"
    if name.endswith("_max"):
        name = "largest " + name.removesuffix("_max")
    for prefix, words in _PREFIX_WORDS:
        if name.startswith(prefix) and len(name) > len(prefix):
            name = words + name.removeprefix(prefix)
            break
    return name.replace("_", " ")


@dataclass(repr=False, eq=False)
class PropensityResult(Result):
    """A fitted propensity model with its holdout evaluation.

    Attributes
    ----------
    target : str
    params : pandas.Series
        Log-odds coefficients (``const`` first) on the original units.
    cov : pandas.DataFrame
        Their covariance.
    drivers : pandas.DataFrame
        One row per predictor: ``coef``, ``se``, ``p_value``, ``odds_ratio`` with
        ``or_ci_low``/``or_ci_high`` (per unit), ``sd`` and ``odds_ratio_per_sd``
        with its interval, ``binary``; strongest (by |coef × sd|) first.
    auc, auc_se, auc_ci : float, float, tuple
        Holdout AUC (Mann–Whitney) and DeLong interval.
    calibration : pandas.DataFrame
        Deciles of predicted probability: ``n``, ``predicted``, ``observed`` (Wilson interval).
    predictions : pandas.DataFrame
        The evaluation rows: ``user_id`` / ``as_of`` when present, ``y``, ``p``.
    method : str
        ``"logit (maximum likelihood)"`` or ``"ridge logit (…)"`` after separation.
    model_ : statsmodels results or None
        The maximum-likelihood fit when it was used.
    """

    target: str
    params: pd.Series
    cov: pd.DataFrame
    drivers: pd.DataFrame
    auc: float
    auc_se: float
    auc_ci: tuple[float, float]
    auc_train: float
    calibration: pd.DataFrame
    predictions: pd.DataFrame
    method: str
    holdout: str
    split: str
    n_train: int
    n_test: int
    rate_train: float
    rate_test: float
    alpha: float
    design: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    model_: Any = None
    status: str = "ok"
    warnings: list[str] = field(default_factory=list)
    title: str = "Propensity model"

    def predict(self, features: pd.DataFrame) -> pd.Series:
        """Predicted probability of the target for each row of a feature table."""
        x = _design(features, self.design)
        return pd.Series(
            _sigmoid(x.to_numpy(float) @ self.params.to_numpy()), index=features.index, name="p"
        )

    def to_frame(self) -> pd.DataFrame:
        """Return the drivers table (odds ratios with intervals), strongest first."""
        return self.drivers.copy()

    def display_frame(self) -> pd.DataFrame:
        """Format the drivers for readers."""
        d = self.drivers
        return pd.DataFrame(
            {
                "driver": d["predictor"],
                "odds ratio": d["odds_ratio"].map(fmt_num),
                f"{1 - self.alpha:.0%} CI": [
                    fmt_ci(a, b) for a, b in zip(d["or_ci_low"], d["or_ci_high"], strict=True)
                ],
                "per SD": d["odds_ratio_per_sd"].map(fmt_num),
                "p": d["p_value"].map(lambda v: "< 0.0001" if v < 1e-4 else fmt_num(v)),
            }
        )

    def driver_sentences(self, top: int = 3) -> list[str]:
        """Describe the strongest significant drivers in plain language."""
        verb = {"converted": "converting", "churned": "churning"}.get(self.target, self.target)

        def change(ratio: float, lo: float, hi: float) -> str:
            if ratio >= 1:
                return f"multiplies the odds of {verb} by {fmt_num(ratio)} {fmt_ci(lo, hi)}"
            return (
                f"lowers the odds of {verb} by {fmt_pct(1 - ratio, 0)} "
                f"(odds ratio {fmt_num(ratio)} {fmt_ci(lo, hi)})"
            )

        out = []
        for _, r in self.drivers[self.drivers["p_value"] < self.alpha].head(top).iterrows():
            name = _reader_name(r["predictor"])
            if r["binary"]:
                out.append(
                    f"{name.capitalize()} (yes vs no) {change(r['odds_ratio'], r['or_ci_low'], r['or_ci_high'])}."
                )
            else:
                text = (
                    f"{name.capitalize()}: one standard deviation more ({fmt_num(r['sd'])}) "
                    f"{change(r['odds_ratio_per_sd'], r['or_per_sd_ci_low'], r['or_per_sd_ci_high'])}"
                )
                if r["sd"] < 20:
                    text += f"; per +1, odds ratio {fmt_num(r['odds_ratio'])}"
                out.append(text + ".")
        return out

    def summary(self) -> str:
        """Holdout discrimination, calibration and the strongest drivers."""
        level = f"{1 - self.alpha:.0%}"
        cal = self.calibration
        gap = float(np.average(np.abs(cal["observed"] - cal["predicted"]), weights=cal["n"]))
        headline = (
            "Status: ok (maximum likelihood converged; every coefficient identified)."
            if self.status == "ok"
            # the ridge refit is the remedy already applied: say what happened, not "do not use"
            else f"Status: {self.status}. {self.warnings[0][:1].upper()}{self.warnings[0][1:]}"
        )
        lines = [
            headline,
            f"Propensity of '{self.target}' ({self.method}), trained on {self.n_train:,} rows "
            f"(rate {fmt_pct(self.rate_train)}), evaluated on {self.n_test:,} {self.holdout} holdout rows "
            f"(rate {fmt_pct(self.rate_test)}; {self.split}).",
            f"Holdout AUC {self.auc:.3f} {fmt_ci(*self.auc_ci, fmt=lambda v: f'{v:.3f}')} ({level}, DeLong); "
            f"training AUC {self.auc_train:.3f}.",
            f"Calibration: predicted {fmt_pct(self.predictions['p'].mean())} vs observed "
            f"{fmt_pct(self.predictions['y'].mean())} overall; mean gap per decile {fmt_pp(gap)}.",
        ]
        lines += self.driver_sentences()
        lines += self.notes
        return "\n".join(lines)

    def plot(self, ax=None):
        """Calibration plot: observed vs predicted rate per decile, with Wilson intervals."""
        from journeylab.core.viz import PALETTE, new_axes, percent_axis

        ax = new_axes(ax, figsize=(5.6, 5.2))
        cal = self.calibration
        top = float(max(cal["observed_ci_high"].max(), cal["predicted"].max())) * 1.08
        ax.plot([0, top], [0, top], color="0.6", ls="--", lw=1, label="perfect calibration")
        # Error-bar lengths clipped at 0: matplotlib rejects the -1e-18 that
        # floating point leaves when a decile has no (or only) events.
        below = (cal["observed"] - cal["observed_ci_low"]).clip(lower=0)
        above = (cal["observed_ci_high"] - cal["observed"]).clip(lower=0)
        ax.errorbar(
            cal["predicted"],
            cal["observed"],
            yerr=[below, above],
            fmt="o-",
            color=PALETTE[0],
            capsize=3,
            lw=1.5,
            label="holdout deciles",
        )
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
        percent_axis(ax, "x")
        percent_axis(ax, "y")
        ax.set_xlabel("predicted probability (decile mean)")
        ax.set_ylabel(f"observed rate ({1 - self.alpha:.0%} Wilson interval)")
        ax.set_title(f"Calibration of '{self.target}' — AUC {self.auc:.3f}")
        ax.legend(loc="upper left")
        return ax

    def plot_drivers(self, ax=None, top: int = 12):
        """Forest plot of odds ratios per standard deviation (binary drivers: yes vs no)."""
        from journeylab.core.viz import PALETTE, new_axes

        d = self.drivers.head(top).iloc[::-1]
        binary = d["binary"].to_numpy()
        ratio = np.where(binary, d["odds_ratio"], d["odds_ratio_per_sd"])
        lo = np.where(binary, d["or_ci_low"], d["or_per_sd_ci_low"])
        hi = np.where(binary, d["or_ci_high"], d["or_per_sd_ci_high"])
        ax = new_axes(ax, figsize=(7, 0.42 * len(d) + 1.6))
        y = np.arange(len(d))
        colours = [PALETTE[2] if r >= 1 else PALETTE[3] for r in ratio]
        ax.hlines(y, lo, hi, color="0.55", lw=2)
        ax.scatter(ratio, y, color=colours, zorder=3, s=40)
        ax.axvline(1, color="0.3", lw=0.8)
        ax.set_xscale("log")
        labels = [
            f"{p} ({'yes vs no' if b else 'per SD'})"
            for p, b in zip(d["predictor"], binary, strict=True)
        ]
        ax.set_yticks(y, labels)
        ax.set_xlabel(f"odds ratio for '{self.target}' ({1 - self.alpha:.0%} interval, log scale)")
        ax.set_title("Strongest drivers")
        return ax


def fit_propensity(
    features: pd.DataFrame,
    target: Target | str = "converted",
    *,
    holdout: Holdout = "time",
    split_date: Any = None,
    predictors: Sequence[str] | None = None,
    test_size: float = 0.25,
    alpha: float = 0.05,
    bins: int = 10,
    seed: int = 0,
) -> PropensityResult:
    """Fit a logistic propensity model and evaluate it on a holdout.

    Parameters
    ----------
    features : pandas.DataFrame
        From :func:`propensity_features` or :func:`churn_features` (or any table
        with a 0/1 ``target`` column and predictors).
    target : {"converted", "churned"} or str
        The 0/1 outcome column.
    holdout : {"time", "random", "none"}
        ``"time"``: train on snapshots whose label window ends by ``split_date``,
        test on snapshots from ``split_date`` on (default split: the last snapshot).
        ``"random"``: a seeded random ``test_size`` share. ``"none"``: in-sample (optimistic).
    split_date : date, optional
        Start of the test period for the time holdout.
    predictors : sequence of str, optional
        Columns to use; default every numeric and categorical column that is not an
        id, date or label. Categorical columns become dummies against their most
        frequent level; columns constant in training are dropped (and reported).
    test_size : float
        Test share for the random holdout.
    alpha : float
        1 − confidence level for every interval.
    bins : int
        Calibration bins (deciles by default).
    seed : int
        Seed of the random holdout.

    Returns
    -------
    PropensityResult
        ``.auc`` and ``.auc_ci`` on the holdout, ``.calibration``, ``.drivers``,
        ``.plot()`` (calibration) and ``.plot_drivers()``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=400)
    >>> feats = pd.DataFrame({"x": x, "converted": (rng.random(400) < 1 / (1 + np.exp(-2 * x))).astype(int)})
    >>> res = fit_propensity(feats, holdout="random", seed=1)
    >>> res.auc > 0.75
    True
    """
    if not isinstance(features, pd.DataFrame):
        raise ParameterError(f"features must be a pandas DataFrame, not {type(features).__name__}.")
    check_in("holdout", holdout, ["time", "random", "none"])
    check_range("alpha", alpha, low=0, high=1)
    require_columns(features, [target], what="features")
    y_all = pd.to_numeric(features[target], errors="coerce")
    bad = y_all.isna() | ~y_all.isin([0, 1])
    if bad.any():
        raise DataError(
            f"The target {target!r} must be 0 or 1 in every row.",
            column=target,
            rows=list(np.flatnonzero(bad.to_numpy())),
        )
    numeric, categorical = _choose_predictors(features, target, predictors)
    if not numeric and not categorical:
        raise ParameterError("No predictor columns: pass predictors=[...] or build features first.")
    train, test, split_text = _split(
        features,
        holdout=holdout,
        split_date=split_date,
        test_size=test_size,
        seed=seed,
        target=target,
    )
    notes: list[str] = []

    tr = features.loc[train]
    levels = {}
    for c in categorical:
        counts = tr[c].astype("object").value_counts()
        if len(counts) > 1:
            levels[c] = [lv for lv in counts.index[1:]]  # the most frequent level is the reference
            notes.append(f"{c}: reference level '{counts.index[0]}'.")
    design = {"numeric": numeric, "categorical": levels, "columns": []}
    design["columns"] = [
        "const",
        *numeric,
        *[f"{c}[{lv}]" for c, lvs in levels.items() for lv in lvs],
    ]
    x_all = _design(features, design)
    missing = x_all.isna().any(axis=1).to_numpy()
    if missing.any():
        notes.append(f"{int(missing.sum()):,} rows with missing predictor values were left out.")
        train, test = train & ~missing, test & ~missing
    x_train = x_all.loc[train]
    constant = [c for c in x_train.columns[1:] if x_train[c].nunique() <= 1]
    if constant:
        notes.append(f"Constant in training, dropped: {', '.join(constant)}.")
    seen: dict[bytes, str] = {}
    duplicated = []
    for c in x_train.columns[1:]:
        key = np.ascontiguousarray(x_train[c].to_numpy(float)).tobytes()
        if key in seen and c not in constant:
            duplicated.append(c)
        seen.setdefault(key, c)
    if duplicated:
        notes.append(
            f"Identical to another predictor in training, dropped: {', '.join(duplicated)}."
        )
    if constant or duplicated:
        design["columns"] = [
            c for c in design["columns"] if c not in constant and c not in duplicated
        ]
        x_all = x_all[design["columns"]]
        x_train = x_all.loc[train]
    y_train = y_all[train].to_numpy(float)
    y_test = y_all[test].to_numpy(float)
    if y_train.min() == y_train.max():
        raise NotComputableError(
            f"Every training row has {target} = {int(y_train[0])}; nothing to learn."
        )
    events = int(y_train.sum())
    fewer = min(events, len(y_train) - events)
    if fewer < MIN_EVENTS:
        outcome = 1 if events == fewer else 0
        raise NotComputableError(
            f"Only {fewer:,} of {len(y_train):,} training rows have {target} = {outcome}; a propensity "
            f"model needs at least {MIN_EVENTS} of each outcome. Use more snapshot dates or a longer horizon."
        )
    if y_test.size and y_test.min() == y_test.max():
        raise NotComputableError(
            f"Every test row has {target} = {int(y_test[0])}: the holdout cannot measure discrimination (AUC). "
            "Use another split_date or holdout='random'."
        )
    n_predictors = len(x_train.columns) - 1
    if fewer < 10 * n_predictors:
        notes.append(
            f"{fewer:,} training rows of the rarer outcome for {n_predictors} predictors (fewer than 10 per "
            "predictor): coefficients may be unstable."
        )

    params, cov, model, reason, status = _fit_logit(y_train, x_train)
    fit_warnings: list[str] = []
    if params is None:
        params, cov = _fit_ridge(y_train, x_train)
        method = "ridge logit (N(0, 1) prior per SD)"
        notes.append(
            f"Refitted with a weak ridge penalty because {reason}; intervals are approximate."
        )
        fit_warnings.append(
            f"{reason}; the coefficients shown come from a ridge refit (N(0, 1) prior per SD) and their "
            "intervals are approximate."
        )
        warnings.warn(
            f"propensity of {target!r}: status {status!r}. {fit_warnings[0]}",
            ModelWarning,
            stacklevel=2,
        )
    else:
        method = "logit (maximum likelihood)"

    p_train = _sigmoid(x_train.to_numpy(float) @ params.to_numpy())
    p_test = _sigmoid(x_all.loc[test].to_numpy(float) @ params.to_numpy())
    auc, se, lo, hi = auc_delong(y_test, p_test, alpha=alpha)
    auc_train = auc_delong(y_train, p_train, alpha=alpha)[0]

    z = stats.norm.ppf(1 - alpha / 2)
    se_all = np.sqrt(np.diag(cov.to_numpy()))
    coef = params.to_numpy()
    sd = x_train.std(axis=0, ddof=0).to_numpy()
    drivers = pd.DataFrame(
        {
            "predictor": params.index,
            "coef": coef,
            "se": se_all,
            "z": coef / se_all,
            "p_value": 2 * stats.norm.sf(np.abs(coef / se_all)),
            "odds_ratio": np.exp(coef),
            "or_ci_low": np.exp(coef - z * se_all),
            "or_ci_high": np.exp(coef + z * se_all),
            "sd": sd,
            "odds_ratio_per_sd": np.exp(coef * sd),
            "or_per_sd_ci_low": np.exp((coef - z * se_all) * sd),
            "or_per_sd_ci_high": np.exp((coef + z * se_all) * sd),
            "binary": [bool(set(np.unique(x_train[c])) <= {0.0, 1.0}) for c in params.index],
        }
    )
    drivers = drivers[drivers["predictor"] != "const"]
    # Strength as plotted: yes vs no for binary drivers, one standard deviation for the others.
    drivers = drivers.assign(
        _strength=np.abs(drivers["coef"] * np.where(drivers["binary"], 1.0, drivers["sd"]))
    )
    drivers = (
        drivers.sort_values("_strength", ascending=False)
        .drop(columns="_strength")
        .reset_index(drop=True)
    )

    ids = [c for c in ("user_id", "as_of") if c in features.columns]
    predictions = (
        features.loc[test, ids].assign(y=y_test.astype(int), p=p_test).reset_index(drop=True)
    )
    return PropensityResult(
        target=target,
        params=params,
        cov=cov,
        drivers=drivers,
        auc=auc,
        auc_se=se,
        auc_ci=(lo, hi),
        auc_train=auc_train,
        calibration=_calibration(y_test, p_test, bins, alpha),
        predictions=predictions,
        method=method,
        holdout=holdout,
        split=split_text,
        n_train=int(train.sum()),
        n_test=int(test.sum()),
        rate_train=float(y_train.mean()),
        rate_test=float(y_test.mean()),
        alpha=alpha,
        design=design,
        notes=notes,
        model_=model,
        status=status,
        warnings=fit_warnings,
    )
