"""Does the purchase model predict a period it has not seen? The calibration/holdout check.

The standard test of a buy-till-you-die model (Fader, Hardie & Lee 2005,
"Counting Your Customers the Easy Way", Figure 4; lifetimes'
``plot_calibration_purchases_vs_holdout_purchases``):

1. split the history at ``calibration_period_end``: the models see only the
   calibration period (:func:`journeylab.clv.rfm_summary` with
   ``calibration_period_end``);
2. each fitted model predicts every customer's repeat purchases in the
   holdout period from their calibration history (the conditional expectation);
3. customers are grouped by their repeat purchases in the calibration period
   (0, 1, …, ``n_groups``+) and the mean predicted and actual holdout purchases
   are compared per group — the table and plot of the paper's figure;
4. the models (BG/NBD, MBG/NBD, Pareto/NBD by default) are ranked by the mean
   absolute error over those groups; the summary also gives the customer-level
   mean absolute error and the total predicted vs actual holdout purchases.

Purchases are counted in purchase periods of the summary's time unit
(``freq="D"``: days with a purchase, ``"W"``: weeks), as in the models.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from journeylab.clv.alternatives import ModifiedBetaGeo, ParetoNBD
from journeylab.clv.fitting import _UNIT_NAMES, Freq, _PurchaseModel
from journeylab.clv.models import BetaGeo
from journeylab.clv.rfm import rfm_summary
from journeylab.core.errors import NotComputableError, ParameterError, check_in, require_columns
from journeylab.core.results import Result, fmt_num, fmt_pct

__all__ = [
    "MODELS",
    "HoldoutComparison",
    "calibration_and_holdout",
    "compare_on_holdout",
    "plot_calibration_purchases_vs_holdout_purchases",
]

#: Purchase models the comparison knows, by name.
MODELS: dict[str, type[_PurchaseModel]] = {
    "bgnbd": BetaGeo,
    "mbgnbd": ModifiedBetaGeo,
    "pareto_nbd": ParetoNBD,
}
#: Relative difference in error below which two models count as tied.
TIE = 0.005
_HOLDOUT_COLUMNS = [
    "frequency_cal",
    "recency_cal",
    "T_cal",
    "frequency_holdout",
    "duration_holdout",
]


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" and {items[-1]}"


def _predict_holdout(model: _PurchaseModel, frame: pd.DataFrame) -> np.ndarray:
    """Each customer's expected purchases in the holdout, from the calibration history."""
    return np.asarray(
        model.conditional_expected_number_of_purchases_up_to_time(
            frame["duration_holdout"].to_numpy(float),
            frame["frequency_cal"].to_numpy(float),
            frame["recency_cal"].to_numpy(float),
            frame["T_cal"].to_numpy(float),
        ),
        dtype=float,
    )


def _frequency_groups(frequency_cal: np.ndarray, n: int) -> tuple[np.ndarray, dict[int, str]]:
    group = np.minimum(frequency_cal.astype(int), n)
    return group, {g: (f"{g}+" if g == n else str(g)) for g in range(n + 1)}


