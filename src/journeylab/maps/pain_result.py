"""The result of :func:`journeylab.maps.pains.pain_points`: ranked table, written findings, plot."""

from __future__ import annotations

import numpy as np
import pandas as pd

from journeylab.core.results import Result, fmt_ci, fmt_money, fmt_num, fmt_pct
from journeylab.core.safe_text import mpl
from journeylab.maps.periods import Period
from journeylab.maps.progress import fmt_count

__all__ = ["PainPointsResult", "TOUCHPOINT"]

#: The derived dimension "channel that brought the user to the step".
TOUCHPOINT = "touchpoint"


def _who(dimension: str, segment: str, *, benchmark: bool = False) -> str:
    if dimension == TOUCHPOINT:
        return f"users arriving via {segment}" if benchmark else f"Users arriving via {segment}"
    if dimension == "all users":
        return "users"
    text = f"users with {dimension} = {segment}"
    return text if benchmark else text.capitalize()


class PainPointsResult(Result):
    """Journey steps × segments ranked by the value at stake.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (step, dimension, segment): ``reached``, ``converted``,
        ``conversion`` (Wilson CI), ``benchmark``, ``benchmark_conversion``,
        ``gap`` (Newcombe CI, floored at 0), ``value_per_success``,
        ``value_at_stake`` with ``value_at_stake_ci_low``/``_high``, ``sized``.
    value_per_conversion : float
        The value of one conversion used.
    currency : str
        ISO 4217 code (or sign) the values are written in.
    """

    title = "Pain points by value at stake"

    def __init__(
        self,
        *,
        table,
        period,
        previous,
        benchmark,
        value_per_conversion,
        step_words,
        notes,
        alpha,
        min_users,
        currency="USD",
    ) -> None:
        self.table = table
        self.period: Period = period
        self.previous = previous
        self.benchmark = benchmark
        self.value_per_conversion = value_per_conversion
        self.step_words = step_words
        self.notes = notes
        self.alpha = alpha
        self.min_users = min_users
        self.currency = currency

    def _money(self, value: float | None) -> str:
        return fmt_money(value, self.currency)

    def to_frame(self) -> pd.DataFrame:
        """All (step, dimension, segment) rows, highest value at stake first."""
        return self.table.copy()

    def top(self, n: int = 5, clear: bool = False) -> pd.DataFrame:
        """Return the ``n`` rows with the most value at stake (sized and > 0).

        With ``clear=True`` only gaps whose interval excludes zero.
        """
        t = self.table
        keep = t["sized"] & (t["value_at_stake"] > 0)
        if clear:
            keep &= t["gap_ci_low"] > 0
        return t.loc[keep].head(n)

    @property
    def _per(self) -> str:
        return "a month" if self.period.is_month else f"over {self.period.label}"

    def finding(self, row: pd.Series) -> str:
        """One sentence on a pain point: who, how much worse, and what closing the gap is worth."""
        who = _who(row["dimension"], row["segment"])
        drop_own = 1 - row["conversion"]
        drop_bench = 1 - row["benchmark_conversion"]
        words = self.step_words.get(row["step"], f"at {row['step']}")
        if self.benchmark == "best_segment":
            than = _who(row["dimension"], row["benchmark"], benchmark=True)
        else:
            than = f"in {row['benchmark']}"
        ratio = (
            f"{fmt_num(drop_own / drop_bench, 2)}× as often as"
            if drop_bench > 0
            else "more often than"
        )
        return (
            f"{who} drop out {words} {ratio} {than} ({fmt_pct(drop_own)} vs {fmt_pct(drop_bench)}; "
            f"{fmt_count(row['reached'])} reached the step); closing the gap is worth "
            f"{self._money(row['value_at_stake'])} {self._per} "
            f"{fmt_ci(row['value_at_stake_ci_low'], row['value_at_stake_ci_high'], self._money)}."
        )

    def findings(self, n: int = 3) -> list[str]:
        """Written findings for the ``n`` biggest pain points whose gap interval excludes zero."""
        return [self.finding(row) for _, row in self.top(n, clear=True).iterrows()]

    def summary(self) -> str:
        """Describe the top pain points in words, with the sizing assumptions."""
        head = (
            f"Pain points, {self.period.label}: value at stake = users reaching the step × gap to the "
            f"{'best segment' if self.benchmark == 'best_segment' else 'previous period'} × value per step success "
            f"({self._money(self.value_per_conversion)} per conversion); {int(100 * (1 - self.alpha))}% intervals."
        )
        found = self.findings(3)
        if not found:
            found = [
                "No segment converts measurably worse than its benchmark "
                f"(segments of at least {self.min_users} users)."
            ]
        lines = [head] + [f"{i}. {text}" for i, text in enumerate(found, 1)]
        unclear = int(
            (
                self.table["sized"]
                & (self.table["value_at_stake"] > 0)
                & ~(self.table["gap_ci_low"] > 0)
            ).sum()
        )
        if unclear:
            lines.append(f"{unclear} smaller gaps have intervals that include zero (not listed).")
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)

    def display_frame(self) -> pd.DataFrame:
        """Return the ranked, sized rows formatted for readers."""
        t = self.top(15)
        return pd.DataFrame(
            {
                "step": t["step"],
                "dimension": t["dimension"],
                "segment": t["segment"],
                "reached": t["reached"].map(fmt_count),
                "conversion": [
                    f"{fmt_pct(c)} {fmt_ci(lo, hi, fmt_pct)}"
                    for c, lo, hi in zip(
                        t["conversion"],
                        t["conversion_ci_low"],
                        t["conversion_ci_high"],
                        strict=True,
                    )
                ],
                "benchmark": [
                    f"{fmt_pct(c)} ({b})"
                    for c, b in zip(t["benchmark_conversion"], t["benchmark"], strict=True)
                ],
                "value at stake": [
                    f"{self._money(v)} {fmt_ci(lo, hi, self._money)}"
                    for v, lo, hi in zip(
                        t["value_at_stake"],
                        t["value_at_stake_ci_low"],
                        t["value_at_stake_ci_high"],
                        strict=True,
                    )
                ],
            }
        ).reset_index(drop=True)

    def plot(self, ax=None, n: int = 10):
        """Horizontal bars of the top ``n`` values at stake with their intervals."""
        from journeylab.core.viz import PALETTE, new_axes

        t = self.top(n).iloc[::-1]
        ax = new_axes(ax, figsize=(9, 0.5 * max(len(t), 2) + 1.5))
        if t.empty:
            ax.text(
                0.5,
                0.5,
                "No pain point with value at stake",
                ha="center",
                va="center",
                transform=ax.transAxes,
            )
            ax.set_axis_off()
            return ax
        labels = [
            f"{mpl(s)}\n{mpl(d)} = {mpl(g)}"
            for s, d, g in zip(t["step"], t["dimension"], t["segment"], strict=True)
        ]
        y = np.arange(len(t))
        err = np.vstack(
            [
                t["value_at_stake"] - t["value_at_stake_ci_low"],
                t["value_at_stake_ci_high"] - t["value_at_stake"],
            ]
        )
        clear = (t["gap_ci_low"] > 0).to_numpy()
        colours = [PALETTE[3] if c else "0.75" for c in clear]
        ax.barh(
            y,
            t["value_at_stake"],
            xerr=err,
            color=colours,
            alpha=0.9,
            error_kw={"ecolor": "0.3", "capsize": 3},
        )
        ax.set_yticks(y, labels, fontsize=9)
        for yi, v in zip(y, t["value_at_stake"], strict=True):
            ax.text(v, yi + 0.3, f" {self._money(v)}", va="center", fontsize=8.5, color="0.2")
        from matplotlib.ticker import FuncFormatter

        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: self._money(v)))
        ax.set_xlabel(
            f"value at stake {self._per} ({int(100 * (1 - self.alpha))}% interval; grey: interval includes zero)"
        )
        ax.set_title(f"Pain points, {self.period.label}")
        ax.grid(axis="y", visible=False)
        return ax
