"""The experiment readout object: the numbers, the plain-language text and the forest plot.

:class:`ExperimentResult` is what :func:`journeylab.experiments.analyze`
returns: ``to_frame()`` has one row per (metric, variant) with exactly the
columns of :data:`FRAME_COLUMNS`; ``summary()`` and the HTML rendering show
the trust checks first, then one sentence per comparison, then the methods;
``plot()`` draws a forest plot.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from journeylab.core.errors import check_in
from journeylab.core.results import Result, fmt_num, fmt_p, fmt_pct
from journeylab.experiments.checks import Check
from journeylab.experiments.metrics import Metric
from journeylab.experiments.multiple import CORRECTION_NAMES

__all__ = ["ExperimentResult", "FRAME_COLUMNS"]

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


def _signed(x: float, kind: str, decimals: int = 1) -> str:
    if kind == "binary":
        return f"{x * 100:+.{decimals}f}"
    sign = "+" if x >= 0 else "-"
    return f"{sign}{fmt_num(abs(x))}"


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
    control, alpha, correction : as passed to :func:`analyze`.
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

    title = "Experiment readout"

    # ------------------------------------------------------------------ numbers
    def to_frame(self, detailed: bool = False) -> pd.DataFrame:
        """One row per (metric, variant).

        The default columns are exactly :data:`FRAME_COLUMNS`; ``detailed=True``
        adds the relative lift's own p-value, the test statistic, CUPED,
        period-stratified and Bayesian columns.
        """
        frame = self.table if detailed else self.table[FRAME_COLUMNS]
        return frame.reset_index(drop=True).copy()

    def checks_frame(self) -> pd.DataFrame:
        """Return the trust checks as a table (check, status, statistic, p_value, message)."""
        return pd.DataFrame([c.as_dict() for c in self.checks])

    @property
    def flagged(self) -> list[Check]:
        """Checks that found a problem."""
        return [c for c in self.checks if c.flagged]

    # --------------------------------------------------------------------- text
    def _sentence(self, row: pd.Series) -> str:
        kind = row["kind"]
        level = f"{(1 - self.alpha) * 100:g} %"
        unit = " pp" if kind == "binary" else ""
        if row["status"].startswith("not computable"):
            return (
                f"Variant {row['variant']} on {row['metric']}: {row['status']}. No estimate is "
                "reported."
            )
        adj = row["p_value_adjusted"]
        decisive = adj < self.alpha if not math.isnan(adj) else False
        p_text = fmt_p(row["p_value"], with_p=True)
        if self.correction is not None:
            p_text += f", {CORRECTION_NAMES[self.correction]}-adjusted {fmt_p(adj)}"
        d = 2 if max(abs(row["abs_ci_low"]), abs(row["abs_ci_high"])) < 0.01 else 1
        ci = (
            f"{level} CI {_signed(row['abs_ci_low'], kind, d)} to "
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
            text = (
                f"Variant {row['variant']} did not detectably change {row['metric']}: {to} vs "
                f"{frm} in control ({lift}, {ci}; {p_text})."
            )
        if not math.isnan(row["rel_lift"]):
            text += (
                f" Relative lift {fmt_pct(row['rel_lift'], signed=True)} "
                f"[{fmt_pct(row['rel_ci_low'], signed=True)}, {fmt_pct(row['rel_ci_high'], signed=True)}]."
            )
        elif row["status"] != "ok":
            text += f" ({row['status']}.)"
        if row.get("cuped_theta") is not None and not pd.isna(row.get("cuped_theta")):
            raw = f"{_signed(row['raw_abs_lift'], kind, d)}{unit}"
            text += (
                f" The lift is CUPED-adjusted for {row['cuped_covariate']} (θ = "
                f"{fmt_num(row['cuped_theta'])}; raw difference {raw}), which cut the variance by "
                f"{fmt_pct(row['variance_reduction'])}."
            )
        if not pd.isna(row.get("prob_beats_control", np.nan)):
            text += (
                f" P({row['variant']} beats control) {_prob(row['prob_beats_control'])} "
                f"({row['bayes_prior']})."
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
            + f", α = {self.alpha:g}):"
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
            out.append(
                {
                    "metric": r["metric"],
                    "variant": r["variant"],
                    "users (c / t)": f"{r['n_control']:,} / {r['n_treatment']:,}",
                    "control": _level(r["control_mean"], k),
                    "treatment": _level(r["treatment_mean"], k),
                    "lift": f"{_signed(r['abs_lift'], k)}{unit}" if ok else "–",
                    "CI": f"[{_signed(r['abs_ci_low'], k)}, {_signed(r['abs_ci_high'], k)}]{unit}"
                    if ok
                    else "–",
                    "relative": fmt_pct(r["rel_lift"], signed=True),
                    "relative CI": f"[{fmt_pct(r['rel_ci_low'], signed=True)}, {fmt_pct(r['rel_ci_high'], signed=True)}]",
                    "p": fmt_p(r["p_value"]),
                    "p adjusted": fmt_p(r["p_value_adjusted"]),
                    "status": r["status"],
                }
            )
        return pd.DataFrame(out)

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
    def plot(self, ax=None, scale: Literal["relative", "absolute"] = "relative"):
        """Forest plot: each (metric, variant) lift with its CI, zero marked.

        ``scale="relative"`` (default) puts every metric on one % axis;
        ``"absolute"`` shows differences in metric units (pp for rates).
        """
        from matplotlib.ticker import MaxNLocator

        from journeylab.core.viz import PALETTE, new_axes, percent_axis

        check_in("scale", scale, ["relative", "absolute"])
        rows = self.table.iloc[::-1].reset_index(drop=True)
        ax = new_axes(ax, figsize=(8, max(2.6, 1.0 + 0.55 * len(rows))))
        prefix = "rel" if scale == "relative" else "abs"
        col = "rel_lift" if scale == "relative" else "abs_lift"
        y = np.arange(len(rows))
        for i, r in rows.iterrows():
            est, lo, hi = r[col], r[f"{prefix}_ci_low"], r[f"{prefix}_ci_high"]
            factor = 100 if scale == "absolute" and r["kind"] == "binary" else 1
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
            significant = lo > 0 or hi < 0
            color = (PALETTE[2] if est > 0 else PALETTE[3]) if significant else "0.45"
            ax.errorbar(
                est * factor,
                i,
                xerr=[[(est - lo) * factor], [(hi - est) * factor]],
                fmt="o",
                color=color,
                ecolor=color,
                capsize=4,
                lw=2,
                ms=7,
            )
            label = (
                f"{fmt_pct(est, signed=True)} [{fmt_pct(lo, signed=True)}, {fmt_pct(hi, signed=True)}]"
                if scale == "relative"
                else f"{_signed(est, r['kind'])} [{_signed(lo, r['kind'])}, {_signed(hi, r['kind'])}]"
            )
            ax.annotate(
                label,
                (1.01, i),
                xycoords=("axes fraction", "data"),
                va="center",
                fontsize=9,
                color=color,
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
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]))
        if scale == "relative":
            percent_axis(ax, "x", decimals=1 if max(abs(v) for v in ax.get_xlim()) < 0.05 else 0)
            ax.set_xlabel(f"relative lift vs {self.control} ({level} CI, delta method)")
        else:
            ax.set_xlabel(f"absolute lift vs {self.control} ({level} CI)")
        ax.set_title("Experiment readout")
        ax.grid(axis="y", visible=False)
        return ax