@dataclass(repr=False)
class HoldoutComparison(Result):
    """Predicted vs actual holdout purchases per calibration-frequency group, for several models.

    Attributes
    ----------
    groups : DataFrame
        One row per group of repeat purchases in the calibration period
        (``0`` … ``n+``): ``customers``, ``actual`` (mean holdout purchases) and
        one column of mean predicted purchases per model.
    errors : DataFrame
        One row per model: ``status``, ``group_mae`` (mean absolute error over
        the groups, the ranking criterion), ``customer_mae``, ``predicted_total``,
        ``actual_total``, ``total_error`` (relative), ``log_likelihood``
        (calibration period).
    models : dict
        The fitted models, by name.
    best : str
        The model with the lowest ``group_mae``.
    """

    groups: pd.DataFrame
    errors: pd.DataFrame
    models: dict[str, _PurchaseModel]
    freq: str
    duration: float
    calibration_end: pd.Timestamp | None = None
    observation_end: pd.Timestamp | None = None
    notes: list[str] = field(default_factory=list)
    title: str = "Calibration/holdout check of the purchase models"

    @property
    def best(self) -> str:
        """Name of the model closest to the holdout (lowest mean absolute error over the groups)."""
        return str(self.errors["group_mae"].idxmin())

    @property
    def tied(self) -> list[str]:
        """Models within 0.5% of the best error: the holdout cannot tell them apart."""
        mae = self.errors["group_mae"]
        return [str(n) for n in mae.index[mae <= mae.min() * (1 + TIE) + 1e-12]]

    def to_frame(self) -> pd.DataFrame:
        """Return the per-group table (mean actual and predicted holdout purchases)."""
        return self.groups.reset_index()

    def display_frame(self) -> pd.DataFrame:
        """Return the model comparison formatted for readers, best first."""
        e = self.errors.sort_values("group_mae")
        return pd.DataFrame(
            {
                "model": [self.models[n]._short for n in e.index],
                "status": e["status"],
                "MAE per group": e["group_mae"].map(lambda v: fmt_num(v)),
                "MAE per customer": e["customer_mae"].map(lambda v: fmt_num(v)),
                "predicted total": e["predicted_total"].map(lambda v: fmt_num(v, 4)),
                "actual total": e["actual_total"].map(lambda v: fmt_num(v, 4)),
                "total error": e["total_error"].map(lambda v: fmt_pct(v, signed=True)),
            }
        ).reset_index(drop=True)

    def group_display_frame(self) -> pd.DataFrame:
        """Return the per-group table formatted for readers."""
        g = self.groups
        shown = pd.DataFrame(index=g.index)
        shown["customers"] = g["customers"].map(lambda v: f"{int(v):,}")
        shown["actual"] = g["actual"].map(lambda v: fmt_num(v))
        for name in self.errors.index:
            shown[self.models[name]._short] = g[name].map(lambda v: fmt_num(v))
        shown.index.name = "repeat purchases (calibration)"
        return shown

    def summary(self) -> str:
        """Say which model predicts the holdout best, by how much, and which fits to distrust."""
        e = self.errors
        unit = _UNIT_NAMES.get(self.freq, self.freq)
        period = (
            f" (after {self.calibration_end:%Y-%m-%d}, up to {self.observation_end:%Y-%m-%d})"
            if self.calibration_end is not None and self.observation_end is not None
            else ""
        )
        tied = self.tied
        closest = (
            f"{self.models[tied[0]]._short}"
            if len(tied) == 1
            else _and([self.models[n]._short for n in tied])
            + f", tied (within {fmt_pct(TIE)} of each other: the holdout cannot tell them apart)"
        )
        lines = [
            f"{int(self.groups['customers'].sum()):,} customers acquired in the calibration period made "
            f"{fmt_num(float(e['actual_total'].iloc[0]), 4)} purchase {unit}s in the "
            f"{fmt_num(self.duration)}-{unit} holdout{period}.",
            "Predicted: "
            + "; ".join(
                f"{self.models[n]._short} {fmt_num(row.predicted_total, 4)} ({fmt_pct(row.total_error, signed=True)})"
                for n, row in e.iterrows()
            )
            + ".",
            "Mean absolute error of the mean holdout purchases per calibration-frequency group: "
            + ", ".join(f"{self.models[n]._short} {fmt_num(v)}" for n, v in e["group_mae"].items())
            + f". Closest to the holdout: {closest}.",
        ]
        for model in self.models.values():
            if model.status != "ok":
                lines.append(f"{model._short} fit: status {model.status}: {model.warnings[0]}")
        lines += self.notes
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        # the model comparison (display_frame) first, then the numbers behind the figure
        groups = self.group_display_frame().to_html(border=0, classes="jl-table")
        base = super()._repr_html_()
        closing = base.rindex("</div>")
        return (
            base[:closing]
            + "<p class='jl-summary'>Mean holdout purchases per calibration-frequency group:</p>"
            + groups
            + base[closing:]
        )

    def plot(self, ax=None):
        """Mean actual vs predicted holdout purchases per calibration-frequency group (one line per model)."""
        from journeylab.core.viz import PALETTE, new_axes

        ax = new_axes(ax, figsize=(8, 4.5))
        g = self.groups
        pos = np.arange(len(g))
        ax.plot(pos, g["actual"], marker="o", color="0.15", lw=2.2, label="actual")
        markers = ["s", "^", "D", "v"]
        for k, name in enumerate(self.errors.index):
            model = self.models[name]
            label = f"{model._short}" + ("" if model.status == "ok" else f" ({model.status})")
            ax.plot(
                pos,
                g[name],
                marker=markers[k % 4],
                linestyle="--",
                color=PALETTE[k + 1],
                label=label,
            )
        ax.set_xticks(
            pos, [f"{i}\n(n={int(c):,})" for i, c in zip(g.index, g["customers"], strict=True)]
        )
        unit = _UNIT_NAMES.get(self.freq, self.freq)
        ax.set_xlabel(f"repeat purchase {unit}s in the calibration period")
        ax.set_ylabel(f"mean purchase {unit}s in the {fmt_num(self.duration)}-{unit} holdout")
        ax.set_title("Holdout check: actual vs predicted purchases")
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper left")
        return ax


