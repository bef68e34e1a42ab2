"""The experiment calculator: design (power, sample size, MDE) and a readout from counts.

The design side solves R's ``power.prop.test`` formulas
(:func:`journeylab.experiments.power_calculator`); the readout compares
conversions / users per arm (:class:`ProportionsReadout`).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from journeylab.core.errors import JourneylabError, check_in
from journeylab.core.results import Result, fmt_num, fmt_p, fmt_pct, fmt_pp
from journeylab.reports.widgets._base import (
    _count_box,
    _error_html,
    _Explorer,
    _number_box,
    _png,
    _summary_html,
)


@dataclass
class ProportionsReadout(Result):
    """Two conversion rates compared from counts: lift, intervals, p-value, SRM, P(better).

    The numbers come from :func:`journeylab.experiments.compare_proportions`
    (pooled z-test, Newcombe interval, delta-method relative lift),
    :func:`journeylab.experiments.srm_check` and
    :func:`journeylab.experiments.bayes_proportions`.
    """

    comparison: Any
    srm: Any
    bayes: Any
    alpha: float = 0.05
    control: str = "control"
    treatment: str = "treatment"
    title: str = "Experiment readout"

    def to_frame(self) -> pd.DataFrame:
        """One row: users, rates, absolute and relative lift with intervals, p-value, P(better), SRM p."""
        c = self.comparison
        return pd.DataFrame(
            [
                {
                    "n_control": c.n_control,
                    "n_treatment": c.n_treatment,
                    "control_mean": c.control_mean,
                    "treatment_mean": c.treatment_mean,
                    "abs_lift": c.abs_lift,
                    "abs_ci_low": c.abs_ci_low,
                    "abs_ci_high": c.abs_ci_high,
                    "rel_lift": c.rel_lift,
                    "rel_ci_low": c.rel_ci_low,
                    "rel_ci_high": c.rel_ci_high,
                    "p_value": c.p_value,
                    "prob_treatment_better": self.bayes.prob_treatment_better,
                    "srm_p_value": self.srm.p_value,
                    "srm_status": self.srm.status,
                    "method": c.method,
                    "status": c.status,
                }
            ]
        )

    def summary(self) -> str:
        """Describe the lift with its interval, p-value, P(better) and the SRM check."""
        c = self.comparison
        level = f"{(1 - self.alpha) * 100:g}%"
        if not c.computable:
            head = f"The lift is {c.status}."
        else:
            head = (
                f"{self.treatment} converts {fmt_pct(c.treatment_mean)} vs {fmt_pct(c.control_mean)} for "
                f"{self.control}: {fmt_pp(c.abs_lift)} ({level} CI {fmt_pp(c.abs_ci_low)} to {fmt_pp(c.abs_ci_high)}; "
                f"p = {fmt_p(c.p_value)}), {fmt_pct(c.rel_lift, signed=True)} relative "
                f"[{fmt_pct(c.rel_ci_low, signed=True)}, {fmt_pct(c.rel_ci_high, signed=True)}]. "
                f"P({self.treatment} beats {self.control}) = {fmt_pct(self.bayes.prob_treatment_better)}."
            )
        flag = "⚠ " if self.srm.flagged else ""
        return f"{head}\n{flag}{self.srm.message}"

    def display_frame(self) -> pd.DataFrame:
        """Return the row formatted for readers."""
        c = self.comparison
        ok = c.computable
        return pd.DataFrame(
            [
                {
                    "users (c / t)": f"{c.n_control:,} / {c.n_treatment:,}",
                    self.control: fmt_pct(c.control_mean),
                    self.treatment: fmt_pct(c.treatment_mean),
                    "lift": fmt_pp(c.abs_lift) if ok else "–",
                    "CI": f"[{fmt_pp(c.abs_ci_low)}, {fmt_pp(c.abs_ci_high)}]" if ok else "–",
                    "relative": fmt_pct(c.rel_lift, signed=True),
                    "p": fmt_p(c.p_value),
                    "P(better)": fmt_pct(self.bayes.prob_treatment_better),
                    "SRM p": fmt_p(self.srm.p_value),
                }
            ]
        )

    def plot(self, ax=None):
        """Conversion rate per arm with Wilson intervals; the lift in the title."""
        from statsmodels.stats.proportion import proportion_confint

        from journeylab.core.viz import PALETTE, new_axes, percent_axis

        c = self.comparison
        ax = new_axes(ax, figsize=(7, 2.4))
        arms = [self.control, self.treatment]
        n = np.array([c.n_control, c.n_treatment], dtype=float)
        rate = np.array([c.control_mean, c.treatment_mean], dtype=float)
        x = np.nan_to_num(rate * n)
        low, high = proportion_confint(x, np.where(n > 0, n, 1), alpha=self.alpha, method="wilson")
        err = np.clip(np.nan_to_num(np.vstack([rate - low, high - rate])), 0, None)
        ax.barh([0, 1], np.nan_to_num(rate), color=[PALETTE[7], PALETTE[0]], height=0.6)
        ax.errorbar(
            np.nan_to_num(rate), [0, 1], xerr=err, fmt="none", ecolor="0.2", capsize=4, lw=1
        )
        for i, (r, hi, users) in enumerate(zip(rate, high, n, strict=True)):
            ax.text(
                np.nan_to_num(max(r, hi)) * 1.02 + 1e-4,
                i,
                f"{fmt_pct(r)} of {int(users):,}",
                va="center",
                fontsize=9,
            )
        ax.set_yticks([0, 1], arms)
        ax.invert_yaxis()
        top = float(np.nanmax(np.append(high, 1e-3)))
        ax.set_xlim(0, top * 1.35)
        percent_axis(ax, "x", decimals=1 if top < 0.1 else 0)
        ax.set_xlabel(f"conversion rate ({(1 - self.alpha) * 100:g}% Wilson interval)")
        lift = (
            f"lift {fmt_pp(c.abs_lift)}, p = {fmt_p(c.p_value)}"
            if c.computable
            else "lift not computable"
        )
        ax.set_title(f"Readout: {lift}")
        ax.grid(axis="y", visible=False)
        return ax


def _power_result(*, baseline, mde, relative, n_per_variant, power, alpha, solve_for):
    from journeylab.experiments import power_calculator

    check_in("solve_for", solve_for, ["n_per_variant", "power", "mde"])
    given = {
        "mde": None if solve_for == "mde" else float(mde),
        "n_per_variant": None if solve_for == "n_per_variant" else float(n_per_variant),
        "power": None if solve_for == "power" else float(power),
    }
    return power_calculator(float(baseline), relative=bool(relative), alpha=float(alpha), **given)


def _readout_result(
    *,
    conversions_control,
    users_control,
    conversions_treatment,
    users_treatment,
    alpha,
    design_split=None,
):
    from journeylab.experiments import bayes_proportions, compare_proportions, srm_check

    xc, nc, xt, nt = (
        int(v) for v in (conversions_control, users_control, conversions_treatment, users_treatment)
    )
    comparison = compare_proportions(xc, nc, xt, nt, alpha=float(alpha))
    srm = srm_check({"control": nc, "treatment": nt}, design_split)
    bayes = bayes_proportions(xc, nc, xt, nt, level=1 - float(alpha))
    return ProportionsReadout(comparison, srm, bayes, alpha=float(alpha))


def power_data(
    baseline: float = 0.10,
    *,
    mde: float = 0.01,
    relative: bool = False,
    n_per_variant: float = 10_000,
    power: float = 0.8,
    alpha: float = 0.05,
    solve_for: Literal["n_per_variant", "power", "mde"] = "n_per_variant",
) -> pd.DataFrame:
    """Return the design behind the calculator: one row of a ``PowerCalculation``.

    The control named by ``solve_for`` is ignored and solved for (R
    ``power.prop.test`` formulas via :func:`journeylab.experiments.power_calculator`).

    Examples
    --------
    >>> round(float(power_data(0.5, mde=0.25, power=0.9)["n_per_variant"].iloc[0]), 5)
    76.70693
    >>> round(float(power_data(0.5, mde=0.25, n_per_variant=50, solve_for="power")["power"].iloc[0]), 7)
    0.7401659
    """
    return _power_result(
        baseline=baseline,
        mde=mde,
        relative=relative,
        n_per_variant=n_per_variant,
        power=power,
        alpha=alpha,
        solve_for=solve_for,
    ).to_frame()


def readout_data(
    conversions_control: int,
    users_control: int,
    conversions_treatment: int,
    users_treatment: int,
    *,
    alpha: float = 0.05,
    design_split: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Return the readout from counts per arm (one row of :class:`ProportionsReadout`).

    Examples
    --------
    >>> round(float(readout_data(200, 10_000, 250, 10_000)["p_value"].iloc[0]), 6)
    0.017126
    """
    return _readout_result(
        conversions_control=conversions_control,
        users_control=users_control,
        conversions_treatment=conversions_treatment,
        users_treatment=users_treatment,
        alpha=alpha,
        design_split=design_split,
    ).to_frame()


