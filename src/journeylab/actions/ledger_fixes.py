"""Fixes of findings: the experiments that address a finding and its timeline before, during and after them.

The rules are those of :mod:`journeylab.actions.ledger` (rule 5).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from journeylab.actions.ledger_file import _as_ledger, _month_of, _one_project
from journeylab.actions.ledger_history import RESOLVED, _money_tick
from journeylab.core.errors import DataError, ParameterError, SchemaError, did_you_mean
from journeylab.core.results import Result, fmt_ci, fmt_money, fmt_pct, fmt_pp

__all__ = [
    "fix_timeline",
    "FixTimeline",
    "experiments_addressing",
]


# -- fixes --------------------------------------------------------------------
def experiments_addressing(
    experiments: Mapping[str, Mapping[str, Any]] | Any,
    ledger: pd.DataFrame | str | Path | None = None,
) -> dict[str, list[str]]:
    """Map each finding id to the experiments that address it (``addresses:`` in the project file).

    Parameters
    ----------
    experiments : Project or mapping
        A :class:`~journeylab.core.project.Project` (its ``experiments``) or the
        mapping ``{name: {addresses: <finding id>, ...}}``.
    ledger : DataFrame or path, optional
        When given, every ``addresses`` must be an id the ledger holds; a typo
        is an error with the closest id.

    Returns
    -------
    dict
        ``{finding id: [experiment names]}``.
    """
    spec = getattr(experiments, "experiments", experiments)
    known = None
    if ledger is not None:
        known = sorted(set(_as_ledger(ledger)["id"].dropna()))
    out: dict[str, list[str]] = {}
    for name, item in dict(spec or {}).items():
        target = (item or {}).get("addresses")
        if target is None:
            continue
        if known is not None and target not in known:
            raise ParameterError(
                f"experiments.{name}.addresses == {target!r} is no finding id of the ledger"
                f"{did_you_mean(str(target), known)}; copy the id from the report's findings."
            )
        out.setdefault(str(target), []).append(str(name))
    return out


@dataclass
class FixTimeline(Result):
    """A finding before, during and after the experiment that addresses it.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per month the project was reported: ``month``, ``phase``
        (``before`` / ``during`` / ``after``, None without experiment dates),
        ``found``, the finding's ``rate`` (``value``), ``benchmark``,
        ``difference`` and its interval, ``value_at_stake`` and its interval,
        ``rank``. Months it was not found carry NaN.
    finding_id : str
    start, end : str or None
        First and last month of the experiment (``YYYY-MM``).
    readout : ExperimentResult or None
    experiment : str or None
        The experiment's name.
    """

    table: pd.DataFrame
    finding_id: str
    start: str | None
    end: str | None
    readout: Any = None
    experiment: str | None = None
    currency: str = "$"
    title = "Fix timeline"

    def to_frame(self) -> pd.DataFrame:
        """Return one row per reported month."""
        return self.table.copy()

    def phase_summary(self) -> pd.DataFrame:
        """Return, per phase, the months, the months found and the mean value at stake (0 when not found)."""
        t = self.table.dropna(subset=["phase"])
        if t.empty:
            return pd.DataFrame(
                columns=["phase", "months", "months_found", "mean_value_at_stake", "mean_rate"]
            )
        grouped = t.assign(vas=t["value_at_stake"].fillna(0.0)).groupby("phase", sort=False)
        out = grouped.agg(
            months=("month", "size"),
            months_found=("found", "sum"),
            mean_value_at_stake=("vas", "mean"),
            mean_rate=("rate", "mean"),
        )
        order = [p for p in ("before", "during", "after") if p in out.index]
        return out.loc[order].reset_index()

    def readout_frame(self) -> pd.DataFrame:
        """Return the experiment's comparisons (metric, variant, lift, interval, adjusted p, status)."""
        if self.readout is None:
            return pd.DataFrame()
        cols = [
            "metric",
            "variant",
            "abs_lift",
            "abs_ci_low",
            "abs_ci_high",
            "rel_lift",
            "p_value_adjusted",
            "status",
        ]
        frame = self.readout.to_frame()
        return frame[[c for c in cols if c in frame]]

    def summary(self) -> str:
        """Say the finding's course before, during and after the fix, and the experiment's readout."""
        t = self.table
        name = f" ({self.experiment})" if self.experiment else ""
        lines = [
            f"Finding {self.finding_id}: found in {int(t['found'].sum())} of {len(t)} reported month(s)."
        ]
        if self.start is None:
            lines.append(
                "No experiment dates given: the months are not split into before / during / after."
            )
        else:
            until = f" to {self.end}" if self.end else " (still running: no end given)"
            lines.append(f"Experiment{name} ran from {self.start}{until}.")
            for phase in ("before", "during", "after"):
                part = t.loc[t["phase"] == phase]
                if part.empty:
                    continue
                bits = []
                for r in part.itertuples():
                    if r.found:
                        ci = fmt_ci(
                            r.value_at_stake_ci_low,
                            r.value_at_stake_ci_high,
                            lambda v: fmt_money(v, self.currency),
                        )
                        bits.append(
                            f"{r.month} {fmt_pct(r.rate)} vs {fmt_pct(r.benchmark)}, "
                            f"{fmt_money(r.value_at_stake, self.currency)} {ci}"
                        )
                    else:
                        bits.append(f"{r.month} not found ({RESOLVED})")
                lines.append(f"  {phase}: " + "; ".join(bits) + ".")
        if self.readout is not None:
            lines.append(f"Experiment readout{name}:")
            for r in self.readout_frame().itertuples():
                if str(r.status).startswith("not computable"):
                    lines.append(f"  {r.variant} on {r.metric}: {r.status}.")
                    continue
                lines.append(
                    f"  {r.variant} on {r.metric}: {fmt_pp(r.abs_lift)} "
                    f"{fmt_ci(r.abs_ci_low, r.abs_ci_high, fmt_pp)}, adjusted p = {r.p_value_adjusted:.3g}"
                    f" ({r.status})."
                )
            for check in getattr(self.readout, "flagged", []):
                lines.append(f"  ⚠ {check.message}")
        return "\n".join(lines)

    def display_frame(self) -> pd.DataFrame:
        """Return the months for readers: rates as %, money formatted."""
        t = self.table
        money = lambda v: fmt_money(v, self.currency)  # noqa: E731
        return pd.DataFrame(
            {
                "month": t["month"],
                "phase": t["phase"].fillna("–"),
                "rate": [
                    fmt_pct(v) if r else "–" for v, r in zip(t["rate"], t["found"], strict=True)
                ],
                "benchmark": [
                    fmt_pct(v) if r else "–"
                    for v, r in zip(t["benchmark"], t["found"], strict=True)
                ],
                "value at stake": [
                    f"{money(v)} {fmt_ci(lo, hi, money)}" if r else f"not found ({RESOLVED})"
                    for v, lo, hi, r in zip(
                        t["value_at_stake"],
                        t["value_at_stake_ci_low"],
                        t["value_at_stake_ci_high"],
                        t["found"],
                        strict=True,
                    )
                ],
            }
        )

    def _repr_html_(self) -> str:
        import html as _html

        body = super()._repr_html_()
        readout = self.readout_frame()
        if readout.empty:
            return body
        table = readout.to_html(
            index=False, float_format=lambda v: f"{v:.3g}", na_rep="–", border=0, classes="jl-table"
        )
        title = "Experiment readout" + (" — " + self.experiment if self.experiment else "")
        return body + f"<h5>{_html.escape(title)}</h5>{table}"

    def plot(self, ax=None):
        """Value at stake per month with its interval, the experiment's months shaded."""
        from journeylab.core.viz import PALETTE, new_axes

        own = ax is None
        ax = new_axes(ax, figsize=(7, 4.2))
        t = self.table
        x = np.arange(len(t))
        y = t["value_at_stake"].to_numpy(float)
        lo = y - t["value_at_stake_ci_low"].to_numpy(float)
        hi = t["value_at_stake_ci_high"].to_numpy(float) - y
        ax.errorbar(
            x, y, yerr=[lo, hi], marker="o", color=PALETTE[0], capsize=3, label="value at stake"
        )
        missing = ~t["found"].to_numpy(bool)
        if missing.any():
            ax.scatter(
                x[missing],
                np.zeros(missing.sum()),
                marker="x",
                color=PALETTE[2],
                zorder=3,
                clip_on=False,
                label="not found",
            )
        during = np.flatnonzero((t["phase"] == "during").to_numpy())
        if during.size:
            ax.axvspan(
                during.min() - 0.5,
                during.max() + 0.5,
                color=PALETTE[1],
                alpha=0.15,
                label=f"experiment{' ' + self.experiment if self.experiment else ''} running",
            )
        ticks = [
            m if p is None else f"{m}\n{p}" for m, p in zip(t["month"], t["phase"], strict=True)
        ]
        ax.set_xticks(x, labels=ticks)
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_formatter(lambda v, _: _money_tick(v, self.currency))
        for tick in ax.get_xticklabels() + ax.get_yticklabels():
            tick.set_parse_math(False)
        ax.set_ylabel(f"Value at stake per month ({self.currency})")
        ax.set_title(
            f"Before, during and after the fix\n{self.finding_id}", fontsize=10, loc="left"
        )
        ax.legend(fontsize=8, loc="best")
        if own:
            ax.figure.tight_layout()
        return ax


