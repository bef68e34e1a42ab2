"""``AttributionResult``: credit per channel and model, in numbers, words and pictures.

What :func:`journeylab.attribution.compare.attribute` returns: the credit
of every model lined up per channel, bootstrap intervals and ranking
uncertainty, the Markov sequence credit, the budget view given spend, a
plain-words summary and a grouped bar chart.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from journeylab.attribution import bootstrap as boot
from journeylab.attribution.economics import ASSUMPTION, CURVE_ASSUMPTION, reallocation
from journeylab.attribution.markov import MarkovChain
from journeylab.attribution.paths import PathTable
from journeylab.core.errors import ParameterError
from journeylab.core.results import Result, fmt_ci, fmt_money, fmt_num, fmt_pct

__all__ = ["AttributionResult", "LABELS", "DATA_DRIVEN", "format_money"]

LABELS = {
    "first_touch": "first touch",
    "last_touch": "last touch",
    "last_non_direct": "last non-direct",
    "linear": "linear",
    "position": "position-based",
    "time_decay": "time-decay",
    "markov": "Markov",
    "shapley": "Shapley",
}
#: Models that estimate from converting *and* non-converting journeys.
DATA_DRIVEN = ("markov", "shapley")


def format_money(x: float | None, currency: str | None = None) -> str:
    """Write an amount with its currency: a sign (``"$"``), an ISO 4217 code or nothing.

    Codes are written as :func:`journeylab.core.results.fmt_money` writes them
    (``"EUR"`` as ``€``, ``"CHF"`` as ``CHF``); None gives a plain number.

    Examples
    --------
    >>> format_money(12345.0, "€"), format_money(12345.0, "CHF"), format_money(12.5)
    ('€12,345', 'CHF 12,345', '12.50')
    """
    return fmt_money(x, currency or "")


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _count(x: float) -> str:
    """Whole counts with separators (``19,737``); weights with 3 significant digits."""
    return f"{int(x):,}" if float(x).is_integer() else fmt_num(x)


class AttributionResult(Result):
    """Credit per channel under each model, with intervals and comparisons.

    Attributes
    ----------
    credit, value_credit : pandas.DataFrame
        Channels × models: credited conversions and credited value.
    chain : MarkovChain or None
        The fitted chain (``removal_effects_``, ``transition_matrix_`` …).
    transitions : pandas.DataFrame or None
        Top transitions by removal effect (sequence credit).
    economics : pandas.DataFrame or None
        CPA, ROAS and marginal returns per (model, channel) when spend was given.
    status : dict
        Model → ``"ok"`` or ``"not identifiable: ..."`` (then its credit is NaN).
    currency : str or None
        Sign (``"€"``) or ISO 4217 code (``"GBP"``) amounts are written with;
        None writes plain numbers.
    censoring : dict or None
        How many journeys were still open at the period end and whether they
        were left out (see :func:`journeylab.journeys.censoring_summary`); None
        for a path table that does not record it.
    """

    title = "Attribution"

    def __init__(self, **kw: Any) -> None:
        self.table: PathTable = kw["table"]
        self.models: list[str] = kw["models"]
        self.credit: pd.DataFrame = kw["credit"]
        self.value_credit: pd.DataFrame = kw["value_credit"]
        self.value: bool = kw["value"]
        self.replicates = kw["replicates"]
        self.level: float = kw["level"]
        self.n_boot: int = kw["n_boot"]
        self.seed: int = kw["seed"]
        self.chain: MarkovChain | None = kw["chain"]
        self._transitions: pd.DataFrame | None = kw.get("transitions")
        self._top_transitions: int | None = kw.get("top_transitions")
        self.shapley_se = kw["shapley_se"]
        self.shapley_method = kw["shapley_method"]
        self.economics: pd.DataFrame | None = kw["economics"]
        self.response_curves: pd.DataFrame | None = kw.get("response_curves")
        self.settings: dict[str, Any] = kw["settings"]
        self.status: dict[str, str] = kw.get("status") or {m: "ok" for m in self.models}
        self.censoring: dict[str, Any] | None = kw.get("censoring")
        self.currency: str | None = kw.get("currency")

    # -- numbers -----------------------------------------------------------------------
    @property
    def transitions(self) -> pd.DataFrame | None:
        """Top transitions by removal effect (sequence credit), None without Markov.

        Computed from the fitted chain when first asked for (one exact solve per
        transition), then kept.
        """
        if self._transitions is None and self.chain is not None:
            self._transitions = self.chain.transition_effects(top=self._top_transitions)
        return self._transitions

    @transitions.setter
    def transitions(self, frame: pd.DataFrame | None) -> None:
        self._transitions = frame

    @property
    def headline(self) -> pd.DataFrame:
        """The credit shown by :meth:`to_frame` (value when ``value=True``)."""
        return self.value_credit if self.value else self.credit

    def _reps(self, model: str) -> np.ndarray | None:
        r = self.replicates.get(model)
        return None if r is None else r[1 if self.value else 0]

    def to_frame(self) -> pd.DataFrame:
        """One row per channel, one column per model, plus ``<model>_ci_low/_ci_high``.

        Credited conversions (credited value when ``value=True``). A model
        that is not identifiable has NaN credit; ``attrs["status"]`` holds
        each model's status and ``attrs["censoring"]`` the censoring summary.
        """
        out = self.headline.copy()
        for m in self.models:
            reps = self._reps(m)
            if reps is not None:
                low, high = boot.percentile_interval(reps, self.level)
                out[f"{m}_ci_low"] = low
                out[f"{m}_ci_high"] = high
        out.attrs["status"] = dict(self.status)
        out.attrs["censoring"] = self.censoring
        return out

    @property
    def identified_models(self) -> list[str]:
        """The models that report credit (status ``"ok"``)."""
        return [m for m in self.models if self.status.get(m) == "ok"]

    def _require_identified(self, model: str) -> None:
        if self.status.get(model, "ok") != "ok":
            raise ParameterError(f"model {model!r} gives no credit here: {self.status[model]}.")

    @property
    def removal_effects(self) -> pd.Series | None:
        """Markov removal effects per channel (None without the Markov model)."""
        if self.chain is None:
            return None
        return self.chain.value_removal_effects_ if self.value else self.chain.removal_effects_

    def rank_probabilities(self, model: str) -> pd.DataFrame:
        """Probability each channel holds each rank under ``model`` (needs ``n_boot``)."""
        self._require_identified(model)
        reps = self._reps(model)
        if reps is None:
            raise ParameterError(
                f"no bootstrap replicates for model {model!r}: call attribute(..., n_boot=200)."
            )
        return boot.rank_probabilities(reps, list(self.credit.index))

    def indistinguishable(self, model: str) -> pd.DataFrame:
        """Channel pairs whose order under ``model`` the bootstrap cannot settle."""
        self._require_identified(model)
        reps = self._reps(model)
        if reps is None:
            raise ParameterError(
                f"no bootstrap replicates for model {model!r}: call attribute(..., n_boot=200)."
            )
        return boot.indistinguishable_pairs(
            reps, list(self.credit.index), self.headline[model].to_numpy(), self.level
        )

    def reallocation(self) -> pd.DataFrame | None:
        """Per model, the channel to grow and to trim at the margin (needs spend)."""
        if self.economics is None:
            return None
        by = "value_per_unit" if self.value else "conversions_per_1000"
        return reallocation(self.economics, by=by)

    # -- words -------------------------------------------------------------------------
    def _money(self, x: float | None) -> str:
        """Write an amount in the result's currency (a plain number when it has none)."""
        return format_money(x, self.currency)

    def summary(self) -> str:
        """Where the models agree and disagree, and why, with the uncertainty."""
        t = self.table
        frame = self.headline
        total_conv = float(t.conversions.sum())
        total = float(t.value.sum()) if self.value else total_conv
        what = "value" if self.value else "conversions"
        fmt = self._money if self.value else fmt_num
        lines = [
            f"{_count(float(t.journeys.sum()))} journeys over {_plural(t.n_paths, 'distinct path')} "
            f"and {_plural(len(t.channels), 'channel')}: {_count(total_conv)} conversions "
            f"(value {self._money(float(t.value.sum()))}). Credited: {what}."
        ]
        lines += self._censoring_text()
        models = self.identified_models
        if total <= 0:
            lines.append(f"No {what} to credit: every model gives every channel 0.")
            return "\n".join(lines)
        if not models:
            return "\n".join(lines)
        frame = frame[models]
        tops = {m: frame[m].idxmax() for m in models}
        if len(set(tops.values())) == 1:
            ch = next(iter(tops.values()))
            lines.append(
                f"All {len(models)} models credit {ch} most "
                f"({', '.join(f'{LABELS[m]} {fmt_pct(frame.at[ch, m] / total)}' for m in models)})."
            )
        else:
            lines.append(
                "The models disagree on the top channel: "
                + "; ".join(f"{LABELS[m]} → {c}" for m, c in tops.items())
                + "."
            )
        share = frame / total
        spread = (share.max(axis=1) - share.min(axis=1)).sort_values(ascending=False)
        for ch in spread.index[:2]:
            if spread[ch] < 0.05 or len(models) < 2:
                break
            hi, lo = share.loc[ch].idxmax(), share.loc[ch].idxmin()
            reason = self._why(ch, hi, lo)
            lines.append(
                f"{ch}: {fmt_pct(share.at[ch, hi])} of {what} under {LABELS[hi]} vs "
                f"{fmt_pct(share.at[ch, lo])} under {LABELS[lo]}{reason}."
            )
        lines += self._only_null_text()
        lines += self._uncertainty_text(fmt)
        if self.transitions is not None and len(self.transitions):
            col = "value_removal_effect" if self.value else "removal_effect"
            top = self.transitions.sort_values([col, "transition"], ascending=[False, True]).head(3)
            lines.append(
                "Sequence credit (Markov): removing the transition "
                + ", ".join(
                    f"{r.transition} loses {fmt_pct(getattr(r, col))}" for r in top.itertuples()
                )
                + f" of {what}."
            )
        if "shapley" in models:
            if self.shapley_method == "permutation" and self.shapley_se is not None:
                se = self.shapley_se[1 if self.value else 0]
                lines.append(
                    f"Shapley by permutation sampling: standard error up to {fmt_num(float(se.max()))} "
                    f"{what} per channel."
                )
            lines.append(
                f"Shapley here is the set-based game (v(S) = {what} of journeys whose "
                "channels all lie in S); its exact value splits each journey equally over its "
                "distinct channels, so it ignores touch order and gives nothing to channels "
                "seen only in non-converting journeys."
            )
        lines += self._economics_text()
        if t.notes:
            lines.append("Input: " + " ".join(t.notes))
        return "\n".join(lines)

    def _censoring_text(self) -> list[str]:
        """How many journeys were open and left out; which models cannot be identified."""
        lines = []
        c = self.censoring
        if c is not None and c["open_journeys"]:
            lines.append(c["message"])
        blocked = [m for m in self.models if self.status.get(m, "ok") != "ok"]
        if blocked:
            names = " and ".join(LABELS[m] for m in blocked)
            verb = "are" if len(blocked) > 1 else "is"
            lines.append(
                f"{names} {verb} {self.status[blocked[0]]}; no credit is reported. "
                + (
                    "The rule-based models still describe the paths, but none of them measures "
                    "which channels make conversions more likely."
                    if self.identified_models
                    else ""
                )
            )
        elif (
            c is None
            and any(m in self.models for m in DATA_DRIVEN)
            and float(self.table.non_conversions.sum()) == 0
        ):
            lines.append(
                "The table has no non-converting journeys: Markov and Shapley credit then only "
                "reflect how often each channel appears in converting paths, not which channels "
                "make conversions more likely."
            )
        return [line.strip() for line in lines]

    def _why(self, channel: str, hi: str, lo: str) -> str:
        c = self.headline
        if {"first_touch", "last_touch"} <= set(c.columns):
            f, la = c.at[channel, "first_touch"], c.at[channel, "last_touch"]
            if f > 1.5 * la:
                return " — it opens journeys more often than it closes them"
            if la > 1.5 * f:
                return " — it closes journeys more often than it opens them"
        if hi == "markov" or lo == "markov":
            return " — Markov credits channels by how many converting walks pass through them"
        return ""

    def _only_null_text(self) -> list[str]:
        t = self.table
        seen_conv = np.zeros(len(t.channels), dtype=bool)
        seen = np.zeros(len(t.channels), dtype=bool)
        for p, c, n in zip(t.paths, t.conversions, t.journeys, strict=True):
            if c > 0:
                seen_conv[list(p)] = True
            if n > 0:
                seen[list(p)] = True
        out = []
        unseen = [t.channels[i] for i in np.flatnonzero(~seen)]
        if unseen:
            out.append(f"No journey touches {', '.join(unseen)}: 0 credit under every model.")
        for i in np.flatnonzero(~seen_conv & seen):
            ch = t.channels[i]
            if "markov" in self.identified_models and self.credit.at[ch, "markov"] > 0:
                out.append(
                    f"{ch} appears only in non-converting journeys: Markov gives it "
                    f"{fmt_num(self.credit.at[ch, 'markov'])} conversions (it leads into states "
                    "that convert elsewhere), Shapley and the rule-based models give it 0."
                )
            else:
                out.append(f"{ch} appears only in non-converting journeys and earns no credit.")
        return out

    def _uncertainty_text(self, fmt) -> list[str]:
        if not self.replicates:
            return [
                "No intervals: pass n_boot (e.g. 200) for bootstrap intervals and ranking "
                "uncertainty."
            ]
        main = "markov" if "markov" in self.replicates else self.models[0]
        f = self.to_frame()
        lines = [
            f"{LABELS[main]} credit with {fmt_pct(self.level, 0)} bootstrap intervals "
            f"({self.n_boot} replicates, seed {self.seed}): "
            + ", ".join(
                f"{ch} {fmt(f.at[ch, main])} {fmt_ci(f.at[ch, main + '_ci_low'], f.at[ch, main + '_ci_high'], fmt)}"
                for ch in f[main].sort_values(ascending=False).index
            )
            + "."
        ]
        for m in self.identified_models:
            if m not in self.replicates:
                continue
            pairs = self.indistinguishable(m)
            if len(pairs):
                shown = ", ".join(
                    f"{a} vs {b}" for a, b in zip(pairs.higher, pairs.lower, strict=True)
                )
                lines.append(f"{LABELS[m]}: order not distinguishable for {shown}.")
            else:
                lines.append(f"{LABELS[m]}: every pair of channels is ranked apart.")
        return lines

    def _economics_text(self) -> list[str]:
        if self.economics is None:
            return []
        re = self.reallocation()
        lines = []
        unit = (
            "of credited value per unit of spend (ROAS)"
            if self.value
            else f"conversions per {self._money(1000)} of spend"
        )
        for r in re.itertuples():
            lines.append(
                f"Budget ({LABELS[r.model]}): {r.grow} returns {fmt_num(r.grow_return)} {unit}, "
                f"{r.trim} {fmt_num(r.trim_return)} — at the margin, money moved from {r.trim} "
                f"to {r.grow} earns most."
            )
        if len(re) and re["grow"].nunique() > 1:
            lines.append("The models disagree on where the next unit of spend earns most.")
        if self.response_curves is not None:
            c = self.response_curves
            fitted = c[c["status"] == "fitted"]
            if len(fitted):
                lines.append(
                    "Fitted elasticities (95% CI): "
                    + ", ".join(
                        f"{ch} {fmt_num(r.elasticity)} {fmt_ci(r.ci_low, r.ci_high)}"
                        for ch, r in fitted.iterrows()
                    )
                    + "."
                )
            for ch, r in c[c["status"] != "fitted"].iterrows():
                lines.append(f"{ch}: constant returns kept ({r.status}).")
            lines.append(CURVE_ASSUMPTION)
        else:
            lines.append(ASSUMPTION)
        return lines

    # -- pictures ----------------------------------------------------------------------
    def display_frame(self) -> pd.DataFrame:
        """Credit per channel and model, with intervals as ``x [lo, hi]`` text."""
        f = self.to_frame()
        fmt = self._money if self.value else fmt_num
        out = pd.DataFrame(index=f.index)
        for m in self.models:
            if self.status.get(m, "ok") != "ok":
                out[LABELS[m]] = "not identifiable"
            elif f"{m}_ci_low" in f:
                out[LABELS[m]] = [
                    f"{fmt(v)} {fmt_ci(lo, hi, fmt)}"
                    for v, lo, hi in zip(f[m], f[f"{m}_ci_low"], f[f"{m}_ci_high"], strict=True)
                ]
            else:
                out[LABELS[m]] = [fmt(v) for v in f[m]]
        return out

    def plot(self, ax=None):
        """Draw grouped bars of credit per channel and model, with interval error bars."""
        from journeylab.core.viz import PALETTE, new_axes

        f = self.to_frame()
        models = self.identified_models
        order = self.headline[models].mean(axis=1).sort_values(ascending=False).index
        n_ch, n_m = len(order), max(len(models), 1)
        ax = new_axes(ax, figsize=(min(13.0, max(7.0, 0.3 * n_ch * n_m + 2.5)), 5.0))
        width = 0.8 / n_m
        x = np.arange(n_ch)
        for k, m in enumerate(models):
            y = f.loc[order, m].to_numpy()
            err = None
            if f"{m}_ci_low" in f:
                lo = f.loc[order, f"{m}_ci_low"].to_numpy()
                hi = f.loc[order, f"{m}_ci_high"].to_numpy()
                err = np.vstack([np.clip(y - lo, 0, None), np.clip(hi - y, 0, None)])
            ax.bar(
                x + (k - (n_m - 1) / 2) * width,
                y,
                width=width * 0.95,
                yerr=err,
                color=PALETTE[k % len(PALETTE)],
                label=LABELS[m],
                error_kw={"elinewidth": 1, "capsize": 2, "ecolor": "0.25"},
            )
        ax.set_xticks(x)
        ax.set_xticklabels(
            order, rotation=30 if n_ch > 6 else 0, ha="right" if n_ch > 6 else "center"
        )
        unit = f" ({self.currency})" if self.currency else ""
        ax.set_ylabel(f"credited value{unit}" if self.value else "credited conversions")
        from matplotlib.ticker import FuncFormatter

        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ci = f" ({fmt_pct(self.level, 0)} bootstrap intervals)" if self.replicates else ""
        blocked = [LABELS[m] for m in self.models if m not in models]
        missing = f"\n{' and '.join(blocked)}: not identifiable, not shown" if blocked else ""
        ax.set_title(f"Credit per channel by model{ci}{missing}")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=9, title="model")
        ax.margins(y=0.15)
        self.ax_ = ax
        self.figure_ = ax.figure
        return ax