def experiment_data(
    *,
    baseline: float = 0.10,
    mde: float = 0.01,
    relative: bool = False,
    n_per_variant: float = 10_000,
    power: float = 0.8,
    alpha: float = 0.05,
    solve_for: Literal["n_per_variant", "power", "mde"] = "n_per_variant",
    conversions_control: int = 1_000,
    users_control: int = 10_000,
    conversions_treatment: int = 1_100,
    users_treatment: int = 10_000,
) -> dict[str, pd.DataFrame]:
    """Both tables behind :class:`ExperimentCalculator`: ``"design"`` and ``"readout"``.

    Examples
    --------
    >>> design = experiment_data(baseline=0.5, mde=0.25, power=0.9)["design"]
    >>> round(float(design["n_per_variant"].iloc[0]), 1)
    76.7
    """
    return {
        "design": power_data(
            baseline,
            mde=mde,
            relative=relative,
            n_per_variant=n_per_variant,
            power=power,
            alpha=alpha,
            solve_for=solve_for,
        ),
        "readout": readout_data(
            conversions_control, users_control, conversions_treatment, users_treatment, alpha=alpha
        ),
    }


class ExperimentCalculator(_Explorer):
    """Sample size, power or minimum detectable effect, and a readout from counts.

    The design side solves R's ``power.prop.test`` formulas
    (:func:`journeylab.experiments.power_calculator`): pick what to solve for
    and the other two of MDE, users per variant and power. The readout side
    compares conversions / users per arm (:class:`ProportionsReadout`).

    Parameters
    ----------
    baseline, mde, relative, n_per_variant, power, alpha, solve_for
        Starting values of the design controls (``mde`` absolute unless ``relative``).
    conversions_control, users_control, conversions_treatment, users_treatment
        Starting counts of the readout.
    design_split : mapping, optional
        Designed split for the SRM check (equal when None).

    Examples
    --------
    >>> calc = ExperimentCalculator(baseline=0.5, mde=0.25, power=0.9)
    >>> round(float(calc.data()["design"]["n_per_variant"].iloc[0]), 5)
    76.70693
    """

    title = "Experiment calculator"

    def __init__(
        self,
        *,
        baseline: float = 0.10,
        mde: float = 0.01,
        relative: bool = False,
        n_per_variant: float = 10_000,
        power: float = 0.8,
        alpha: float = 0.05,
        solve_for: Literal["n_per_variant", "power", "mde"] = "n_per_variant",
        conversions_control: int = 1_000,
        users_control: int = 10_000,
        conversions_treatment: int = 1_100,
        users_treatment: int = 10_000,
        design_split: Mapping[str, float] | None = None,
    ) -> None:
        import ipywidgets as w

        super().__init__()
        self.design_split = design_split
        self.controls = {
            "solve_for": w.ToggleButtons(
                options=[("sample size", "n_per_variant"), ("power", "power"), ("MDE", "mde")],
                value=solve_for,
                description="solve for",
                style={"description_width": "initial", "button_width": "95px"},
            ),
            "baseline": _number_box("baseline rate", baseline, min=0.0, max=1.0, step=0.005),
            "mde": _number_box("MDE", mde, min=0.0, max=100.0, step=0.005),
            "relative": w.Checkbox(
                value=relative,
                description="MDE is relative",
                style={"description_width": "initial"},
            ),
            "n_per_variant": _number_box(
                "users per variant", n_per_variant, min=2, max=1e12, step=100
            ),
            "power": _number_box("power", power, min=0.01, max=0.999, step=0.05),
            "alpha": _number_box("α (two-sided)", alpha, min=0.0001, max=0.5, step=0.01),
            "conversions_control": _count_box("control conversions", conversions_control),
            "users_control": _count_box("control users", users_control),
            "conversions_treatment": _count_box("treatment conversions", conversions_treatment),
            "users_treatment": _count_box("treatment users", users_treatment),
        }

    _DESIGN = ("solve_for", "baseline", "mde", "relative", "n_per_variant", "power", "alpha")
    _READOUT = ("conversions_control", "users_control", "conversions_treatment", "users_treatment")

    def _layout(self) -> list[Any]:
        import ipywidgets as w

        c = self.controls
        return [
            w.HTML("<b>Design</b>"),
            c["solve_for"],
            w.HBox([c["baseline"], c["mde"], c["relative"]]),
            w.HBox([c["n_per_variant"], c["power"], c["alpha"]]),
            w.HTML("<b>Readout from counts</b>"),
            w.HBox([c["conversions_control"], c["users_control"]]),
            w.HBox([c["conversions_treatment"], c["users_treatment"]]),
        ]

    def _sync(self) -> None:
        target = self.controls["solve_for"].value
        for name in ("mde", "n_per_variant", "power"):
            self.controls[name].disabled = name == target

    def _key(self, values: Mapping[str, Any]) -> Hashable:
        values = dict(values)
        values[values["solve_for"]] = None  # the solved quantity's box does not matter
        return super()._key(values)

    def design(self):
        """Return the ``PowerCalculation`` for the current design controls."""
        return self.result()[0]

    def readout(self) -> ProportionsReadout:
        """Return the :class:`ProportionsReadout` for the current counts."""
        return self.result()[1]

    def _compute(self, **values: Any):
        design = {k: values[k] for k in self._DESIGN}
        counts = {k: values[k] for k in self._READOUT}
        try:
            calc = _power_result(**design)
        except JourneylabError as exc:
            calc = exc
        try:
            readout = _readout_result(
                **counts, alpha=values["alpha"], design_split=self.design_split
            )
        except JourneylabError as exc:
            readout = exc
        return calc, readout

    def _numbers(self, result: Any) -> dict[str, pd.DataFrame]:
        for part in result:
            if isinstance(part, Exception):
                raise part
        calc, readout = result
        return {"design": calc.to_frame(), "readout": readout.to_frame()}

    def _render(self, result: Any) -> str:
        calc, readout = result
        parts = ["<h4>Design</h4>"]
        if isinstance(calc, Exception):
            parts.append(_error_html(calc))
        else:
            parts.append(_summary_html(calc.summary()))
            parts.append(_design_table(calc))
            parts.append(_png(calc.plot, "power curve against users per variant"))
        if isinstance(readout, Exception):
            parts.append("<h4>Readout</h4>" + _error_html(readout))
        else:
            parts.append(readout._repr_html_())
            parts.append(_png(readout.plot, "conversion rate per arm"))
        return "".join(parts)


def _design_table(calc: Any) -> str:
    rows = [
        (
            "users per variant",
            f"{int(np.ceil(calc.n_per_variant)):,} ({fmt_num(calc.n_per_variant)})",
        ),
        ("users in total", f"{calc.n_total:,}"),
        ("baseline rate", fmt_pct(calc.baseline, 2)),
        ("treatment rate", fmt_pct(calc.treatment, 2)),
        ("absolute effect", fmt_pp(calc.effect, 2)),
        ("relative effect", fmt_pct(calc.relative_effect, signed=True)),
        ("power", fmt_pct(calc.power)),
        ("α", f"{calc.alpha:g} ({calc.alternative})"),
    ]
    frame = pd.DataFrame(rows, columns=["quantity", "value"])
    solved = {"n_per_variant": "users per variant", "power": "power", "effect": "treatment rate"}[
        calc.solved_for
    ]
    frame["quantity"] = [f"{q} (solved)" if q == solved else q for q in frame["quantity"]]
    return frame.to_html(index=False, border=0, classes="jl-table")
