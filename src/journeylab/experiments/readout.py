"""The experiment readout object: the numbers, the plain-language text and the forest plot.

:class:`ExperimentResult` is what :func:`journeylab.experiments.analyze`
returns: ``to_frame()`` has one row per (metric, variant) with the columns
of :data:`FRAME_COLUMNS`, followed by :data:`STRAT_COLUMNS` when a period or
strata were given; ``summary()`` and the HTML rendering show the trust checks
first, then one sentence per comparison (led by the stratified estimate when
the split changed across strata), then the methods; ``plot()`` draws a forest
plot.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from journeylab.core.errors import check_in
from journeylab.core.results import (
    Result,
    fmt_ci,
    fmt_num,
    fmt_p,
    fmt_pct,
    fmt_pp,
    interval_precision,
)
from journeylab.experiments.checks import Check
from journeylab.experiments.metrics import Metric
from journeylab.experiments.multiple import CORRECTION_NAMES

__all__ = ["ExperimentResult", "FRAME_COLUMNS", "STRAT_COLUMNS"]

#: The columns of ``ExperimentResult.to_frame()``, in order.
FRAME_COLUMNS = [
    "metric",
    "variant",
    "n_control",
    "n_treatment",
    "control_mean",
    "treatment_mean",
    "abs_lift",
    "abs_ci_low",
    "abs_ci_high",
    "rel_lift",
    "rel_ci_low",
    "rel_ci_high",
    "p_value",
    "p_value_adjusted",
    "method",
    "status",
]

#: Columns ``to_frame()`` adds after :data:`FRAME_COLUMNS` when the analysis had a
#: period or strata: the stratified estimate beside the pooled one, and which of
#: the two leads the readout.
STRAT_COLUMNS = [
    "strat_abs_lift",
    "strat_ci_low",
    "strat_ci_high",
    "strat_p_value",
    "strat_p_value_adjusted",
    "headline_estimate",
]


def _signed(x: float, kind: str, precision: int | None = None) -> str:
    """Format a signed lift: pp with ``precision`` decimals for rates, else significant digits."""
    if pd.isna(x):
        return "–"
    if math.isinf(x):
        return "+∞" if x > 0 else "-∞"
    if kind == "binary":
        return f"{x * 100:+.{1 if precision is None else precision}f}"
    sign = "+" if x >= 0 else "-"
    return f"{sign}{fmt_num(abs(x), 3 if precision is None else precision)}"


def _precision(low: float, high: float, kind: str) -> int:
    """Precision at which an interval's two ends print differently (see ``interval_precision``)."""
    if kind == "binary":
        finite = [abs(v) for v in (low, high) if not pd.isna(v) and math.isfinite(v)]
        start = 2 if finite and max(finite) < 0.01 else 1
        return interval_precision(low, high, fmt_pp, start)
    return interval_precision(low, high, fmt_num, 3)


def _ci(low: float, high: float, kind: str, precision: int | None = None) -> str:
    """``[+0.18, +0.23]``; a one-sided interval as ``[-0.38, +∞)``."""
    p = _precision(low, high, kind) if precision is None else precision
    left = "(" if not pd.isna(low) and math.isinf(low) else "["
    right = ")" if not pd.isna(high) and math.isinf(high) else "]"
    return f"{left}{_signed(low, kind, p)}, {_signed(high, kind, p)}{right}"


def _relative(row: pd.Series, prefix: str = "rel") -> str:
    """``+5.8% [+1.6%, +10.1%]`` with enough decimals for the ends to differ."""
    lo, hi = row[f"{prefix}_ci_low"], row[f"{prefix}_ci_high"]
    p = interval_precision(lo, hi, fmt_pct)
    return (
        f"{fmt_pct(row[f'{prefix}_lift'], p, signed=True)} {fmt_ci(lo, hi, fmt_pct, signed=True)}"
    )