def compare_on_holdout(
    calibration_holdout: pd.DataFrame,
    *,
    models: Sequence[str] = tuple(MODELS),
    n_groups: int = 7,
    penalizer_coef: float = 0.0,
) -> HoldoutComparison:
    """Fit each model on the calibration columns and compare its holdout predictions with the actuals.

    Parameters
    ----------
    calibration_holdout : DataFrame
        From ``rfm_summary(..., calibration_period_end=...)``: ``frequency_cal``,
        ``recency_cal``, ``T_cal``, ``frequency_holdout``, ``duration_holdout``.
    models : sequence of {"bgnbd", "mbgnbd", "pareto_nbd"}
        Models to fit and compare.
    n_groups : int
        Customers with ``n_groups`` or more calibration repeat purchases form the last group.
    penalizer_coef : float
        Passed to every model.

    Returns
    -------
    HoldoutComparison
    """
    require_columns(calibration_holdout, _HOLDOUT_COLUMNS, what="calibration/holdout summary")
    models = list(models)
    if not models:
        raise ParameterError("models is empty: name at least one of " + ", ".join(MODELS) + ".")
    for name in models:
        check_in("models", name, list(MODELS))
    if int(n_groups) != n_groups or n_groups < 1:
        raise ParameterError(f"n_groups == {n_groups!r}, must be a whole number >= 1.")
    frame = calibration_holdout
    if frame.empty:
        raise NotComputableError(
            "No customer was acquired in the calibration period: nothing to compare."
        )
    freq = frame.attrs.get("freq", "D")
    actual = frame["frequency_holdout"].to_numpy(float)
    group, labels = _frequency_groups(frame["frequency_cal"].to_numpy(float), int(n_groups))
    fitted: dict[str, _PurchaseModel] = {}
    predictions: dict[str, np.ndarray] = {}
    notes = []
    for name in models:
        model = MODELS[name](penalizer_coef=penalizer_coef).fit(frame, freq=freq)
        fitted[name] = model
        predictions[name] = _predict_holdout(model, frame)
        failed = int((~np.isfinite(predictions[name])).sum())
        if failed:
            notes.append(
                f"{model._short}: no finite prediction for {failed:,} customers (a numerical failure at "
                "these parameters); its errors are not shown."
            )
    table = pd.DataFrame({"group": group, "actual": actual, **predictions})
    # a missing prediction makes its group's mean missing rather than quietly dropped
    groups = table.groupby("group").agg(
        customers=("actual", "size"),
        actual=("actual", "mean"),
        **{n: (n, lambda v: v.mean(skipna=False)) for n in models},
    )
    groups.index = [labels[g] for g in groups.index]
    groups.index.name = "frequency_cal"
    rows = {}
    for name in models:
        pred = predictions[name]
        rows[name] = {
            "status": fitted[name].status,
            "group_mae": float(
                np.mean(np.abs(groups[name].to_numpy() - groups["actual"].to_numpy()))
            ),
            "customer_mae": float(np.mean(np.abs(pred - actual))),
            "predicted_total": float(pred.sum()),
            "actual_total": float(actual.sum()),
            "total_error": float(pred.sum() / actual.sum() - 1) if actual.sum() > 0 else np.nan,
            "log_likelihood": fitted[name].log_likelihood_,
        }
    errors = pd.DataFrame.from_dict(rows, orient="index")
    errors.index.name = "model"
    return HoldoutComparison(
        groups=groups,
        errors=errors,
        models=fitted,
        freq=freq,
        duration=float(np.median(frame["duration_holdout"])),
        notes=notes,
    )


