"""A finding's history in the ledger: first seen, months open, trend and status.

The statuses are defined in :mod:`journeylab.actions.ledger` (rule 4).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from journeylab.actions.ledger_file import _as_ledger, _check_month, _one_project, _previous_month
from journeylab.core.errors import ParameterError, did_you_mean
from journeylab.core.results import Result, fmt_money

__all__ = [
    "STATUSES",
    "RESOLVED",
    "finding_history",
    "FindingHistory",
]


#: The status of a finding in :func:`finding_history`, in the order they are counted.
STATUSES = ("new", "growing", "persisting", "shrinking", "resolved or below the threshold")
RESOLVED = STATUSES[-1]


def _money_tick(value: float, currency: str) -> str:
    return f"{currency}0" if value == 0 else fmt_money(value, currency)


def _short_name(row: Mapping[str, Any]) -> str:
    step = str(row.get("step") or "")
    if row.get("kind") == "change_vs_previous":
        return f"{step}: vs previous month"
    return f"{step}: {row.get('dimension')} = {row.get('segment')}"


# -- history ------------------------------------------------------------------
@dataclass
class FindingHistory(Result):
    """How long each finding of a month has been open, and where it is heading.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per finding of ``month`` (in rank order) and one per finding of
        the month before that is no longer found (status ``resolved or below
        the threshold``).
    month, previous : str
        The month and the calendar month before it.
    project : str
    months : list of str
        The months of the project the ledger holds, up to ``month``.
    ledger : pandas.DataFrame
        The project's ledger rows up to ``month`` (for the plot).
    notes : list of str
    """

    table: pd.DataFrame
    month: str
    previous: str
    project: str
    months: list[str]
    ledger: pd.DataFrame
    currency: str = "$"
    notes: list[str] = field(default_factory=list)
    title = "Findings over time"

    def to_frame(self) -> pd.DataFrame:
        """Return one row per finding (this month's, then the resolved ones)."""
        return self.table.copy()

    def counts(self) -> dict[str, int]:
        """Return how many findings have each status."""
        return {s: int((self.table["status"] == s).sum()) for s in STATUSES}

    def summary(self) -> str:
        """Say what is new, growing, persisting, shrinking and gone, and the rule."""
        counts = self.counts()
        open_now = int((self.table["status"] != RESOLVED).sum())
        head = f"Findings of {self.month} over time ({self.project}, {len(self.months)} month(s) in the ledger)"
        if open_now == 0:
            lines = [f"{head}: no finding this month."]
        else:
            lines = [
                f"{head}: {open_now} finding(s) — "
                + ", ".join(f"{counts[s]} {s}" for s in STATUSES[:-1])
                + "."
            ]
        if counts[RESOLVED]:
            lines.append(
                f"{counts[RESOLVED]} finding(s) of {self.previous} no longer found ({RESOLVED})."
            )
        for row in self.table.itertuples():
            if row.status == RESOLVED:
                lines.append(
                    f"  – {row.id}: {RESOLVED} (was {fmt_money(row.previous_value_at_stake, self.currency)} "
                    f"a month in {self.previous})."
                )
                continue
            since = f"open {row.months_open} month(s), first seen {row.first_seen}"
            lines.append(
                f"  {int(row.rank) if row.rank == row.rank else '–'}. [{row.status}; {since}] "
                f"{row.text or row.id}"
            )
        lines.append(
            "Rule: growing when the value at stake is above the previous month's interval, "
            "shrinking when below it, persisting when inside it; new when not found the month before."
        )
        lines += self.notes
        return "\n".join(lines)

    def display_frame(self) -> pd.DataFrame:
        """Return the table for readers: money formatted, the trend as text."""
        out = self.table[["rank", "status", "id", "first_seen", "months_open"]].copy()
        out["value at stake"] = [fmt_money(v, self.currency) for v in self.table["value_at_stake"]]
        out["previous month"] = [
            fmt_money(v, self.currency) for v in self.table["previous_value_at_stake"]
        ]
        out["trend"] = [
            " → ".join(fmt_money(v, self.currency) for v in t) for t in self.table["trend"]
        ]
        return out

    def top_ids(self, n: int = 6) -> list[str]:
        """Return the ids of the ``n`` highest-ranked findings of the month."""
        found = self.table.loc[self.table["status"] != RESOLVED]
        return found["id"].head(n).tolist()

    def plot(self, ax=None, n: int = 6):
        """Small multiples of value at stake over the months, one panel per top finding.

        Parameters
        ----------
        ax : matplotlib Axes, array of Axes, or None
            None draws a new figure with one panel per finding; a sequence of
            axes is filled in order; a single Axes overlays the lines.
        n : int
            How many of the month's top findings to draw.

        Returns
        -------
        numpy.ndarray of Axes (or the single Axes given)
        """
        import matplotlib.pyplot as plt

        from journeylab.core.viz import PALETTE

        ids = self.top_ids(n)
        months = self.months
        x = np.arange(len(months))
        overlay = ax is not None and hasattr(ax, "plot")
        if ax is None:
            cols = min(3, max(len(ids), 1))
            rows = max(1, math.ceil(len(ids) / cols))
            fig, axes = plt.subplots(
                rows, cols, figsize=(max(3.8 * cols, 6.0), 3.0 * rows + 0.7), squeeze=False
            )
            axes = axes.ravel()
            for extra in axes[len(ids) :]:
                extra.set_axis_off()
            fig.suptitle(
                f"Value at stake per month, top findings of {self.month}",
                fontweight="bold",
                fontsize=12,
            )
        elif overlay:
            axes = np.array([ax])
        else:
            axes = np.asarray(ax).ravel()
        if not ids:
            axes[0].text(
                0.5, 0.5, f"No finding in {self.month}", ha="center", va="center", parse_math=False
            )
            axes[0].set_axis_off()
            return axes[0] if overlay else axes
        for i, fid in enumerate(ids):
            target = axes[i if not overlay else 0]
            rows = self.ledger.loc[self.ledger["id"] == fid].set_index("month").reindex(months)
            y = rows["value_at_stake"].to_numpy(float)
            lo = y - rows["value_at_stake_ci_low"].to_numpy(float)
            hi = rows["value_at_stake_ci_high"].to_numpy(float) - y
            colour = PALETTE[i % len(PALETTE)] if overlay else PALETTE[0]
            status = self.table.loc[self.table["id"] == fid, "status"].iloc[0]
            label = _short_name(self.table.loc[self.table["id"] == fid].iloc[0])
            target.errorbar(x, y, yerr=[lo, hi], marker="o", color=colour, capsize=3, label=label)
            if not overlay:  # the months reported without this finding
                gone = np.isnan(y)
                target.scatter(
                    x[gone],
                    np.zeros(gone.sum()),
                    marker="x",
                    color=PALETTE[2],
                    zorder=3,
                    clip_on=False,
                )
                title = "\n".join(textwrap.wrap(label, 40)[:3])
                target.set_title(
                    f"{title}\n({status})", fontsize=8.5, fontweight="normal", loc="left"
                )
                target.set_ylim(bottom=0)
            target.set_xticks(x, labels=months, rotation=45, ha="right", fontsize=8)
            target.tick_params(axis="y", labelsize=8)
            target.yaxis.set_major_formatter(lambda v, _: _money_tick(v, self.currency))
            for tick in target.get_xticklabels() + target.get_yticklabels():
                tick.set_parse_math(False)
        if not overlay:
            axes[0].figure.text(
                0.01, 0.01, "× reported month without this finding", fontsize=8, color=PALETTE[2]
            )
        if overlay:
            axes[0].set_ylabel(f"Value at stake per month ({self.currency})")
            axes[0].legend(fontsize=8)
            return axes[0]
        axes[0].figure.tight_layout()
        return axes


def finding_history(
    ledger: pd.DataFrame | str | Path,
    month: str,
    *,
    project: str | None = None,
    currency: str = "$",
) -> FindingHistory:
    """Follow each finding of ``month`` back through the ledger.

    Parameters
    ----------
    ledger : pandas.DataFrame or path
        :func:`read_ledger`'s frame, or the reports root.
    month : str
        ``YYYY-MM``; it must be in the ledger.
    project : str, optional
        Needed when the ledger holds several projects.
    currency : str
        Sign money is written with.

    Returns
    -------
    FindingHistory
        ``to_frame()`` has ``rank``, ``id``, ``kind``, ``step``, ``dimension``,
        ``segment``, ``status``, ``first_seen``, ``months_open`` (consecutive,
        up to ``month``), ``months_seen``, ``value_at_stake`` and its interval,
        ``previous_value_at_stake`` and its interval, ``trend_months``,
        ``trend`` (value at stake in each month seen) and ``text``.

    Examples
    --------
    >>> import tempfile
    >>> from journeylab.actions.ledger_file import append_findings
    >>> from journeylab.actions.ledger_history import finding_history
    >>> from journeylab.maps.findings import FINDING_FIELDS
    >>> root = tempfile.mkdtemp()
    >>> f = dict.fromkeys(FINDING_FIELDS) | {"id": "timing:a→b:hour_of_day=00:00-03:00", "kind": "timing",
    ...      "rank": 1, "value_at_stake": 100.0, "value_at_stake_ci_low": 50.0, "value_at_stake_ci_high": 150.0}
    >>> _ = append_findings(root, "2026-09", [f], project="Shop")
    >>> _ = append_findings(root, "2026-10", [f | {"value_at_stake": 200.0}], project="Shop")
    >>> finding_history(root, "2026-10").to_frame()[["status", "months_open"]].values.tolist()
    [['growing', 2]]
    """
    month = _check_month(month, "month")
    frame, project = _one_project(_as_ledger(ledger), project)
    months = sorted(m for m in frame["month"].unique().tolist() if m <= month)
    if month not in months:
        present = sorted(frame["month"].unique().tolist())
        raise ParameterError(
            f"month == {month!r} is not in the ledger of {project!r}{did_you_mean(month, present)}; "
            f"months present: {present}."
        )
    frame = frame.loc[frame["month"] <= month]
    found = frame.loc[frame["id"].notna()]
    reported = set(months)
    previous = _previous_month(month)
    notes = []
    if previous not in reported:
        notes.append(
            f"No report of {previous} in the ledger: every finding of {month} counts as new."
        )
    by_month = {m: g.set_index("id") for m, g in found.groupby("month")}
    now = by_month.get(month, pd.DataFrame(columns=found.columns).set_index("id"))
    before = by_month.get(previous, pd.DataFrame(columns=found.columns).set_index("id"))
    rows = []
    for fid, row in now.iterrows():
        seen = found.loc[found["id"] == fid].sort_values("month")
        streak, m = 0, month
        while m in by_month and fid in by_month[m].index:
            streak += 1
            m = _previous_month(m)
        status = "new"
        prev = before.loc[fid] if fid in before.index else None
        if prev is not None:
            status = _trend_status(
                row["value_at_stake"], prev["value_at_stake_ci_low"], prev["value_at_stake_ci_high"]
            )
        rows.append(_history_row(fid, row, status, prev, seen=seen, streak=streak))
    for fid, prev in before.iterrows():
        if fid in now.index:
            continue
        seen = found.loc[found["id"] == fid].sort_values("month")
        gone = {
            **prev.to_dict(),
            "rank": np.nan,
            "value_at_stake": np.nan,
            "value_at_stake_ci_low": np.nan,
            "value_at_stake_ci_high": np.nan,
        }
        out = _history_row(fid, gone, RESOLVED, prev, seen=seen, streak=0)
        out["previous_rank"] = prev.get("rank")
        rows.append(out)
    columns = [
        "rank", "id", "kind", "step", "dimension", "segment", "status", "first_seen", "months_open",
        "months_seen", "value_at_stake", "value_at_stake_ci_low", "value_at_stake_ci_high",
        "previous_value_at_stake", "previous_ci_low", "previous_ci_high", "trend_months", "trend", "text",
    ]  # fmt: skip
    table = pd.DataFrame(rows, columns=[*columns, "previous_rank"])
    table["_resolved"] = table["status"] == RESOLVED
    table = table.sort_values(["_resolved", "rank", "previous_rank"], kind="stable")
    table = table[columns].reset_index(drop=True)
    return FindingHistory(
        table=table,
        month=month,
        previous=previous,
        project=project,
        months=months,
        ledger=found.reset_index(drop=True),
        currency=currency,
        notes=notes,
    )


def _trend_status(value: float, prev_low: float, prev_high: float) -> str:
    """Growing above the previous month's interval, shrinking below it, persisting inside it."""
    if value is not None and prev_high is not None and value > prev_high:
        return "growing"
    if value is not None and prev_low is not None and value < prev_low:
        return "shrinking"
    return "persisting"


def _history_row(fid, row, status, prev, *, seen, streak) -> dict[str, Any]:
    return {
        "rank": row.get("rank"),
        "id": fid,
        "kind": row.get("kind"),
        "step": row.get("step"),
        "dimension": row.get("dimension"),
        "segment": row.get("segment"),
        "status": status,
        "first_seen": seen["month"].iloc[0],
        "months_open": streak,
        "months_seen": len(seen),
        "value_at_stake": row.get("value_at_stake"),
        "value_at_stake_ci_low": row.get("value_at_stake_ci_low"),
        "value_at_stake_ci_high": row.get("value_at_stake_ci_high"),
        "previous_value_at_stake": np.nan if prev is None else prev.get("value_at_stake"),
        "previous_ci_low": np.nan if prev is None else prev.get("value_at_stake_ci_low"),
        "previous_ci_high": np.nan if prev is None else prev.get("value_at_stake_ci_high"),
        "trend_months": seen["month"].tolist(),
        "trend": [float(v) for v in seen["value_at_stake"]],
        "text": row.get("text") or "",
    }
