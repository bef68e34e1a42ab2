"""The uplift result object: its tables, summary, recommendation and figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from journeylab.core.errors import ParameterError, did_you_mean, require_columns
from journeylab.core.results import Result, fmt_ci, fmt_num, fmt_pct, fmt_pp
from journeylab.customers.uplift_curves import _group_row, qini_curve, uplift_curve
from journeylab.customers.uplift_models import MODELS, _check_complete, _Design, _upper_first

__all__ = [
    "UpliftResult",
]


# --------------------------------------------------------------------------- result
@dataclass(repr=False, eq=False)
class UpliftResult(Result):
    """Fitted uplift models and their evaluation on held-out people.

    Attributes
    ----------
    models : dict
        Fitted :class:`TwoModelUplift` / :class:`ClassTransformationUplift` by name.
    predictions : pandas.DataFrame
        The test rows: ``user_id`` when present, ``treated``, ``y`` and one
        ``uplift_<model>`` column per model.
    deciles : pandas.DataFrame
        :func:`uplift_by_decile` per model (column ``model``).
    qini : pandas.DataFrame
        One row per model: ``qini``, ``qini_ci_low``, ``qini_ci_high`` and the
        top-share figures (``top_uplift`` with its interval, ``all_uplift``
        with its interval, ``top_share_of_incremental``).
    best : str
        The model with the highest Qini coefficient on the test rows.
    """

    models: dict[str, Any]
    predictions: pd.DataFrame
    deciles: pd.DataFrame
    qini: pd.DataFrame
    data: pd.DataFrame
    design: _Design
    settings: dict[str, Any]
    counts: dict[str, int]
    title: str = "Uplift models"
    notes: list[str] = field(default_factory=list)

    @property
    def best(self) -> str:
        """The model with the highest Qini coefficient on the test rows."""
        return str(self.qini.sort_values("qini", ascending=False, kind="stable")["model"].iloc[0])

    # -- scoring -----------------------------------------------------------
    def _matrix(self, frame: pd.DataFrame) -> np.ndarray:
        features = self.settings["features"]
        require_columns(frame, features, what="people")
        _check_complete(frame, features, "people")
        return self.design.matrix(frame)

    def predict(self, frame: pd.DataFrame, model: str | None = None) -> pd.Series:
        """Predicted uplift (incremental probability of the outcome) for each row of ``frame``."""
        model = self._model_name(model)
        return pd.Series(
            self.models[model].predict(self._matrix(frame)), index=frame.index, name="uplift"
        )

    def decile_of(self, frame: pd.DataFrame, model: str | None = None) -> pd.Series:
        """Decile of each row's predicted uplift (1 = most moved), cut at the test rows' deciles."""
        model = self._model_name(model)
        bins = self.settings["bins"]
        test = self.predictions[f"uplift_{model}"].to_numpy()
        # Upper quantiles of the test predictions: decile 1 holds the highest tenth.
        cuts = np.quantile(test, 1 - np.arange(1, bins) / bins)
        score = self.predict(frame, model).to_numpy()
        decile = 1 + np.sum(score[:, None] < cuts[None, :], axis=1)
        return pd.Series(decile.astype(int), index=frame.index, name="uplift_decile")

    def _model_name(self, model: str | None) -> str:
        model = model or self.best
        if model not in self.models:
            raise ParameterError(
                f"model == {model!r}, must be one of {list(self.models)}{did_you_mean(model, self.models)}."
            )
        return model

    def segment_uplift(self, column: str, *, rows: Literal["test", "all"] = "test") -> pd.DataFrame:
        """Uplift per level of ``column``: observed (Newcombe interval) and each model's mean prediction.

        Parameters
        ----------
        column : str
            A column of the data given to :func:`fit_uplift` (a feature or not).
        rows : {"test", "all"}
            Evaluate on the held-out rows (default) or on every row.

        Returns
        -------
        pandas.DataFrame
            One row per level: counts, rates, observed ``uplift`` with ``ci_low``/``ci_high``,
            and per model ``<model>_uplift`` with ``<model>_ci_low``/``<model>_ci_high``
            (delta method, from the coefficients' covariance).
        """
        require_columns(self.data, [column], what="experiment")
        frame = self.data if rows == "all" else self.data[self.data["_test"]]
        x = self.design.matrix(frame)
        z = stats.norm.ppf(1 - self.settings["alpha"] / 2)
        out = []
        for level, idx in frame.groupby(frame[column].astype(str), sort=True).indices.items():
            part = frame.iloc[idx]
            row = {
                column: level,
                **_group_row(
                    part["_y"].to_numpy(float), part["_t"].to_numpy(float), self.settings["alpha"]
                ),
            }
            for name, model in self.models.items():
                mean, se = model.mean_uplift(x[idx])
                row |= {
                    f"{name}_uplift": mean,
                    f"{name}_ci_low": mean - z * se,
                    f"{name}_ci_high": mean + z * se,
                }
            out.append(row)
        return pd.DataFrame(out)

    # -- the Result convention --------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """Return the uplift-by-decile table of every model (tidy: one row per model and decile)."""
        return self.deciles.copy()

    def qini_frame(self) -> pd.DataFrame:
        """Qini coefficient with its bootstrap interval and the top-share figures, one row per model."""
        return self.qini.copy()

    def display_frame(self) -> pd.DataFrame:
        """Return the decile table of the best model, formatted for readers."""
        d = self.deciles[self.deciles["model"] == self.best]
        return pd.DataFrame(
            {
                "decile": d["decile"],
                "treated / control": [
                    f"{a:,} / {b:,}" for a, b in zip(d["n_treated"], d["n_control"], strict=True)
                ],
                "rate treated": d["rate_treated"].map(fmt_pct),
                "rate control": d["rate_control"].map(fmt_pct),
                "uplift": d["uplift"].map(fmt_pp),
                f"{1 - self.settings['alpha']:.0%} CI": [
                    f"[{fmt_pp(lo)}, {fmt_pp(hi)}]"
                    for lo, hi in zip(d["ci_low"], d["ci_high"], strict=True)
                ],
                "predicted": d["predicted_uplift"].map(fmt_pp),
            }
        ).set_index("decile")

    def recommendation(self, model: str | None = None) -> str:
        """Plain-language targeting advice: the top share vs sending to everyone, per 1,000 people."""
        model = self._model_name(model)
        q = self.qini.set_index("model").loc[model]
        share, outcome = self.settings["top_share"], self.settings["outcome"]

        def per_k(v: float) -> str:
            return f"{1000 * v:+.1f}"

        text = (
            f"Send to the top {fmt_pct(share, 0)} ranked by the {MODELS[model]} model: "
            f"{per_k(q['top_uplift'])} extra '{outcome}' per 1,000 people sent "
            f"[{per_k(q['top_ci_low'])}, {per_k(q['top_ci_high'])}], vs {per_k(q['all_uplift'])} "
            f"[{per_k(q['all_ci_low'])}, {per_k(q['all_ci_high'])}] per 1,000 when everyone is sent; "
            f"the top {fmt_pct(share, 0)} would bring {fmt_pct(q['top_share_of_incremental'], 0)} of the "
            "extra responses of sending to everyone."
        )
        if q["qini_ci_low"] > 0:
            return (
                text
                + " The ranking is better than random targeting (the Qini interval lies above 0)."
            )
        return text + (
            " But the ranking is not detectably better than random targeting (the Qini interval includes 0): "
            "prefer sending to everyone, or test a better model before targeting."
        )

    def summary(self) -> str:
        """Describe the Qini coefficient of each model with its interval, and the recommendation."""
        s, c = self.settings, self.counts
        level = f"{1 - s['alpha']:.0%}"
        lines = [
            f"Uplift of '{s['outcome']}' for {', '.join(map(str, s['treatment']))} vs {s['control']}: "
            f"trained on {c['train_treated']:,} treated / {c['train_control']:,} control, "
            f"evaluated on {c['test_treated']:,} / {c['test_control']:,} held-out people "
            f"(seed {s['seed']}).",
        ]
        for _, r in self.qini.iterrows():
            lines.append(
                f"{_upper_first(MODELS[r['model']])}: Qini coefficient {fmt_num(r['qini'])} "
                f"{fmt_ci(r['qini_ci_low'], r['qini_ci_high'])} ({level}, {s['n_boot']:,} bootstrap resamples; "
                "0 = no better than random)."
            )
        lines.append(self.recommendation())
        lines += self.notes
        return "\n".join(lines)

    def plot(self, ax=None):
        """Qini curves of every model with the random-targeting line (incremental responders per person)."""
        return self._plot_curves(
            ax, qini_curve, "Qini curve", "incremental responders (share of people)"
        )

    def plot_uplift_curve(self, ax=None):
        """Uplift curves ``f(t)`` of every model (incremental responders per person)."""
        return self._plot_curves(
            ax, uplift_curve, "Uplift curve", "incremental responders, f(t) (share of people)"
        )

    def _plot_curves(self, ax, curve, title: str, ylabel: str):
        from journeylab.core.viz import PALETTE, new_axes, percent_axis

        ax = new_axes(ax, figsize=(7.2, 4.8))
        p = self.predictions
        n = len(p)
        end = 0.0
        for i, name in enumerate(self.models):
            c = curve(p["y"], p["treated"], p[f"uplift_{name}"])
            q = self.qini.set_index("model").loc[name, "qini"]
            ax.plot(
                c["share"],
                c["incremental"] / n,
                color=PALETTE[i],
                lw=2,
                label=f"{MODELS[name]} (Qini {fmt_num(q)})",
            )
            end = float(c["incremental"].iloc[-1]) / n
        ax.plot([0, 1], [0, end], color="0.5", ls="--", lw=1.2, label="random targeting")
        share = self.settings["top_share"]
        ax.axvline(share, color="0.3", ls=":", lw=1)
        ax.annotate(
            f"top {fmt_pct(share, 0)}",
            (share, ax.get_ylim()[0]),
            xytext=(4, 4),
            textcoords="offset points",
            fontsize=9,
        )
        percent_axis(ax, "x")
        percent_axis(ax, "y", decimals=1)
        ax.set_xlabel("people targeted, highest predicted uplift first")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{title} — '{self.settings['outcome']}' on held-out people")
        ax.legend(loc="lower right")
        return ax

    def plot_deciles(self, ax=None, model: str | None = None):
        """Observed uplift per decile of predicted uplift, with intervals, beside the predictions."""
        from journeylab.core.viz import PALETTE, new_axes

        model = self._model_name(model)
        d = self.deciles[self.deciles["model"] == model]
        ax = new_axes(ax, figsize=(7.2, 4.4))
        x = d["decile"].to_numpy()
        ax.bar(x, 100 * d["uplift"], color=PALETTE[0], alpha=0.8, label="observed uplift")
        ax.errorbar(
            x,
            100 * d["uplift"],
            yerr=[100 * (d["uplift"] - d["ci_low"]), 100 * (d["ci_high"] - d["uplift"])],
            fmt="none",
            ecolor="0.25",
            capsize=3,
            lw=1,
        )
        ax.plot(
            x, 100 * d["predicted_uplift"], "o-", color=PALETTE[1], label="mean predicted uplift"
        )
        ax.axhline(0, color="0.3", lw=0.8)
        ax.set_xticks(x)
        ax.set_xlabel("decile of predicted uplift (1 = highest)")
        ax.set_ylabel(f"uplift, percentage points ({1 - self.settings['alpha']:.0%} interval)")
        ax.set_title(f"Uplift by decile — {MODELS[model]}")
        ax.legend(loc="upper right")
        return ax