def fix_timeline(
    ledger: pd.DataFrame | str | Path,
    finding_id: str,
    experiment_readout: Any = None,
    *,
    start: Any = None,
    end: Any = None,
    assignments: pd.DataFrame | Any = None,
    experiment: str | None = None,
    project: str | None = None,
    currency: str = "$",
) -> FixTimeline:
    """Lay a finding's rate and value at stake beside the experiment that addresses it.

    Parameters
    ----------
    ledger : pandas.DataFrame or path
        :func:`read_ledger`'s frame, or the reports root.
    finding_id : str
        The finding's id (what ``experiments.<name>.addresses`` says).
    experiment_readout : ExperimentResult, optional
        :func:`journeylab.experiments.analyze`'s result, summarised beside.
    start, end : date or ``YYYY-MM``, optional
        When the experiment started and ended; by default the first and last
        ``assigned_at`` of ``assignments``. Without an end, it runs on.
    assignments : DataFrame or loaded table, optional
        The experiment's assignments, with ``assigned_at``.
    experiment : str, optional
        The experiment's name, for the text.
    project : str, optional
        Needed when the ledger holds several projects.
    currency : str
        Sign money is written with.

    Returns
    -------
    FixTimeline
        Months strictly before the start month are ``before``; from the start
        month to the end month ``during``; after the end month ``after``.
    """
    frame, project = _one_project(_as_ledger(ledger), project)
    ids = sorted(set(frame["id"].dropna()))
    if finding_id not in ids:
        raise ParameterError(
            f"finding_id == {finding_id!r} is not in the ledger of {project!r}{did_you_mean(finding_id, ids)}."
        )
    if assignments is not None:
        table = getattr(assignments, "frame", assignments)
        if not isinstance(table, pd.DataFrame) or "assigned_at" not in table:
            raise SchemaError(
                "The assignments table has no 'assigned_at' column, so the experiment's dates are unknown.",
                column="assigned_at",
                missing_columns=["assigned_at"],
                hint="load assignments with an assigned_at column, or pass start= and end=.",
            )
        stamps = pd.to_datetime(table["assigned_at"], utc=True, errors="coerce").dropna()
        if stamps.empty:
            raise DataError(
                "Every assigned_at of the assignments is empty or not a date.",
                column="assigned_at",
                hint="pass start= and end= instead.",
            )
        start = stamps.min() if start is None else start
        end = stamps.max() if end is None else end
    start_m = None if start is None else _month_of(start, "start")
    end_m = None if end is None else _month_of(end, "end")
    if start_m is None and end_m is not None:
        raise ParameterError("end is given without start: give the experiment's start too.")
    if start_m is not None and end_m is not None and end_m < start_m:
        raise ParameterError(f"end ({end_m}) is before start ({start_m}).")
    months = sorted(frame["month"].unique().tolist())
    rows = (
        frame.loc[frame["id"] == finding_id]
        .drop_duplicates("month", keep="last")
        .set_index("month")
    )
    rows = rows.reindex(months)
    phase: list[str | None] = []
    for m in months:
        if start_m is None:
            phase.append(None)
        elif m < start_m:
            phase.append("before")
        elif end_m is None or m <= end_m:
            phase.append("during")
        else:
            phase.append("after")
    out = pd.DataFrame(
        {
            "month": months,
            "phase": phase,
            "found": rows["id"].notna().to_numpy(),
            "rank": rows["rank"].to_numpy(float),
            "rate": rows["value"].to_numpy(float),
            "benchmark": rows["benchmark"].to_numpy(float),
            "difference": rows["difference"].to_numpy(float),
            "difference_ci_low": rows["difference_ci_low"].to_numpy(float),
            "difference_ci_high": rows["difference_ci_high"].to_numpy(float),
            "value_at_stake": rows["value_at_stake"].to_numpy(float),
            "value_at_stake_ci_low": rows["value_at_stake_ci_low"].to_numpy(float),
            "value_at_stake_ci_high": rows["value_at_stake_ci_high"].to_numpy(float),
        }
    )
    return FixTimeline(
        table=out,
        finding_id=finding_id,
        start=start_m,
        end=end_m,
        readout=experiment_readout,
        experiment=experiment,
        currency=currency,
    )