def calibration_and_holdout(
    transactions: pd.DataFrame,
    *,
    calibration_period_end: str | pd.Timestamp,
    observation_period_end: str | pd.Timestamp | None = None,
    freq: Freq = "D",
    models: Sequence[str] = tuple(MODELS),
    n_groups: int = 7,
    customer_id_col: str = "user_id",
    datetime_col: str = "timestamp",
    monetary_value_col: str | None = "value",
    refunds: Literal["drop", "keep"] = "drop",
    penalizer_coef: float = 0.0,
) -> HoldoutComparison:
    """Fit BG/NBD, MBG/NBD and Pareto/NBD on a calibration period and check them on the holdout.

    Parameters
    ----------
    transactions : DataFrame
        Purchase rows (canonical columns by default).
    calibration_period_end : date-like
        Last day of the calibration period; the holdout runs from the next
        period to ``observation_period_end``.
    observation_period_end : date-like, optional
        End of the holdout (default: the last transaction).
    freq : {"D", "W"}
        Time unit: purchase days or purchase weeks (``"h"`` works too).
    models, n_groups, penalizer_coef
        See :func:`compare_on_holdout`.
    customer_id_col, datetime_col, monetary_value_col, refunds
        See :func:`journeylab.clv.rfm_summary`.

    Returns
    -------
    HoldoutComparison
        ``.errors`` (one row per model), ``.groups`` (the figure's numbers),
        ``.best``, ``.plot()``.

    Examples
    --------
    >>> from journeylab.datasets.sample import make_sample
    >>> tx = make_sample(seed=1, n_users=2000).transactions
    >>> check = calibration_and_holdout(tx, calibration_period_end="2026-08-31", freq="W")
    >>> check.errors.index.tolist(), check.errors["group_mae"].round(2).tolist()
    (['bgnbd', 'mbgnbd', 'pareto_nbd'], [0.54, 0.51, 0.57])
    """
    summary = rfm_summary(
        transactions,
        customer_id_col=customer_id_col,
        datetime_col=datetime_col,
        monetary_value_col=monetary_value_col,
        observation_period_end=observation_period_end,
        freq=freq,
        calibration_period_end=calibration_period_end,
        refunds=refunds,
    )
    result = compare_on_holdout(
        summary, models=models, n_groups=n_groups, penalizer_coef=penalizer_coef
    )
    result.calibration_end = pd.Timestamp(calibration_period_end)
    times = pd.to_datetime(transactions[datetime_col])
    result.observation_end = (
        pd.Timestamp(observation_period_end) if observation_period_end is not None else times.max()
    )
    return result


def plot_calibration_purchases_vs_holdout_purchases(
    model: _PurchaseModel,
    calibration_holdout: pd.DataFrame,
    *,
    kind: Literal["frequency_cal", "recency_cal", "T_cal"] = "frequency_cal",
    n: int = 7,
    ax=None,
):
    """Mean actual vs model-predicted holdout purchases by calibration-period group (one model).

    Customers are grouped by ``kind`` (repeat purchases in the calibration
    period by default, the last group ``n+``); the model predicts each
    customer's holdout purchases from their calibration history. The means
    are kept on the axes as ``ax.means_``. Use :func:`compare_on_holdout` to
    compare several models.

    Examples
    --------
    >>> from journeylab.datasets.sample import make_sample
    >>> tx = make_sample(seed=1, n_users=2000).transactions
    >>> cal = rfm_summary(tx, calibration_period_end="2026-09-01")
    >>> ax = plot_calibration_purchases_vs_holdout_purchases(BetaGeo().fit(cal), cal)
    >>> ax.means_.columns.tolist(), int(ax.means_["customers"].sum())
    (['actual', 'model', 'customers'], 274)
    """
    from journeylab.core.viz import PALETTE, new_axes

    require_columns(calibration_holdout, _HOLDOUT_COLUMNS, what="calibration/holdout summary")
    check_in("kind", kind, ["frequency_cal", "recency_cal", "T_cal"])
    frame = calibration_holdout
    duration = frame["duration_holdout"].to_numpy(dtype=float)
    predicted = _predict_holdout(model, frame)
    if kind == "frequency_cal":
        group, labels = _frequency_groups(frame[kind].to_numpy(float), n)
        xlabel = "repeat purchases in the calibration period"
    else:
        edges = np.unique(np.quantile(frame[kind], np.linspace(0, 1, n + 1)))
        group = np.clip(np.searchsorted(edges, frame[kind], side="right") - 1, 0, len(edges) - 2)
        labels = {g: f"{fmt_num(edges[g])}–{fmt_num(edges[g + 1])}" for g in np.unique(group)}
        xlabel = f"{kind} (quantile groups)"
    table = pd.DataFrame(
        {"group": group, "actual": frame["frequency_holdout"].to_numpy(float), "model": predicted}
    )
    means = table.groupby("group").agg(
        actual=("actual", "mean"), model=("model", "mean"), customers=("actual", "size")
    )
    ax = new_axes(ax, figsize=(8, 4.5))
    pos = np.arange(len(means))
    ax.plot(pos, means["actual"], marker="o", color=PALETTE[0], label="actual")
    short = getattr(model, "_short", type(model).__name__)
    ax.plot(
        pos,
        means["model"],
        marker="s",
        linestyle="--",
        color=PALETTE[1],
        label=f"{short} prediction",
    )
    ax.set_xticks(
        pos,
        [f"{labels[g]}\n(n={c:,})" for g, c in zip(means.index, means["customers"], strict=True)],
    )
    ax.set_xlabel(xlabel)
    unit = _UNIT_NAMES.get(getattr(model, "freq_", "D"), "period")
    ax.set_ylabel(f"mean purchases in the holdout ({fmt_num(float(np.median(duration)))} {unit}s)")
    ax.set_title("Holdout purchases: actual vs predicted")
    ax.legend(loc="upper left")
    ax.set_ylim(bottom=0)
    ax.means_ = means
    return ax