def _level(x: float, kind: str, decimals: int | None = None) -> str:
    if kind != "binary":
        return fmt_num(x)
    if decimals is None:
        decimals = 2 if 0 < abs(x) < 0.01 else 1
    return fmt_pct(x, decimals)


def _prob(p: float) -> str:
    """``= 97.5%``, ``> 99.9%`` or ``< 0.1%``."""
    if p > 0.999:
        return "> 99.9%"
    if p < 0.001:
        return "< 0.1%"
    return f"= {fmt_pct(p)}"


@dataclass(repr=False)
class ExperimentResult(Result):
    """Readout of an A/B/n experiment.

    Attributes
    ----------
    table : DataFrame
        One row per (metric, variant) with every computed column
        (``to_frame(detailed=True)``).
    checks : list of Check
        Trust checks, in the order they are shown.
    control, alpha, correction, alternative : as passed to :func:`analyze`.
    omnibus : DataFrame
        k-sample chi-square test per binary metric when there are 3+ arms.
    """

    table: pd.DataFrame
    checks: list[Check]
    control: str
    alpha: float
    correction: str | None
    metrics: list[Metric]
    omnibus: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list[str] = field(default_factory=list)
    alternative: str = "two-sided"

    title = "Experiment readout"

    # ------------------------------------------------------------------ numbers
    def to_frame(self, detailed: bool = False) -> pd.DataFrame:
        """One row per (metric, variant).

        The default columns are :data:`FRAME_COLUMNS`, then, with a period or
        strata, :data:`STRAT_COLUMNS` (the stratified estimate, its interval,
        p-value and adjusted p-value, and ``headline_estimate``: "stratified"
        when it leads the readout, else "pooled"); ``detailed=True`` adds the
        relative lift's own p-value, the test statistic, CUPED, CMH and
        Bayesian columns.
        """
        columns = FRAME_COLUMNS + [c for c in STRAT_COLUMNS if c in self.table.columns]
        frame = self.table if detailed else self.table[columns]
        return frame.reset_index(drop=True).copy()

    def checks_frame(self) -> pd.DataFrame:
        """Return the trust checks as a table (check, status, statistic, p_value, message)."""
        return pd.DataFrame([c.as_dict() for c in self.checks])

    @property
    def flagged(self) -> list[Check]:
        """Checks that found a problem."""
        return [c for c in self.checks if c.flagged]

    # --------------------------------------------------------------------- text
    def _stratified(self, row: pd.Series) -> bool:
        return row.get("headline_estimate") == "stratified"

    def _where(self) -> str:
        split = next((c for c in self.checks if c.name.startswith("split change across")), None)
        return split.name.removeprefix("split change across ") if split else "strata"

    def _stratified_sentence(self, row: pd.Series) -> str:
        """Say the stratified estimate first, then the pooled one the changing split confounds."""
        kind, unit = row["kind"], " pp" if row["kind"] == "binary" else ""
        level = f"{(1 - self.alpha) * 100:g} %"
        sided = "" if self.alternative == "two-sided" else "one-sided "
        where = self._where()
        how = (
            "Mantel-Haenszel risk difference"
            if kind == "binary"
            else "traffic-weighted difference of means"
        )
        adj = row["strat_p_value_adjusted"]
        p_text = fmt_p(row["strat_p_value"], with_p=True)
        if self.correction is not None:
            p_text += f", {CORRECTION_NAMES[self.correction]}-adjusted {fmt_p(adj)}"
        d = _precision(row["strat_ci_low"], row["strat_ci_high"], kind)
        lift = (
            f"{_signed(row['strat_abs_lift'], kind, d)}{unit}, {level} {sided}CI "
            f"{_signed(row['strat_ci_low'], kind, d)} to {_signed(row['strat_ci_high'], kind, d)}{unit}"
        )
        if not math.isnan(adj) and adj < self.alpha:
            verb = "raised" if row["strat_abs_lift"] > 0 else "lowered"
            head = f"Within {where}, variant {row['variant']} {verb} {row['metric']}"
        else:
            change = {"larger": "raise", "smaller": "lower"}.get(self.alternative, "change")
            head = f"Within {where}, variant {row['variant']} did not detectably {change} {row['metric']}"
        pd_ = _precision(row["abs_ci_low"], row["abs_ci_high"], kind)
        text = (
            f"{head} ({how}: {lift}; {p_text}). Pooled over {where}, which the changing split "
            f"confounds: {_level(row['treatment_mean'], kind)} vs {_level(row['control_mean'], kind)} "
            f"in control ({_signed(row['abs_lift'], kind, pd_)}{unit} "
            f"{_ci(row['abs_ci_low'], row['abs_ci_high'], kind, pd_)}; {fmt_p(row['p_value'], with_p=True)})."
        )
        if not math.isnan(row["rel_lift"]):
            text += f" Pooled relative lift {_relative(row)}."
        return text

    def _sentence(self, row: pd.Series) -> str:
        kind = row["kind"]
        level = f"{(1 - self.alpha) * 100:g} %"
        unit = " pp" if kind == "binary" else ""
        if row["status"].startswith("not computable"):
            return (
                f"Variant {row['variant']} on {row['metric']}: {row['status']}. No estimate is "
                "reported."
            )
        if self._stratified(row):
            d = _precision(row["abs_ci_low"], row["abs_ci_high"], kind)
            return self._stratified_sentence(row) + self._sentence_tail(
                row, kind, unit, d, pooled=True
            )
        adj = row["p_value_adjusted"]
        decisive = adj < self.alpha if not math.isnan(adj) else False
        p_text = fmt_p(row["p_value"], with_p=True)
        if self.correction is not None:
            p_text += f", {CORRECTION_NAMES[self.correction]}-adjusted {fmt_p(adj)}"
        d = _precision(row["abs_ci_low"], row["abs_ci_high"], kind)
        sided = "" if self.alternative == "two-sided" else "one-sided "
        ci = (
            f"{level} {sided}CI {_signed(row['abs_ci_low'], kind, d)} to "
            f"{_signed(row['abs_ci_high'], kind, d)}{unit}"
        )
        lift = f"{_signed(row['abs_lift'], kind, d)}{unit}"
        low = min(abs(row["control_mean"]), abs(row["treatment_mean"]))
        decimals = 2 if 0 < low < 0.01 else 1
        frm = _level(row["control_mean"], kind, decimals)
        to = _level(row["treatment_mean"], kind, decimals)
        if decisive:
            verb = "raised" if row["abs_lift"] > 0 else "lowered"
            text = f"Variant {row['variant']} {verb} {row['metric']} from {frm} to {to} ({lift}, {ci}; {p_text})."
        else:
            change = {"larger": "raise", "smaller": "lower"}.get(self.alternative, "change")
            text = (
                f"Variant {row['variant']} did not detectably {change} {row['metric']}: {to} vs "
                f"{frm} in control ({lift}, {ci}; {p_text})."
            )
        if not math.isnan(row["rel_lift"]):
            text += f" Relative lift {_relative(row)}."
        elif row["status"] != "ok":
            text += f" ({row['status']}.)"
        return text + self._sentence_tail(row, kind, unit, d)

    def _sentence_tail(
        self, row: pd.Series, kind: str, unit: str, d: int, *, pooled: bool = False
    ) -> str:
        """CUPED, Bayesian and notes after the main sentence."""
        text = ""
        if row.get("cuped_theta") is not None and not pd.isna(row.get("cuped_theta")):
            raw = f"{_signed(row['raw_abs_lift'], kind, d)}{unit}"
            text += (
                f" The {'pooled ' if pooled else ''}lift is CUPED-adjusted for {row['cuped_covariate']} (θ = "
                f"{fmt_num(row['cuped_theta'])}; raw difference {raw}), which cut the variance by "
                f"{fmt_pct(row['variance_reduction'])}."
            )
        if not pd.isna(row.get("prob_beats_control", np.nan)):
            text += (
                f" P({row['variant']} beats control) {_prob(row['prob_beats_control'])} "
                f"({row['bayes_prior']}{'; pooled' if pooled else ''})."
            )
        if row.get("notes"):
            text += f" Note: {row['notes']}."
        return text

    def _result_lines(self) -> list[str]:
        lines = [self._sentence(row) for _, row in self.table.iterrows()]
        for _, row in self.omnibus.iterrows():
            lines.append(
                f"All {row['arms']} arms on {row['metric']}: chi-square {fmt_num(row['chi2'])} "
                f"(df {row['df']}), {fmt_p(row['p_value'], with_p=True)}."
            )
        lines.extend(f"Note: {n}." for n in self.notes)
        return lines

    def _method_lines(self) -> list[str]:
        methods = self.table.groupby("metric", sort=False)["method"].first()
        return [f"{metric}: {method}." for metric, method in methods.items()]

    def summary(self) -> str:
        """Trust checks first, then one plain sentence per (metric, variant), then methods."""
        lines = ["Trust checks:"]
        for check in self.checks:
            if check.status == "skipped":
                reason = check.message[:1].lower() + check.message[1:]
                lines.append(f"  – {check.name[:1].upper()}{check.name[1:]} not run: {reason}")
                continue
            mark = "⚠" if check.flagged else "✓"
            lines.append(f"  {mark} {check.message}")
        if self.flagged:
            lines.append("  → Resolve the flagged checks before acting on the results below.")
        n_tests = int(self.table["p_value"].notna().sum())
        lines.append(
            f"Results ({CORRECTION_NAMES[self.correction]} p-values"
            + (
                f" across {n_tests} comparison{'s' if n_tests != 1 else ''}"
                if self.correction
                else ""
            )
            + f", α = {self.alpha:g}"
            + (
                ""
                if self.alternative == "two-sided"
                else f"; one-sided, H1: treatment {'>' if self.alternative == 'larger' else '<'} control"
            )
            + "):"
        )
        lines.extend(f"  {line}" for line in self._result_lines())
        lines.append("Methods:")
        lines.extend(f"  {line}" for line in self._method_lines())
        return "\n".join(lines)

    def display_frame(self) -> pd.DataFrame:
        """Return the table formatted for readers (percentages for rates, [lo, hi] intervals)."""
        out = []
        for _, r in self.table.iterrows():
            k = r["kind"]
            unit = " pp" if k == "binary" else ""
            ok = not r["status"].startswith("not computable")
            d = _precision(r["abs_ci_low"], r["abs_ci_high"], k)
            rp = interval_precision(r["rel_ci_low"], r["rel_ci_high"], fmt_pct)
            out.append(
                {
                    "metric": r["metric"],
                    "variant": r["variant"],
                    "users (c / t)": f"{r['n_control']:,} / {r['n_treatment']:,}",
                    "control": _level(r["control_mean"], k),
                    "treatment": _level(r["treatment_mean"], k),
                    "lift": f"{_signed(r['abs_lift'], k, d)}{unit}" if ok else "–",
                    "CI": f"{_ci(r['abs_ci_low'], r['abs_ci_high'], k, d)}{unit}" if ok else "–",
                    "relative": fmt_pct(r["rel_lift"], rp, signed=True),
                    "relative CI": fmt_ci(r["rel_ci_low"], r["rel_ci_high"], fmt_pct, signed=True),
                    "p": fmt_p(r["p_value"]),
                    "p adjusted": fmt_p(r["p_value_adjusted"]),
                    **self._stratified_cells(r, unit),
                    "status": r["status"],
                }
            )
        return pd.DataFrame(out)

    def _stratified_cells(self, r: pd.Series, unit: str) -> dict[str, str]:
        if "strat_abs_lift" not in self.table.columns:
            return {}
        where = self._where()
        k = r["kind"]
        if pd.isna(r["strat_abs_lift"]):
            return {
                f"lift within {where}": "–",
                f"CI within {where}": "–",
                f"p within {where}": "–",
            }
        d = _precision(r["strat_ci_low"], r["strat_ci_high"], k)
        lead = " (leads)" if self._stratified(r) else ""
        return {
            f"lift within {where}": f"{_signed(r['strat_abs_lift'], k, d)}{unit}{lead}",
            f"CI within {where}": f"{_ci(r['strat_ci_low'], r['strat_ci_high'], k, d)}{unit}",
            f"p within {where}": fmt_p(r["strat_p_value"]),
        }

    def _repr_html_(self) -> str:
        """Trust checks first (highlighted when flagged), then findings, table, methods."""
        checks = "".join(
            f'<li class="jl-check-{c.status}">'
            f"<b>{'⚠ ' if c.flagged else ''}{html.escape(c.name)}</b>: {html.escape(c.message)}</li>"
            for c in self.checks
        )
        style = "border-left:4px solid #d55e00;padding-left:8px" if self.flagged else ""
        findings = "<br>".join(html.escape(line) for line in self._result_lines())
        methods = "<br>".join(html.escape(line) for line in self._method_lines())
        table = self.display_frame().to_html(index=False, na_rep="–", border=0, classes="jl-table")
        return (
            f'<div class="jl-result"><h4>{html.escape(self.title)}</h4>'
            f'<div class="jl-checks" style="{style}"><h4>Trust checks</h4><ul>{checks}</ul></div>'
            f'<p class="jl-summary">{findings}</p>{table}'
            f'<p class="jl-methods"><small>{methods}</small></p></div>'
        )

    # --------------------------------------------------------------------- plot
    def plot(self, ax=None, scale: Literal["relative", "absolute"] | None = None):
        """Forest plot: each (metric, variant) lift with its CI, zero marked.

        ``scale="relative"`` puts every metric on one % axis; ``"absolute"``
        shows differences in metric units (pp for rates) and, with a period
        or strata, the stratified estimate beside the pooled one (the one
        that leads the readout in colour, the other in grey). The default is
        ``"absolute"`` when a stratified estimate leads, else ``"relative"``.
        """
        from matplotlib.ticker import MaxNLocator

        from journeylab.core.viz import PALETTE, new_axes, percent_axis

        leads = bool(
            "headline_estimate" in self.table.columns
            and (self.table["headline_estimate"] == "stratified").any()
        )
        if scale is None:
            scale = "absolute" if leads else "relative"
        check_in("scale", scale, ["relative", "absolute"])
        rows = self.table.iloc[::-1].reset_index(drop=True)
        ax = new_axes(ax, figsize=(8, max(2.6, 1.0 + 0.55 * len(rows))))
        prefix = "rel" if scale == "relative" else "abs"
        col = "rel_lift" if scale == "relative" else "abs_lift"
        strat = scale == "absolute" and "strat_abs_lift" in rows.columns
        y = np.arange(len(rows))
        factors = np.where((rows["kind"] == "binary") & (scale == "absolute"), 100.0, 1.0)
        columns = [col, f"{prefix}_ci_low", f"{prefix}_ci_high"]
        if strat:
            columns += ["strat_abs_lift", "strat_ci_low", "strat_ci_high"]
        finite = np.concatenate(
            [rows[c].to_numpy(float) * factors for c in columns] + [np.zeros(1)]
        )
        finite = finite[np.isfinite(finite)]
        # a one-sided interval runs to an arrow just past the finite ends
        reach = 0.25 * max(float(finite.max() - finite.min()), 1e-12)
        edges = (float(finite.min()) - reach, float(finite.max()) + reach)

        def draw(i, est, lo, hi, factor, color, marker: str, hollow: bool = False):
            left = edges[0] if math.isinf(lo) else lo * factor
            right = edges[1] if math.isinf(hi) else hi * factor
            ax.errorbar(
                est * factor,
                i,
                xerr=[[est * factor - left], [right - est * factor]],
                fmt=marker,
                color=color,
                ecolor=color,
                mfc="white" if hollow else color,
                capsize=4,
                lw=1.2 if hollow else 2,
                ms=7,
            )
            for end, edge, arrow in ((lo, left, "<"), (hi, right, ">")):
                if math.isinf(end):
                    ax.plot(edge, i, marker=arrow, color=color, ms=8)

        def colour(est: float, lo: float, hi: float):
            significant = lo > 0 or hi < 0
            return (PALETTE[2] if est > 0 else PALETTE[3]) if significant else "0.3"

        shown_strat = False
        for i, r in rows.iterrows():
            est, lo, hi = r[col], r[f"{prefix}_ci_low"], r[f"{prefix}_ci_high"]
            factor = factors[i]
            if pd.isna(est) or pd.isna(lo):
                ax.annotate(
                    "not computable",
                    (0, i),
                    xytext=(6, 0),
                    textcoords="offset points",
                    va="center",
                    color="0.4",
                    fontstyle="italic",
                )
                continue
            has_strat = (
                strat and not pd.isna(r["strat_abs_lift"]) and not pd.isna(r["strat_ci_low"])
            )
            lead = has_strat and self._stratified(r)
            color = colour(est, lo, hi)
            offset = 0.16 if has_strat else 0.0
            draw(i - offset, est, lo, hi, factor, "0.6" if lead else color, "o", hollow=lead)
            if scale == "relative":
                label = _relative(r)
            else:
                d = _precision(lo, hi, r["kind"])
                label = f"{_signed(est, r['kind'], d)} {_ci(lo, hi, r['kind'], d)}"
            if has_strat:
                s_est, s_lo, s_hi = r["strat_abs_lift"], r["strat_ci_low"], r["strat_ci_high"]
                s_color = colour(s_est, s_lo, s_hi) if lead else "0.6"
                draw(i + offset, s_est, s_lo, s_hi, factor, s_color, "D", hollow=not lead)
                shown_strat = True
                d = _precision(s_lo, s_hi, r["kind"])
                s_label = f"within {self._where()} {_signed(s_est, r['kind'], d)} {_ci(s_lo, s_hi, r['kind'], d)}"
                label = f"{s_label}\npooled {label}" if lead else f"pooled {label}\n{s_label}"
                color = s_color if lead else color
            ax.annotate(
                label,
                (1.01, i),
                xycoords=("axes fraction", "data"),
                va="center",
                fontsize=9,
                color=color,
            )
        if shown_strat:
            from matplotlib.lines import Line2D

            where = self._where()
            ax.legend(
                handles=[
                    Line2D(
                        [],
                        [],
                        marker="o",
                        ls="",
                        color="0.3",
                        mfc="white" if leads else "0.3",
                        label="pooled",
                    ),
                    Line2D(
                        [],
                        [],
                        marker="D",
                        ls="",
                        color="0.3",
                        mfc="0.3" if leads else "white",
                        label=f"within {where}",
                    ),
                ],
                loc="upper center",
                bbox_to_anchor=(0.5, -0.18),
                ncols=2,
                frameon=False,
                fontsize=9,
            )
        ax.axvline(0, color="0.2", lw=1)
        labels = [
            f"{r['metric']} · {r['variant']}"
            + (" (pp)" if scale == "absolute" and r["kind"] == "binary" else "")
            for _, r in rows.iterrows()
        ]
        ax.set_yticks(y, labels)
        ax.set_ylim(-0.7, len(rows) - 0.3)
        level = f"{(1 - self.alpha) * 100:g}%"
        sided = "" if self.alternative == "two-sided" else " one-sided"
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]))
        if scale == "relative":
            percent_axis(ax, "x", decimals=1 if max(abs(v) for v in ax.get_xlim()) < 0.05 else 0)
            ax.set_xlabel(f"relative lift vs {self.control} ({level}{sided} CI, delta method)")
        else:
            ax.set_xlabel(f"absolute lift vs {self.control} ({level}{sided} CI)")
        ax.set_title("Experiment readout")
        ax.grid(axis="y", visible=False)
        return ax
